//! The host interface over hypercalls: `out` to `HYPERCALL_PORT` with the guest-physical address
//! of a request block. One VM exit per host operation; clocks are read from the TSC and need none.

use core::cell::UnsafeCell;

use guest_sentry::abi::{
    self, op, BootInfo, HostStat, Hypercall, IoVec, IOV_MAX, KERNEL_VIRT_BASE,
};
use guest_sentry::errno::Errno;
use guest_sentry::host::{Buf, Clock, ExitStatus, Host, HostOp};

/// The request block and gather list, in the image's .bss (so below 4 GiB physical).
struct Shared {
    call: Hypercall,
    iov: [IoVec; IOV_MAX],
    stat: HostStat,
    statfs: abi::HostStatfs,
}

struct SharedCell(UnsafeCell<Shared>);
// SAFETY: one CPU, and hypercalls never nest (no interrupts in ring 0).
unsafe impl Sync for SharedCell {}

static SHARED: SharedCell = SharedCell(UnsafeCell::new(Shared {
    call: Hypercall {
        op: 0,
        args: [0; 6],
        ret: 0,
    },
    iov: [IoVec { gpa: 0, len: 0 }; IOV_MAX],
    stat: HostStat {
        mode: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        size: 0,
        blksize: 0,
        blocks: 0,
        dev: 0,
        ino: 0,
        rdev: 0,
        atime_ns: 0,
        mtime_ns: 0,
        ctime_ns: 0,
    },
    statfs: abi::HostStatfs::ZERO,
}));

/// Asks the VMM to interrupt the app `ns` from now (see `op::PREEMPT`).
pub fn preempt_after(ns: u64) {
    call(op::PREEMPT, [ns, 0, 0, 0, 0, 0]);
}

/// The CPU features ring 0 enabled, as `abi::CPU_*` bits.
fn cpu_bits() -> u64 {
    let f = ring0::features();
    [
        (f.xsave, abi::CPU_XSAVE),
        (f.smep, abi::CPU_SMEP),
        (f.smap, abi::CPU_SMAP),
        (f.pcid, abi::CPU_PCID),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit)
}

/// Guest-physical address of Sentry memory (the image mapping or the direct map).
pub fn gpa(va: u64) -> u64 {
    if va >= KERNEL_VIRT_BASE {
        va - KERNEL_VIRT_BASE
    } else if va >= abi::DIRECT_MAP_BASE {
        va - abi::DIRECT_MAP_BASE
    } else {
        panic!("no guest-physical address for {va:#x}")
    }
}

fn shared() -> &'static mut Shared {
    // SAFETY: see `SharedCell`: exclusive use for the duration of one hypercall.
    unsafe { &mut *SHARED.0.get() }
}

fn call(opcode: u64, args: [u64; 6]) -> i64 {
    let s = shared();
    s.call = Hypercall {
        op: opcode,
        args,
        ret: -(guest_sentry::errno::ENOSYS.0 as i64),
    };
    let block = gpa(&s.call as *const Hypercall as u64);
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    // SAFETY: the block and everything it names are valid guest memory until `out` returns.
    unsafe { ring0::outl(abi::HYPERCALL_PORT, block as u32) };
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    // SAFETY: the VMM wrote `ret`; read it back through a volatile load.
    unsafe { core::ptr::read_volatile(&s.call.ret) }
}

fn result(r: i64) -> Result<u64, Errno> {
    if r < 0 {
        Err(Errno((-r) as i32))
    } else {
        Ok(r as u64)
    }
}

pub fn panic(msg: &[u8]) -> ! {
    let len = msg.len().min(abi::LOG_MAX) as u64;
    call(op::PANIC, [gpa(msg.as_ptr() as u64), len, 0, 0, 0, 0]);
    ring0::halt_forever()
}

pub struct KvmHost {
    /// Bit n set: host stdio fd n is a terminal (terminal ioctls on others need no exit).
    stdio_tty: u64,
    tsc_khz: u64,
    tsc0: u64,
    realtime0: u64,
    monotonic0: u64,
}

impl KvmHost {
    pub fn new(bi: &BootInfo) -> Self {
        KvmHost {
            stdio_tty: bi.stdio_tty,
            tsc_khz: bi.tsc_khz,
            tsc0: ring0::rdtsc(),
            realtime0: bi.realtime_ns,
            monotonic0: bi.monotonic_ns,
        }
    }

    pub fn exit(&self, status: ExitStatus, exec_errno: i32) -> ! {
        call(
            op::EXIT,
            [
                status.code as u64,
                status.signal as u64,
                exec_errno as u64,
                cpu_bits(),
                0,
                0,
            ],
        );
        ring0::halt_forever()
    }

    /// A hypercall taking `[fd or handle, GPA of IoVec list, count, offset]` (at most
    /// `IOV_MAX` of `bufs` go in one call).
    fn iov_call(&self, opcode: u64, fd: u32, bufs: &[Buf], offset: u64) -> Result<u64, Errno> {
        let s = shared();
        let n = bufs.len().min(IOV_MAX);
        for (slot, b) in s.iov.iter_mut().zip(&bufs[..n]) {
            *slot = IoVec {
                gpa: gpa(b.addr),
                len: b.len,
            };
        }
        let iov = gpa(s.iov.as_ptr() as u64);
        result(call(opcode, [fd as u64, iov, n as u64, offset, 0, 0]))
    }
}

impl Host for KvmHost {
    fn write(&self, fd: u32, bufs: &[Buf]) -> Result<u64, Errno> {
        self.iov_call(op::WRITE, fd, bufs, 0)
    }

    fn read(&self, fd: u32, bufs: &[Buf]) -> Result<u64, Errno> {
        self.iov_call(op::READ, fd, bufs, 0)
    }

    fn open(&self, path: &[u8], flags: u64) -> Result<u32, Errno> {
        let args = [gpa(path.as_ptr() as u64), path.len() as u64, flags, 0, 0, 0];
        result(call(op::OPEN, args)).map(|h| h as u32)
    }

    fn preadv(&self, handle: u32, bufs: &[Buf], offset: u64) -> Result<u64, Errno> {
        self.iov_call(op::PREADV, handle, bufs, offset)
    }

    fn getdents(&self, handle: u32, buf: &mut [u8]) -> Result<u64, Errno> {
        let args = [
            handle as u64,
            gpa(buf.as_mut_ptr() as u64),
            buf.len() as u64,
            0,
            0,
            0,
        ];
        result(call(op::GETDENTS, args))
    }

    fn lseek(&self, handle: u32, offset: i64, whence: u32) -> Result<u64, Errno> {
        result(call(
            op::LSEEK,
            [handle as u64, offset as u64, whence as u64, 0, 0, 0],
        ))
    }

    fn readlink(&self, path: &[u8], out: &mut [u8]) -> Result<u64, Errno> {
        let args = [
            gpa(path.as_ptr() as u64),
            path.len() as u64,
            gpa(out.as_mut_ptr() as u64),
            out.len() as u64,
            0,
            0,
        ];
        result(call(op::READLINK, args))
    }

    fn exe_handle(&self) -> u32 {
        0
    }

    fn pread(&self, handle: u32, buf: &mut [u8], offset: u64) -> Result<u64, Errno> {
        let len = buf.len().min(16 << 20) as u64;
        result(call(
            op::PREAD,
            [
                handle as u64,
                gpa(buf.as_mut_ptr() as u64),
                len,
                offset,
                0,
                0,
            ],
        ))
    }

    fn close(&self, handle: u32) {
        call(op::CLOSE, [handle as u64, 0, 0, 0, 0, 0]);
    }

    fn fstat(&self, fd: u32, stdio: bool) -> Result<HostStat, Errno> {
        let s = shared();
        let out = gpa(&s.stat as *const HostStat as u64);
        result(call(op::FSTAT, [fd as u64, stdio as u64, out, 0, 0, 0]))?;
        Ok(s.stat)
    }

    fn statfs(&self, handle: u32) -> Result<abi::HostStatfs, Errno> {
        let s = shared();
        let out = gpa(&s.statfs as *const abi::HostStatfs as u64);
        result(call(op::STATFS, [handle as u64, out, 0, 0, 0, 0]))?;
        Ok(s.statfs)
    }

    fn stat(&self, path: &[u8], nofollow: bool) -> Result<HostStat, Errno> {
        let s = shared();
        let out = gpa(&s.stat as *const HostStat as u64);
        let args = [
            gpa(path.as_ptr() as u64),
            path.len() as u64,
            nofollow as u64,
            out,
            0,
            0,
        ];
        result(call(op::STAT, args))?;
        Ok(s.stat)
    }

    fn tty_ioctl(&self, fd: u32, request: u64, out: &mut [u8]) -> Result<(), Errno> {
        if fd < 3 && self.stdio_tty & (1 << fd) == 0 {
            return Err(guest_sentry::errno::ENOTTY);
        }
        result(call(
            op::IOCTL,
            [
                fd as u64,
                request,
                gpa(out.as_mut_ptr() as u64),
                out.len() as u64,
                0,
                0,
            ],
        ))
        .map(|_| ())
    }

    fn log(&self, line: &str) {
        let len = line.len().min(abi::LOG_MAX) as u64;
        call(op::LOG, [gpa(line.as_ptr() as u64), len, 0, 0, 0, 0]);
    }

    fn sleep(&self, ns: u64) {
        call(op::SLEEP, [ns.min(1_000_000_000), 0, 0, 0, 0, 0]);
    }

    fn open_write(&self, path: &[u8], flags: u64, mode: u32) -> Result<u32, Errno> {
        let args = [
            gpa(path.as_ptr() as u64),
            path.len() as u64,
            flags,
            mode as u64,
            0,
            0,
        ];
        result(call(op::OPEN_WRITE, args)).map(|h| h as u32)
    }

    fn pwritev(&self, handle: u32, bufs: &[Buf], offset: u64) -> Result<u64, Errno> {
        self.iov_call(op::PWRITEV, handle, bufs, offset)
    }

    fn handle_op(&self, handle: u32, kind: u64, arg: u64) -> Result<(), Errno> {
        result(call(op::HANDLE, [handle as u64, kind, arg, 0, 0, 0])).map(|_| ())
    }

    fn modify(&self, o: &HostOp) -> Result<(), Errno> {
        let p = |b: &[u8]| (gpa(b.as_ptr() as u64), b.len() as u64);
        let times_buf: [i64; 4];
        let (kind, (g1, l1), (g2, l2), extra) = match *o {
            HostOp::Mkdir { path, mode } => (abi::MODIFY_MKDIR, p(path), (0, 0), mode as u64),
            HostOp::Unlink { path, dir } => {
                let kind = if dir {
                    abi::MODIFY_RMDIR
                } else {
                    abi::MODIFY_UNLINK
                };
                (kind, p(path), (0, 0), 0)
            }
            HostOp::Rename { from, to } => (abi::MODIFY_RENAME, p(from), p(to), 0),
            HostOp::Link { from, to } => (abi::MODIFY_LINK, p(from), p(to), 0),
            HostOp::Symlink { target, path } => (abi::MODIFY_SYMLINK, p(path), p(target), 0),
            HostOp::Truncate { path, len } => (abi::MODIFY_TRUNCATE, p(path), (0, 0), len),
            HostOp::Chmod { path, mode } => (abi::MODIFY_CHMOD, p(path), (0, 0), mode as u64),
            HostOp::Chown {
                path,
                uid,
                gid,
                nofollow,
            } => {
                let kind = if nofollow {
                    abi::MODIFY_LCHOWN
                } else {
                    abi::MODIFY_CHOWN
                };
                (kind, p(path), (0, 0), (uid as u64) << 32 | gid as u64)
            }
            HostOp::Utimens {
                path,
                times,
                nofollow,
            } => {
                times_buf = times;
                let kind = if nofollow {
                    abi::MODIFY_LUTIMENS
                } else {
                    abi::MODIFY_UTIMENS
                };
                let t = (gpa(times_buf.as_ptr() as u64), 32);
                (kind, p(path), t, 0)
            }
        };
        result(call(op::MODIFY, [kind, g1, l1, g2, l2, extra])).map(|_| ())
    }

    fn take_signals(&self) -> u64 {
        let word = host_signal_word();
        if word.load(core::sync::atomic::Ordering::Relaxed) == 0 {
            return 0;
        }
        word.swap(0, core::sync::atomic::Ordering::AcqRel)
    }

    fn now(&self, clock: Clock) -> u64 {
        if self.tsc_khz == 0 {
            let id = if clock == Clock::Realtime { 0 } else { 1 };
            return call(op::CLOCK, [id, 0, 0, 0, 0, 0]) as u64;
        }
        let ticks = ring0::rdtsc().wrapping_sub(self.tsc0) as u128;
        let ns = (ticks * 1_000_000 / self.tsc_khz as u128) as u64;
        match clock {
            Clock::Realtime => self.realtime0 + ns,
            Clock::Monotonic => self.monotonic0 + ns,
        }
    }
}

/// The host-signal word the VMM sets bits in (`abi::HOST_SIGNALS_GPA`).
pub fn host_signal_word() -> &'static core::sync::atomic::AtomicU64 {
    // SAFETY: the word lies in the boot-info page, reached through the direct map for the
    // Sentry's whole life; it is only ever accessed atomically (here and by the VMM), never
    // through a plain reference.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(
            (abi::DIRECT_MAP_BASE + abi::HOST_SIGNALS_GPA) as *mut u64,
        )
    }
}

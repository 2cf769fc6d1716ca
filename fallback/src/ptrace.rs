//! The ptrace platform: each address space is a stub process; the app runs in it under
//! `PTRACE_SYSEMU`, so every syscall stops it before the host kernel acts, and faults arrive as
//! signal-delivery stops. Mappings are made by having the stub run `mmap`/`munmap` on the
//! memory file. Works anywhere ptrace works; each syscall costs two host context switches.
//!
//! Two x86 side doors need more than `PTRACE_SYSEMU`:
//! - The legacy vsyscall page (`0xffffffffff600000`: gettimeofday, +0x400 time, +0x800
//!   getcpu) is emulated by the host kernel from the page fault, without a syscall stop — but
//!   the emulation runs seccomp. The stub's filter ([`vsyscall_filter`]) traps exactly those
//!   calls (`SECCOMP_RET_TRAP`); the host has then already done the `ret` (rip is the caller,
//!   rsp 8 higher) and skipped the call, and the SIGSYS stop is reported as
//!   [`Event::Syscall`] with the vsyscall's syscall number.
//! - 32-bit entries (`int $0x80`, `syscall`/`sysenter` from 32-bit code) stop like any
//!   syscall; `PTRACE_GET_SYSCALL_INFO` says which ABI was used (never the app's bytes, which
//!   it controls) and they are reported as [`Event::Syscall32`]. The app resumes in the mode
//!   it was in: a 32-bit code selector (and flat 32-bit data selectors) it had are kept.
//!
//! Contexts that take turns on one stub keep their own extended state ([`crate::xstate`]):
//! a switch by a context whose state is not the stub's saves the stub's whole XSAVE state
//! (`PTRACE_GETREGSET(NT_X86_XSTATE)`) into the previous owner's buffer and loads its own
//! (`PTRACE_SETREGSET`): two more ptrace calls, only when the context changes.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use guest_sentry::errno::{Errno, EIO, ENOMEM};
use guest_sentry::platform::{Access, AddressSpace, Context, Event, Platform, UserRegs};

use crate::stub::{self, Stub, STUB_MEMFD};
use crate::xstate::{self, Live, Owner, Saved, HEADER_END};

/// The legacy vsyscall page (Linux's `VSYSCALL_ADDR`), one page.
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;
/// Linux's x86-64 user selectors: 32-bit code, data, 64-bit code.
const USER32_CS: u64 = 0x23;
const USER_DS: u64 = 0x2b;
const USER_CS: u64 = 0x33;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
/// `si_code` of a seccomp SIGSYS.
const SYS_SECCOMP: i32 = 1;

/// Length of [`vsyscall_filter`].
pub(crate) const VSYSCALL_FILTER_LEN: usize = 7;

/// The ptrace stub's seccomp filter: `SECCOMP_RET_TRAP` for a syscall whose instruction
/// pointer is in the vsyscall page (only the host's vsyscall emulation reports such an
/// address), everything else allowed. App syscalls never reach it (`PTRACE_SYSEMU` stops and
/// skips them before seccomp runs); the stub's own injected `mmap`/`munmap` pass. Built
/// without allocating (it runs in the forked child).
pub(crate) fn vsyscall_filter() -> [libc::sock_filter; VSYSCALL_FILTER_LEN] {
    const TRAP: usize = 5;
    const ALLOW: usize = 6;
    let lo = VSYSCALL_PAGE as u32;
    let hi = (VSYSCALL_PAGE >> 32) as u32;
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jge = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    // (code, k, jump-if-true target, jump-if-false target), targets as absolute indices.
    let prog: [(u16, u32, usize, usize); VSYSCALL_FILTER_LEN] = [
        (ld, 12, 0, 0),             // 0: instruction pointer, high half
        (jeq, hi, 2, ALLOW),        // 1
        (ld, 8, 0, 0),              // 2: low half
        (jge, lo + 4096, ALLOW, 4), // 3: past the page
        (jge, lo, TRAP, ALLOW),     // 4
        (ret, libc::SECCOMP_RET_TRAP, 0, 0),
        (ret, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let mut out = [libc::sock_filter {
        code: 0,
        jt: 0,
        jf: 0,
        k: 0,
    }; VSYSCALL_FILTER_LEN];
    for (i, &(code, k, t, f)) in prog.iter().enumerate() {
        let jump = code == jeq || code == jge;
        let rel = |target: usize| if jump { (target - i - 1) as u8 } else { 0 };
        out[i] = libc::sock_filter {
            code,
            jt: rel(t),
            jf: rel(f),
            k,
        };
    }
    out
}

/// Whether the syscall `pid` is stopped at entered through a 32-bit entry (the i386 ABI).
/// Asks the kernel (`PTRACE_GET_SYSCALL_INFO`, Linux 5.3); where it cannot say, a 32-bit code
/// selector is the evidence (that misses only `int $0x80` from 64-bit code).
fn entered_32_bit(pid: libc::pid_t, cs: u64) -> bool {
    /// The head of `struct ptrace_syscall_info`: all that is asked for.
    #[repr(C)]
    #[derive(Default)]
    struct InfoHead {
        op: u8,
        _pad: [u8; 3],
        arch: u32,
    }
    let mut info = InfoHead::default();
    let size = std::mem::size_of::<InfoHead>();
    // SAFETY: pid is our tracee in a syscall-entry stop; the kernel writes at most `size`
    // bytes into `info`.
    let r = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            pid,
            size,
            &mut info as *mut InfoHead,
        )
    };
    if r >= size as libc::c_long && info.op == PTRACE_SYSCALL_INFO_ENTRY {
        return info.arch == AUDIT_ARCH_I386;
    }
    cs == USER32_CS
}

/// The syscall number of a vsyscall the stub's filter trapped (`pid` is in the SIGSYS
/// delivery stop described by `si`), or `None` for any other SIGSYS.
fn vsyscall_number(si: &libc::siginfo_t) -> Option<u64> {
    if si.si_code != SYS_SECCOMP {
        return None;
    }
    const _: () = assert!(std::mem::size_of::<libc::siginfo_t>() == 128);
    // SAFETY: siginfo_t is 128 bytes of plain data (checked above).
    let raw: [u8; 128] = unsafe { std::mem::transmute_copy(si) };
    // The `_sigsys` member after signo, errno, code (and padding): call address, number, arch.
    let call_addr = u64::from_ne_bytes(raw[16..24].try_into().unwrap());
    let nr = i32::from_ne_bytes(raw[24..28].try_into().unwrap());
    let arch = u32::from_ne_bytes(raw[28..32].try_into().unwrap());
    if arch != AUDIT_ARCH_X86_64 || !(VSYSCALL_PAGE..VSYSCALL_PAGE + 4096).contains(&call_addr) {
        return None;
    }
    u64::try_from(nr).ok()
}

/// The ELF note type of the XSAVE register set.
const NT_X86_XSTATE: libc::c_uint = 0x202;

/// The size of the kernel's XSAVE register set (`PTRACE_SETREGSET` wants exactly that many
/// bytes), asked of the kernel once, with `pid` (a stopped tracee); 0 where it has none (no
/// XSAVE: the 512-byte FXSAVE registers are all there is).
fn xstate_regset_size(pid: libc::pid_t) -> Result<usize, Errno> {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if let Some(&n) = SIZE.get() {
        return Ok(n);
    }
    // CPUID 0xD.0 ECX: the largest XSAVE area of every component the CPU has; the kernel's
    // set is no larger, and it answers with the size it wrote.
    let max = std::arch::x86_64::__cpuid_count(0xd, 0).ecx as usize;
    let mut buf = vec![0u8; max.clamp(4096, 1 << 20)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let n = if xstate::layout().xcr0 == 0 {
        0
    } else {
        // SAFETY: pid is our stopped tracee; the kernel writes at most iov_len bytes into buf
        // and stores how many in iov_len.
        let r = unsafe { libc::ptrace(libc::PTRACE_GETREGSET, pid, NT_X86_XSTATE, &mut iov) };
        if r < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENODEV) => 0,
                _ => {
                    return Err(failed(
                        "PTRACE_GETREGSET(NT_X86_XSTATE) for its size",
                        io::Error::last_os_error(),
                    ))
                }
            }
        } else if iov.iov_len >= HEADER_END && iov.iov_len <= buf.len() {
            iov.iov_len
        } else {
            0
        }
    };
    Ok(*SIZE.get_or_init(|| n))
}

/// The XSAVE components an app's state holds here: all the host enabled but AMX (see
/// [`xstate::AMX_MASK`]).
fn app_xsave_mask() -> u64 {
    xstate::layout().xcr0 & !xstate::AMX_MASK
}

/// The stub's live state, through ptrace (the stub is stopped between events).
struct Tracee(libc::pid_t);

impl Live for Tracee {
    fn save_live(&mut self) -> Result<Vec<u8>, Errno> {
        let n = xstate_regset_size(self.0)?;
        if n == 0 {
            let mut fx = vec![0u8; 512];
            // SAFETY: the stub is our stopped tracee; user_fpregs_struct is 512 bytes.
            if unsafe { libc::ptrace(libc::PTRACE_GETFPREGS, self.0, 0, fx.as_mut_ptr()) } < 0 {
                return Err(failed("PTRACE_GETFPREGS", io::Error::last_os_error()));
            }
            return Ok(fx);
        }
        let mut img = vec![0u8; n];
        let mut iov = libc::iovec {
            iov_base: img.as_mut_ptr().cast(),
            iov_len: n,
        };
        // SAFETY: as in `xstate_regset_size`.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGSET, self.0, NT_X86_XSTATE, &mut iov) } < 0 {
            return Err(failed(
                "PTRACE_GETREGSET(NT_X86_XSTATE)",
                io::Error::last_os_error(),
            ));
        }
        if iov.iov_len < 512 || iov.iov_len > n {
            note_failure(format!(
                "PTRACE_GETREGSET(NT_X86_XSTATE) gave {} bytes (want 512..={n})",
                iov.iov_len
            ));
            return Err(EIO);
        }
        img.truncate(iov.iov_len);
        Ok(img)
    }

    fn load_live(&mut self, img: &[u8], fresh: bool) -> Result<(), Errno> {
        // A single-threaded process never needs the XSAVE register set: its first context
        // loads the initial legacy state over the stub's start state with SETFPREGS (the
        // other components stay as the fork left them, as they did before contexts kept
        // state), and nothing else is ever loaded. So `vmm`'s own seccomp filter, which
        // allows the requests it knows, needs PTRACE_{GET,SET}REGSET only where the Sentry
        // runs several threads of one process.
        let n = if fresh && img.len() < HEADER_END {
            0
        } else {
            xstate_regset_size(self.0)?
        };
        if n == 0 {
            let mut fx = [0u8; 512];
            fx.copy_from_slice(&img[..512]);
            // SAFETY: as above; the kernel validates MXCSR.
            if unsafe { libc::ptrace(libc::PTRACE_SETFPREGS, self.0, 0, fx.as_ptr()) } < 0 {
                return Err(failed("PTRACE_SETFPREGS", io::Error::last_os_error()));
            }
            return Ok(());
        }
        // The whole set, as the kernel wants it: a fresh header, the components `img` has.
        let mut full = vec![0u8; n];
        xstate::copy_image(&mut full, xstate::layout().xcr0, img);
        let mut iov = libc::iovec {
            iov_base: full.as_mut_ptr().cast(),
            iov_len: n,
        };
        // SAFETY: pid is our stopped tracee; the kernel reads iov_len bytes and validates the
        // header and MXCSR.
        if unsafe { libc::ptrace(libc::PTRACE_SETREGSET, self.0, NT_X86_XSTATE, &mut iov) } < 0 {
            return Err(failed(
                "PTRACE_SETREGSET(NT_X86_XSTATE)",
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

fn eio(e: io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(EIO.0))
}

/// What last failed on the host (a ptrace request, a wait): the platform's errors are errnos,
/// and this names the request behind one for the message that ends the sandbox.
static LAST_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn note_failure(what: String) {
    if let Ok(mut last) = LAST_FAILURE.lock() {
        *last = Some(what);
    }
}

/// `what` failed with `e`: noted ([`last_failure`]) and returned as an errno.
fn failed(what: &str, e: io::Error) -> Errno {
    note_failure(format!("{what}: {e}"));
    eio(e)
}

/// The host request behind the platform's last error, if one was noted.
pub fn last_failure() -> Option<String> {
    LAST_FAILURE.lock().ok().and_then(|mut l| l.take())
}

/// Pins this thread and the stub to the CPU we run on: every syscall is a handoff between the
/// two, and on one CPU it costs a context switch instead of a cross-CPU wake-up (about 3×
/// cheaper). Best effort: without it the platform still works.
fn pin_together(stub: libc::pid_t) {
    // SAFETY: plain syscalls on a cpu_set_t we own.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_setaffinity(0, size, &set) == 0 {
            libc::sched_setaffinity(stub, size, &set);
        }
    }
}

pub struct PtracePlatform {
    memfd: i32,
    parallel: bool,
}

impl PtracePlatform {
    /// `memfd`: the sandbox's memory file (stays open in `vmm`; each stub gets a copy).
    /// `parallel`: apps of several processes will run at once (`--cpus` above 1).
    pub fn new(memfd: i32, parallel: bool) -> Self {
        if parallel {
            // `wait_any` waits for SIGCHLD (a tracee stopped) with sigtimedwait: it must stay
            // pending until taken. (Stubs unblock every signal when they start.)
            // SAFETY: plain syscalls on a sigset_t we own.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGCHLD);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
        }
        PtracePlatform { memfd, parallel }
    }
}

pub struct PtraceAddressSpace {
    stub: Rc<Stub>,
    /// Whose extended state is live in the stub.
    fpu_owner: Owner,
    /// The wait status of the stop that ended the app's last run, once `event_ready` has
    /// taken it from the host (`finish` then uses it instead of waiting).
    status: Cell<Option<i32>>,
    /// Apps run in parallel: the stub is pinned to the Sentry's CPU only while it calls the
    /// Sentry often (see [`PtraceAddressSpace::note_stop`]).
    parallel: bool,
    pinned: bool,
    /// Stops in a row that were not a preemption tick, while unpinned.
    calls_in_a_row: u32,
}

/// Stops in a row without a tick after which an unpinned stub is pinned again.
const REPIN_AFTER: u32 = 64;

impl PtraceAddressSpace {
    /// Where apps run in parallel, a stub stays on the Sentry's CPU (its stops are then a
    /// context switch, not a cross-CPU wake-up) while it stops often, and may run on any CPU
    /// once it computes for a whole preemption tick without calling the Sentry.
    fn note_stop(&mut self, status: i32) {
        let tick = libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == stub::TICK_SIGNAL;
        if tick {
            self.calls_in_a_row = 0;
            if self.pinned {
                set_affinity(self.stub.pid, None);
                self.pinned = false;
            }
        } else if !self.pinned {
            self.calls_in_a_row += 1;
            if self.calls_in_a_row >= REPIN_AFTER {
                // SAFETY: no preconditions.
                let cpu = unsafe { libc::sched_getcpu() };
                if cpu >= 0 {
                    set_affinity(self.stub.pid, Some(cpu as usize));
                    self.pinned = true;
                }
            }
        }
    }
}

/// Lets `pid` run on `cpu` only, or (None) on any CPU this process may use. Best effort.
fn set_affinity(pid: libc::pid_t, cpu: Option<usize>) {
    // SAFETY: plain syscalls on a cpu_set_t we own.
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            // (The kernel keeps it to the CPUs the process's cpuset allows.)
            None => {
                for c in 0..libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::sched_setaffinity(pid, size, &set);
    }
}

fn prot(a: Access) -> u64 {
    (a.read as u64) | (a.write as u64) << 1 | (a.execute as u64) << 2
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(&mut self, addr: u64, offset: u64, len: u64, access: Access) -> Result<(), Errno> {
        if !access.any() {
            self.unmap(addr, len);
            return Ok(());
        }
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let r = self
            .stub
            .syscall(
                libc::SYS_mmap as u64,
                [addr, len, prot(access), flags, STUB_MEMFD as u64, offset],
            )
            .map_err(|e| failed("the stub's mmap", e))?;
        if r as u64 != addr {
            return Err(ENOMEM);
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        // A failure leaves the stub unusable, which the next switch reports.
        let _ = self
            .stub
            .syscall(libc::SYS_munmap as u64, [addr, len, 0, 0, 0, 0]);
    }

    fn event_ready(&self) -> bool {
        if self.status.get().is_some() {
            return true;
        }
        let mut status = 0;
        // SAFETY: status is a valid out-parameter; pid is our tracee.
        let r = unsafe { libc::waitpid(self.stub.pid, &mut status, libc::WNOHANG | libc::__WALL) };
        if r == self.stub.pid {
            self.status.set(Some(status));
            return true;
        }
        // Gone (reaped already): `finish` finds it so.
        r < 0 && stub::errno() != libc::EINTR
    }

    fn kick(&self) {
        // A tick now: the stub stops with it, which the app's event reports as an interrupt.
        // SAFETY: our tracee (a stub is killed only with its address space).
        unsafe { libc::kill(self.stub.pid, stub::TICK_SIGNAL) };
    }

    fn wait_any(spaces: &[&Self], timeout_ns: u64) -> Option<usize> {
        let start = std::time::Instant::now();
        loop {
            if let Some(i) = spaces.iter().position(|s| s.event_ready()) {
                return Some(i);
            }
            let left = timeout_ns.saturating_sub(start.elapsed().as_nanos() as u64);
            if left == 0 {
                return None;
            }
            // A tracee's stop sends us SIGCHLD, blocked since the platform was made (so one
            // that came since the look above is still pending); a host signal for the
            // sandbox ends the wait too.
            let wait = left.min(50_000_000);
            let ts = libc::timespec {
                tv_sec: (wait / 1_000_000_000) as libc::time_t,
                tv_nsec: (wait % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: plain syscalls on a sigset_t we own and a valid timeout.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGCHLD);
                libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
            }
        }
    }
}

pub struct PtraceContext {
    /// The last event was a vsyscall: the stub sits in a signal-delivery stop, not in a
    /// syscall, so it must resume with no syscall number (no restart processing).
    after_vsyscall: bool,
    /// Its extended state while another context's is live in the stub.
    fpu: Saved,
}

impl Context for PtraceContext {
    type AddressSpace = PtraceAddressSpace;

    fn fpu_state(&mut self, space: &mut PtraceAddressSpace) -> Result<Vec<u8>, Errno> {
        let mask = app_xsave_mask();
        if !self.fpu.owns(&space.fpu_owner) {
            return Ok(xstate::export(&self.fpu.image(), mask));
        }
        let live = Tracee(space.stub.pid).save_live()?;
        Ok(xstate::export(&live, mask))
    }

    fn set_fpu_state(&mut self, space: &mut PtraceAddressSpace, img: &[u8]) -> Result<(), Errno> {
        xstate::check_len(img, app_xsave_mask())?;
        if !self.fpu.owns(&space.fpu_owner) {
            // Another context's state is live (the Sentry sets a new thread's from its
            // parent's): change only this one's saved copy.
            self.fpu.set_image(img);
            return Ok(());
        }
        Tracee(space.stub.pid).load_live(img, false)
    }

    fn xstate_layout(&self) -> (u64, usize) {
        xstate::layout_for(app_xsave_mask())
    }

    fn switch(
        &mut self,
        space: &mut PtraceAddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        self.start(space, regs)?;
        self.finish(space, regs)
    }

    fn start(&mut self, space: &mut PtraceAddressSpace, regs: &UserRegs) -> Result<(), Errno> {
        let mut regs = *regs;
        let regs = &mut regs;
        let pid = space.stub.pid;
        // The app's own mode: 32-bit code stays 32-bit (cs 0x23, flat data selectors it
        // loaded); anything else is the 64-bit user selectors.
        regs.cs = if regs.cs == USER32_CS {
            USER32_CS
        } else {
            USER_CS
        };
        regs.ss = USER_DS;
        for sel in [&mut regs.ds, &mut regs.es] {
            if *sel != USER_DS {
                *sel = 0;
            }
        }
        regs.fs = 0;
        regs.gs = 0;
        self.fpu.take_over(&mut space.fpu_owner, &mut Tracee(pid))?;
        if std::mem::take(&mut self.after_vsyscall) {
            let mut r = *regs;
            r.orig_rax = u64::MAX;
            stub::set_regs(pid, &r).map_err(|e| failed("PTRACE_SETREGS", e))?;
        } else {
            stub::set_regs(pid, regs).map_err(|e| failed("PTRACE_SETREGS", e))?;
        }
        // SAFETY: pid is our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_SYSEMU, pid, 0, 0) } < 0 {
            return Err(failed("PTRACE_SYSEMU", io::Error::last_os_error()));
        }
        space.status.set(None);
        Ok(())
    }

    fn finish(
        &mut self,
        space: &mut PtraceAddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        let pid = space.stub.pid;
        let status = match space.status.take() {
            Some(status) => status,
            None => stub::wait(pid).map_err(|e| failed("waitpid", e))?,
        };
        if space.parallel {
            space.note_stop(status);
        }
        if !libc::WIFSTOPPED(status) {
            // The stub died (killed from outside).
            return Err(guest_sentry::errno::ESRCH);
        }
        *regs = stub::get_regs(pid).map_err(|e| failed("PTRACE_GETREGS", e))?;
        let sig = libc::WSTOPSIG(status);
        Ok(match sig {
            s if s == libc::SIGTRAP | 0x80 => {
                if entered_32_bit(pid, regs.cs) {
                    Event::Syscall32
                } else {
                    Event::Syscall
                }
            }
            libc::SIGSYS => {
                // SAFETY: siginfo_t is plain data; the kernel fills it.
                let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: pid is stopped in a signal-delivery stop.
                if unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si) } < 0 {
                    return Err(failed(
                        "PTRACE_GETSIGINFO (SIGSYS)",
                        io::Error::last_os_error(),
                    ));
                }
                match vsyscall_number(&si) {
                    Some(nr) => {
                        // The host already emulated the `ret` and skipped the call: the
                        // Sentry serves it and the app resumes at its caller.
                        regs.orig_rax = nr;
                        self.after_vsyscall = true;
                        Event::Syscall
                    }
                    None => Event::Interrupt,
                }
            }
            libc::SIGSEGV => {
                // SAFETY: siginfo_t is plain data; the kernel fills it.
                let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: pid is stopped in a signal-delivery stop.
                if unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si) } < 0 {
                    return Err(failed(
                        "PTRACE_GETSIGINFO (SIGSEGV)",
                        io::Error::last_os_error(),
                    ));
                }
                // SAFETY: for SIGSEGV the union holds the fault address.
                let addr = unsafe { si.si_addr() } as u64;
                // ptrace cannot tell the access kind: the memory manager decides from state.
                Event::Fault {
                    addr,
                    access: Access::NONE,
                }
            }
            libc::SIGBUS => Event::Exception {
                vector: 17,
                error_code: 0,
            },
            libc::SIGILL => Event::Exception {
                vector: 6,
                error_code: 0,
            },
            libc::SIGFPE => Event::Exception {
                vector: 0,
                error_code: 0,
            },
            libc::SIGTRAP => Event::Exception {
                vector: 3,
                error_code: 0,
            },
            // Anything else (a stop or signal from outside) is dropped; the Sentry decides.
            _ => Event::Interrupt,
        })
    }
}

impl Platform for PtracePlatform {
    type AddressSpace = PtraceAddressSpace;
    type Context = PtraceContext;
    const PARALLEL: bool = true;

    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn new_address_space(&mut self) -> Result<PtraceAddressSpace, Errno> {
        let stub = Stub::spawn(self.memfd).map_err(|e| failed("spawning the stub", e))?;
        pin_together(stub.pid);
        Ok(PtraceAddressSpace {
            stub: Rc::new(stub),
            fpu_owner: Owner::default(),
            status: Cell::new(None),
            parallel: self.parallel,
            pinned: true,
            calls_in_a_row: 0,
        })
    }

    fn new_context(&mut self) -> Result<PtraceContext, Errno> {
        Ok(PtraceContext {
            after_vsyscall: false,
            fpu: Saved::default(),
        })
    }
}

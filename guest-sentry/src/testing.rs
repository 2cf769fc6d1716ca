//! A fake [`Host`] and a fake [`Platform`] so the syscall layer can be unit-tested without a
//! stub process or a VM: [`Harness`] holds a kernel, one task and its memory, and makes
//! syscalls through [`crate::syscalls::dispatch`] as the task loop would.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::mem::ManuallyDrop;
use std::boxed::Box;

use crate::abi::HostStat;
use crate::errno::{Errno, EBADF, ENOENT, ENOTDIR};
use crate::host::{Buf, Clock, Host, HostOp};
use crate::kernel::{Config, Kernel, Spawn, Task};
use crate::memfile::MemoryFile;
use crate::mm::Mm;
use crate::platform::{Access, AddressSpace, Context, Event, Platform, UserRegs, FXSAVE_SIZE};

/// Files the fake host has: path → contents. Directories are the paths' prefixes.
#[derive(Default)]
pub struct FakeHost {
    pub files: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Open handles: the path of each.
    handles: RefCell<Vec<Option<Vec<u8>>>>,
    /// What the Sentry logged (strace lines, unknown syscalls).
    pub log: RefCell<Vec<String>>,
    /// What the app wrote to stdout and stderr.
    pub stdout: RefCell<Vec<u8>>,
    clock: core::cell::Cell<u64>,
}

impl FakeHost {
    pub fn with_files(files: &[(&str, &[u8])]) -> FakeHost {
        FakeHost {
            files: files
                .iter()
                .map(|(p, d)| (p.as_bytes().to_vec(), d.to_vec()))
                .collect(),
            ..Default::default()
        }
    }

    fn is_dir(&self, path: &[u8]) -> bool {
        let dir: Vec<u8> = if path.ends_with(b"/") {
            path.to_vec()
        } else {
            [path, b"/"].concat()
        };
        self.files.keys().any(|f| f.starts_with(&dir))
    }

    fn stat_of(&self, path: &[u8]) -> Result<HostStat, Errno> {
        let ino = 1 + self
            .files
            .keys()
            .position(|k| k == path)
            .unwrap_or(usize::MAX >> 1) as u64;
        let (mode, size) = if let Some(data) = self.files.get(path) {
            (0o100644, data.len() as u64)
        } else if self.is_dir(path) {
            (0o040755, 4096)
        } else {
            return Err(ENOENT);
        };
        Ok(HostStat {
            mode,
            nlink: 1,
            uid: 0,
            gid: 0,
            size,
            blksize: 4096,
            blocks: size.div_ceil(512),
            dev: 1,
            ino,
            rdev: 0,
            atime_ns: 0,
            mtime_ns: 0,
            ctime_ns: 0,
        })
    }

    fn handle_path(&self, handle: u32) -> Result<Vec<u8>, Errno> {
        self.handles
            .borrow()
            .get(handle as usize)
            .cloned()
            .flatten()
            .ok_or(EBADF)
    }
}

/// The bytes of a Sentry-visible buffer.
///
/// # Safety
/// `b` must describe memory valid for reads (the harness's memory file: every [`Buf`] the
/// Sentry hands the host points into it).
unsafe fn bytes(b: &Buf) -> &[u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(b.addr as *const u8, b.len as usize) }
}

impl Host for FakeHost {
    fn write(&self, fd: u32, bufs: &[Buf]) -> Result<u64, Errno> {
        if fd == 0 {
            return Err(EBADF);
        }
        let mut n = 0;
        for b in bufs {
            // SAFETY: the Sentry hands the host buffers inside the memory file, which the
            // harness keeps alive.
            self.stdout
                .borrow_mut()
                .extend_from_slice(unsafe { bytes(b) });
            n += b.len;
        }
        Ok(n)
    }
    fn read(&self, _fd: u32, _bufs: &[Buf]) -> Result<u64, Errno> {
        Ok(0)
    }
    fn open(&self, path: &[u8], flags: u64) -> Result<u32, Errno> {
        self.stat_of(path)?;
        if flags & crate::abi::OPEN_DIRECTORY != 0 && !self.is_dir(path) {
            return Err(ENOTDIR);
        }
        let mut h = self.handles.borrow_mut();
        h.push(Some(path.to_vec()));
        Ok((h.len() - 1) as u32)
    }
    fn exe_handle(&self) -> u32 {
        u32::MAX
    }
    fn pread(&self, handle: u32, buf: &mut [u8], offset: u64) -> Result<u64, Errno> {
        let path = self.handle_path(handle)?;
        let data = self.files.get(&path).map_or(&[][..], |d| d.as_slice());
        let from = data.len().min(offset as usize);
        let n = buf.len().min(data.len() - from);
        buf[..n].copy_from_slice(&data[from..from + n]);
        Ok(n as u64)
    }
    fn preadv(&self, handle: u32, bufs: &[Buf], offset: u64) -> Result<u64, Errno> {
        let mut total = 0;
        for b in bufs {
            // SAFETY: as in `write`; the Sentry gives the host exclusive use of the range for
            // the call.
            let out = unsafe { core::slice::from_raw_parts_mut(b.addr as *mut u8, b.len as usize) };
            let n = self.pread(handle, out, offset + total)?;
            total += n;
            if n < b.len {
                break;
            }
        }
        Ok(total)
    }
    fn getdents(&self, _handle: u32, _buf: &mut [u8]) -> Result<u64, Errno> {
        Ok(0)
    }
    fn lseek(&self, handle: u32, offset: i64, _whence: u32) -> Result<u64, Errno> {
        self.handle_path(handle).map(|_| offset as u64)
    }
    fn readlink(&self, _path: &[u8], _out: &mut [u8]) -> Result<u64, Errno> {
        Err(crate::errno::EINVAL)
    }
    fn close(&self, handle: u32) {
        if let Some(h) = self.handles.borrow_mut().get_mut(handle as usize) {
            *h = None;
        }
    }
    fn fstat(&self, fd: u32, stdio: bool) -> Result<HostStat, Errno> {
        if stdio {
            let mut st = self.stat_of(b"/")?;
            st.mode = 0o020620;
            return Ok(st);
        }
        self.stat_of(&self.handle_path(fd)?)
    }
    fn stat(&self, path: &[u8], _nofollow: bool) -> Result<HostStat, Errno> {
        self.stat_of(path)
    }
    fn statfs(&self, handle: u32) -> Result<crate::abi::HostStatfs, Errno> {
        self.handle_path(handle)?;
        // An ext4 volume of 4 GiB, half free.
        Ok(crate::abi::HostStatfs {
            fs_type: 0xef53,
            bsize: 4096,
            blocks: 1 << 20,
            bfree: 1 << 19,
            bavail: 1 << 19,
            files: 1 << 18,
            ffree: 1 << 17,
            namelen: 255,
            frsize: 4096,
            flags: 0x1020,
        })
    }
    fn tty_ioctl(&self, _fd: u32, _request: u64, _out: &mut [u8]) -> Result<(), Errno> {
        Err(crate::errno::ENOTTY)
    }
    fn log(&self, line: &str) {
        self.log.borrow_mut().push(line.into());
    }
    fn now(&self, _clock: Clock) -> u64 {
        // Time moves on by a microsecond per look.
        self.clock.set(self.clock.get() + 1000);
        self.clock.get()
    }
    fn sleep(&self, ns: u64) {
        self.clock.set(self.clock.get() + ns);
    }
    fn take_signals(&self) -> u64 {
        0
    }
    fn open_write(&self, _path: &[u8], _flags: u64, _mode: u32) -> Result<u32, Errno> {
        Err(crate::errno::EROFS)
    }
    fn pwritev(&self, _handle: u32, _bufs: &[Buf], _offset: u64) -> Result<u64, Errno> {
        Err(crate::errno::EROFS)
    }
    fn handle_op(&self, _handle: u32, _op: u64, _arg: u64) -> Result<(), Errno> {
        Err(crate::errno::EROFS)
    }
    fn modify(&self, _op: &HostOp) -> Result<(), Errno> {
        Err(crate::errno::EROFS)
    }
}

/// An address space whose pages are the memory file itself: the Sentry's copies to and from
/// the app go through the memory file, so nothing needs mapping.
#[derive(Default)]
pub struct FakeSpace;

impl AddressSpace for FakeSpace {
    fn map_file(&mut self, _addr: u64, _offset: u64, _len: u64, _a: Access) -> Result<(), Errno> {
        Ok(())
    }
    fn unmap(&mut self, _addr: u64, _len: u64) {}
}

/// A context that never runs app code: the harness makes the syscalls itself.
pub struct FakeContext;

impl Context for FakeContext {
    type AddressSpace = FakeSpace;
    fn switch(&mut self, _space: &mut FakeSpace, _regs: &mut UserRegs) -> Result<Event, Errno> {
        Ok(Event::Interrupt)
    }
    fn fpu_state(&mut self, _space: &mut FakeSpace) -> Result<Vec<u8>, Errno> {
        Ok(crate::xsave::initial_legacy().to_vec())
    }
    fn set_fpu_state(&mut self, _s: &mut FakeSpace, _img: &[u8]) -> Result<(), Errno> {
        Ok(())
    }
    fn xstate_layout(&self) -> (u64, usize) {
        (0, FXSAVE_SIZE)
    }
}

pub struct FakePlatform;

impl Platform for FakePlatform {
    type AddressSpace = FakeSpace;
    type Context = FakeContext;
    fn name(&self) -> &'static str {
        "fake"
    }
    fn new_address_space(&mut self) -> Result<FakeSpace, Errno> {
        Ok(FakeSpace)
    }
    fn new_context(&mut self) -> Result<FakeContext, Errno> {
        Ok(FakeContext)
    }
}

/// Page-aligned memory for the memory file.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// A kernel with one task (pid 1) on the fake platform and host, and a scratch mapping in the
/// task's memory for syscall arguments.
pub struct Harness {
    /// Leaked at `new` for the kernel's `&'static dyn Host`, taken back at drop (after the
    /// kernel and the task): private, so no reference to it outlives the harness.
    host: &'static FakeHost,
    pub kernel: ManuallyDrop<Kernel<'static>>,
    pub task: ManuallyDrop<Task<FakePlatform>>,
    /// Start of the task's scratch mapping; [`Harness::put`] hands out space from it.
    scratch: u64,
    used: u64,
    _memory: Vec<Page>,
}

/// Size of the scratch mapping.
pub const SCRATCH: u64 = 64 << 10;

impl Harness {
    pub fn new(host: FakeHost, config: Config) -> Harness {
        let host: &'static FakeHost = Box::leak(Box::new(host));
        let mut memory: Vec<Page> = (0..256).map(|_| Page([0; 4096])).collect();
        let base = memory.as_mut_ptr() as u64;
        // SAFETY: `memory` is 1 MiB owned by the harness, kept (never moved: the Vec's buffer
        // stays put) as long as the kernel and task that use it; nothing else touches it.
        let mem = Rc::new(unsafe { MemoryFile::new(base, 256 * 4096, 0) });
        let kernel = Kernel::new(host, mem.clone(), config, [7; 32]);
        let mut mm = Mm::new(FakeSpace, mem);
        let scratch = mm
            .mmap_anon(0x10_0000, SCRATCH, Access::RW, true, false)
            .expect("scratch mapping");
        // The break starts after an image, as the loader sets it.
        mm.init_brk(0x40_0000);
        let spawn = Spawn {
            execfn: b"/bin/test".to_vec(),
            exe_path: b"/bin/test".to_vec(),
            cwd: b"/".to_vec(),
            argv: alloc::vec![b"test".to_vec()],
            envp: Vec::new(),
        };
        let task = Task::first(mm, FakeContext, UserRegs::default(), spawn);
        Harness {
            host,
            kernel: ManuallyDrop::new(kernel),
            task: ManuallyDrop::new(task),
            scratch,
            used: 0,
            _memory: memory,
        }
    }

    /// Start of the task's scratch mapping (`SCRATCH` bytes, read-write).
    pub fn scratch(&self) -> u64 {
        self.scratch
    }

    /// The fake host the kernel serves from.
    pub fn host(&self) -> &FakeHost {
        self.host
    }

    /// Copies `data` into the task's memory; returns its address.
    pub fn put(&mut self, data: &[u8]) -> u64 {
        let addr = self.scratch + self.used;
        self.used = (self.used + data.len() as u64 + 15) & !15;
        assert!(self.used <= SCRATCH, "scratch space used up");
        self.task
            .mm
            .lock()
            .copy_out(addr, data)
            .expect("scratch is mapped");
        addr
    }

    /// `len` bytes of the task's memory at `addr`.
    pub fn get(&mut self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = alloc::vec![0; len];
        self.task
            .mm
            .lock()
            .copy_in(addr, &mut out)
            .expect("readable");
        out
    }

    /// Makes syscall `nr` as the task; returns `rax` as the app sees it (`-errno` on error).
    pub fn call(&mut self, nr: u32, args: &[u64]) -> i64 {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let r = &mut self.task.regs;
        r.orig_rax = nr as u64;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (a[0], a[1], a[2], a[3], a[4], a[5]);
        crate::syscalls::dispatch(&mut self.kernel, &mut self.task);
        self.task.regs.rax as i64
    }

    /// The lines logged so far (strace and the log of unknown syscalls), then forgotten.
    pub fn take_log(&self) -> Vec<String> {
        core::mem::take(&mut *self.host.log.borrow_mut())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // SAFETY: the task and the kernel are dropped once, here, and never used again (the
        // harness is going away); after them nothing refers to the host (the kernel held the
        // only other reference, and `host` is private), so the box leaked in `new` is taken
        // back exactly once.
        unsafe {
            ManuallyDrop::drop(&mut self.task);
            ManuallyDrop::drop(&mut self.kernel);
            drop(Box::from_raw(self.host as *const FakeHost as *mut FakeHost));
        }
    }
}

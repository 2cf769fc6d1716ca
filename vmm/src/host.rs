//! Host services: the only code that performs host syscalls on the sandbox's behalf. The kvm
//! hypercall server calls in here after checking the request's shape, the fallbacks through
//! [`DirectHost`]; this module enforces the policy: stdio is fds 0..=2 only, files are opened
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` under the sandbox root, handles are
//! this sandbox's own. The host tree is read only, except with `--rw` (write-through:
//! [`HostServices::allow_writes`]), where the write opens and the changes to names and
//! attributes ([`HostServices::open_write`], [`HostServices::modify`], handle operations) are
//! served too; otherwise they answer EROFS. (By default the sandbox still writes: to the
//! Sentry's overlay, whose data never reaches the host.)
//!
//! Whatever path led there, the sandbox reaches only regular files, directories and symlinks
//! of normal filesystems: every open and stat first resolves the path to an `O_PATH`
//! descriptor and checks that object (`fstat`, `fstatfs`: no procfs, sysfs, cgroupfs, ...
//! — [`DENIED_FS`] — nor the host's `/dev`; for opens no device, FIFO or socket), and only
//! then opens that very file with the real flags through `/proc/self/fd` (opened once at
//! start). Every refusal of that kind answers **EACCES**, and only those do, so the Sentry can
//! tell "the host will not reach this" from the host's own answers. With `--rw`, set-uid and
//! set-gid bits never reach the host (created files, chmod; directories keep set-gid), chown
//! never gives a file to anyone but `vmm`'s own user or its current owner, and times are
//! range-checked.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use guest_sentry::abi::{HostStat, PATH_MAX};

/// A host errno: why the host refused or failed a request (the Sentry passes it on to the
/// app, or acts on it). Not a protocol violation: those end the sandbox
/// (`kvm::hypercall::Malformed`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Errno({}: {})",
            self.0,
            io::Error::from_raw_os_error(self.0)
        )
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        io::Error::from_raw_os_error(self.0).fmt(f)
    }
}

impl std::error::Error for Errno {}

/// The result of a host service: a value, or the errno the host answers.
pub type HostResult<T> = Result<T, Errno>;

fn last_errno() -> Errno {
    Errno(
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// Filesystems the sandbox never reaches, whatever path leads there (`statfs` `f_type`
/// magics, from `linux/magic.h` and the kernel sources): their files are kernel interfaces,
/// not data — a read or write of one acts on the host kernel or on `vmm` itself
/// (`/proc/self/mem`, `/sys/...`, cgroup control files). Every open and stat the host serves
/// checks the object it reached against this list (and refuses with EACCES) before acting.
/// devtmpfs reports tmpfs's magic: the host's `/dev` is refused by device number instead
/// (see `HostServices::denied_devs`), and its device nodes by type.
const DENIED_FS: &[(u32, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x1cd1, "devpts"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x0765_5821, "resctrl"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0xde5e_81e4, "efivarfs"),
    (0x6165_676c, "pstore"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x5a3c_69f0, "apparmorfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6573_5543, "fusectl"),
    (0x6e73_6673, "nsfs"),
    (0x1980_0202, "mqueue"),
    (0x9fa2, "usbdevfs"),
    (0xabba_1974, "xenfs"),
    // Not reachable by a path today; listed so a future magic link or bind mount of one is
    // refused too.
    (0x454d_444d, "devmem"),
    (0x6264_6576, "bdev"),
    (0x5345_434d, "secretmem"),
    (0x0904_1934, "anon_inode"),
    (0x534f_434b, "sockfs"),
    (0x5049_5045, "pipefs"),
    (0x5049_4446, "pidfs"),
    (0x444d_4142, "dma-buf"),
];

/// Whether `f_type` (from `fstatfs`) names a filesystem in [`DENIED_FS`].
fn denied_fs(f_type: i64) -> bool {
    // f_type holds a 32-bit magic (sign-extended on some kernels: compare the low half).
    DENIED_FS.iter().any(|&(m, _)| m == f_type as u32)
}

/// What an open may reach: the checked object's type must be a regular file or a directory
/// (and, for `O_PATH | O_NOFOLLOW`, a symlink) — never a device, FIFO or socket, whose opens
/// have side effects (a tty, a watchdog) or reach other processes.
fn openable(mode: u32, path_only: bool) -> HostResult<()> {
    match mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Ok(()),
        libc::S_IFLNK if path_only => Ok(()),
        // Only an O_NOFOLLOW resolution stops at a symlink; a real open of it is ELOOP.
        libc::S_IFLNK => Err(Errno(libc::ELOOP)),
        _ => Err(Errno(libc::EACCES)),
    }
}

/// `mode` without set-uid, and without set-gid unless `dir`: the sandbox never leaves a
/// set-uid (or set-gid) program on the host. Directories keep set-gid (it only makes new
/// entries inherit the directory's group).
fn safe_mode(mode: u32, dir: bool) -> u32 {
    let keep = if dir { 0o3777 } else { 0o1777 };
    mode & keep
}

fn fstat_raw(raw: i32) -> HostResult<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: raw is an fd we hold; st is writable.
    if unsafe { libc::fstat(raw, &mut st) } < 0 {
        return Err(last_errno());
    }
    Ok(st)
}

/// `UTIME_NOW` / `UTIME_OMIT` (Linux values).
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// utimensat's `[atime sec, nsec, mtime sec, nsec]`: each nsec in range or `UTIME_NOW` /
/// `UTIME_OMIT` (EINVAL otherwise, as Linux says).
fn valid_times(times: &[i64; 4]) -> HostResult<()> {
    let ok = |ns: i64| (0..1_000_000_000).contains(&ns) || ns == UTIME_NOW || ns == UTIME_OMIT;
    if ok(times[1]) && ok(times[3]) {
        Ok(())
    } else {
        Err(Errno(libc::EINVAL))
    }
}

/// Opens `path` (absolute inside the sandbox) for reading under the root directory `root`,
/// with the same resolution rules as the sandbox's own opens. For finding the program.
pub fn open_in_root(root: &Path, path: &[u8]) -> HostResult<File> {
    let exe = std::fs::File::open("/dev/null")
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let s =
        HostServices::new(root, exe).map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
    s.open_fd(path, 0).map(File::from)
}

fn fstat_fd(raw: i32) -> HostResult<HostStat> {
    fstat_raw(raw).map(|st| host_stat(&st))
}

fn host_stat(st: &libc::stat) -> HostStat {
    HostStat {
        mode: st.st_mode,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        blksize: st.st_blksize as u64,
        blocks: st.st_blocks as u64,
        dev: st.st_dev,
        ino: st.st_ino,
        rdev: st.st_rdev,
        atime_ns: st.st_atime * 1_000_000_000 + st.st_atime_nsec,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
    }
}

/// Where the Sentry's log and `--strace` lines go: stderr, or the `--strace-log` file.
static SENTRY_LOG: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Sends the Sentry's log lines (and the trace) to `file` instead of stderr. Called before
/// the sandbox starts (the file is opened before vmm confines itself).
pub fn set_sentry_log(file: std::fs::File) {
    let _ = SENTRY_LOG.set(file);
}

/// Writes one line the Sentry logged (bytes from the guest or the Sentry: escaped, so no raw
/// control sequence reaches a terminal).
pub fn sentry_log(line: &[u8]) {
    use std::io::Write;
    let mut l = escape_log(line, false).into_bytes();
    l.push(b'\n');
    let _ = match SENTRY_LOG.get() {
        Some(mut f) => f.write_all(&l),
        None => std::io::stderr().write_all(&l),
    };
}

/// A diagnostic line from the Sentry made safe for the user's terminal: printable UTF-8 and
/// `\t` (and `\n` if `newlines`) stay, every other byte — control characters, escape
/// sequences, invalid UTF-8 — is written as `\xNN`.
pub fn escape_log(bytes: &[u8], newlines: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\t' || (newlines && c == '\n') || !c.is_control() {
                out.push(c);
            } else {
                let mut b = [0u8; 4];
                for b in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Host signals that arrived for the sandbox (bit n = signal n), recorded by the handler
/// [`forward_signals`] installs and taken by the Sentry.
static HOST_SIGNALS: AtomicU64 = AtomicU64::new(0);

/// What `vmm` passes on to the sandbox instead of dying of it: Ctrl-C and Ctrl-\ at the
/// terminal (to the foreground process group), `kill -TERM`/`-HUP` of `vmm` (to init).
const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_forwarded_signal(sig: i32) {
    HOST_SIGNALS.fetch_or(1 << sig, Ordering::SeqCst);
    // On kvm, a KVM_RUN about to start (or running) returns so the Sentry sees it.
    crate::kvm::exit_vcpu_now();
}

/// Makes `vmm` record [`FORWARDED`] signals for the sandbox. No `SA_RESTART`: a blocking host
/// call (a read of the terminal, a sleep) returns so the Sentry can deliver the signal.
pub fn forward_signals() -> io::Result<()> {
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a handler that only does an atomic or (async-signal
        // safe); the mask is emptied explicitly.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_forwarded_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Whether host signals are waiting to be taken.
pub fn host_signals_pending() -> bool {
    HOST_SIGNALS.load(Ordering::SeqCst) != 0
}

/// Takes the recorded host signals (bit n = signal n).
pub fn take_host_signals() -> u64 {
    if HOST_SIGNALS.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    HOST_SIGNALS.swap(0, Ordering::SeqCst)
}

/// Sleeps up to `ns`, returning early if a signal arrives.
pub fn sleep_interruptible(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: ts is valid; no remainder wanted.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// Runs a byte-count syscall until it is not interrupted — unless a signal for the sandbox
/// interrupted it: then EINTR, so the Sentry can deliver it.
fn retry_eintr(mut f: impl FnMut() -> isize) -> HostResult<u64> {
    loop {
        let n = f();
        if n >= 0 {
            return Ok(n as u64);
        }
        let e = last_errno();
        if e != Errno(libc::EINTR) || HOST_SIGNALS.load(Ordering::SeqCst) != 0 {
            return Err(e);
        }
    }
}

/// Most handles one sandbox may hold.
const MAX_HANDLES: usize = 1024;

pub const TCGETS: u64 = 0x5401;
pub const TCSETS: u64 = 0x5402;
pub const TCSETSW: u64 = 0x5403;
pub const TCSETSF: u64 = 0x5404;

/// The modes of the terminal the sandbox first changed, as they were before: (fd, termios).
static SAVED_TERMINAL: std::sync::Mutex<Option<(i32, [u8; 64])>> = std::sync::Mutex::new(None);

/// Keeps `fd`'s terminal modes (once) so [`restore_terminal`] can put them back.
fn save_terminal(fd: i32) -> HostResult<()> {
    let mut saved = SAVED_TERMINAL.lock().unwrap_or_else(|e| e.into_inner());
    if saved.is_none() {
        let mut t = [0u8; 64];
        // SAFETY: TCGETS writes a 36-byte kernel termios into t.
        if unsafe { libc::ioctl(fd, TCGETS as libc::c_ulong, t.as_mut_ptr()) } < 0 {
            return Err(last_errno());
        }
        *saved = Some((fd, t));
    }
    Ok(())
}

/// Puts back the terminal modes the sandbox changed (at exit, however the sandbox ended).
pub fn restore_terminal() {
    let saved = SAVED_TERMINAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some((fd, t)) = saved {
        // SAFETY: TCSETS reads a 36-byte kernel termios from t.
        unsafe { libc::ioctl(fd, TCSETS as libc::c_ulong, t.as_ptr()) };
    }
}
pub const TIOCGWINSZ: u64 = 0x5413;

/// How many times a walk interrupted by a concurrent rename (`openat2`'s EAGAIN) is retried.
const OPENAT2_RETRIES: u32 = 64;

/// `struct open_how` for `openat2` (the libc crate's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub struct HostServices {
    root: OwnedFd,
    /// `/proc/self/fd`, opened once at start (`vmm` may later lose `/proc` when it confines
    /// itself): a checked `O_PATH` descriptor `n` is reopened with the real flags as
    /// `openat(proc_fd, "n")` — the very file that was checked, nothing swapped in between —
    /// and chmod/utimens act on such a descriptor through it.
    proc_fd: OwnedFd,
    /// The process `proc_fd` belongs to.
    pid: u32,
    /// Device numbers refused like a [`DENIED_FS`] filesystem: the host's `/dev` (devtmpfs,
    /// or a container's tmpfs, which `f_type` cannot tell from any other tmpfs).
    denied_devs: Vec<u64>,
    handles: Vec<Option<File>>,
    dirs: DirCache,
    ok_devs: std::cell::RefCell<OkDevs>,
    /// `vmm run --rw`: writes go through to the host tree (else every write is EROFS here,
    /// whatever the Sentry asks).
    writable: bool,
    /// `vmm`'s own effective uid and gid: what a written-through `chown` may give a file
    /// besides leaving it as it is.
    ids: (u32, u32),
}

/// Recently resolved directories (O_PATH descriptors, each opened with the same `openat2`
/// rules as any path) so that a `stat` of `dir/name` — `ls -l`, `find` — costs one
/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)` instead of resolving the whole path again from the
/// root. `name` is one plain component that is not followed, so nothing is resolved outside
/// the checked directory. Entries are dropped after [`DirCache::TTL_NS`] so a directory moved
/// on the host is not used under its old path for longer than that.
///
/// The object `fstatat` reports must be one the sandbox may reach, like any other: its device
/// number must be one whose filesystem was checked (`fstatfs`) lately ([`OkDevs`]) — a procfs
/// or sysfs mounted on `name` has a device of its own, and then the full check runs on `name`
/// (see [`HostServices::stat_in_dir`]).
#[derive(Default)]
struct DirCache {
    /// (path, descriptor, when resolved): most recently used last.
    entries: Vec<(Vec<u8>, OwnedFd, u64)>,
}

/// Device numbers whose filesystem passed the [`DENIED_FS`] check (`fstatfs`), so that the
/// check costs one `fstatfs` per filesystem, not one per object. A device number names one
/// mounted filesystem (superblock) until it is unmounted, when the number may be reused: the
/// list is dropped every [`DirCache::TTL_NS`].
#[derive(Default)]
struct OkDevs {
    devs: Vec<u64>,
    since: u64,
}

impl OkDevs {
    const CAPACITY: usize = 32;

    fn contains(&mut self, dev: u64) -> bool {
        let now = now_ns(libc::CLOCK_MONOTONIC);
        if now.saturating_sub(self.since) >= DirCache::TTL_NS {
            self.devs.clear();
            self.since = now;
        }
        self.devs.contains(&dev)
    }

    fn insert(&mut self, dev: u64) {
        if self.devs.len() >= Self::CAPACITY {
            self.devs.remove(0);
        }
        self.devs.push(dev);
    }
}

impl DirCache {
    const CAPACITY: usize = 32;
    const TTL_NS: u64 = 1_000_000_000;
}

impl HostServices {
    /// `root`: the sandbox root directory; `exe`: the program, pre-opened as handle 0.
    pub fn new(root: &Path, exe: File) -> io::Result<Self> {
        let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "root path contains NUL"))?;
        // SAFETY: c is a valid C string; the returned fd is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let root = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a static C string; the returned fd is checked.
        let fd = unsafe {
            libc::open(
                c"/proc/self/fd".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::other(format!(
                "opening /proc/self/fd (is /proc mounted?): {}",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let proc_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // The host's /dev, when it is a filesystem of its own (devtmpfs, a container's tmpfs).
        let dev_of = |p: &std::ffi::CStr| {
            // SAFETY: zeroed stat is a valid out-parameter.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a C string and a writable stat.
            (unsafe { libc::stat(p.as_ptr(), &mut st) } == 0).then_some(st.st_dev)
        };
        // And the filesystems mounted under it that a link such as /run/shm leads to (the
        // sandbox's /dev/shm is the Sentry's own tmpfs; the host's is other processes').
        let root_dev = dev_of(c"/");
        let mut denied_devs: Vec<u64> = [c"/dev", c"/dev/shm", c"/dev/mqueue", c"/dev/hugepages"]
            .iter()
            .filter_map(|p| dev_of(p))
            .filter(|d| Some(*d) != root_dev)
            .collect();
        denied_devs.dedup();
        // SAFETY: plain identity queries.
        let ids = unsafe { (libc::geteuid(), libc::getegid()) };
        Ok(HostServices {
            root,
            proc_fd,
            pid: std::process::id(),
            denied_devs,
            handles: vec![Some(exe)],
            dirs: DirCache::default(),
            ok_devs: Default::default(),
            writable: false,
            ids,
        })
    }

    /// Checks the object `fd` (an `O_PATH` descriptor from an in-root resolution) names:
    /// EACCES if it lies on a [`DENIED_FS`] filesystem or the host's `/dev`. Returns its stat.
    fn check_object(&self, fd: i32) -> HostResult<libc::stat> {
        let st = fstat_raw(fd)?;
        if self.denied_devs.contains(&st.st_dev) {
            return Err(Errno(libc::EACCES));
        }
        if self.ok_devs.borrow_mut().contains(st.st_dev) {
            return Ok(st);
        }
        // SAFETY: zeroed statfs is a valid out-parameter.
        let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a descriptor we hold; sfs is writable.
        if unsafe { libc::fstatfs(fd, &mut sfs) } < 0 {
            return Err(last_errno());
        }
        if denied_fs(sfs.f_type) {
            return Err(Errno(libc::EACCES));
        }
        self.ok_devs.borrow_mut().insert(st.st_dev);
        Ok(st)
    }

    /// Resolves `path` under the root to an `O_PATH` descriptor (`flags`: O_DIRECTORY,
    /// O_NOFOLLOW) and checks the object it reached ([`Self::check_object`]).
    fn resolve(&self, path: &[u8], flags: u64) -> HostResult<(OwnedFd, libc::stat)> {
        let keep =
            (libc::O_DIRECTORY | libc::O_NOFOLLOW) as u64 | guest_sentry::abi::OPEN_NO_SYMLINKS;
        let fd = self.openat2(path, flags & keep)?;
        let st = self.check_object(fd.as_raw_fd())?;
        Ok((fd, st))
    }

    /// [`Self::proc_fd`], if this is still the process that opened it: in a forked child it
    /// would name the parent's descriptors.
    fn proc_dir(&self) -> HostResult<i32> {
        if std::process::id() != self.pid {
            return Err(Errno(libc::EIO));
        }
        Ok(self.proc_fd.as_raw_fd())
    }

    /// The name of `fd` in [`Self::proc_fd`].
    fn fd_name(fd: &OwnedFd) -> std::ffi::CString {
        std::ffi::CString::new(fd.as_raw_fd().to_string()).expect("digits only")
    }

    /// Opens the very file the checked `O_PATH` descriptor `fd` names with the real `flags`
    /// (through `/proc/self/fd`: no path is resolved again).
    fn reopen(&self, fd: &OwnedFd, flags: u64) -> HostResult<OwnedFd> {
        let drop = (libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_PATH) as u64;
        let flags = (flags & !drop) as i32 | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
        let name = Self::fd_name(fd);
        // SAFETY: a descriptor we hold and a C string; the result is checked.
        let r = unsafe { libc::openat(self.proc_dir()?, name.as_ptr(), flags) };
        if r < 0 {
            return Err(last_errno());
        }
        // SAFETY: a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    }

    /// Every open the host serves: resolves `path` to an `O_PATH` descriptor, checks the object
    /// (filesystem, then type: a regular file or directory, see [`openable`]) and only then
    /// opens it with `flags` — a device is never opened, not even for a moment. `O_CREAT` of a
    /// name that does not exist creates a new regular file ([`Self::create`]).
    fn open_checked(&self, path: &[u8], flags: u64, mode: u64, depth: u32) -> HostResult<OwnedFd> {
        let path_only = flags & libc::O_PATH as u64 != 0;
        let creat = flags & libc::O_CREAT as u64 != 0;
        match self.resolve(path, flags) {
            Ok((fd, st)) => {
                openable(st.st_mode, path_only)?;
                if path_only {
                    return Ok(fd);
                }
                if creat && flags & libc::O_EXCL as u64 != 0 {
                    return Err(Errno(libc::EEXIST));
                }
                self.reopen(&fd, flags)
            }
            Err(Errno(libc::ENOENT)) if creat => self.create(path, flags, mode, depth),
            Err(e) => Err(e),
        }
    }

    /// `O_CREAT` of `path`, which did not resolve: creates a new regular file as the last
    /// component of its (checked) parent directory, `O_EXCL | O_NOFOLLOW`, so what is opened
    /// is the file just made. A dangling symlink there is followed by hand (as Linux creates
    /// its target), at most 40 deep.
    fn create(&self, path: &[u8], flags: u64, mode: u64, depth: u32) -> HostResult<OwnedFd> {
        let (dir, name) = self.parent_of(path)?;
        let mode = safe_mode(mode as u32, false);
        let f = (flags & !(libc::O_NOFOLLOW | libc::O_DIRECTORY) as u64) as i32
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | libc::O_NOCTTY
            | libc::O_NONBLOCK;
        // SAFETY: a descriptor we hold and a C string; the result is checked.
        let r = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), f, mode as libc::c_uint) };
        if r >= 0 {
            // SAFETY: a fresh descriptor we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r) });
        }
        let e = last_errno();
        if e != Errno(libc::EEXIST) || flags & libc::O_EXCL as u64 != 0 || depth == 0 {
            return Err(if e == Errno(libc::EEXIST) && depth == 0 {
                Errno(libc::ELOOP)
            } else {
                e
            });
        }
        // The name exists: a dangling symlink, or something made meanwhile.
        let mut target = vec![0u8; PATH_MAX];
        // SAFETY: target is writable for its length; dir is ours; name a C string.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                target.as_mut_ptr().cast(),
                target.len(),
            )
        };
        if n < 0 {
            // Not a symlink: open what is there now, checked like any file.
            return self.open_checked(path, flags, mode as u64, depth - 1);
        }
        if flags & libc::O_NOFOLLOW as u64 != 0 {
            return Err(Errno(libc::ELOOP));
        }
        target.truncate(n as usize);
        let next = if target.first() == Some(&b'/') {
            target
        } else {
            let path = path.strip_suffix(b"/").unwrap_or(path);
            let slash = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let mut p = path[..slash].to_vec();
            p.push(b'/');
            p.extend_from_slice(&target);
            p
        };
        if next.len() > PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        self.open_checked(&next, flags, mode as u64, depth - 1)
    }

    /// Lets the sandbox write to the host tree under the root (`vmm run --rw`).
    pub fn allow_writes(&mut self) {
        self.writable = true;
    }

    fn stdio(fd: u32) -> HostResult<i32> {
        if fd <= 2 {
            Ok(fd as i32)
        } else {
            Err(Errno(libc::EBADF))
        }
    }

    /// `writev` to host stdio.
    ///
    /// # Safety
    /// Each iovec of `iov` must describe memory valid for reads.
    pub unsafe fn write_stdio(&self, fd: u32, iov: &[libc::iovec]) -> HostResult<u64> {
        let fd = Self::stdio(fd)?;
        // SAFETY: the caller guarantees each iovec is valid readable memory.
        retry_eintr(|| unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as i32) })
    }

    /// `readv` from host stdio.
    ///
    /// # Safety
    /// Each iovec of `iov` must describe memory valid for writes.
    pub unsafe fn read_stdio(&self, fd: u32, iov: &[libc::iovec]) -> HostResult<u64> {
        let fd = Self::stdio(fd)?;
        // SAFETY: the caller guarantees each iovec is valid writable memory.
        retry_eintr(|| unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as i32) })
    }

    /// Read-only open of `path` (absolute inside the sandbox) under the root, resolved as if
    /// the root were `/` (`RESOLVE_IN_ROOT`: `..` and absolute symlinks stay inside), never
    /// through /proc magic links, and checked before it is opened ([`Self::open_checked`]).
    /// Write flags answer EROFS here: opens for writing (`--rw` only) are
    /// [`Self::open_write`]'s.
    fn open_fd(&self, path: &[u8], flags: u64) -> HostResult<OwnedFd> {
        let allowed = (libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_PATH) as u64
            | guest_sentry::abi::OPEN_NO_SYMLINKS;
        if flags & !allowed != 0 {
            return Err(Errno(libc::EROFS));
        }
        self.open_checked(path, flags, 0, 40)
    }

    /// `openat2(O_PATH | flags)` under the root with the sandbox's resolution rules (`flags`:
    /// O_DIRECTORY, O_NOFOLLOW). Nothing is opened for real here: see [`Self::resolve`].
    fn openat2(&self, path: &[u8], flags: u64) -> HostResult<OwnedFd> {
        if path.len() > PATH_MAX || path.contains(&0) {
            return Err(Errno(libc::EINVAL));
        }
        let rel: Vec<u8> = path.iter().copied().skip_while(|&b| b == b'/').collect();
        let rel = if rel.is_empty() { b".".to_vec() } else { rel };
        let c = std::ffi::CString::new(rel).map_err(|_| Errno(libc::EINVAL))?;
        let keep = (libc::O_DIRECTORY | libc::O_NOFOLLOW) as u64;
        let no_symlinks = if flags & guest_sentry::abi::OPEN_NO_SYMLINKS != 0 {
            libc::RESOLVE_NO_SYMLINKS
        } else {
            0
        };
        let how = OpenHow {
            // openat2 refuses O_PATH with anything but O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW.
            flags: (flags & keep) | (libc::O_PATH | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | no_symlinks,
        };
        // With RESOLVE_IN_ROOT, a rename or mount anywhere on the host while the walk crosses
        // `..` makes openat2 fail with EAGAIN ("retry"): it says nothing about the path, so the
        // walk is made again (a busy host — a build renaming files — hits it now and then).
        for _ in 0..OPENAT2_RETRIES {
            // SAFETY: valid dirfd, C string and open_how for the duration of the call.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.root.as_raw_fd(),
                    c.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            if fd >= 0 {
                // SAFETY: a fresh descriptor we own.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            let e = last_errno();
            if e != Errno(libc::EAGAIN) {
                return Err(e);
            }
        }
        // The host keeps renaming under us: a transient failure, as Linux would report it.
        Err(Errno(libc::EAGAIN))
    }

    /// Opens `path` read-only (`flags`: any of O_DIRECTORY, O_NOFOLLOW, O_PATH) and returns a
    /// handle. (Opens for writing are [`Self::open_write`].)
    pub fn open(&mut self, path: &[u8], flags: u64) -> HostResult<u32> {
        let slot = self.free_slot()?;
        let fd = self.open_fd(path, flags)?;
        self.handles[slot] = Some(File::from(fd));
        Ok(slot as u32)
    }

    /// Write-through mode: opens `path` with write flags (see [`guest_sentry::abi::OPEN_WRITE_FLAGS`])
    /// and returns a handle; EROFS unless writes are allowed.
    pub fn open_write(&mut self, path: &[u8], flags: u64, mode: u32) -> HostResult<u32> {
        if !self.writable {
            return Err(Errno(libc::EROFS));
        }
        let allowed =
            guest_sentry::abi::OPEN_WRITE_FLAGS | (libc::O_DIRECTORY | libc::O_NOFOLLOW) as u64;
        let accmode = flags & libc::O_ACCMODE as u64;
        if flags & !allowed != 0 || accmode == libc::O_ACCMODE as u64 {
            return Err(Errno(libc::EINVAL));
        }
        let slot = self.free_slot()?;
        let fd = self.open_checked(path, flags, mode as u64, 40)?;
        self.dirs.entries.clear();
        self.handles[slot] = Some(File::from(fd));
        Ok(slot as u32)
    }

    /// The lowest free handle number (made room for when all are in use, up to the limit).
    fn free_slot(&mut self) -> HostResult<usize> {
        match self.handles.iter().position(|h| h.is_none()) {
            Some(i) => Ok(i),
            None if self.handles.len() < MAX_HANDLES => {
                self.handles.push(None);
                Ok(self.handles.len() - 1)
            }
            None => Err(Errno(libc::EMFILE)),
        }
    }

    /// `pwritev` to a handle (opened for writing: the host refuses otherwise) from `iov`
    /// (which must describe readable memory).
    ///
    /// # Safety
    /// Each iovec of `iov` must describe memory valid for reads.
    pub unsafe fn pwritev(&self, h: u32, iov: &[libc::iovec], offset: u64) -> HostResult<u64> {
        let f = self.handle(h)?;
        // SAFETY: the caller guarantees each iovec is valid readable memory.
        retry_eintr(|| unsafe {
            libc::pwritev(f.as_raw_fd(), iov.as_ptr(), iov.len() as i32, offset as i64)
        })
    }

    /// `ftruncate` or `fsync` of a handle.
    pub fn handle_op(&self, h: u32, op: u64, arg: u64) -> HostResult<()> {
        let fd = self.handle(h)?.as_raw_fd();
        let r = match op {
            // SAFETY: a plain syscall on a descriptor we hold.
            guest_sentry::abi::HANDLE_FTRUNCATE => unsafe {
                libc::ftruncate(fd, i64::try_from(arg).map_err(|_| Errno(libc::EINVAL))?)
            },
            // SAFETY: as above.
            guest_sentry::abi::HANDLE_FSYNC => unsafe { libc::fsync(fd) },
            _ => return Err(Errno(libc::EINVAL)),
        };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    /// Write-through mode: a change to the host tree. The last component of each path is
    /// acted on relative to its parent directory (resolved with `openat2` like any path) and
    /// never followed; operations that follow a final symlink (chmod, chown, utimens, truncate)
    /// first resolve the whole path inside the root and then act on that very file.
    pub fn modify(&mut self, op: &guest_sentry::host::HostOp) -> HostResult<()> {
        use guest_sentry::host::HostOp;
        if !self.writable {
            return Err(Errno(libc::EROFS));
        }
        self.dirs.entries.clear();
        let check = |r: libc::c_int| if r < 0 { Err(last_errno()) } else { Ok(()) };
        match *op {
            HostOp::Mkdir { path, mode } => {
                let (dir, name) = self.parent_of(path)?;
                // Linux's mkdir ignores set-uid and set-gid (a new directory inherits set-gid
                // from its parent); only the sticky bit is passed on.
                let mode = mode & 0o1777;
                // SAFETY: a descriptor we hold and a C string.
                check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
            }
            HostOp::Unlink { path, dir: is_dir } => {
                let (dir, name) = self.parent_of(path)?;
                let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
                // SAFETY: as above.
                check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
            }
            HostOp::Rename { from, to } => {
                let (d1, n1) = self.parent_of(from)?;
                let (d2, n2) = self.parent_of(to)?;
                // SAFETY: as above.
                check(unsafe {
                    libc::renameat(d1.as_raw_fd(), n1.as_ptr(), d2.as_raw_fd(), n2.as_ptr())
                })
            }
            HostOp::Link { from, to } => {
                let (d1, n1) = self.parent_of(from)?;
                let (d2, n2) = self.parent_of(to)?;
                // SAFETY: as above. Flags 0: a final symlink is linked, not followed, so the
                // link names what `from`'s parent (inside the root) holds.
                check(unsafe {
                    libc::linkat(d1.as_raw_fd(), n1.as_ptr(), d2.as_raw_fd(), n2.as_ptr(), 0)
                })
            }
            HostOp::Symlink { target, path } => {
                if target.is_empty() || target.len() > PATH_MAX {
                    return Err(Errno(libc::ENOENT));
                }
                let t = std::ffi::CString::new(target).map_err(|_| Errno(libc::EINVAL))?;
                let (dir, name) = self.parent_of(path)?;
                // SAFETY: as above. The target is only text: resolving it later goes through
                // the same in-root rules as every path.
                check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
            }
            HostOp::Truncate { path, len } => {
                let len = i64::try_from(len).map_err(|_| Errno(libc::EINVAL))?;
                let fd = self.open_checked(path, libc::O_WRONLY as u64, 0, 40)?;
                // SAFETY: a descriptor we own.
                check(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })
            }
            HostOp::Chmod { path, mode } => {
                let (fd, st) = self.target(path, false)?;
                let mode = safe_mode(mode & 0o7777, st.st_mode & libc::S_IFMT == libc::S_IFDIR);
                // chmod of the very file the O_PATH descriptor names, through its magic link
                // (fchmod refuses O_PATH descriptors).
                let name = Self::fd_name(&fd);
                let proc_dir = self.proc_dir()?;
                // SAFETY: a descriptor we hold and a C string naming our own descriptor.
                check(unsafe { libc::fchmodat(proc_dir, name.as_ptr(), mode, 0) })
            }
            HostOp::Chown {
                path,
                uid,
                gid,
                nofollow,
            } => {
                let (fd, st) = self.target(path, nofollow)?;
                self.chown_allowed(&st, uid, gid)?;
                // SAFETY: AT_EMPTY_PATH acts on the file our descriptor names (the symlink
                // itself for a nofollow resolution).
                check(unsafe {
                    libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH)
                })
            }
            HostOp::Utimens {
                path,
                times,
                nofollow,
            } => {
                valid_times(&times)?;
                let ts = [
                    libc::timespec {
                        tv_sec: times[0],
                        tv_nsec: times[1],
                    },
                    libc::timespec {
                        tv_sec: times[2],
                        tv_nsec: times[3],
                    },
                ];
                let (fd, st) = self.target(path, nofollow)?;
                if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    // A symlink (not followed): set its own times, by name in its parent
                    // directory, once the object there was checked.
                    let (dir, name) = self.parent_of(path)?;
                    // SAFETY: as above; the last component is not followed.
                    return check(unsafe {
                        libc::utimensat(
                            dir.as_raw_fd(),
                            name.as_ptr(),
                            ts.as_ptr(),
                            libc::AT_SYMLINK_NOFOLLOW,
                        )
                    });
                }
                let name = Self::fd_name(&fd);
                // SAFETY: a descriptor we hold, a C string naming our own descriptor, two
                // timespecs.
                check(unsafe { libc::utimensat(self.proc_dir()?, name.as_ptr(), ts.as_ptr(), 0) })
            }
        }
    }

    /// The object a chmod/chown/utimens acts on: `path` resolved in the root (the last
    /// component not followed if `nofollow`) and checked — a regular file, directory or
    /// symlink of a filesystem the sandbox may reach (EACCES otherwise: a device node's
    /// owner or mode is host policy).
    fn target(&self, path: &[u8], nofollow: bool) -> HostResult<(OwnedFd, libc::stat)> {
        let flags = if nofollow { libc::O_NOFOLLOW as u64 } else { 0 };
        let (fd, st) = self.resolve(path, flags)?;
        openable(st.st_mode, true)?;
        Ok((fd, st))
    }

    /// The chown policy: the sandbox never has `CAP_CHOWN` over the host tree, even when `vmm`
    /// runs as root. Each of `uid` and `gid` must be `u32::MAX` (unchanged), the file's
    /// current owner/group, or `vmm`'s own effective uid/gid (what a file the sandbox created
    /// gets anyway); anything else is EPERM, as Linux answers an unprivileged caller. So a
    /// sandbox cannot hand files to other host users or to root.
    fn chown_allowed(&self, st: &libc::stat, uid: u32, gid: u32) -> HostResult<()> {
        let uid_ok = uid == u32::MAX || uid == st.st_uid || uid == self.ids.0;
        let gid_ok = gid == u32::MAX || gid == st.st_gid || gid == self.ids.1;
        if uid_ok && gid_ok {
            Ok(())
        } else {
            Err(Errno(libc::EPERM))
        }
    }

    /// The directory holding `path` (resolved under the root and checked like any object) and
    /// its last component, which must be a plain name: not empty, `.` or `..`.
    fn parent_of(&self, path: &[u8]) -> HostResult<(OwnedFd, std::ffi::CString)> {
        let path = path.strip_suffix(b"/").unwrap_or(path);
        let slash = path
            .iter()
            .rposition(|&b| b == b'/')
            .ok_or(Errno(libc::EINVAL))?;
        let (dir, name) = (&path[..slash.max(1)], &path[slash + 1..]);
        if name.is_empty() || name == b"." || name == b".." {
            return Err(Errno(if name.is_empty() {
                libc::EBUSY
            } else {
                libc::EINVAL
            }));
        }
        let (fd, _) = self.resolve(dir, libc::O_DIRECTORY as u64)?;
        let name = std::ffi::CString::new(name).map_err(|_| Errno(libc::EINVAL))?;
        Ok((fd, name))
    }

    /// The target of the symlink at `path` (not followed) into `out`; returns its length.
    pub fn readlink(&self, path: &[u8], out: &mut [u8]) -> HostResult<u64> {
        let (fd, _) = self.resolve(path, libc::O_NOFOLLOW as u64)?;
        // SAFETY: out is writable for its length; "" with an O_PATH fd names the link itself.
        let n = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                out.as_mut_ptr().cast(),
                out.len(),
            )
        };
        if n < 0 {
            let e = last_errno();
            // readlinkat(fd, "") says ENOENT for a non-link; readlink(2) says EINVAL.
            // SAFETY: zeroed stat is a valid out-parameter; fd is ours.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if e == Errno(libc::ENOENT)
                // SAFETY: `st` is a valid out-parameter; fd is ours.
                && unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0
                && st.st_mode & libc::S_IFMT != libc::S_IFLNK
            {
                return Err(Errno(libc::EINVAL));
            }
            return Err(e);
        }
        Ok(n as u64)
    }

    /// `preadv` from a handle into `iov`.
    ///
    /// # Safety
    /// Each iovec of `iov` must describe memory valid for writes.
    pub unsafe fn preadv(&self, h: u32, iov: &[libc::iovec], offset: u64) -> HostResult<u64> {
        let f = self.handle(h)?;
        // SAFETY: the caller guarantees each iovec is valid writable memory.
        retry_eintr(|| unsafe {
            libc::preadv(f.as_raw_fd(), iov.as_ptr(), iov.len() as i32, offset as i64)
        })
    }

    /// `getdents64` on a directory handle into `buf` (writable for `len` bytes), continuing
    /// from the handle's position.
    ///
    /// # Safety
    /// `buf..buf + len` must be valid for writes.
    pub unsafe fn getdents(&self, h: u32, buf: *mut u8, len: usize) -> HostResult<u64> {
        let f = self.handle(h)?;
        // SAFETY: the caller guarantees buf..buf+len is writable.
        retry_eintr(|| unsafe {
            libc::syscall(libc::SYS_getdents64, f.as_raw_fd(), buf, len) as isize
        })
    }

    /// `lseek` on a handle (used for directories: rewinddir, telldir/seekdir cookies).
    pub fn lseek(&self, h: u32, offset: i64, whence: u32) -> HostResult<u64> {
        let f = self.handle(h)?;
        if whence > libc::SEEK_END as u32 {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: a plain lseek on a descriptor we own.
        let r = unsafe { libc::lseek(f.as_raw_fd(), offset, whence as i32) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(r as u64)
    }

    fn handle(&self, h: u32) -> HostResult<&File> {
        self.handles
            .get(h as usize)
            .and_then(|f| f.as_ref())
            .ok_or(Errno(libc::EBADF))
    }

    /// `pread` from a handle into `buf` (which must be valid writable memory of `len` bytes).
    pub fn pread(&self, h: u32, buf: *mut u8, len: usize, offset: u64) -> HostResult<u64> {
        let f = self.handle(h)?;
        // SAFETY: the caller guarantees buf..buf+len is valid writable memory.
        retry_eintr(|| unsafe { libc::pread(f.as_raw_fd(), buf.cast(), len, offset as i64) })
    }

    pub fn close(&mut self, h: u32) -> HostResult<()> {
        self.handle(h)?;
        self.handles[h as usize] = None;
        Ok(())
    }

    /// `fstat` of a handle or of host stdio.
    pub fn fstat(&self, fd: u32, stdio: bool) -> HostResult<HostStat> {
        let raw = if stdio {
            Self::stdio(fd)?
        } else {
            self.handle(fd)?.as_raw_fd()
        };
        fstat_fd(raw)
    }

    /// `fstatfs` of a handle: the filesystem it is on (its `f_fsid` is not passed on).
    pub fn statfs(&self, h: u32) -> HostResult<guest_sentry::abi::HostStatfs> {
        let fd = self.handle(h)?.as_raw_fd();
        // Linux's `struct statfs` (x86-64) as words: libc's leaves out `f_flags`.
        let mut w = [0u64; 15];
        // SAFETY: fd is a descriptor we hold; `w` is a writable 120-byte struct statfs.
        if unsafe { libc::syscall(libc::SYS_fstatfs, fd, w.as_mut_ptr()) } < 0 {
            return Err(last_errno());
        }
        Ok(guest_sentry::abi::HostStatfs {
            fs_type: w[0],
            bsize: w[1],
            blocks: w[2],
            bfree: w[3],
            bavail: w[4],
            files: w[5],
            ffree: w[6],
            namelen: w[8],
            frsize: w[9],
            flags: w[10],
        })
    }

    /// `stat` of a path under the root in one call (O_PATH open, fstat, close), following a
    /// final symlink unless `nofollow`.
    pub fn stat_path(&mut self, path: &[u8], nofollow: bool) -> HostResult<HostStat> {
        if let Some(st) = self.stat_in_dir(path, nofollow) {
            return Ok(st);
        }
        let flags = if nofollow { libc::O_NOFOLLOW as u64 } else { 0 };
        // A device node on a normal filesystem may be reported (opening it is refused); an
        // object on a denied filesystem is not (EACCES).
        let (_, st) = self.resolve(path, flags)?;
        Ok(host_stat(&st))
    }

    /// The fast path of [`Self::stat_path`]: `fstatat` of the last component in its (cached)
    /// directory. `None` whenever the answer might differ from a full resolution — the last
    /// component is not a plain name, it is a symlink to follow, or anything failed — and the
    /// caller resolves the whole path instead (which also gives the exact error).
    fn stat_in_dir(&mut self, path: &[u8], nofollow: bool) -> Option<HostStat> {
        let slash = path.iter().rposition(|&b| b == b'/')?;
        let (dir, name) = (&path[..slash.max(1)], &path[slash + 1..]);
        if path.first() != Some(&b'/')
            || name.is_empty()
            || name == b"."
            || name == b".."
            || path.len() > PATH_MAX
            || path.contains(&0)
        {
            return None;
        }
        let dfd = self.dir_fd(dir)?;
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: zeroed stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: dfd is a descriptor we hold; c is a C string; st is writable.
        if unsafe { libc::fstatat(dfd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
            return None;
        }
        if !nofollow && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return None;
        }
        if self.ok_devs.get_mut().contains(st.st_dev) {
            return Some(host_stat(&st));
        }
        // A device not checked yet (a mount point under the directory — `/proc` under `/` —
        // or the first name seen on this filesystem): check the object `name` names now.
        // SAFETY: dfd is a descriptor we hold; c is one plain component, not followed.
        let fd = unsafe {
            libc::openat(
                dfd,
                c.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = self.check_object(fd.as_raw_fd()).ok()?;
        Some(host_stat(&st))
    }

    /// A descriptor for the directory `dir` (absolute inside the sandbox), from the cache or
    /// resolved now.
    fn dir_fd(&mut self, dir: &[u8]) -> Option<i32> {
        if dir == b"/" {
            return Some(self.root.as_raw_fd());
        }
        let now = now_ns(libc::CLOCK_MONOTONIC);
        // The entry asked for, if cached and young enough (others age out of the LRU order).
        let cached = (self.dirs.entries.iter())
            .position(|(p, _, _)| p == dir)
            .map(|i| self.dirs.entries.remove(i))
            .filter(|(_, _, at)| now.saturating_sub(*at) < DirCache::TTL_NS);
        let entry = match cached {
            Some(e) => e,
            None => {
                let fd = self
                    .open_fd(dir, (libc::O_PATH | libc::O_DIRECTORY) as u64)
                    .ok()?;
                (dir.to_vec(), fd, now)
            }
        };
        let cache = &mut self.dirs.entries;
        if cache.len() >= DirCache::CAPACITY {
            cache.remove(0);
        }
        cache.push(entry);
        self.dirs.entries.last().map(|(_, fd, _)| fd.as_raw_fd())
    }

    /// `TCGETS` (kernel termios, 36 bytes) or `TIOCGWINSZ` (8 bytes) into `buf`, or
    /// `TCSETS`/`TCSETSW`/`TCSETSF` from `buf` (36 bytes), on host stdio. The first time a
    /// terminal's modes are set, its original modes are kept for [`restore_terminal`].
    pub fn tty_ioctl(&self, fd: u32, request: u64, buf: &mut [u8]) -> HostResult<()> {
        let fd = Self::stdio(fd)?;
        let (want, set) = match request {
            TCGETS => (36, false),
            TIOCGWINSZ => (8, false),
            TCSETS | TCSETSW | TCSETSF => (36, true),
            _ => return Err(Errno(libc::ENOTTY)),
        };
        if buf.len() != want {
            return Err(Errno(libc::EINVAL));
        }
        let mut tmp = [0u8; 64];
        if set {
            save_terminal(fd)?;
            tmp[..want].copy_from_slice(buf);
        }
        // SAFETY: every request here reads or writes at most 60 bytes of tmp.
        if unsafe { libc::ioctl(fd, request as libc::c_ulong, tmp.as_mut_ptr()) } < 0 {
            return Err(last_errno());
        }
        if !set {
            buf.copy_from_slice(&tmp[..want]);
        }
        Ok(())
    }

    /// Host time in ns: clock 0 = realtime, 1 = monotonic.
    pub fn clock(id: u64) -> HostResult<u64> {
        let clk = match id {
            0 => libc::CLOCK_REALTIME,
            1 => libc::CLOCK_MONOTONIC,
            _ => return Err(Errno(libc::EINVAL)),
        };
        Ok(now_ns(clk))
    }
}

pub fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The host interface for the fallback platforms: the Sentry runs in this process and calls
/// the host services directly (the kvm guest reaches the same services through hypercalls).
pub struct DirectHost {
    services: std::cell::RefCell<HostServices>,
}

impl DirectHost {
    pub fn new(services: HostServices) -> Self {
        DirectHost {
            services: std::cell::RefCell::new(services),
        }
    }
}

fn iovecs(bufs: &[guest_sentry::host::Buf]) -> Vec<libc::iovec> {
    bufs.iter()
        .map(|b| libc::iovec {
            iov_base: b.addr as *mut libc::c_void,
            iov_len: b.len as usize,
        })
        .collect()
}

fn errno(e: Errno) -> guest_sentry::errno::Errno {
    guest_sentry::errno::Errno(e.0)
}

impl guest_sentry::host::Host for DirectHost {
    fn write(
        &self,
        fd: u32,
        bufs: &[guest_sentry::host::Buf],
    ) -> Result<u64, guest_sentry::errno::Errno> {
        // The Sentry hands out ranges of its own memory (memory file mapping or heap).
        // SAFETY: the Sentry's buffers are ranges of its own memory (the memory file's
        // mapping or its heap), each valid for its length while the call lasts.
        unsafe { self.services.borrow().write_stdio(fd, &iovecs(bufs)) }.map_err(errno)
    }

    fn read(
        &self,
        fd: u32,
        bufs: &[guest_sentry::host::Buf],
    ) -> Result<u64, guest_sentry::errno::Errno> {
        // SAFETY: the Sentry's buffers are ranges of its own memory (the memory file's
        // mapping or its heap), each valid for its length while the call lasts.
        unsafe { self.services.borrow().read_stdio(fd, &iovecs(bufs)) }.map_err(errno)
    }

    fn open(&self, path: &[u8], flags: u64) -> Result<u32, guest_sentry::errno::Errno> {
        self.services.borrow_mut().open(path, flags).map_err(errno)
    }

    fn preadv(
        &self,
        handle: u32,
        bufs: &[guest_sentry::host::Buf],
        offset: u64,
    ) -> Result<u64, guest_sentry::errno::Errno> {
        // SAFETY: the Sentry's buffers are ranges of its own memory (the memory file's
        // mapping or its heap), each valid for its length while the call lasts.
        unsafe { self.services.borrow().preadv(handle, &iovecs(bufs), offset) }.map_err(errno)
    }

    fn getdents(&self, handle: u32, buf: &mut [u8]) -> Result<u64, guest_sentry::errno::Errno> {
        // SAFETY: `buf` is a mutable slice: valid for writes of its length.
        unsafe {
            self.services
                .borrow()
                .getdents(handle, buf.as_mut_ptr(), buf.len())
        }
        .map_err(errno)
    }

    fn lseek(
        &self,
        handle: u32,
        offset: i64,
        whence: u32,
    ) -> Result<u64, guest_sentry::errno::Errno> {
        self.services
            .borrow()
            .lseek(handle, offset, whence)
            .map_err(errno)
    }

    fn readlink(&self, path: &[u8], out: &mut [u8]) -> Result<u64, guest_sentry::errno::Errno> {
        self.services.borrow().readlink(path, out).map_err(errno)
    }

    fn exe_handle(&self) -> u32 {
        0
    }

    fn pread(
        &self,
        handle: u32,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<u64, guest_sentry::errno::Errno> {
        self.services
            .borrow()
            .pread(handle, buf.as_mut_ptr(), buf.len(), offset)
            .map_err(errno)
    }

    fn close(&self, handle: u32) {
        let _ = self.services.borrow_mut().close(handle);
    }

    fn fstat(&self, fd: u32, stdio: bool) -> Result<HostStat, guest_sentry::errno::Errno> {
        self.services.borrow().fstat(fd, stdio).map_err(errno)
    }

    fn statfs(
        &self,
        handle: u32,
    ) -> Result<guest_sentry::abi::HostStatfs, guest_sentry::errno::Errno> {
        self.services.borrow().statfs(handle).map_err(errno)
    }

    fn stat(&self, path: &[u8], nofollow: bool) -> Result<HostStat, guest_sentry::errno::Errno> {
        self.services
            .borrow_mut()
            .stat_path(path, nofollow)
            .map_err(errno)
    }

    fn tty_ioctl(
        &self,
        fd: u32,
        request: u64,
        out: &mut [u8],
    ) -> Result<(), guest_sentry::errno::Errno> {
        self.services
            .borrow()
            .tty_ioctl(fd, request, out)
            .map_err(errno)
    }

    fn log(&self, line: &str) {
        sentry_log(line.as_bytes());
    }

    fn sleep(&self, ns: u64) {
        sleep_interruptible(ns.min(1_000_000_000));
    }

    fn take_signals(&self) -> u64 {
        take_host_signals()
    }

    fn open_write(
        &self,
        path: &[u8],
        flags: u64,
        mode: u32,
    ) -> Result<u32, guest_sentry::errno::Errno> {
        self.services
            .borrow_mut()
            .open_write(path, flags, mode)
            .map_err(errno)
    }

    fn pwritev(
        &self,
        handle: u32,
        bufs: &[guest_sentry::host::Buf],
        offset: u64,
    ) -> Result<u64, guest_sentry::errno::Errno> {
        // SAFETY: the Sentry's buffers are ranges of its own memory (the memory file's
        // mapping or its heap), each valid for its length while the call lasts.
        unsafe {
            self.services
                .borrow()
                .pwritev(handle, &iovecs(bufs), offset)
        }
        .map_err(errno)
    }

    fn handle_op(&self, handle: u32, op: u64, arg: u64) -> Result<(), guest_sentry::errno::Errno> {
        self.services
            .borrow()
            .handle_op(handle, op, arg)
            .map_err(errno)
    }

    fn modify(&self, op: &guest_sentry::host::HostOp) -> Result<(), guest_sentry::errno::Errno> {
        self.services.borrow_mut().modify(op).map_err(errno)
    }

    fn now(&self, clock: guest_sentry::host::Clock) -> u64 {
        match clock {
            guest_sentry::host::Clock::Realtime => now_ns(libc::CLOCK_REALTIME),
            guest_sentry::host::Clock::Monotonic => now_ns(libc::CLOCK_MONOTONIC),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let d = std::env::temp_dir().join(format!(
                "vmm-host-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn services(root: &Path) -> HostServices {
        HostServices::new(root, File::open("/dev/null").unwrap()).unwrap()
    }

    fn mknod(path: &Path, kind: u32, major: u32, minor: u32) -> bool {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a C string; makedev computes a number.
        unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) == 0 }
    }

    /// A root with a regular file, device nodes (`/dev/null`'s and `/dev/zero`'s numbers), a
    /// FIFO, a socket and symlinks to each.
    fn fixture() -> TempDir {
        let t = TempDir::new("fixture");
        let d = &t.0;
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::write(d.join("data/file"), b"regular\n").unwrap();
        assert!(
            mknod(&d.join("data/null"), libc::S_IFCHR, 1, 3),
            "mknod needs root"
        );
        assert!(mknod(&d.join("data/zero"), libc::S_IFCHR, 1, 5));
        assert!(mknod(&d.join("data/blk"), libc::S_IFBLK, 7, 0));
        assert!(mknod(&d.join("data/fifo"), libc::S_IFIFO, 0, 0));
        std::os::unix::net::UnixListener::bind(d.join("data/sock")).unwrap();
        for n in ["null", "zero", "fifo", "sock", "file"] {
            std::os::unix::fs::symlink(format!("/data/{n}"), d.join(format!("data/to-{n}")))
                .unwrap();
        }
        t
    }

    #[test]
    fn devices_fifos_and_sockets_are_never_opened() {
        let t = fixture();
        let mut s = services(&t.0);
        s.allow_writes();
        for n in [
            "null", "zero", "blk", "fifo", "sock", "to-null", "to-zero", "to-fifo", "to-sock",
        ] {
            let p = format!("/data/{n}");
            for flags in [0, libc::O_PATH as u64] {
                assert_eq!(
                    s.open(p.as_bytes(), flags).err(),
                    Some(Errno(libc::EACCES)),
                    "{p}"
                );
            }
            for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_WRONLY | libc::O_TRUNC] {
                let r = s.open_write(p.as_bytes(), flags as u64, 0o644);
                assert_eq!(r.err(), Some(Errno(libc::EACCES)), "{p} {flags:#o}");
            }
            // Stat reports a device node on a normal filesystem; opening it is what is refused.
            let st = s.stat_path(p.as_bytes(), false).unwrap();
            assert_ne!(st.mode & libc::S_IFMT, libc::S_IFREG, "{p}");
        }
        // Regular files still work, through a symlink too.
        for p in ["/data/file", "/data/to-file"] {
            let h = s.open(p.as_bytes(), 0).unwrap();
            let mut b = [0u8; 8];
            assert_eq!(s.pread(h, b.as_mut_ptr(), 8, 0), Ok(8));
            assert_eq!(&b, b"regular\n");
            let h = s.open_write(p.as_bytes(), libc::O_RDWR as u64, 0).unwrap();
            s.close(h).unwrap();
        }
        // Truncate, chmod, chown and utimens of a device are refused too.
        use guest_sentry::host::HostOp;
        for op in [
            HostOp::Truncate {
                path: b"/data/null",
                len: 0,
            },
            HostOp::Chmod {
                path: b"/data/to-null",
                mode: 0o666,
            },
            HostOp::Chown {
                path: b"/data/null",
                uid: u32::MAX,
                gid: u32::MAX,
                nofollow: true,
            },
            HostOp::Utimens {
                path: b"/data/to-zero",
                times: [0, UTIME_NOW, 0, UTIME_NOW],
                nofollow: false,
            },
        ] {
            assert_eq!(s.modify(&op), Err(Errno(libc::EACCES)), "{op:?}");
        }
    }

    #[test]
    fn host_proc_sys_and_dev_are_refused_under_the_host_root() {
        let t = TempDir::new("links");
        for (n, target) in [
            ("mem", "/proc/self/mem"),
            ("maps", "/proc/self/maps"),
            ("environ", "/proc/1/environ"),
            ("kernel", "/sys/kernel"),
            ("kmsg", "/dev/kmsg"),
            ("devnull", "/dev/null"),
            ("mounts", "../../../../../proc/self/mounts"),
        ] {
            std::os::unix::fs::symlink(target, t.0.join(n)).unwrap();
        }
        let mut s = services(Path::new("/"));
        s.allow_writes();
        let base = t.0.to_str().unwrap();
        for n in [
            "mem", "maps", "environ", "kernel", "kmsg", "devnull", "mounts",
        ] {
            let p = format!("{base}/{n}");
            for flags in [0, libc::O_PATH as u64] {
                assert_eq!(
                    s.open(p.as_bytes(), flags).err(),
                    Some(Errno(libc::EACCES)),
                    "{p}"
                );
            }
            let r = s.open_write(p.as_bytes(), libc::O_RDWR as u64, 0);
            assert_eq!(r.err(), Some(Errno(libc::EACCES)), "{p}");
            assert_eq!(
                s.stat_path(p.as_bytes(), false).err(),
                Some(Errno(libc::EACCES)),
                "{p}"
            );
            // The link itself is a normal file of a normal filesystem.
            assert!(s.stat_path(p.as_bytes(), true).is_ok(), "{p}");
        }
        // Mount points under a normal directory: the stat fast path must not report them.
        for p in [
            "/proc",
            "/proc/self",
            "/proc/self/mem",
            "/sys",
            "/sys/kernel",
            "/dev",
        ] {
            for _ in 0..2 {
                assert_eq!(
                    s.stat_path(p.as_bytes(), false).err(),
                    Some(Errno(libc::EACCES)),
                    "{p}"
                );
                assert_eq!(
                    s.stat_path(p.as_bytes(), true).err(),
                    Some(Errno(libc::EACCES)),
                    "{p}"
                );
                assert_eq!(
                    s.open(p.as_bytes(), 0).err(),
                    Some(Errno(libc::EACCES)),
                    "{p}"
                );
            }
            if !p.ends_with("mem") {
                let dir = libc::O_DIRECTORY as u64;
                assert_eq!(
                    s.open(p.as_bytes(), dir).err(),
                    Some(Errno(libc::EACCES)),
                    "{p}"
                );
            }
        }
        let mut out = [0u8; 64];
        assert_eq!(
            s.readlink(b"/proc/self/exe", &mut out),
            Err(Errno(libc::EACCES))
        );
        // Normal files around them still work, fast path and all.
        for p in ["/etc", "/etc/passwd", "/tmp"] {
            assert!(s.stat_path(p.as_bytes(), false).is_ok(), "{p}");
            assert!(s.open(p.as_bytes(), 0).is_ok(), "{p}");
        }
    }

    #[test]
    fn written_through_files_never_carry_set_uid() {
        use guest_sentry::host::HostOp;
        let t = TempDir::new("suid");
        std::fs::create_dir(t.0.join("d")).unwrap();
        let mut s = services(&t.0);
        s.allow_writes();
        let mode = |n: &str| std::fs::symlink_metadata(t.0.join(n)).unwrap().mode() & 0o7777;
        let w = (libc::O_WRONLY | libc::O_CREAT) as u64;
        s.open_write(b"/new", w, 0o6755).unwrap();
        assert_eq!(mode("new"), 0o755);
        s.open_write(b"/sticky", w | libc::O_EXCL as u64, 0o1644)
            .unwrap();
        assert_eq!(mode("sticky"), 0o1644);
        assert_eq!(
            s.open_write(b"/sticky", w | libc::O_EXCL as u64, 0o644)
                .err(),
            Some(Errno(libc::EEXIST))
        );
        for (p, set, want) in [
            ("new", 0o4755, 0o755),
            ("new", 0o2711, 0o711),
            ("d", 0o6755, 0o2755),
            ("d", 0o1777, 0o1777),
        ] {
            let path = format!("/{p}");
            s.modify(&HostOp::Chmod {
                path: path.as_bytes(),
                mode: set,
            })
            .unwrap();
            assert_eq!(mode(p), want, "chmod {set:o} {p}");
        }
        s.modify(&HostOp::Mkdir {
            path: b"/d2",
            mode: 0o4777,
        })
        .unwrap();
        assert_eq!(mode("d2") & 0o6000, 0);
        // A dangling symlink is followed by O_CREAT (inside the root), as on Linux.
        std::os::unix::fs::symlink("/d/target", t.0.join("dangling")).unwrap();
        s.open_write(b"/dangling", w, 0o4644).unwrap();
        assert_eq!(mode("d/target"), 0o644);
        assert_eq!(
            s.open_write(b"/dangling", w | libc::O_NOFOLLOW as u64, 0o644)
                .err(),
            Some(Errno(libc::ELOOP))
        );
        // Both access modes at once.
        assert_eq!(
            s.open_write(b"/new", (libc::O_WRONLY | libc::O_RDWR) as u64, 0)
                .err(),
            Some(Errno(libc::EINVAL))
        );
        std::fs::set_permissions(t.0.join("d"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn chown_and_utimens_arguments_are_checked() {
        use guest_sentry::host::HostOp;
        let t = TempDir::new("chown");
        std::fs::write(t.0.join("f"), b"x").unwrap();
        let mut s = services(&t.0);
        s.allow_writes();
        let chown = |s: &mut HostServices, uid, gid| {
            s.modify(&HostOp::Chown {
                path: b"/f",
                uid,
                gid,
                nofollow: false,
            })
        };
        let (uid, gid) = (s.ids.0, s.ids.1);
        assert_eq!(chown(&mut s, u32::MAX, u32::MAX), Ok(()));
        assert_eq!(chown(&mut s, uid, gid), Ok(()));
        for (u, g) in [(12345, u32::MAX), (u32::MAX, 12345), (uid ^ 1, gid)] {
            assert_eq!(chown(&mut s, u, g), Err(Errno(libc::EPERM)), "{u} {g}");
        }
        assert_eq!(std::fs::metadata(t.0.join("f")).unwrap().uid(), uid);
        let utimens = |s: &mut HostServices, times| {
            s.modify(&HostOp::Utimens {
                path: b"/f",
                times,
                nofollow: true,
            })
        };
        assert_eq!(utimens(&mut s, [5, 0, 7, 999_999_999]), Ok(()));
        assert_eq!(std::fs::metadata(t.0.join("f")).unwrap().mtime(), 7);
        assert_eq!(utimens(&mut s, [0, UTIME_OMIT, 0, UTIME_NOW]), Ok(()));
        for bad in [
            [0, -1, 0, 0],
            [0, 0, 0, 1_000_000_000],
            [0, i64::MIN, 0, 0],
            [0, 0, 0, UTIME_NOW + 1],
        ] {
            assert_eq!(utimens(&mut s, bad), Err(Errno(libc::EINVAL)), "{bad:?}");
        }
        // A symlink's own times, not its target's.
        std::os::unix::fs::symlink("f", t.0.join("l")).unwrap();
        s.modify(&HostOp::Utimens {
            path: b"/l",
            times: [1, 0, 3, 0],
            nofollow: true,
        })
        .unwrap();
        assert_eq!(std::fs::symlink_metadata(t.0.join("l")).unwrap().mtime(), 3);
        assert_ne!(std::fs::metadata(t.0.join("f")).unwrap().mtime(), 3);
        // lseek whence beyond SEEK_END.
        let h = s.open(b"/f", 0).unwrap();
        assert_eq!(s.lseek(h, 0, 3), Err(Errno(libc::EINVAL)));
        assert_eq!(s.lseek(h, 0, libc::SEEK_END as u32), Ok(1));
    }

    #[test]
    fn log_lines_are_escaped() {
        assert_eq!(escape_log(b"plain text\ttab", false), "plain text\ttab");
        assert_eq!(
            escape_log("caf\u{e9} \u{2603}".as_bytes(), false),
            "caf\u{e9} \u{2603}"
        );
        assert_eq!(
            escape_log(b"\x1b[2J\x1b]0;pwned\x07\r\n\x7f", false),
            "\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x0a\\x7f"
        );
        assert_eq!(escape_log(b"a\nb", true), "a\nb");
        // C1 controls (CSI as U+009B) and invalid UTF-8.
        assert_eq!(escape_log("\u{9b}31m".as_bytes(), false), "\\xc2\\x9b31m");
        assert_eq!(escape_log(b"\xff\xc3", false), "\\xff\\xc3");
    }
}

//! vmm confines itself, as runsc confines its Sentry (defence in depth: a bug in the Sentry
//! or the host services must not give the sandboxed program the rights vmm was started with).
//!
//! Two steps, taken by each platform once its set-up is done (`sandbox::run` for systrap and
//! ptrace, `kvm::run` for kvm):
//!
//! 1. [`enter_mount_namespace`], before the host services open the sandbox root: a private
//!    mount namespace (a user namespace too where vmm is not root, as `runsc --rootless`
//!    does) in which
//!    - every pseudo filesystem under the sandbox root (procfs, sysfs, devtmpfs, devpts,
//!      debugfs, cgroup, ...) is unmounted, and whatever is mounted at `<root>/proc`, `/sys`,
//!      `/dev`;
//!    - the sandbox root is taken as a detached copy of its mount tree (`open_tree(
//!      OPEN_TREE_CLONE | AT_RECURSIVE)`: real submounts such as a separate `/usr` stay
//!      visible through it), made `nodev,nosuid,noexec` and, without `--rw`, read-only;
//!    - vmm pivots into an empty read-only tmpfs and detaches the old root, so its own `/`
//!      holds nothing: `/proc/<vmm>/mountinfo` shows that one tmpfs. The copy of the root is
//!      reached only through descriptors (vmm's cwd, then the host services' root fd).
//!    - `/proc/self/fd` is kept open ([`proc_self_fd`]) from a fresh procfs instance
//!      (`subset=pid,hidepid=invisible`) for re-opening descriptors by their magic links.
//!
//!    Where the host refuses a step (no user namespaces for a non-root vmm, an old kernel),
//!    vmm goes on without it (one line on stderr with `--debug`) and keeps the next one.
//! 2. [`lock_down`], once the memory file, the VM or the platform, the root fd and stdio are
//!    in place: `PR_SET_NO_NEW_PRIVS`; every capability dropped (bounding, ambient,
//!    effective, permitted, inheritable) but `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH`
//!    (reading the root's files as root), and with `--rw` `CAP_CHOWN`, `CAP_FOWNER` and
//!    `CAP_FSETID`; then vmm's own seccomp filter ([`filter`]), built with seccompiler: the
//!    syscalls the host services and the platform need, with their arguments pinned where
//!    that is practical (ioctl requests, clone flags, mmap/mprotect without `PROT_EXEC` but
//!    for the stubs' own mappings, kill with SIGKILL of a positive pid, ...). No `execve`, no
//!    `socket`, no `open`/`openat` (only `openat2`), no `mount`, no `ptrace` but the requests
//!    the ptrace platform makes.
//!
//! The filter's action for anything else is `SECCOMP_RET_TRAP`, not `KILL_PROCESS`: the
//! stubs of the fallback platforms are forked from vmm and inherit its filter, and a systrap
//! stub's own filter traps every app syscall to the Sentry; stacked filters take the most
//! severe action, so a KILL here would kill every app that makes a syscall vmm itself does
//! not (`socket`, `execve`, ...). A trapped syscall is never executed; vmm's SIGSYS handler
//! writes `vmm: forbidden host syscall N (name)` and vmm dies of SIGSYS. (A stub that breaks
//! the filter before installing its own handlers dies the same way, silently: its stderr is
//! closed.) A compromised vmm that catches SIGSYS gains nothing but an error return.
//! Syscalls of another ABI (`int 0x80`, x32) trap too, so the stubs can report them.
//!
//! There is no switch that turns any of this off.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule,
};

/// Which platform the filter is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Kvm,
    Systrap,
    Ptrace,
}

/// What each confinement step did, in vmm's log at debug level (`--debug`, `--debug-log`).
fn debug(msg: &str) {
    log::debug!("confine: {msg}");
}

/// Why vmm could not confine itself (the sandbox does not start then).
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("building the seccomp filter: {0}")]
    BuildFilter(#[source] seccompiler::BackendError),
    #[error("compiling the seccomp filter: {0}")]
    CompileFilter(#[source] seccompiler::BackendError),
    #[error("unexpected seccompiler arch check")]
    ArchCheck,
    #[error("installing the seccomp filter: {0}")]
    InstallFilter(#[source] seccompiler::Error),
    /// A host call of the confinement failed (`what` names it).
    #[error("{what}: {source}")]
    Os {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl ConfineError {
    /// The failure of host call `what`, from `errno`.
    fn os(what: &'static str) -> ConfineError {
        ConfineError::Os {
            what,
            source: std::io::Error::last_os_error(),
        }
    }
}

fn errno_str() -> String {
    std::io::Error::last_os_error().to_string()
}

fn cstr(p: &str) -> CString {
    CString::new(p).expect("no NUL in a fixed path")
}

/// The detached copy of the sandbox root's mount tree. Never closed: closing the descriptor
/// `open_tree` returned would dissolve the copy (unmount its submounts).
static ROOT_TREE: OnceLock<OwnedFd> = OnceLock::new();
/// `/proc/self/fd`, opened before `/proc` went away (see [`proc_self_fd`]).
static PROC_SELF_FD: OnceLock<OwnedFd> = OnceLock::new();

/// A directory descriptor for `/proc/self/fd` (O_PATH), for re-opening one of vmm's own
/// descriptors through its magic link (`openat(dir, "N")`, `fchmodat(dir, "N")`), which
/// works after the namespace step, where vmm has no `/proc`. The namespace step opens it
/// before the pivot, from a fresh procfs instance that shows processes only (`subset=pid`)
/// and of those only what vmm may ptrace (`hidepid=invisible`); without that step it is
/// opened from the host's `/proc` at the first call.
#[allow(dead_code)] // for host.rs, which opens its own today
pub fn proc_self_fd() -> std::io::Result<BorrowedFd<'static>> {
    use std::os::fd::AsFd;
    if PROC_SELF_FD.get().is_none() {
        let fd = open_path("/proc/self/fd")?;
        let _ = PROC_SELF_FD.set(fd);
    }
    Ok(PROC_SELF_FD.get().expect("set above").as_fd())
}

fn open_path(path: &str) -> std::io::Result<OwnedFd> {
    let c = cstr(path);
    // SAFETY: a C string; the returned fd is checked and owned.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mount(src: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> bool {
    let (s, t, f, d) = (cstr(src), cstr(target), cstr(fstype), cstr(data));
    // SAFETY: C strings valid for the call.
    unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) == 0 }
}

fn umount_detach(target: &str) -> bool {
    let t = cstr(target);
    // SAFETY: a C string.
    unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) == 0 }
}

/// Filesystems that show the host kernel's state rather than files: never part of the
/// sandbox's view, wherever they are mounted under its root.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "debugfs",
    "tracefs",
    "securityfs",
    "cgroup",
    "cgroup2",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "efivarfs",
    "binfmt_misc",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "rpc_pipefs",
    "nsfs",
    "selinuxfs",
    "nfsd",
];

/// Unescapes a mountinfo path (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts (mount point, fstype) of `mountinfo` text that hide host kernel state under
/// `root`: pseudo filesystems, and whatever is mounted at `<root>/proc`, `/sys` or `/dev`.
/// In mountinfo order (parents before their children).
fn pseudo_mounts_under(mountinfo: &str, root: &str) -> Vec<(String, String)> {
    let root = root.trim_end_matches('/');
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mp), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
            continue;
        };
        let mp = unescape(mp);
        let Some(rel) = mp.strip_prefix(root) else {
            continue;
        };
        if !rel.starts_with('/') || rel == "/" {
            continue; // not strictly below the root
        }
        let special = ["/proc", "/sys", "/dev"].contains(&rel);
        if special || PSEUDO_FS.contains(fstype) {
            out.push((mp, fstype.to_string()));
        }
    }
    out
}

/// Enters a private user namespace mapping vmm's own uid and gid (for a vmm that is not
/// root), with a mount namespace.
fn unshare_user_and_mounts() -> Result<(), String> {
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: no pointers; vmm is single-threaded here (a user namespace requires it).
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWUSER|CLONE_NEWNS): {}",
            errno_str()
        ));
    }
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|e| format!("writing {file}: {e}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))
}

fn have_cap(cap: u32) -> bool {
    capget()
        .map(|(eff, _)| eff & (1 << cap) != 0)
        .unwrap_or(false)
}

/// What the namespace step left the sandbox root as, for [`HostServices::new`]: `.` where
/// vmm's cwd is now the detached copy of the root, else the path as given.
///
/// [`HostServices::new`]: crate::host::HostServices::new
pub fn enter_mount_namespace(root: &Path, write_through: bool) -> PathBuf {
    match try_enter_mount_namespace(root, write_through) {
        Ok(p) => p,
        Err(why) => {
            debug(&format!(
                "no private mount namespace ({why}): going on with seccomp, no_new_privs and fewer capabilities only"
            ));
            root.to_path_buf()
        }
    }
}

fn try_enter_mount_namespace(root: &Path, write_through: bool) -> Result<PathBuf, String> {
    let root_str = root
        .to_str()
        .ok_or("the root path is not UTF-8")?
        .to_string();
    if have_cap(CAP_SYS_ADMIN) {
        // SAFETY: no pointers.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            unshare_user_and_mounts()
                .map_err(|e| format!("unshare(CLONE_NEWNS): {}; {e}", errno_str()))?;
        }
    } else {
        unshare_user_and_mounts()?;
    }
    // Nothing below may reach the host's mounts: make every mount private first.
    if !mount("none", "/", "", libc::MS_REC | libc::MS_PRIVATE, "") {
        return Err(format!("making / private: {}", errno_str()));
    }
    // The host's /proc/self/fd, in case no fresh procfs can be mounted below.
    if let Ok(fd) = open_path("/proc/self/fd") {
        let _ = PROC_SELF_FD.set(fd);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let mut removed = Vec::new();
    for (mp, fstype) in pseudo_mounts_under(&mountinfo, &root_str) {
        // A child of a mount detached before is gone with it (EINVAL/ENOENT here).
        if umount_detach(&mp) {
            removed.push(format!("{mp} ({fstype})"));
        }
    }
    // The sandbox's view: a detached copy of the root's mount tree.
    let c = cstr(&root_str);
    // SAFETY: a C string; the fd is checked and owned.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | AT_RECURSIVE,
        )
    };
    if tree < 0 {
        return Err(format!("open_tree({root_str}): {}", errno_str()));
    }
    // SAFETY: a fresh descriptor we own.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let mut attr = MountAttr {
        attr_set: MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    if !write_through {
        attr.attr_set |= MOUNT_ATTR_RDONLY;
    }
    // SAFETY: a descriptor we own, an empty path and a valid mount_attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | AT_RECURSIVE as i32,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    let attrs = if r == 0 {
        if write_through {
            "nodev,nosuid,noexec"
        } else {
            "ro,nodev,nosuid,noexec"
        }
    } else {
        debug(&format!("mount_setattr on the root copy: {}", errno_str()));
        "as on the host"
    };
    let pivot = pivot_into_empty_tmpfs();
    // SAFETY: a descriptor we own.
    if unsafe { libc::fchdir(tree.as_raw_fd()) } != 0 {
        return Err(format!("fchdir to the root copy: {}", errno_str()));
    }
    let _ = ROOT_TREE.set(tree);
    debug(&format!(
        "private mount namespace: {}; sandbox root: a detached copy of {root_str} ({attrs}); unmounted: {}",
        match &pivot {
            Ok(()) => "vmm's / is an empty read-only tmpfs with a pid-only procfs at /proc".to_string(),
            Err(e) => format!("vmm's / is the host's ({e})"),
        },
        if removed.is_empty() { "none".to_string() } else { removed.join(", ") },
    ));
    Ok(PathBuf::from("."))
}

/// Where the new root is mounted before the pivot: any directory will do (the sandbox's
/// copy was taken already), and /proc exists (mountinfo was just read from it).
const STAGING: &str = "/proc";

/// Mounts an empty tmpfs with a procfs instance at `/proc` that shows processes only
/// (`subset=pid`) and of those only what vmm may ptrace (`hidepid=invisible`: once its
/// capabilities are dropped, itself and its stubs), read-only; makes it vmm's `/` and
/// detaches the old root; keeps `/proc/self/fd` of that procfs ([`proc_self_fd`]).
///
/// The procfs stays mounted because the host services open `/proc/self/fd` by path (and
/// chmod through `/proc/self/fd/N`); once they use [`proc_self_fd`] only, it can go too.
/// Where no procfs can be mounted (a user namespace that does not own the pid namespace),
/// vmm does not pivot: it keeps its private copy of the host's mounts.
fn pivot_into_empty_tmpfs() -> Result<(), String> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if !mount(
        "vmm-root",
        STAGING,
        "tmpfs",
        flags,
        "size=16k,nr_inodes=16,mode=0555",
    ) {
        return Err(format!("mounting a tmpfs: {}", errno_str()));
    }
    let proc_at = format!("{STAGING}/proc");
    let p = cstr(&proc_at);
    // SAFETY: a C string.
    let made = unsafe { libc::mkdir(p.as_ptr(), 0o555) } == 0;
    let opts = "subset=pid,hidepid=invisible";
    if !made || !mount("proc", &proc_at, "proc", flags | libc::MS_RDONLY, opts) {
        let e = errno_str();
        umount_detach(STAGING);
        return Err(format!("mounting a pid-only procfs: {e}"));
    }
    let at = cstr(STAGING);
    // SAFETY: C strings valid for the calls.
    unsafe {
        if libc::chdir(at.as_ptr()) != 0 {
            return Err(format!("chdir: {}", errno_str()));
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0 {
            // The old root is now stacked on the new one: detach it.
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(format!("detaching the old root: {}", errno_str()));
            }
        } else {
            // An initramfs root cannot be pivoted away from: move the tmpfs over it and
            // chroot there (as switch_root does). The old root stays below, out of reach
            // (vmm keeps no CAP_SYS_CHROOT and no descriptor of it).
            let e = errno_str();
            if libc::mount(
                c".".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ) != 0
                || libc::chroot(c".".as_ptr()) != 0
            {
                return Err(format!("pivot_root: {e}; move and chroot: {}", errno_str()));
            }
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(format!("chdir /: {}", errno_str()));
        }
    }
    if let Ok(fd) = open_path("/proc/self/fd") {
        match PROC_SELF_FD.get() {
            // The host's one is replaced (same number): the fresh one shows less.
            // SAFETY: both are descriptors we own; dup3 replaces the kept one.
            Some(kept) => unsafe {
                libc::dup3(fd.as_raw_fd(), kept.as_raw_fd(), libc::O_CLOEXEC);
            },
            None => {
                let _ = PROC_SELF_FD.set(fd);
            }
        }
    }
    let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags;
    if !mount("none", "/", "", ro, "") {
        debug(&format!("making the new root read-only: {}", errno_str()));
    }
    Ok(())
}

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `struct mount_attr` for `mount_setattr`.
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

// ---------------------------------------------------------------- capabilities

const CAP_CHOWN: u32 = 0;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_FOWNER: u32 = 3;
const CAP_FSETID: u32 = 4;
const CAP_SYS_ADMIN: u32 = 21;

/// The capabilities vmm keeps after [`lock_down`].
pub fn kept_caps(write_through: bool) -> u64 {
    let mut keep = 1 << CAP_DAC_OVERRIDE | 1 << CAP_DAC_READ_SEARCH;
    if write_through {
        keep |= 1 << CAP_CHOWN | 1 << CAP_FOWNER | 1 << CAP_FSETID;
    }
    keep
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// (effective, permitted) of this thread.
fn capget() -> Result<(u64, u64), ConfineError> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: a v3 header and two data structs, as capget wants.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) } != 0 {
        return Err(ConfineError::os("capget"));
    }
    let join = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    Ok((
        join(d[0].effective, d[1].effective),
        join(d[0].permitted, d[1].permitted),
    ))
}

/// Drops every capability but `keep` from every set, the bounding set included.
fn drop_caps(keep: u64) -> Result<(), ConfineError> {
    // SAFETY: prctl calls with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        for cap in 0..64u64 {
            if keep & (1 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) == 1
                && libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
            {
                // Without CAP_SETPCAP (a non-root vmm without a user namespace) the bounding
                // set stays; the other sets, which decide, are emptied below.
                debug(&format!(
                    "dropping capability {cap} from the bounding set: {}",
                    errno_str()
                ));
                break;
            }
        }
    }
    let (_, permitted) = capget()?;
    let keep = keep & permitted;
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let d = [
        CapData {
            effective: keep as u32,
            permitted: keep as u32,
            inheritable: 0,
        },
        CapData {
            effective: (keep >> 32) as u32,
            permitted: (keep >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: a v3 header and two data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) } != 0 {
        return Err(ConfineError::os("capset"));
    }
    Ok(())
}

// ---------------------------------------------------------------- seccomp

/// Where each stub puts its code page (the one `mprotect` to `PROT_EXEC` vmm's filter lets
/// through) and the fd number its memory file has (the one `mmap` with `PROT_EXEC` may map).
const STUB_ADDR: u64 = fallback::stub::STUB_ADDR;
const STUB_MEMFD: u64 = fallback::stub::STUB_MEMFD as u64;

fn cond(arg: u8, len: Len, op: Op, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, len, op, value).expect("valid argument index")
}

fn rule(conds: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conds).expect("non-empty rule")
}

/// `arg` (an int) equals one of `values`: one rule each.
fn one_of(arg: u8, values: &[u64]) -> Vec<SeccompRule> {
    values
        .iter()
        .map(|&v| rule(vec![cond(arg, Len::Dword, Op::Eq, v)]))
        .collect()
}

const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    dir << 30 | size << 16 | 0xae << 8 | nr
}

/// The KVM ioctls the VMM loop makes after set-up: `KVM_RUN`, `KVM_INTERRUPT` (the kick),
/// `KVM_GET_REGS`/`KVM_GET_SREGS` (reporting a crashed guest).
fn kvm_ioctls() -> [u64; 4] {
    [
        ioc(0, 0x80, 0),
        ioc(1, 0x86, 4),
        ioc(
            2,
            0x81,
            std::mem::size_of::<kvm_bindings::kvm_regs>() as u64,
        ),
        ioc(
            2,
            0x83,
            std::mem::size_of::<kvm_bindings::kvm_sregs>() as u64,
        ),
    ]
}

/// The terminal ioctls the host services make on stdio (`HostServices::tty_ioctl`, and
/// restoring the terminal at exit).
const TTY_IOCTLS: [u64; 5] = [
    crate::host::TCGETS,
    crate::host::TCSETS,
    crate::host::TCSETSW,
    crate::host::TCSETSF,
    crate::host::TIOCGWINSZ,
];

/// glibc's `fork()`: `clone(CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD)`.
const FORK_FLAGS: u64 =
    (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;

/// The syscall rules of vmm's filter for `platform` (an empty rule list: allowed whatever
/// the arguments).
pub fn rules(platform: Platform, write_through: bool) -> Vec<(i64, Vec<SeccompRule>)> {
    use libc::*;
    let no_exec = |arg: u8| cond(arg, Len::Dword, Op::MaskedEq(PROT_EXEC as u64), 0);
    let mut r: Vec<(i64, Vec<SeccompRule>)> = vec![
        // stdio, files under the root (opened only by openat2 relative to the root fd)
        (SYS_read, vec![]),
        (SYS_write, vec![]),
        (SYS_readv, vec![]),
        (SYS_writev, vec![]),
        (SYS_pread64, vec![]),
        (SYS_preadv, vec![]),
        (SYS_openat2, vec![]),
        (SYS_close, vec![]),
        (SYS_fstat, vec![]),
        (SYS_newfstatat, vec![]),
        (SYS_fstatfs, vec![]),
        (SYS_getdents64, vec![]),
        (SYS_lseek, vec![]),
        (SYS_readlinkat, vec![]),
        (SYS_ioctl, {
            let mut v: Vec<u64> = TTY_IOCTLS.to_vec();
            if platform == Platform::Kvm {
                v.extend(kvm_ioctls());
            }
            one_of(1, &v)
        }),
        // memory: never new executable mappings, but a stub's (below)
        (SYS_mmap, vec![rule(vec![no_exec(2)])]),
        (SYS_mprotect, vec![rule(vec![no_exec(2)])]),
        (SYS_munmap, vec![]),
        (SYS_mremap, vec![]),
        (SYS_madvise, vec![]),
        (SYS_brk, vec![]),
        // time, randomness, signals, exit
        (SYS_clock_gettime, vec![]),
        (SYS_clock_getres, vec![]),
        (SYS_gettimeofday, vec![]),
        (SYS_nanosleep, vec![]),
        (SYS_clock_nanosleep, vec![]),
        (SYS_getrandom, vec![]),
        (SYS_rt_sigaction, vec![]),
        (SYS_rt_sigprocmask, vec![]),
        (SYS_rt_sigreturn, vec![]),
        (SYS_sigaltstack, vec![]),
        (SYS_restart_syscall, vec![]),
        (SYS_getpid, vec![]),
        (SYS_gettid, vec![]),
        (SYS_getcpu, vec![]),
        (SYS_sched_yield, vec![]),
        // SIGSYS: the stubs' first trap and vmm's own death on a forbidden syscall; SIGABRT:
        // abort().
        (SYS_tgkill, one_of(2, &[SIGSYS as u64, SIGABRT as u64])),
        (SYS_exit, vec![]),
        (SYS_exit_group, vec![]),
        // wait, wake (the systrap handoff; locks)
        (SYS_futex, {
            let ops = [FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET];
            let ops: Vec<u64> = ops
                .iter()
                .flat_map(|&o| [o as u64, (o | FUTEX_PRIVATE_FLAG) as u64])
                .collect();
            one_of(1, &ops)
        }),
    ];
    // openat only relative to a /proc/self/fd directory, to re-open a descriptor through
    // its magic link (host.rs). (An empty rule list would allow any openat.)
    let proc_fds: Vec<u64> = procfs_dirfds().iter().map(|&fd| fd as u64).collect();
    let not_cwd = cond(0, Len::Dword, Op::Ne, AT_FDCWD as u32 as u64);
    if write_through {
        // --rw also creates files with openat(O_CREAT|O_EXCL|O_NOFOLLOW) in a checked
        // parent directory (host.rs): any directory fd, never the cwd.
        r.push((SYS_openat, vec![rule(vec![not_cwd])]));
    } else {
        // The stat fast path checks a name on a new device with an O_PATH openat relative
        // to its directory (host.rs): nothing is opened for reading or writing by it.
        let mut rules = one_of(0, &proc_fds);
        rules.push(rule(vec![
            not_cwd,
            cond(2, Len::Dword, Op::MaskedEq(O_PATH as u64), O_PATH as u64),
        ]));
        r.push((SYS_openat, rules));
    }
    if write_through {
        // --rw: changes to the host tree, each relative to a directory fd from openat2
        // (chmod and utimensat of an O_PATH descriptor go through its /proc/self/fd link).
        r.extend([
            (SYS_pwritev, vec![]),
            (SYS_pwrite64, vec![]),
            (SYS_ftruncate, vec![]),
            (SYS_fsync, vec![]),
            (SYS_fdatasync, vec![]),
            (SYS_mkdirat, vec![]),
            (SYS_unlinkat, vec![]),
            (SYS_renameat, vec![]),
            (SYS_renameat2, vec![]),
            (SYS_symlinkat, vec![]),
            (SYS_linkat, vec![]),
            (SYS_fchownat, vec![]),
            (SYS_utimensat, vec![]),
            (SYS_fchmodat, vec![]),
            (SYS_fchmodat2, vec![]),
            (SYS_chmod, vec![]),
        ]);
    }
    if platform == Platform::Kvm {
        // The kick timer (SIGALRM interrupts KVM_RUN).
        r.push((SYS_setitimer, one_of(0, &[ITIMER_REAL as u64])));
        // Debug builds of std check a descriptor is open before closing it (F_GETFD).
        r.push((SYS_fcntl, one_of(1, &[F_GETFD as u64])));
        return r;
    }
    // The fallbacks: fork a stub per address space, kill and reap it.
    r.extend([
        (
            SYS_clone,
            vec![rule(vec![cond(0, Len::Qword, Op::Eq, FORK_FLAGS)])],
        ),
        // SIGKILL ends a stub; SIGVTALRM (the stubs' preemption tick) brings a running app
        // back to the Sentry at once (systrap's kick).
        (
            SYS_kill,
            [SIGKILL, SIGVTALRM]
                .iter()
                .map(|&sig| {
                    rule(vec![
                        cond(0, Len::Dword, Op::Ge, 1),
                        cond(0, Len::Dword, Op::Le, 0x3fff_ffff),
                        cond(1, Len::Dword, Op::Eq, sig as u64),
                    ])
                })
                .collect(),
        ),
        // The Sentry waits for whichever of several running stubs reports first (systrap:
        // on their state words; ptrace: for the SIGCHLD of a tracee's stop).
        (SYS_futex_waitv, vec![]),
        (SYS_rt_sigtimedwait, vec![]),
        (SYS_wait4, vec![]),
        // What a fresh stub does before its own filter (stub::child_prologue, child_map_code,
        // systrap::child, ptrace's child): die with vmm, keep only its fds, leave vmm's
        // session, drop glibc's rseq, map its code page and make it executable, signals,
        // the preemption tick.
        (SYS_set_robust_list, vec![]),
        (
            SYS_prctl,
            one_of(0, &[PR_SET_PDEATHSIG as u64, PR_SET_NO_NEW_PRIVS as u64]),
        ),
        (SYS_getppid, vec![]),
        (
            SYS_fcntl,
            one_of(
                1,
                &[
                    F_DUPFD as u64,
                    F_DUPFD_CLOEXEC as u64,
                    F_GETFD as u64,
                    F_SETFD as u64,
                    F_GETFL as u64,
                ],
            ),
        ),
        (SYS_dup2, vec![]),
        (SYS_close_range, vec![]),
        (SYS_setsid, vec![]),
        (SYS_rseq, vec![rule(vec![cond(2, Len::Dword, Op::Eq, 1)])]), // RSEQ_FLAG_UNREGISTER
        (SYS_setitimer, one_of(0, &[ITIMER_VIRTUAL as u64])),
    ]);
    // The stub's code page, read and execute.
    let stub_code = rule(vec![
        cond(0, Len::Qword, Op::Eq, STUB_ADDR),
        cond(1, Len::Qword, Op::Eq, 4096),
        cond(2, Len::Dword, Op::Eq, (PROT_READ | PROT_EXEC) as u64),
    ]);
    // The app's mappings of the memory file in a stub (any protection).
    let stub_mapping = rule(vec![
        cond(3, Len::Dword, Op::Eq, (MAP_SHARED | MAP_FIXED) as u64),
        cond(4, Len::Dword, Op::Eq, STUB_MEMFD),
    ]);
    for (nr, rules) in r.iter_mut() {
        if *nr == SYS_mprotect {
            rules.push(stub_code.clone());
        }
        if *nr == SYS_mmap {
            rules.push(stub_mapping.clone());
        }
    }
    if !write_through {
        r.push((SYS_ftruncate, vec![])); // sizing a systrap stub's control memfd
    }
    match platform {
        Platform::Systrap => {
            use fallback::systrap::{DONE_OFF, FAILED_OFF, MAPPER_CLONE, STUB_ORDERSFD};
            // A stub inherits this filter: its mapper thread (systrap.rs) is started with
            // these clone flags and reports progress by a 4-byte pwrite into the orders
            // memfd's done page.
            for (nr, rules) in r.iter_mut() {
                if *nr == SYS_clone {
                    rules.push(rule(vec![cond(0, Len::Qword, Op::Eq, MAPPER_CLONE.into())]));
                }
            }
            if !write_through {
                r.push((
                    SYS_pwrite64,
                    [DONE_OFF, FAILED_OFF]
                        .iter()
                        .map(|&off| {
                            rule(vec![
                                cond(0, Len::Dword, Op::Eq, STUB_ORDERSFD as u64),
                                cond(2, Len::Qword, Op::Eq, 4),
                                cond(3, Len::Qword, Op::Eq, off),
                            ])
                        })
                        .collect(),
                ));
            }
            r.extend([
                // A control page per stub; the stub's own filter; its FS/GS bases (set by
                // the stub's code on the Sentry's behalf).
                (SYS_memfd_create, one_of(1, &[MFD_CLOEXEC as u64])),
                (SYS_seccomp, one_of(0, &[SECCOMP_SET_MODE_FILTER as u64])),
                (
                    SYS_arch_prctl,
                    one_of(0, &[0x1002 /* ARCH_SET_FS */, 0x1001 /* ARCH_SET_GS */]),
                ),
            ]);
        }
        Platform::Ptrace => r.extend([
            (
                SYS_ptrace,
                one_of(
                    0,
                    &[
                        PTRACE_TRACEME as u64,
                        PTRACE_CONT as u64,
                        PTRACE_SYSEMU as u64,
                        PTRACE_GETREGS as u64,
                        PTRACE_SETREGS as u64,
                        PTRACE_GETFPREGS as u64,
                        PTRACE_SETFPREGS as u64,
                        // A thread's full FPU/AVX state when threads of one process take
                        // turns on its stub (NT_X86_XSTATE; fallback/src/xstate.rs).
                        PTRACE_GETREGSET as u64,
                        PTRACE_SETREGSET as u64,
                        PTRACE_GETSIGINFO as u64,
                        PTRACE_SETOPTIONS as u64,
                        0x420e, // PTRACE_GET_SYSCALL_INFO: a syscall's ABI (ptrace.rs)
                    ],
                ),
            ),
            // The stub's filter that traps the host's vsyscall emulation (ptrace.rs).
            (SYS_seccomp, one_of(0, &[SECCOMP_SET_MODE_FILTER as u64])),
            // Pinning vmm and its stub to one CPU.
            (SYS_sched_setaffinity, vec![]),
        ]),
        Platform::Kvm => unreachable!(),
    }
    r
}

/// The descriptors vmm holds of procfs directories (its `/proc/self/fd`): the only ones
/// `openat` may be relative to.
fn procfs_dirfds() -> Vec<RawFd> {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    // The open descriptors, from /proc/self/fd where it is there (a dozen, not a scan of
    // 1024 numbers: two syscalls each took ≈1 ms of every start).
    let open: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => (0..1024).collect(),
    };
    open.into_iter()
        .filter(|&fd| {
            // SAFETY: zeroed statfs/stat are valid out-parameters; fstatfs/fstat of any
            // number is harmless (EBADF when not open).
            unsafe {
                let mut sfs: libc::statfs = std::mem::zeroed();
                let mut st: libc::stat = std::mem::zeroed();
                libc::fstatfs(fd, &mut sfs) == 0
                    && sfs.f_type == PROC_SUPER_MAGIC
                    && libc::fstat(fd, &mut st) == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFDIR
            }
        })
        .collect()
}

/// vmm's seccomp filter for `platform`, compiled.
pub fn filter(platform: Platform, write_through: bool) -> Result<BpfProgram, ConfineError> {
    let f = SeccompFilter::new(
        rules(platform, write_through).into_iter().collect(),
        SeccompAction::Trap,
        SeccompAction::Allow,
        seccompiler::TargetArch::x86_64,
    )
    .map_err(ConfineError::BuildFilter)?;
    let mut prog: BpfProgram = f.try_into().map_err(ConfineError::CompileFilter)?;
    // seccompiler kills a process whose syscall comes from another ABI (its third
    // instruction). Trap instead, as for every other syscall: a systrap stub reports the
    // app's `int 0x80` to the Sentry, which a KILL here would pre-empt.
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    match prog.get_mut(2) {
        Some(ins) if ins.code == ret && ins.k == kill => ins.k = libc::SECCOMP_RET_TRAP,
        _ => return Err(ConfineError::ArchCheck),
    }
    Ok(prog)
}

/// The names of the syscalls vmm's filter allows on `platform`, for reports.
pub fn allowed_names(platform: Platform, write_through: bool) -> Vec<String> {
    rules(platform, write_through)
        .iter()
        .map(|(nr, rules)| {
            let name = syscall_name(*nr).unwrap_or("?");
            if rules.is_empty() {
                name.to_string()
            } else {
                format!("{name}*")
            }
        })
        .collect()
}

/// SIGSYS from vmm's own filter: one line naming the syscall, then death by SIGSYS.
extern "C" fn on_forbidden_syscall(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo; for SIGSYS si_syscall is the int at byte 24.
    let nr = unsafe { (info as *const u8).add(24).cast::<i32>().read() };
    let mut buf = [0u8; 96];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        let k = s.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&s[..k]);
        n += k;
    };
    put(b"vmm: forbidden host syscall ");
    let mut digits = [0u8; 12];
    let mut i = digits.len();
    let mut v = nr.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if nr < 0 {
        put(b"-");
    }
    put(&digits[i..]);
    if let Some(name) = syscall_name(nr as i64) {
        put(b" (");
        put(name.as_bytes());
        put(b")");
    }
    put(b": killed by vmm's seccomp filter (vmm/src/confine.rs)\n");
    // SAFETY: async-signal-safe syscalls only: write, rt_sigaction, tgkill. SIGSYS is
    // blocked in this handler; once it returns, the default action kills the process.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::signal(libc::SIGSYS, libc::SIG_DFL);
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            libc::SIGSYS,
        );
    }
}

fn install_sigsys_handler() -> Result<(), ConfineError> {
    // SAFETY: a zeroed sigaction with an async-signal-safe SA_SIGINFO handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_forbidden_syscall as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(ConfineError::os("sigaction(SIGSYS)"));
        }
    }
    Ok(())
}

/// `PR_SET_NO_NEW_PRIVS`, the capabilities `platform` and the mode need, and vmm's seccomp
/// filter: from here on vmm can make only the syscalls in [`rules`].
pub fn lock_down(platform: Platform, write_through: bool) -> Result<(), ConfineError> {
    let prog = filter(platform, write_through)?;
    // For --debug, before the filter forbids what finding them needs.
    let names = if log::log_enabled!(log::Level::Debug) {
        allowed_names(platform, write_through).join(" ")
    } else {
        String::new()
    };
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ConfineError::os("PR_SET_NO_NEW_PRIVS"));
    }
    let keep = kept_caps(write_through);
    drop_caps(keep)?;
    install_sigsys_handler()?;
    seccompiler::apply_filter(&prog).map_err(ConfineError::InstallFilter)?;
    debug(&format!(
        "no_new_privs; capabilities kept: {}; seccomp filter ({} instructions) allows: {}",
        if write_through {
            "chown dac_override dac_read_search fowner fsetid"
        } else {
            "dac_override dac_read_search"
        },
        prog.len(),
        names
    ));
    Ok(())
}

/// Names of the syscalls the filter mentions (and a few it forbids), for messages.
fn syscall_name(nr: i64) -> Option<&'static str> {
    use libc::*;
    const NAMES: &[(i64, &str)] = &[
        (SYS_read, "read"),
        (SYS_write, "write"),
        (SYS_open, "open"),
        (SYS_close, "close"),
        (SYS_stat, "stat"),
        (SYS_fstat, "fstat"),
        (SYS_lstat, "lstat"),
        (SYS_poll, "poll"),
        (SYS_lseek, "lseek"),
        (SYS_mmap, "mmap"),
        (SYS_mprotect, "mprotect"),
        (SYS_munmap, "munmap"),
        (SYS_brk, "brk"),
        (SYS_rt_sigaction, "rt_sigaction"),
        (SYS_rt_sigprocmask, "rt_sigprocmask"),
        (SYS_rt_sigreturn, "rt_sigreturn"),
        (SYS_ioctl, "ioctl"),
        (SYS_pread64, "pread64"),
        (SYS_pwrite64, "pwrite64"),
        (SYS_readv, "readv"),
        (SYS_writev, "writev"),
        (SYS_access, "access"),
        (SYS_pipe, "pipe"),
        (SYS_select, "select"),
        (SYS_sched_yield, "sched_yield"),
        (SYS_mremap, "mremap"),
        (SYS_madvise, "madvise"),
        (SYS_dup, "dup"),
        (SYS_dup2, "dup2"),
        (SYS_nanosleep, "nanosleep"),
        (SYS_getitimer, "getitimer"),
        (SYS_setitimer, "setitimer"),
        (SYS_getpid, "getpid"),
        (SYS_socket, "socket"),
        (SYS_connect, "connect"),
        (SYS_clone, "clone"),
        (SYS_fork, "fork"),
        (SYS_vfork, "vfork"),
        (SYS_execve, "execve"),
        (SYS_exit, "exit"),
        (SYS_wait4, "wait4"),
        (SYS_kill, "kill"),
        (SYS_uname, "uname"),
        (SYS_fcntl, "fcntl"),
        (SYS_fsync, "fsync"),
        (SYS_fdatasync, "fdatasync"),
        (SYS_truncate, "truncate"),
        (SYS_ftruncate, "ftruncate"),
        (SYS_getdents, "getdents"),
        (SYS_getcwd, "getcwd"),
        (SYS_chdir, "chdir"),
        (SYS_fchdir, "fchdir"),
        (SYS_rename, "rename"),
        (SYS_mkdir, "mkdir"),
        (SYS_rmdir, "rmdir"),
        (SYS_unlink, "unlink"),
        (SYS_symlink, "symlink"),
        (SYS_readlink, "readlink"),
        (SYS_chmod, "chmod"),
        (SYS_fchmod, "fchmod"),
        (SYS_chown, "chown"),
        (SYS_fchown, "fchown"),
        (SYS_umask, "umask"),
        (SYS_gettimeofday, "gettimeofday"),
        (SYS_getrlimit, "getrlimit"),
        (SYS_ptrace, "ptrace"),
        (SYS_getuid, "getuid"),
        (SYS_getppid, "getppid"),
        (SYS_setsid, "setsid"),
        (SYS_sigaltstack, "sigaltstack"),
        (SYS_prctl, "prctl"),
        (SYS_arch_prctl, "arch_prctl"),
        (SYS_setrlimit, "setrlimit"),
        (SYS_chroot, "chroot"),
        (SYS_mount, "mount"),
        (SYS_umount2, "umount2"),
        (SYS_pivot_root, "pivot_root"),
        (SYS_gettid, "gettid"),
        (SYS_futex, "futex"),
        (SYS_futex_waitv, "futex_waitv"),
        (SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (SYS_sched_setaffinity, "sched_setaffinity"),
        (SYS_sched_getaffinity, "sched_getaffinity"),
        (SYS_getdents64, "getdents64"),
        (SYS_fstatfs, "fstatfs"),
        (SYS_set_tid_address, "set_tid_address"),
        (SYS_restart_syscall, "restart_syscall"),
        (SYS_clock_gettime, "clock_gettime"),
        (SYS_clock_getres, "clock_getres"),
        (SYS_clock_nanosleep, "clock_nanosleep"),
        (SYS_exit_group, "exit_group"),
        (SYS_tgkill, "tgkill"),
        (SYS_openat, "openat"),
        (SYS_mkdirat, "mkdirat"),
        (SYS_fchownat, "fchownat"),
        (SYS_newfstatat, "newfstatat"),
        (SYS_unlinkat, "unlinkat"),
        (SYS_renameat, "renameat"),
        (SYS_symlinkat, "symlinkat"),
        (SYS_linkat, "linkat"),
        (SYS_readlinkat, "readlinkat"),
        (SYS_fchmodat, "fchmodat"),
        (SYS_ppoll, "ppoll"),
        (SYS_unshare, "unshare"),
        (SYS_set_robust_list, "set_robust_list"),
        (SYS_utimensat, "utimensat"),
        (SYS_epoll_wait, "epoll_wait"),
        (SYS_pipe2, "pipe2"),
        (SYS_dup3, "dup3"),
        (SYS_preadv, "preadv"),
        (SYS_pwritev, "pwritev"),
        (SYS_prlimit64, "prlimit64"),
        (SYS_getcpu, "getcpu"),
        (SYS_renameat2, "renameat2"),
        (SYS_seccomp, "seccomp"),
        (SYS_getrandom, "getrandom"),
        (SYS_memfd_create, "memfd_create"),
        (SYS_execveat, "execveat"),
        (SYS_statx, "statx"),
        (SYS_rseq, "rseq"),
        (SYS_process_vm_readv, "process_vm_readv"),
        (SYS_process_vm_writev, "process_vm_writev"),
        (SYS_open_tree, "open_tree"),
        (SYS_pidfd_open, "pidfd_open"),
        (SYS_clone3, "clone3"),
        (SYS_close_range, "close_range"),
        (SYS_openat2, "openat2"),
        (SYS_faccessat2, "faccessat2"),
        (SYS_mount_setattr, "mount_setattr"),
        (SYS_fchmodat2, "fchmodat2"),
    ];
    NAMES.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks a child that installs vmm's filter for `platform` (exactly as [`lock_down`]
    /// does, handler included) and runs `f`; returns its wait status. The child allocates
    /// nothing after the fork (the test harness is multi-threaded).
    fn in_filtered_child(platform: Platform, write_through: bool, f: fn() -> i32) -> i32 {
        in_filtered_child_stderr(platform, write_through, f).0
    }

    /// As [`in_filtered_child`], also returning what the child wrote to stderr.
    fn in_filtered_child_stderr(
        platform: Platform,
        write_through: bool,
        f: fn() -> i32,
    ) -> (i32, String) {
        let prog = filter(platform, write_through).unwrap();
        let mut pipe = [0; 2];
        assert_eq!(
            // SAFETY: a writable array of two fds.
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) },
            0
        );
        // SAFETY: the child only makes raw syscalls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: in the child: no allocation, raw syscalls, _exit.
            unsafe {
                libc::dup2(pipe[1], 2); // the handler's line goes to the parent
                if install_sigsys_handler().is_err() || seccompiler::apply_filter(&prog).is_err() {
                    libc::_exit(100);
                }
                libc::_exit(f());
            }
        }
        // SAFETY: our copy of the write end, no longer needed.
        unsafe { libc::close(pipe[1]) };
        // SAFETY: the read end is ours; File takes it over.
        let mut r = unsafe { std::fs::File::from_raw_fd(pipe[0]) };
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut r, &mut text);
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        (status, text)
    }

    fn killed_by_sigsys(status: i32) -> bool {
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS
    }

    /// What a filtered child runs; its exit status.
    type Probe = fn() -> i32;

    const ALL: [Platform; 3] = [Platform::Kvm, Platform::Systrap, Platform::Ptrace];

    #[test]
    fn forbidden_syscalls_kill_by_sigsys() {
        let forbidden: [(&str, Probe); 8] = [
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("execve", || unsafe {
                let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
                libc::execve(argv[0], argv.as_ptr(), std::ptr::null());
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("socket", || unsafe {
                libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("ptrace attach", || unsafe {
                libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, 1, 0, 0);
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("mount", || unsafe {
                libc::syscall(
                    libc::SYS_mount,
                    c"none".as_ptr(),
                    c"/mnt".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    0,
                );
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("openat", || unsafe {
                libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    c"/etc/passwd".as_ptr(),
                    libc::O_RDONLY,
                );
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("mmap PROT_EXEC", || unsafe {
                libc::syscall(
                    libc::SYS_mmap,
                    0,
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("kill(-1)", || unsafe {
                libc::syscall(libc::SYS_kill, -1, 0);
                0
            }),
            // SAFETY: raw syscalls in the filtered child, which only exits after.
            ("ioctl TIOCSTI", || unsafe {
                libc::syscall(libc::SYS_ioctl, 0, libc::TIOCSTI, c"x".as_ptr());
                0
            }),
        ];
        for p in ALL {
            for (what, f) in forbidden {
                let st = in_filtered_child(p, true, f);
                assert!(killed_by_sigsys(st), "{p:?}: {what}: wait status {st:#x}");
            }
        }
        // The one line vmm writes before it dies.
        // SAFETY: a raw syscall in the filtered child.
        let socket: Probe = || unsafe {
            libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
            0
        };
        let (st, text) = in_filtered_child_stderr(Platform::Systrap, false, socket);
        assert!(killed_by_sigsys(st));
        assert_eq!(
            text,
            "vmm: forbidden host syscall 41 (socket): killed by vmm's seccomp filter (vmm/src/confine.rs)\n"
        );
        // The kvm VMM forks nothing and the systrap one traces nothing.
        // SAFETY: raw syscalls in the filtered child, which only exits after.
        let fork: fn() -> i32 = || unsafe {
            libc::syscall(libc::SYS_clone, FORK_FLAGS, 0, 0, 0, 0);
            0
        };
        assert!(killed_by_sigsys(in_filtered_child(
            Platform::Kvm,
            false,
            fork
        )));
        // SAFETY: raw syscalls in the filtered child, which only exits after.
        let traceme: fn() -> i32 = || unsafe {
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
            0
        };
        assert!(killed_by_sigsys(in_filtered_child(
            Platform::Systrap,
            false,
            traceme
        )));
        // Writes to the host tree only with --rw.
        // SAFETY: raw syscalls in the filtered child, which only exits after.
        let mkdir: fn() -> i32 = || unsafe {
            libc::syscall(
                libc::SYS_mkdirat,
                libc::AT_FDCWD,
                c"/nonexistent/x".as_ptr(),
                0o755,
            );
            0
        };
        assert!(killed_by_sigsys(in_filtered_child(
            Platform::Ptrace,
            false,
            mkdir
        )));
        // A new thread is not a fork.
        // SAFETY: raw syscalls in the filtered child, which only exits after.
        let thread: fn() -> i32 = || unsafe {
            let flags = libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND;
            libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0);
            0
        };
        assert!(killed_by_sigsys(in_filtered_child(
            Platform::Systrap,
            true,
            thread
        )));
    }

    #[test]
    fn allowed_syscalls_work() {
        // SAFETY: raw syscalls in the filtered child, which only exits after.
        let ok: fn() -> i32 = || unsafe {
            // stdio, time, memory, openat2 under a directory fd
            let mut fds = [0; 2];
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 1;
            }
            let mut ts: libc::timespec = std::mem::zeroed();
            if libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) != 0 {
                return 2;
            }
            let p = libc::syscall(
                libc::SYS_mmap,
                0,
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p < 0 || libc::syscall(libc::SYS_munmap, p, 8192) != 0 {
                return 3;
            }
            let how = [
                libc::O_RDONLY as u64 | libc::O_CLOEXEC as u64,
                0,
                libc::RESOLVE_BENEATH,
            ];
            let fd = libc::syscall(
                libc::SYS_openat2,
                libc::AT_FDCWD,
                c".".as_ptr(),
                how.as_ptr(),
                24,
            );
            if fd < 0 || libc::syscall(libc::SYS_close, fd) != 0 {
                return 4;
            }
            let _ = &mut fds;
            if libc::syscall(libc::SYS_write, 2, c"x".as_ptr(), 1) != 1 {
                return 5;
            }
            0
        };
        for p in ALL {
            for rw in [false, true] {
                let st = in_filtered_child(p, rw, ok);
                assert!(
                    libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                    "{p:?} rw={rw}: {st:#x}"
                );
            }
        }
        // The fallbacks fork (and the child, still under the filter, makes a stub's first
        // calls), kill and reap.
        // SAFETY: raw syscalls in the filtered child, which only exits after.
        let fork: fn() -> i32 = || unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                libc::setsid();
                libc::sleep(10);
                libc::_exit(0);
            }
            if pid < 0 || libc::kill(pid, libc::SIGKILL) != 0 {
                return 1;
            }
            let mut st = 0;
            if libc::waitpid(pid, &mut st, libc::__WALL) != pid || !libc::WIFSIGNALED(st) {
                return 2;
            }
            0
        };
        for p in [Platform::Systrap, Platform::Ptrace] {
            let st = in_filtered_child(p, false, fork);
            assert!(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                "{p:?}: {st:#x}"
            );
        }
    }

    #[test]
    fn pseudo_filesystems_under_the_root_are_found() {
        let mi = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
28 27 0:25 / /srv/a\\040b rw - tmpfs tmpfs rw
29 28 0:26 / /srv/a\\040b/proc rw - proc proc rw
30 28 0:27 / /srv/a\\040b/usr rw - ext4 /dev/vdb rw
31 28 0:28 / /srv/a\\040b/dev rw - tmpfs tmpfs rw
";
        let all: Vec<String> = pseudo_mounts_under(mi, "/")
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(all, ["/proc", "/sys", "/srv/a b/proc"]);
        let sub: Vec<String> = pseudo_mounts_under(mi, "/srv/a b")
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(sub, ["/srv/a b/proc", "/srv/a b/dev"]);
    }

    #[test]
    fn each_syscall_has_one_rule_list() {
        for p in ALL {
            for rw in [false, true] {
                let mut nrs: Vec<i64> = rules(p, rw).iter().map(|r| r.0).collect();
                let n = nrs.len();
                nrs.sort();
                nrs.dedup();
                assert_eq!(nrs.len(), n, "{p:?} rw={rw}: a syscall listed twice");
                assert!(allowed_names(p, rw).iter().all(|n| !n.starts_with('?')));
            }
        }
    }

    #[test]
    fn capabilities_kept_per_mode() {
        assert_eq!(kept_caps(false), 0b110);
        assert_eq!(kept_caps(true), 0b11111);
    }
}

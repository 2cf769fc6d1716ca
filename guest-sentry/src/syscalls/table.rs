//! The syscall table: one entry per syscall the Sentry serves.
//!
//! An entry is `__NR_name(argument kinds) [-> result kind] [no_restart] => handler;`: the
//! number and name come from `linux-raw-sys` (`__NR_name`), the argument and result kinds say
//! how `--strace` shows the call ([`super::strace`]), `no_restart` marks a call that a signal
//! handler installed with `SA_RESTART` does not restart (sleeps, waits for readiness and for
//! signals: signal(7)), and the handler is an expression over `k` (the kernel), `t` (the
//! task), `a` (the six argument registers) and `n` (the number). Adding a syscall is one entry
//! here plus its handler in the module of its family.

// Decodes untrusted input: no silent truncating or sign-changing casts.
#![deny(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use linux_raw_sys::general as g;

use super::flags::{AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use super::io::AT_FDCWD;
use super::strace::Arg::*;
use super::strace::{self, Arg, Ret};
use super::{events, fs, futex, io, ipc, locks, mem, ovl, proc, socket, time, xattr};
use crate::errno::{EINVAL, ENOSYS};
use crate::kernel::{Kernel, Task, SANDBOX_IDS};
use crate::platform::Platform;
use crate::sched::{CLONE_VFORK, CLONE_VM};

/// `fork`'s and `vfork`'s exit signal, as `clone` flags.
const SIGCHLD: u64 = crate::signal::SIGCHLD as u64;

/// What the table says about one syscall.
pub struct Spec {
    /// The x86-64 number.
    pub nr: u32,
    /// The name (`"openat"`).
    pub name: &'static str,
    /// How `--strace` shows each argument (as many as the syscall takes).
    pub args: &'static [Arg],
    /// How `--strace` shows a successful result.
    pub ret: Ret,
    /// Whether `SA_RESTART` restarts the call after a signal handler interrupted it.
    pub restart: bool,
}

/// `"__NR_openat"` → `"openat"`, at compile time.
const fn strip_nr(s: &'static str) -> &'static str {
    let (_, name) = s.as_bytes().split_at(5);
    match core::str::from_utf8(name) {
        Ok(name) => name,
        Err(_) => panic!("syscall constant names are ASCII"),
    }
}

macro_rules! ret_kind {
    () => {
        Ret::Dec
    };
    ($r:ident) => {
        Ret::$r
    };
}
macro_rules! restarts {
    () => {
        true
    };
    (no_restart) => {
        false
    };
}

macro_rules! syscalls {
    ($k:ident, $t:ident, $a:ident, $n:ident;
     $( $nr:ident ( $($arg:expr),* ) $(-> $ret:ident)? $([$flag:ident])? => $body:expr; )*) => {
        /// The largest number in the table.
        const MAX_NR: u32 = {
            let nrs = [$(g::$nr),*];
            let mut max = 0;
            let mut i = 0;
            while i < nrs.len() {
                if nrs[i] > max {
                    max = nrs[i];
                }
                i += 1;
            }
            max
        };

        /// Every syscall the Sentry serves, in number order.
        pub static TABLE: &[Spec] = &[$(
            Spec {
                nr: g::$nr,
                name: strip_nr(stringify!($nr)),
                args: &[$($arg),*],
                ret: ret_kind!($($ret)?),
                restart: restarts!($($flag)?),
            },
        )*];

        /// Serves syscall `n` with the task's argument registers, its result in `rax`
        /// (`super::finish`); false when the Sentry does not know it. (Each entry reads the
        /// registers it uses: one that takes none, such as `getpid`, copies none; and each
        /// finishes with its own copy of the tail, shaped by what it returns.) Inlined into
        /// its one caller, `dispatch`.
        #[inline(always)]
        pub fn serve<P: Platform>(
            $k: &mut Kernel,
            $t: &mut Task<P>,
            $n: u64,
        ) -> bool {
            // One bound check (the jump table's own): numbers above the largest entry's are
            // unknown, the rest fit in a u32.
            if $n > u64::from(MAX_NR) {
                return false;
            }
            let number = u32::try_from($n).unwrap_or(u32::MAX);
            match number {
                $(g::$nr => {
                    #[allow(unused_variables)]
                    let $a = super::args(&$t.regs);
                    let r = $body;
                    super::finish($k, $t, $n, r);
                })*
                _ => return false,
            }
            true
        }
    };
}

/// `AT_FDCWD` as the register of an `*at` call holds it.
const CWD: u64 = (AT_FDCWD as i64).cast_unsigned();

syscalls! { k, t, a, n;
    __NR_read(Fd, OutBuf(2), Uint) => io::read(k, t, a);
    __NR_write(Fd, InBuf(2), Uint) => io::write(k, t, a);
    __NR_open(Str, OpenFlags, OpenMode(1)) => fs::openat(k, t, [CWD, a[0], a[1], a[2], 0, 0]);
    __NR_close(Fd) => io::close(k, t, a);
    __NR_stat(Str, Stat) => fs::newfstatat(k, t, [CWD, a[0], a[1], 0, 0, 0]);
    __NR_fstat(Fd, Stat) => fs::fstat(k, t, a);
    __NR_lstat(Str, Stat) => fs::newfstatat(k, t, [CWD, a[0], a[1], AT_SYMLINK_NOFOLLOW, 0, 0]);
    __NR_poll(Ptr, Uint, Int) [no_restart] => io::poll(k, t, a);
    __NR_lseek(Fd, Int, Enum(strace::WHENCE)) => fs::lseek(k, t, a);
    __NR_mmap(Ptr, Uint, Flags(strace::PROT), MmapFlags, Fd, Hex) -> Hex => mem::mmap(k, t, a);
    __NR_mprotect(Ptr, Uint, Flags(strace::PROT)) => mem::mprotect(k, t, a);
    __NR_munmap(Ptr, Uint) => mem::munmap(k, t, a);
    __NR_brk(Ptr) -> Hex => Ok(t.mm.lock().brk(a[0]));
    __NR_rt_sigaction(Signal, SigAction, Ptr, Uint) => proc::rt_sigaction(k, t, a);
    __NR_rt_sigprocmask(Enum(strace::SIG_HOW), SigSet, Ptr, Uint) => proc::rt_sigprocmask(k, t, a);
    __NR_rt_sigreturn() => crate::signal::sigreturn(k, t);
    __NR_ioctl(Fd, Enum(strace::IOCTL_REQ), Ptr) => io::ioctl(k, t, a);
    __NR_pread64(Fd, OutBuf(2), Uint, Int) => fs::pread64(k, t, a);
    __NR_pwrite64(Fd, InBuf(2), Uint, Int) => fs::pwrite64(k, t, a);
    __NR_readv(Fd, Ptr, Uint) => io::readv(k, t, a);
    __NR_writev(Fd, InIov(2), Uint) => io::writev(k, t, a);
    __NR_access(Str, Flags(strace::ACCESS_MODE)) => fs::faccessat(k, t, [CWD, a[0], a[1], 0, 0, 0]);
    __NR_pipe(PipeFds) => io::pipe2(k, t, [a[0], 0, 0, 0, 0, 0]);
    __NR_select(Int, Ptr, Ptr, Ptr, Ptr) [no_restart] => io::select(k, t, a);
    __NR_sched_yield() => Ok(0);
    __NR_mremap(Ptr, Uint, Uint, Flags(strace::MREMAP_FLAGS), Ptr) -> Hex => mem::mremap(k, t, a);
    __NR_madvise(Ptr, Uint, Enum(strace::MADVICE)) => mem::madvise(k, t, a);
    __NR_msync(Ptr, Uint, Flags(strace::MSYNC_FLAGS)) => mem::msync(k, t, a);
    __NR_shmget(Int, Uint, Hex) => ipc::shmget(k, t, a);
    __NR_shmat(Int, Ptr, Hex) -> Hex => ipc::shmat(k, t, a);
    __NR_shmctl(Int, Int, Ptr) => ipc::shmctl(k, t, a);
    __NR_dup(Fd) => fs::dup(k, t, a);
    __NR_dup2(Fd, Fd) => fs::dup2(k, t, a);
    __NR_pause() [no_restart] => time::pause(k, t, a);
    __NR_nanosleep(Timespec, Ptr) [no_restart] => time::clock_nanosleep(k, t, [1, 0, a[0], a[1], 0, 0]);
    __NR_getitimer(Enum(strace::ITIMERS), Ptr) => time::getitimer(k, t, a);
    __NR_alarm(Uint) => time::alarm(k, t, a);
    __NR_setitimer(Enum(strace::ITIMERS), Ptr, Ptr) => time::setitimer(k, t, a);
    __NR_getpid() => Ok(t.pid as u64);
    __NR_sendfile(Fd, Fd, Ptr, Uint) => fs::sendfile(k, t, a);
    __NR_copy_file_range(Fd, Ptr, Fd, Ptr, Uint, Hex) => fs::copy_file_range(k, t, a);
    __NR_splice(Fd, Ptr, Fd, Ptr, Uint, Hex) => fs::splice(k, t, a);
    __NR_tee(Fd, Fd, Uint, Hex) => fs::tee(k, t, a);
    // Unix domain sockets are served by the Sentry; other families have no network yet
    // (EAFNOSUPPORT): libc's lookups (nscd, systemd-userdb) then fall back to files.
    __NR_socket(Enum(strace::ADDRESS_FAMILIES), Hex, Int) => socket::socket(k, t, a);
    __NR_connect(Fd, SockAddr(2), Uint) => socket::connect(k, t, a);
    __NR_accept(Fd, Ptr, Ptr) => socket::accept4(k, t, [a[0], a[1], a[2], 0, 0, 0]);
    __NR_sendto(Fd, InBuf(2), Uint, Flags(strace::MSG_FLAGS), SockAddr(5), Uint) => socket::sendto(k, t, a);
    __NR_recvfrom(Fd, OutBuf(2), Uint, Flags(strace::MSG_FLAGS), Ptr, Ptr) => socket::recvfrom(k, t, a);
    __NR_sendmsg(Fd, MsgHdr, Flags(strace::MSG_FLAGS)) => socket::sendmsg(k, t, a);
    __NR_recvmsg(Fd, Ptr, Flags(strace::MSG_FLAGS)) => socket::recvmsg(k, t, a);
    __NR_shutdown(Fd, Enum(strace::SHUT_HOW)) => socket::shutdown(k, t, a);
    __NR_bind(Fd, SockAddr(2), Uint) => socket::bind(k, t, a);
    __NR_listen(Fd, Int) => socket::listen(k, t, a);
    __NR_getsockname(Fd, Ptr, Ptr) => socket::getsockname(k, t, a);
    __NR_getpeername(Fd, Ptr, Ptr) => socket::getpeername(k, t, a);
    __NR_socketpair(Enum(strace::ADDRESS_FAMILIES), Hex, Int, Ptr) => socket::socketpair(k, t, a);
    __NR_setsockopt(Fd, Int, Enum(strace::SOCKOPTS), Ptr, Uint) => socket::setsockopt(k, t, a);
    __NR_getsockopt(Fd, Int, Enum(strace::SOCKOPTS), Ptr, Ptr) => socket::getsockopt(k, t, a);
    __NR_clone(CloneFlags, Ptr, Ptr, Ptr, Hex) => proc::clone(k, t, a);
    __NR_fork() => proc::clone(k, t, [SIGCHLD, 0, 0, 0, 0, 0]);
    __NR_vfork() => proc::clone(k, t, [CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0]);
    __NR_execve(Str, Argv, Envp) => proc::execve(k, t, a);
    __NR_exit(Int) -> Never => proc::exit(k, t, a);
    __NR_wait4(Int, Ptr, Flags(strace::WAIT_OPTIONS), Ptr) => proc::wait4(k, t, a);
    __NR_kill(Int, Signal) => proc::kill(k, t, [a[0], a[1], 0, 0, 0, 0]);
    __NR_semget(Int, Int, Hex) => ipc::semget(k, t, a);
    __NR_semop(Int, Ptr, Uint) [no_restart] => ipc::semop(k, t, a);
    __NR_semctl(Int, Int, Int, Hex) => ipc::semctl(k, t, a);
    __NR_shmdt(Ptr) => ipc::shmdt(k, t, a);
    __NR_msgget(Int, Hex) => ipc::msgget(k, t, a);
    __NR_msgsnd(Int, Ptr, Uint, Hex) [no_restart] => ipc::msgsnd(k, t, a);
    __NR_msgrcv(Int, Ptr, Uint, Int, Hex) [no_restart] => ipc::msgrcv(k, t, a);
    __NR_msgctl(Int, Int, Ptr) => ipc::msgctl(k, t, a);
    __NR_uname(Ptr) => proc::uname(k, t, a);
    __NR_sethostname(InBuf(1), Uint) => proc::set_uts_name(k, t, a, false);
    __NR_setdomainname(InBuf(1), Uint) => proc::set_uts_name(k, t, a, true);
    __NR_fcntl(Fd, Enum(strace::FCNTL_CMD), Hex) => fs::fcntl(k, t, a);
    __NR_flock(Fd, Hex) => locks::flock(k, t, a);
    __NR_fsync(Fd) => io::fsync(k, t, a);
    __NR_fdatasync(Fd) => io::fsync(k, t, a);
    __NR_truncate(Str, Int) => ovl::truncate(k, t, a);
    __NR_ftruncate(Fd, Int) => ovl::ftruncate(k, t, a);
    __NR_getcwd(OutBuf(1), Uint) => fs::getcwd(k, t, a);
    __NR_chdir(Str) => fs::chdir(k, t, a);
    __NR_fchdir(Fd) => fs::fchdir(k, t, a);
    __NR_rename(Str, Str) => ovl::renameat(k, t, [CWD, a[0], CWD, a[1], 0, 0]);
    __NR_mkdir(Str, Mode) => ovl::mkdirat(k, t, [CWD, a[0], a[1], 0, 0, 0]);
    __NR_rmdir(Str) => ovl::unlinkat(k, t, [CWD, a[0], AT_REMOVEDIR, 0, 0, 0]);
    __NR_creat(Str, Mode) => {
        let flags = (g::O_CREAT | g::O_WRONLY | g::O_TRUNC) as u64;
        fs::openat(k, t, [CWD, a[0], flags, a[1], 0, 0])
    };
    __NR_unlink(Str) => ovl::unlinkat(k, t, [CWD, a[0], 0, 0, 0, 0]);
    __NR_symlink(Str, Str) => ovl::symlinkat(k, t, [a[0], CWD, a[1], 0, 0, 0]);
    __NR_link(Str, Str) => ovl::linkat(k, t, [CWD, a[0], CWD, a[1], 0, 0]);
    __NR_statfs(Str, Ptr) => fs::statfs(k, t, a);
    __NR_fstatfs(Fd, Ptr) => fs::fstatfs(k, t, a);
    __NR_readlink(Str, OutBuf(2), Uint) => fs::readlinkat(k, t, [CWD, a[0], a[1], a[2], 0, 0]);
    __NR_chmod(Str, Mode) => ovl::fchmodat(k, t, [CWD, a[0], a[1], 0, 0, 0]);
    __NR_fchmod(Fd, Mode) => ovl::fchmod(k, t, a);
    __NR_chown(Str, Int, Int) => ovl::chown_path(k, t, CWD, a[0], (a[1], a[2]), false);
    __NR_fchown(Fd, Int, Int) => ovl::fchown(k, t, a);
    __NR_lchown(Str, Int, Int) => ovl::chown_path(k, t, CWD, a[0], (a[1], a[2]), true);
    __NR_umask(Mode) -> Oct => {
        let old = t.fs.lock().umask;
        t.fs.lock().umask = strace::low32(a[0]) & 0o777;
        Ok(old as u64)
    };
    __NR_gettimeofday(Ptr, Ptr) => time::gettimeofday(k, t, a);
    __NR_getrlimit(Enum(strace::RLIMITS), Ptr) => proc::prlimit64(k, t, [0, a[0], 0, a[1], 0, 0]);
    __NR_sysinfo(Ptr) => proc::sysinfo(k, t, a);
    __NR_getuid() => Ok(SANDBOX_IDS[0] as u64);
    __NR_getgid() => Ok(SANDBOX_IDS[2] as u64);
    __NR_geteuid() => Ok(SANDBOX_IDS[1] as u64);
    __NR_getegid() => Ok(SANDBOX_IDS[3] as u64);
    __NR_setuid(Int) => proc::set_ids(k, t, [a[0], u64::MAX, u64::MAX]);
    __NR_setgid(Int) => proc::set_ids(k, t, [a[0], u64::MAX, u64::MAX]);
    __NR_setreuid(Int, Int) => proc::set_ids(k, t, [a[0], a[1], u64::MAX]);
    __NR_setregid(Int, Int) => proc::set_ids(k, t, [a[0], a[1], u64::MAX]);
    __NR_setresuid(Int, Int, Int) => proc::set_ids(k, t, [a[0], a[1], a[2]]);
    __NR_setresgid(Int, Int, Int) => proc::set_ids(k, t, [a[0], a[1], a[2]]);
    __NR_getresuid(Ptr, Ptr, Ptr) => proc::get_ids(k, t, [a[0], a[1], a[2]]);
    __NR_getresgid(Ptr, Ptr, Ptr) => proc::get_ids(k, t, [a[0], a[1], a[2]]);
    __NR_setfsuid(Int) => Ok(SANDBOX_IDS[0] as u64);
    __NR_setfsgid(Int) => Ok(SANDBOX_IDS[2] as u64);
    __NR_getgroups(Int, Ptr) => if strace::low32(a[0]) > i32::MAX as u32 { Err(EINVAL) } else { Ok(0) };
    __NR_setgroups(Uint, Ptr) => proc::setgroups(k, t, a);
    __NR_setpgid(Int, Int) => proc::setpgid(k, t, a);
    __NR_getppid() => Ok(t.tg.get().ppid as u64);
    __NR_getpgrp() => Ok(t.tg.get().pgid as u64);
    __NR_setsid() => proc::setsid(k, t, a);
    __NR_getpgid(Int) => proc::getpgid(k, t, [a[0], 0, 0, 0, 0, 0]);
    __NR_getsid(Int) => proc::getpgid(k, t, [a[0], 1, 0, 0, 0, 0]);
    __NR_rt_sigpending(Ptr, Uint) => {
        if a[1] != 8 {
            Err(EINVAL)
        } else {
            let set = crate::signal::pending_mask(t) & t.signals.blocked;
            t.mm.lock().write_obj(a[0], &set).map(|_| 0)
        }
    };
    __NR_rt_sigtimedwait(SigSet, Ptr, Timespec, Uint) [no_restart] => events::rt_sigtimedwait(k, t, a);
    __NR_rt_sigsuspend(SigSet, Uint) [no_restart] => proc::rt_sigsuspend(k, t, a);
    __NR_sigaltstack(Ptr, Ptr) => proc::sigaltstack(k, t, a);
    __NR_mknod(Str, Mode, Hex) => ovl::mknodat(k, t, [CWD, a[0], a[1], a[2], 0, 0]);
    __NR_prctl(Enum(strace::PRCTL), Hex, Hex, Hex, Hex) => proc::prctl(k, t, a);
    __NR_arch_prctl(Enum(strace::ARCH_PRCTL), Hex) => proc::arch_prctl(k, t, a);
    __NR_setrlimit(Enum(strace::RLIMITS), Ptr) => proc::prlimit64(k, t, [0, a[0], a[1], 0, 0, 0]);
    __NR_gettid() => Ok(t.tid as u64);
    __NR_sched_setaffinity(Int, Uint, Ptr) => proc::sched_setaffinity(k, t, a);
    __NR_sched_setparam(Int, Ptr) => proc::sched_param(k, t, [a[0], a[1], 0, 0, 0, 0], true);
    __NR_sched_getparam(Int, Ptr) => proc::sched_param(k, t, [a[0], a[1], 0, 0, 0, 0], false);
    __NR_sched_setscheduler(Int, Int, Ptr) => proc::sched_setscheduler(k, t, a);
    __NR_sched_getscheduler(Int) => if strace::low32(a[0]) > i32::MAX as u32 { Err(EINVAL) } else { Ok(0) };
    // Only SCHED_OTHER (0), SCHED_BATCH (3) and SCHED_IDLE (5) are served: priority 0.
    __NR_sched_get_priority_max(Int) => proc::sched_priority_range(a[0]);
    __NR_sched_get_priority_min(Int) => proc::sched_priority_range(a[0]);
    __NR_sched_getaffinity(Int, Uint, Ptr) => proc::sched_getaffinity(k, t, a);
    // Extended attributes: `user.*` of the overlay's entries (syscalls/xattr.rs).
    __NR_setxattr(Str, Str, Ptr, Uint, Hex) => xattr::set(k, t, a, false, true);
    __NR_lsetxattr(Str, Str, Ptr, Uint, Hex) => xattr::set(k, t, a, false, false);
    __NR_fsetxattr(Fd, Str, Ptr, Uint, Hex) => xattr::set(k, t, a, true, true);
    __NR_getxattr(Str, Str, Ptr, Uint) => xattr::get(k, t, a, false, true);
    __NR_lgetxattr(Str, Str, Ptr, Uint) => xattr::get(k, t, a, false, false);
    __NR_fgetxattr(Fd, Str, Ptr, Uint) => xattr::get(k, t, a, true, true);
    __NR_listxattr(Str, Ptr, Uint) => xattr::list(k, t, a, false, true);
    __NR_llistxattr(Str, Ptr, Uint) => xattr::list(k, t, a, false, false);
    __NR_flistxattr(Fd, Ptr, Uint) => xattr::list(k, t, a, true, true);
    __NR_removexattr(Str, Str) => xattr::remove(k, t, a, false, true);
    __NR_lremovexattr(Str, Str) => xattr::remove(k, t, a, false, false);
    __NR_fremovexattr(Fd, Str) => xattr::remove(k, t, a, true, true);
    __NR_tkill(Int, Signal) => proc::tgkill(k, t, [u64::MAX, a[0], a[1], 0, 0, 0]);
    __NR_time(Ptr) => time::time(k, t, a);
    __NR_futex(Ptr, FutexOp, Int, Ptr, Ptr, Int) => futex::futex(k, t, a);
    __NR_epoll_create(Int) => events::epoll_create(k, t, a);
    __NR_getdents64(Fd, Ptr, Uint) => fs::getdents64(k, t, a);
    __NR_set_tid_address(Ptr) => {
        t.clear_child_tid = a[0];
        Ok(t.tid as u64)
    };
    __NR_semtimedop(Int, Ptr, Uint, Timespec) [no_restart] => ipc::semtimedop(k, t, a);
    __NR_timer_create(Enum(strace::CLOCKS), Ptr, Ptr) => time::timer_create(k, t, a);
    __NR_timer_settime(Int, Flags(strace::TIMER_FLAGS), Ptr, Ptr) => time::timer_settime(k, t, a);
    __NR_timer_gettime(Int, Ptr) => time::timer_gettime(k, t, a);
    __NR_timer_getoverrun(Int) => time::timer_getoverrun(k, t, a);
    __NR_timer_delete(Int) => time::timer_delete(k, t, a);
    __NR_clock_gettime(Enum(strace::CLOCKS), Ptr) => time::clock_gettime(k, t, a);
    __NR_clock_getres(Enum(strace::CLOCKS), Ptr) => time::clock_getres(k, t, a);
    __NR_clock_nanosleep(Enum(strace::CLOCKS), Flags(strace::TIMER_FLAGS), Timespec, Ptr)
        [no_restart] => time::clock_nanosleep(k, t, a);
    __NR_exit_group(Int) -> Never => proc::exit_group(k, t, a);
    __NR_epoll_wait(Fd, Ptr, Int, Int) [no_restart] => events::epoll_wait(k, t, a);
    __NR_epoll_ctl(Fd, Enum(strace::EPOLL_CTL_OPS), Fd, Ptr) => events::epoll_ctl(k, t, a);
    __NR_tgkill(Int, Int, Signal) => proc::tgkill(k, t, a);
    __NR_waitid(Enum(strace::ID_TYPES), Int, Ptr, Flags(strace::WAIT_OPTIONS), Ptr)
        => proc::waitid(k, t, a);
    __NR_openat(DirFd, Str, OpenFlags, OpenMode(2)) => fs::openat(k, t, a);
    __NR_mkdirat(DirFd, Str, Mode) => ovl::mkdirat(k, t, a);
    __NR_mknodat(DirFd, Str, Mode, Hex) => ovl::mknodat(k, t, a);
    __NR_fchownat(DirFd, Str, Int, Int, Flags(strace::AT_FLAGS)) => ovl::chown_path(
        k,
        t,
        a[0],
        a[1],
        (a[2], a[3]),
        a[4] & AT_SYMLINK_NOFOLLOW != 0,
    );
    __NR_newfstatat(DirFd, Str, Stat, Flags(strace::AT_FLAGS)) => fs::newfstatat(k, t, a);
    __NR_unlinkat(DirFd, Str, Flags(strace::UNLINK_FLAGS)) => ovl::unlinkat(k, t, a);
    __NR_renameat(DirFd, Str, DirFd, Str) => ovl::renameat(k, t, [a[0], a[1], a[2], a[3], 0, 0]);
    __NR_symlinkat(Str, DirFd, Str) => ovl::symlinkat(k, t, a);
    __NR_linkat(DirFd, Str, DirFd, Str, Flags(strace::LINKAT_FLAGS)) => ovl::linkat(k, t, a);
    __NR_readlinkat(DirFd, Str, OutBuf(3), Uint) => fs::readlinkat(k, t, a);
    __NR_fchmodat(DirFd, Str, Mode) => ovl::fchmodat(k, t, a);
    __NR_faccessat(DirFd, Str, Flags(strace::ACCESS_MODE))
        => fs::faccessat(k, t, [a[0], a[1], a[2], 0, 0, 0]);
    __NR_pselect6(Int, Ptr, Ptr, Ptr, Timespec, Ptr) [no_restart] => io::pselect6(k, t, a);
    __NR_ppoll(Ptr, Uint, Timespec, SigSet, Uint) [no_restart] => io::ppoll(k, t, a);
    __NR_set_robust_list(Ptr, Uint) => proc::set_robust_list(k, t, a);
    __NR_get_robust_list(Int, Ptr, Ptr) => proc::get_robust_list(k, t, a);
    // Advice about future reads: a hint the page cache may ignore (checked, then done).
    __NR_fadvise64(Fd, Int, Int, Int) => io::file(t, a[0]).and(if a[3] > 5 { Err(EINVAL) } else { Ok(0) });
    __NR_utimensat(DirFd, Str, Ptr, Flags(strace::AT_FLAGS)) => ovl::utimensat(k, t, a);
    __NR_epoll_pwait(Fd, Ptr, Int, Int, SigSet, Uint) [no_restart] => events::epoll_pwait(k, t, a);
    __NR_signalfd(Fd, SigSet, Uint) => events::signalfd4(k, t, [a[0], a[1], a[2], 0, 0, 0]);
    __NR_timerfd_create(Enum(strace::CLOCKS), Flags(strace::FD_FLAGS)) => events::timerfd_create(k, t, a);
    __NR_eventfd(Uint) => events::eventfd2(k, t, [a[0], 0, 0, 0, 0, 0]);
    __NR_timerfd_settime(Fd, Flags(strace::TFD_SETTIME_FLAGS), Ptr, Ptr) => events::timerfd_settime(k, t, a);
    __NR_timerfd_gettime(Fd, Ptr) => events::timerfd_gettime(k, t, a);
    __NR_accept4(Fd, Ptr, Ptr, Flags(strace::SOCK_FLAGS)) => socket::accept4(k, t, a);
    __NR_signalfd4(Fd, SigSet, Uint, Flags(strace::FD_FLAGS)) => events::signalfd4(k, t, a);
    __NR_eventfd2(Uint, Flags(strace::EFD_FLAGS)) => events::eventfd2(k, t, a);
    __NR_epoll_create1(Flags(strace::FD_FLAGS)) => events::epoll_create1(k, t, a);
    __NR_dup3(Fd, Fd, Flags(strace::FD_FLAGS)) => fs::dup3(k, t, a);
    __NR_pipe2(PipeFds, Flags(strace::FD_FLAGS)) => io::pipe2(k, t, a);
    __NR_prlimit64(Int, Enum(strace::RLIMITS), Ptr, Ptr) => proc::prlimit64(k, t, a);
    __NR_getcpu(Ptr, Ptr, Ptr) => proc::getcpu(k, t, a);
    __NR_memfd_create(Str, Flags(strace::MFD_FLAGS)) => ovl::memfd_create(k, t, a);
    __NR_close_range(Uint, Uint, Flags(strace::CLOSE_RANGE_FLAGS)) => io::close_range(k, t, a);
    __NR_renameat2(DirFd, Str, DirFd, Str, Flags(strace::RENAME_FLAGS)) => ovl::renameat(k, t, a);
    __NR_getrandom(OutBuf(1), Uint, Flags(strace::GRND_FLAGS)) => time::getrandom(k, t, a);
    __NR_statx(DirFd, Str, Flags(strace::AT_FLAGS), Hex, Ptr) => fs::statx(k, t, a);
    __NR_clone3(Ptr, Uint) => proc::clone3(k, t, a);
    // Restartable sequences are optional: libc falls back when the kernel says ENOSYS.
    __NR_rseq(Ptr, Uint, Hex, Hex) => Err(ENOSYS);
    __NR_pidfd_send_signal(Fd, Signal, Ptr, Hex) => events::pidfd_send_signal(k, t, a);
    __NR_pidfd_open(Int, Flags(strace::FD_FLAGS)) => events::pidfd_open(k, t, a);
    __NR_faccessat2(DirFd, Str, Flags(strace::ACCESS_MODE), Flags(strace::ACCESS_AT_FLAGS))
        => fs::faccessat(k, t, a);
    __NR_epoll_pwait2(Fd, Ptr, Int, Timespec, SigSet, Uint) [no_restart] => events::epoll_pwait2(k, t, a);
    __NR_getpriority(Int, Int) => proc::priority(k, t, a, false);
    __NR_setpriority(Int, Int, Int) => proc::priority(k, t, a, true);
    __NR_preadv(Fd, Ptr, Uint, Int, Int) => fs::preadv(k, t, a);
    __NR_pwritev(Fd, InIov(2), Uint, Int, Int) => fs::pwritev(k, t, a);
    __NR_preadv2(Fd, Ptr, Uint, Int, Int, Hex) => fs::prwv2(k, t, a, true);
    __NR_pwritev2(Fd, InIov(2), Uint, Int, Int, Hex) => fs::prwv2(k, t, a, false);
}

/// The table's entry for syscall `n`.
pub fn spec(n: u64) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.nr as u64 == n)
}

/// The number of the syscall called `name` (for `--strace=open,read`), served or not... as
/// far as the table knows it.
pub fn number(name: &str) -> Option<u32> {
    TABLE.iter().find(|s| s.name == name).map(|s| s.nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_number_with_its_name() {
        for (i, s) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|o| o.nr != s.nr),
                "{} listed twice",
                s.name
            );
            assert!(s.args.len() <= 6, "{}: more than six arguments", s.name);
        }
        assert_eq!(spec(0).unwrap().name, "read");
        assert_eq!(spec(257).unwrap().name, "openat");
        assert_eq!(number("exit_group"), Some(231));
        assert!(!spec(35).unwrap().restart, "nanosleep is not restarted");
        assert!(spec(0).unwrap().restart, "read is restarted");
    }
}

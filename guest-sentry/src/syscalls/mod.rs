//! The syscall table: every syscall the Sentry serves, by x86-64 number, with `--strace`
//! printing. Unknown syscalls return ENOSYS and are logged once.
//!
//! Handlers live by family: [`mem`] (address space), [`io`] (file descriptors, stdio),
//! [`fs`] (paths, host files, descriptors), [`proc`] (identity, exit, limits, signals),
//! [`time`] (clocks, randomness).

mod devfs;
mod flags;
mod fs;
mod io;
mod mem;
mod ovl;
mod proc;
pub mod procfs;
mod time;
mod walk;

use alloc::string::String;
use core::fmt::Write;

use crate::errno::{describe, SysResult, ENOSYS};
use crate::kernel::LogVerdict;
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;

/// Syscall numbers (x86-64).
pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const PIPE: u64 = 22;
    pub const FSTAT: u64 = 5;
    pub const POLL: u64 = 7;
    pub const LSTAT: u64 = 6;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const MREMAP: u64 = 25;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const ACCESS: u64 = 21;
    pub const SELECT: u64 = 23;
    pub const SCHED_YIELD: u64 = 24;
    pub const MADVISE: u64 = 28;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const PAUSE: u64 = 34;
    pub const NANOSLEEP: u64 = 35;
    pub const GETITIMER: u64 = 36;
    pub const ALARM: u64 = 37;
    pub const SETITIMER: u64 = 38;
    pub const GETPID: u64 = 39;
    pub const CLONE: u64 = 56;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXIT: u64 = 60;
    pub const WAIT4: u64 = 61;
    pub const WAITID: u64 = 247;
    pub const KILL: u64 = 62;
    pub const SENDFILE: u64 = 40;
    pub const UNAME: u64 = 63;
    pub const FCNTL: u64 = 72;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const CREAT: u64 = 85;
    pub const READLINK: u64 = 89;
    pub const UMASK: u64 = 95;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const SYSINFO: u64 = 99;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const RT_SIGPENDING: u64 = 127;
    pub const RT_SIGSUSPEND: u64 = 130;
    pub const SIGALTSTACK: u64 = 131;
    pub const SETPGID: u64 = 109;
    pub const GETPPID: u64 = 110;
    pub const GETPGRP: u64 = 111;
    pub const SETSID: u64 = 112;
    pub const GETPGID: u64 = 121;
    pub const GETSID: u64 = 124;
    pub const PRCTL: u64 = 157;
    pub const ARCH_PRCTL: u64 = 158;
    pub const SOCKET: u64 = 41;
    pub const SOCKETPAIR: u64 = 53;
    pub const SETRLIMIT: u64 = 160;
    pub const GETTID: u64 = 186;
    pub const TKILL: u64 = 200;
    pub const TIME: u64 = 201;
    pub const GETCPU: u64 = 309;
    pub const GETDENTS64: u64 = 217;
    pub const FUTEX: u64 = 202;
    pub const GETXATTR: u64 = 191;
    pub const LGETXATTR: u64 = 192;
    pub const FGETXATTR: u64 = 193;
    pub const LISTXATTR: u64 = 194;
    pub const LLISTXATTR: u64 = 195;
    pub const FLISTXATTR: u64 = 196;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_GETRES: u64 = 229;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const EXIT_GROUP: u64 = 231;
    pub const TGKILL: u64 = 234;
    pub const OPENAT: u64 = 257;
    pub const NEWFSTATAT: u64 = 262;
    pub const READLINKAT: u64 = 267;
    pub const FACCESSAT: u64 = 269;
    pub const PSELECT6: u64 = 270;
    pub const PPOLL: u64 = 271;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const PRLIMIT64: u64 = 302;
    pub const GETRANDOM: u64 = 318;
    pub const STATX: u64 = 332;
    pub const RSEQ: u64 = 334;
    pub const PWRITE64: u64 = 18;
    pub const FSYNC: u64 = 74;
    pub const FDATASYNC: u64 = 75;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const UNLINK: u64 = 87;
    pub const CHMOD: u64 = 90;
    pub const FCHMOD: u64 = 91;
    pub const CHOWN: u64 = 92;
    pub const FCHOWN: u64 = 93;
    pub const LCHOWN: u64 = 94;
    pub const MKDIRAT: u64 = 258;
    pub const MKNOD: u64 = 133;
    pub const MKNODAT: u64 = 259;
    pub const FCHOWNAT: u64 = 260;
    pub const UNLINKAT: u64 = 263;
    pub const RENAMEAT: u64 = 264;
    pub const FCHMODAT: u64 = 268;
    pub const UTIMENSAT: u64 = 280;
    pub const RENAMEAT2: u64 = 316;
    pub const SYMLINK: u64 = 88;
    pub const SYMLINKAT: u64 = 266;
    pub const FACCESSAT2: u64 = 439;
}

/// `(number, name, argument count)` for `--strace`; the served set is [`dispatch`]'s match.
const NAMES: &[(u64, &str, usize)] = &[
    (nr::READ, "read", 3),
    (nr::WRITE, "write", 3),
    (nr::OPEN, "open", 3),
    (nr::POLL, "poll", 3),
    (nr::SELECT, "select", 5),
    (nr::PSELECT6, "pselect6", 6),
    (nr::PPOLL, "ppoll", 5),
    (nr::SENDFILE, "sendfile", 4),
    (nr::PRCTL, "prctl", 5),
    (nr::CLOSE, "close", 1),
    (nr::STAT, "stat", 2),
    (nr::LSTAT, "lstat", 2),
    (nr::LSEEK, "lseek", 3),
    (nr::PREAD64, "pread64", 4),
    (nr::ACCESS, "access", 2),
    (nr::DUP, "dup", 1),
    (nr::DUP2, "dup2", 2),
    (nr::FCNTL, "fcntl", 3),
    (nr::GETCWD, "getcwd", 2),
    (nr::CHDIR, "chdir", 1),
    (nr::FCHDIR, "fchdir", 1),
    (nr::CREAT, "creat", 2),
    (nr::GETDENTS64, "getdents64", 3),
    (nr::OPENAT, "openat", 4),
    (nr::FACCESSAT, "faccessat", 3),
    (nr::DUP3, "dup3", 3),
    (nr::STATX, "statx", 5),
    (nr::FACCESSAT2, "faccessat2", 4),
    (nr::PIPE, "pipe", 1),
    (nr::PIPE2, "pipe2", 2),
    (nr::FSTAT, "fstat", 2),
    (nr::MMAP, "mmap", 6),
    (nr::MPROTECT, "mprotect", 3),
    (nr::MUNMAP, "munmap", 2),
    (nr::MREMAP, "mremap", 5),
    (nr::BRK, "brk", 1),
    (nr::RT_SIGACTION, "rt_sigaction", 4),
    (nr::RT_SIGPROCMASK, "rt_sigprocmask", 4),
    (nr::RT_SIGRETURN, "rt_sigreturn", 0),
    (nr::RT_SIGSUSPEND, "rt_sigsuspend", 2),
    (nr::RT_SIGPENDING, "rt_sigpending", 2),
    (nr::SIGALTSTACK, "sigaltstack", 2),
    (nr::IOCTL, "ioctl", 3),
    (nr::READV, "readv", 3),
    (nr::WRITEV, "writev", 3),
    (nr::SCHED_YIELD, "sched_yield", 0),
    (nr::MADVISE, "madvise", 3),
    (nr::NANOSLEEP, "nanosleep", 2),
    (nr::PAUSE, "pause", 0),
    (nr::GETITIMER, "getitimer", 2),
    (nr::ALARM, "alarm", 1),
    (nr::SETITIMER, "setitimer", 3),
    (nr::CLOCK_NANOSLEEP, "clock_nanosleep", 4),
    (nr::GETPID, "getpid", 0),
    (nr::CLONE, "clone", 5),
    (nr::FORK, "fork", 0),
    (nr::VFORK, "vfork", 0),
    (nr::EXECVE, "execve", 3),
    (nr::EXIT, "exit", 1),
    (nr::WAIT4, "wait4", 4),
    (nr::WAITID, "waitid", 5),
    (nr::KILL, "kill", 2),
    (nr::SETPGID, "setpgid", 2),
    (nr::GETPGRP, "getpgrp", 0),
    (nr::SETSID, "setsid", 0),
    (nr::GETPGID, "getpgid", 1),
    (nr::GETSID, "getsid", 1),
    (nr::TGKILL, "tgkill", 3),
    (nr::TKILL, "tkill", 2),
    (nr::UNAME, "uname", 1),
    (nr::READLINK, "readlink", 3),
    (nr::UMASK, "umask", 1),
    (nr::GETTIMEOFDAY, "gettimeofday", 2),
    (nr::GETCPU, "getcpu", 3),
    (nr::GETRLIMIT, "getrlimit", 2),
    (nr::SYSINFO, "sysinfo", 1),
    (nr::GETUID, "getuid", 0),
    (nr::GETGID, "getgid", 0),
    (nr::GETEUID, "geteuid", 0),
    (nr::GETEGID, "getegid", 0),
    (nr::GETPPID, "getppid", 0),
    (nr::ARCH_PRCTL, "arch_prctl", 2),
    (nr::SOCKET, "socket", 3),
    (nr::SOCKETPAIR, "socketpair", 4),
    (nr::SETRLIMIT, "setrlimit", 2),
    (nr::GETTID, "gettid", 0),
    (nr::TIME, "time", 1),
    (nr::FUTEX, "futex", 6),
    (nr::GETXATTR, "getxattr", 4),
    (nr::LGETXATTR, "lgetxattr", 4),
    (nr::FGETXATTR, "fgetxattr", 4),
    (nr::LISTXATTR, "listxattr", 3),
    (nr::LLISTXATTR, "llistxattr", 3),
    (nr::FLISTXATTR, "flistxattr", 3),
    (nr::SET_TID_ADDRESS, "set_tid_address", 1),
    (nr::CLOCK_GETTIME, "clock_gettime", 2),
    (nr::CLOCK_GETRES, "clock_getres", 2),
    (nr::EXIT_GROUP, "exit_group", 1),
    (nr::NEWFSTATAT, "newfstatat", 4),
    (nr::READLINKAT, "readlinkat", 4),
    (nr::SET_ROBUST_LIST, "set_robust_list", 2),
    (nr::PRLIMIT64, "prlimit64", 4),
    (nr::GETRANDOM, "getrandom", 3),
    (nr::RSEQ, "rseq", 4),
    (nr::PWRITE64, "pwrite64", 4),
    (nr::FSYNC, "fsync", 1),
    (nr::FDATASYNC, "fdatasync", 1),
    (nr::TRUNCATE, "truncate", 2),
    (nr::FTRUNCATE, "ftruncate", 2),
    (nr::RENAME, "rename", 2),
    (nr::MKDIR, "mkdir", 2),
    (nr::RMDIR, "rmdir", 1),
    (nr::UNLINK, "unlink", 1),
    (nr::CHMOD, "chmod", 2),
    (nr::FCHMOD, "fchmod", 2),
    (nr::CHOWN, "chown", 3),
    (nr::FCHOWN, "fchown", 3),
    (nr::LCHOWN, "lchown", 3),
    (nr::MKDIRAT, "mkdirat", 3),
    (nr::MKNOD, "mknod", 3),
    (nr::MKNODAT, "mknodat", 4),
    (nr::FCHOWNAT, "fchownat", 5),
    (nr::UNLINKAT, "unlinkat", 3),
    (nr::RENAMEAT, "renameat", 4),
    (nr::FCHMODAT, "fchmodat", 3),
    (nr::UTIMENSAT, "utimensat", 4),
    (nr::RENAMEAT2, "renameat2", 5),
    (nr::SYMLINK, "symlink", 2),
    (nr::SYMLINKAT, "symlinkat", 3),
];

fn name_of(n: u64) -> (Option<&'static str>, usize) {
    match NAMES.iter().find(|e| e.0 == n) {
        Some(&(_, name, args)) => (Some(name), args),
        None => (None, 6),
    }
}

/// Serves the syscall the task just made and stores the result in `rax`.
pub fn dispatch<P: Platform>(k: &mut Kernel, t: &mut Task<P>) {
    let n = t.regs.orig_rax;
    let a = [
        t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9,
    ];
    let result: SysResult = match n {
        nr::READ => io::read(k, t, a),
        nr::WRITE => io::write(k, t, a),
        nr::READV => io::readv(k, t, a),
        nr::WRITEV => io::writev(k, t, a),
        nr::CLOSE => io::close(k, t, a),
        nr::PIPE => io::pipe2(k, t, [a[0], 0, 0, 0, 0, 0]),
        nr::PIPE2 => io::pipe2(k, t, a),
        nr::OPEN => fs::openat(k, t, [io::AT_FDCWD as u64, a[0], a[1], a[2], 0, 0]),
        nr::OPENAT => fs::openat(k, t, a),
        nr::PWRITE64 => fs::pwrite64(k, t, a),
        nr::FSYNC | nr::FDATASYNC => io::fsync(k, t, a),
        nr::TRUNCATE => ovl::truncate(k, t, a),
        nr::FTRUNCATE => ovl::ftruncate(k, t, a),
        nr::UNLINK => ovl::unlinkat(k, t, [io::AT_FDCWD as u64, a[0], 0, 0, 0, 0]),
        nr::RMDIR => ovl::unlinkat(
            k,
            t,
            [io::AT_FDCWD as u64, a[0], flags::AT_REMOVEDIR, 0, 0, 0],
        ),
        nr::UNLINKAT => ovl::unlinkat(k, t, a),
        nr::MKDIR => ovl::mkdirat(k, t, [io::AT_FDCWD as u64, a[0], a[1], 0, 0, 0]),
        nr::MKDIRAT => ovl::mkdirat(k, t, a),
        nr::MKNOD => ovl::mknodat(k, t, [io::AT_FDCWD as u64, a[0], a[1], a[2], 0, 0]),
        nr::MKNODAT => ovl::mknodat(k, t, a),
        nr::RENAME => ovl::renameat(
            k,
            t,
            [io::AT_FDCWD as u64, a[0], io::AT_FDCWD as u64, a[1], 0, 0],
        ),
        nr::RENAMEAT => ovl::renameat(k, t, [a[0], a[1], a[2], a[3], 0, 0]),
        nr::RENAMEAT2 => ovl::renameat(k, t, a),
        nr::SYMLINK => ovl::symlinkat(k, t, [a[0], io::AT_FDCWD as u64, a[1], 0, 0, 0]),
        nr::SYMLINKAT => ovl::symlinkat(k, t, a),
        nr::CHMOD => ovl::fchmodat(k, t, [io::AT_FDCWD as u64, a[0], a[1], 0, 0, 0]),
        nr::FCHMOD => ovl::fchmod(k, t, a),
        nr::FCHMODAT => ovl::fchmodat(k, t, a),
        nr::UTIMENSAT => ovl::utimensat(k, t, a),
        nr::CHOWN | nr::LCHOWN => ovl::chown_path(
            k,
            t,
            io::AT_FDCWD as u64,
            a[0],
            (a[1], a[2]),
            n == nr::LCHOWN,
        ),
        nr::FCHOWNAT => ovl::chown_path(
            k,
            t,
            a[0],
            a[1],
            (a[2], a[3]),
            a[4] & flags::AT_SYMLINK_NOFOLLOW != 0,
        ),
        nr::FCHOWN => io::file(t, a[0]).map(|_| 0),
        nr::POLL => io::poll(k, t, a),
        nr::PPOLL => io::ppoll(k, t, a),
        nr::SELECT => io::select(k, t, a),
        nr::PSELECT6 => io::pselect6(k, t, a),
        nr::SENDFILE => fs::sendfile(k, t, a),
        nr::PRCTL => proc::prctl(k, t, a),
        nr::CREAT => fs::openat(k, t, [io::AT_FDCWD as u64, a[0], 0o1101, a[1], 0, 0]),
        nr::PREAD64 => fs::pread64(k, t, a),
        nr::LSEEK => fs::lseek(k, t, a),
        nr::GETDENTS64 => fs::getdents64(k, t, a),
        nr::FSTAT => fs::fstat(k, t, a),
        nr::STAT => fs::newfstatat(k, t, [io::AT_FDCWD as u64, a[0], a[1], 0, 0, 0]),
        nr::LSTAT => fs::newfstatat(k, t, [io::AT_FDCWD as u64, a[0], a[1], 0x100, 0, 0]),
        nr::NEWFSTATAT => fs::newfstatat(k, t, a),
        nr::STATX => fs::statx(k, t, a),
        nr::ACCESS => fs::faccessat(k, t, [io::AT_FDCWD as u64, a[0], a[1], 0, 0, 0]),
        nr::FACCESSAT => fs::faccessat(k, t, [a[0], a[1], a[2], 0, 0, 0]),
        nr::FACCESSAT2 => fs::faccessat(k, t, a),
        nr::GETCWD => fs::getcwd(k, t, a),
        nr::CHDIR => fs::chdir(k, t, a),
        nr::FCHDIR => fs::fchdir(k, t, a),
        nr::DUP => fs::dup(k, t, a),
        nr::DUP2 => fs::dup2(k, t, a),
        nr::DUP3 => fs::dup3(k, t, a),
        nr::FCNTL => fs::fcntl(k, t, a),
        nr::IOCTL => io::ioctl(k, t, a),
        nr::READLINK => fs::readlinkat(k, t, [io::AT_FDCWD as u64, a[0], a[1], a[2], 0, 0]),
        nr::READLINKAT => fs::readlinkat(k, t, a),
        nr::UMASK => {
            let old = t.umask;
            t.umask = a[0] as u32 & 0o777;
            Ok(old as u64)
        }
        nr::MMAP => mem::mmap(k, t, a),
        nr::MPROTECT => mem::mprotect(k, t, a),
        nr::MUNMAP => mem::munmap(k, t, a),
        nr::MREMAP => mem::mremap(k, t, a),
        nr::BRK => Ok(t.mm.brk(a[0])),
        nr::MADVISE => mem::madvise(k, t, a),
        nr::RT_SIGACTION => proc::rt_sigaction(k, t, a),
        nr::RT_SIGPROCMASK => proc::rt_sigprocmask(k, t, a),
        nr::RT_SIGRETURN => crate::signal::sigreturn(k, t),
        nr::RT_SIGSUSPEND => proc::rt_sigsuspend(k, t, a),
        nr::RT_SIGPENDING => {
            if a[1] != 8 {
                Err(crate::errno::EINVAL)
            } else {
                t.mm.copy_out(a[0], &t.signals.pending.to_le_bytes())
                    .map(|_| 0)
            }
        }
        nr::SIGALTSTACK => proc::sigaltstack(k, t, a),
        nr::SCHED_YIELD => Ok(0),
        nr::GETCPU => proc::getcpu(k, t, a),
        nr::GETPID => Ok(t.pid as u64),
        nr::GETTID => Ok(t.tid as u64),
        nr::GETPPID => Ok(t.ppid as u64),
        nr::GETUID => Ok(crate::kernel::SANDBOX_IDS[0] as u64),
        nr::GETEUID => Ok(crate::kernel::SANDBOX_IDS[1] as u64),
        nr::GETGID => Ok(crate::kernel::SANDBOX_IDS[2] as u64),
        nr::GETEGID => Ok(crate::kernel::SANDBOX_IDS[3] as u64),
        nr::EXIT | nr::EXIT_GROUP => proc::exit(k, t, a),
        nr::FORK | nr::VFORK => proc::fork(k, t, [0; 6]),
        nr::CLONE => proc::fork(k, t, a),
        nr::EXECVE => proc::execve(k, t, a),
        nr::WAIT4 => proc::wait4(k, t, a),
        nr::WAITID => proc::waitid(k, t, a),
        nr::KILL => proc::kill(k, t, [a[0], a[1], 0, 0, 0, 0]),
        nr::TGKILL => proc::kill(k, t, [a[1], a[2], 0, 0, 0, 0]),
        nr::TKILL => proc::kill(k, t, [a[0], a[1], 0, 0, 0, 0]),
        nr::GETPGRP => Ok(t.pgid as u64),
        nr::GETPGID | nr::GETSID => {
            proc::getpgid(k, t, [a[0], (n == nr::GETSID) as u64, 0, 0, 0, 0])
        }
        nr::SETPGID => proc::setpgid(k, t, a),
        nr::SETSID => proc::setsid(k, t, a),
        nr::UNAME => proc::uname(k, t, a),
        nr::ARCH_PRCTL => proc::arch_prctl(k, t, a),
        nr::FUTEX => time::futex(k, t, a),
        // The sandbox has no network and no sockets: libc's lookups (nscd, systemd-userdb)
        // then fall back to files, as on a host without those services.
        nr::SOCKET | nr::SOCKETPAIR => Err(crate::errno::EAFNOSUPPORT),
        // Extended attributes (ACLs, security labels) are not kept: a file has none.
        nr::GETXATTR | nr::LGETXATTR | nr::LISTXATTR | nr::LLISTXATTR => {
            fs::no_xattrs(k, t, a[0], n == nr::GETXATTR || n == nr::LISTXATTR, n)
        }
        nr::FGETXATTR => io::file(t, a[0]).and(Err(crate::errno::ENODATA)),
        nr::FLISTXATTR => io::file(t, a[0]).map(|_| 0),
        nr::SET_TID_ADDRESS => {
            t.clear_child_tid = a[0];
            Ok(t.tid as u64)
        }
        nr::SET_ROBUST_LIST => proc::set_robust_list(k, t, a),
        nr::PRLIMIT64 => proc::prlimit64(k, t, a),
        nr::GETRLIMIT => proc::prlimit64(k, t, [0, a[0], 0, a[1], 0, 0]),
        nr::SETRLIMIT => proc::prlimit64(k, t, [0, a[0], a[1], 0, 0, 0]),
        // Restartable sequences are optional: libc falls back when the kernel says ENOSYS.
        nr::RSEQ => Err(ENOSYS),
        nr::CLOCK_GETTIME => time::clock_gettime(k, t, a),
        nr::CLOCK_GETRES => time::clock_getres(k, t, a),
        nr::GETTIMEOFDAY => time::gettimeofday(k, t, a),
        nr::TIME => time::time(k, t, a),
        nr::GETRANDOM => time::getrandom(k, t, a),
        nr::SYSINFO => proc::sysinfo(k, t, a),
        nr::NANOSLEEP => time::clock_nanosleep(k, t, [1, 0, a[0], a[1], 0, 0]),
        nr::PAUSE => time::pause(k, t, a),
        nr::ALARM => time::alarm(k, t, a),
        nr::GETITIMER => time::getitimer(k, t, a),
        nr::SETITIMER => time::setitimer(k, t, a),
        nr::CLOCK_NANOSLEEP => time::clock_nanosleep(k, t, a),
        _ => {
            match k.unknown_logged.first_time(n) {
                LogVerdict::Log => k.log(format_args!(
                    "unsupported syscall {n} (args {:#x}, {:#x}, {:#x}): ENOSYS",
                    a[0], a[1], a[2]
                )),
                LogVerdict::Saturated => k.log(format_args!(
                    "unsupported syscall {n}: ENOSYS (further unsupported numbers are not logged)"
                )),
                LogVerdict::Quiet => {}
            }
            Err(ENOSYS)
        }
    };
    if result == Err(procfs::NEED_VIEW) {
        // Runs again once the scheduler has rendered the other processes (rax untouched).
        t.request = Some(crate::sched::Request::ProcView);
        return;
    }
    if k.proc_view.as_ref().is_some_and(|v| v.for_pid == t.pid) {
        k.proc_view = None;
    }
    t.regs.rax = crate::errno::to_rax(result);
    if k.config.strace {
        let pending = t.request.is_some();
        strace_line(k, t.tid, n, &a, result, pending);
    }
}

/// Drops a descriptor reference (closing the host file with the last one).
pub(crate) fn release_fd(k: &Kernel, of: alloc::rc::Rc<crate::file::OpenFile>) {
    fs::release(k, of)
}

fn strace_line(k: &Kernel, tid: u32, n: u64, a: &[u64; 6], result: SysResult, pending: bool) {
    let (name, nargs) = name_of(n);
    let mut s = String::new();
    let _ = write!(s, "[{tid}] ");
    match name {
        Some(name) => s.push_str(name),
        None => {
            let _ = write!(s, "syscall_{n}");
        }
    }
    s.push('(');
    for (i, v) in a.iter().take(nargs).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        // Small values read best in decimal (fds, lengths, flags); addresses in hex.
        if (*v as i64) > -4096 && (*v as i64) < 0x10000 {
            let _ = write!(s, "{}", *v as i64);
        } else {
            let _ = write!(s, "{v:#x}");
        }
    }
    s.push(')');
    if pending {
        // Completed by the scheduler (fork, exec, wait) or retried later (a blocking call).
        s.push_str(" = ?");
        k.host.log(&s);
        return;
    }
    match result {
        Ok(v) if v < 0x10000 => {
            let _ = write!(s, " = {v}");
        }
        Ok(v) => {
            let _ = write!(s, " = {v:#x}");
        }
        Err(e) => {
            let (ename, text) = describe(e);
            let _ = write!(s, " = -1 {ename} ({text})");
        }
    }
    k.host.log(&s);
}

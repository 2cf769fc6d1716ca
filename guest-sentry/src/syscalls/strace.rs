//! `--strace`: one line per syscall, decoded the way strace(1) and runsc print them:
//! `[3] openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 4`.
//!
//! Each syscall's argument kinds come from its entry in the table ([`super::table`]). Strings
//! and buffers are read from the app's memory (a bad pointer prints as the number), shown up
//! to [`MAX_STR`] bytes; buffers the kernel fills are shown after the call, as many bytes as it
//! returned.

// Decodes untrusted input: no silent truncating or sign-changing casts.
#![deny(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use alloc::string::String;
use alloc::vec;
use core::fmt::Write;

use linux_raw_sys::general as g;

use zerocopy::{FromBytes, IntoBytes};

use crate::errno::{describe, SysResult};
use crate::kernel::Task;
use crate::linux;
use crate::platform::Platform;

/// How much of a string or buffer is shown (strace's default `-s 32`).
pub const MAX_STR: usize = 32;
/// How much of a path is read (`PATH_MAX`).
const MAX_PATH: usize = 4096;
/// How many `argv` strings of an `execve` are shown.
const MAX_ARGV: usize = 32;

/// The low 32 bits of an argument register: how Linux reads an `unsigned int` argument.
#[allow(clippy::cast_possible_truncation)]
pub fn low32(v: u64) -> u32 {
    v as u32
}

/// An `int` argument (the register's low 32 bits, signed).
pub fn int(v: u64) -> i32 {
    low32(v).cast_signed()
}

/// How a syscall argument is shown.
#[derive(Clone, Copy)]
pub enum Arg {
    /// Signed decimal.
    Int,
    /// Unsigned decimal (lengths, counts).
    Uint,
    /// An address: hex, `NULL` for 0.
    Ptr,
    /// Hex.
    Hex,
    /// Octal (file modes, umask).
    Mode,
    /// The mode of an `open`: shown only when the flags in argument `n` create a file.
    OpenMode(u8),
    /// A file descriptor (decimal, as a 32-bit int).
    Fd,
    /// The directory of an `*at` call: `AT_FDCWD` or a descriptor.
    DirFd,
    /// A NUL-terminated string (paths).
    Str,
    /// A buffer the app passes in, its length in argument `n`.
    InBuf(u8),
    /// A buffer the kernel fills, its size in argument `n`; shown after a successful call,
    /// as many bytes as the call returned.
    OutBuf(u8),
    /// An `iovec` array the app passes in, its count in argument `n`.
    InIov(u8),
    /// Flags: the names of the set bits joined with `|`, what is left in hex.
    Flags(&'static [(u64, &'static str)]),
    /// One of a set of values by name, else decimal.
    Enum(&'static [(u64, &'static str)]),
    /// `open` flags: the access mode, then the other bits by name.
    OpenFlags,
    /// `mmap` flags: the mapping type, then the other bits by name.
    MmapFlags,
    /// `clone` flags: the flag bits by name, the exit signal in the low byte.
    CloneFlags,
    /// `futex` operation: `FUTEX_WAIT_PRIVATE`, ...
    FutexOp,
    /// A signal number.
    Signal,
    /// A pointer to a signal set (`[INT TERM]`).
    SigSet,
    /// A pointer to a kernel `sigaction`.
    SigAction,
    /// A pointer to a `timespec` the app passes in.
    Timespec,
    /// A pointer to a NULL-terminated array of strings (`execve`'s `argv`).
    Argv,
    /// A pointer to `envp`: the address and the number of variables.
    Envp,
    /// A pointer to the two descriptors `pipe` fills.
    PipeFds,
    /// A pointer to a `stat` the kernel fills.
    Stat,
    /// A socket address the app passes in, its length in argument `n`.
    SockAddr(u8),
    /// A `msghdr` the app passes in (`sendmsg`).
    MsgHdr,
}

/// How a syscall's successful result is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// Decimal (counts, descriptors, ids).
    Dec,
    /// Hex (addresses).
    Hex,
    /// Octal (`umask`).
    Oct,
    /// Does not return (`exit`): `= ?`.
    Never,
}

macro_rules! names {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        &[$($(#[$m])* (g::$name as u64, stringify!($name))),*]
    };
}
macro_rules! names_in {
    ($module:ident: $($name:ident),* $(,)?) => {
        &[$((linux_raw_sys::$module::$name as u64, stringify!($name))),*]
    };
}

pub const OPEN_FLAGS: &[(u64, &str)] = names![
    O_CREAT,
    O_EXCL,
    O_NOCTTY,
    O_TRUNC,
    O_APPEND,
    O_NONBLOCK,
    O_DSYNC,
    FASYNC,
    O_DIRECT,
    O_LARGEFILE,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_NOATIME,
    O_CLOEXEC,
    __O_SYNC,
    O_PATH,
    __O_TMPFILE,
];
pub const FD_FLAGS: &[(u64, &str)] = names![O_CLOEXEC, O_NONBLOCK, O_DIRECT];
pub const AT_FLAGS: &[(u64, &str)] = names![
    AT_SYMLINK_NOFOLLOW,
    AT_SYMLINK_FOLLOW,
    AT_NO_AUTOMOUNT,
    AT_EMPTY_PATH,
    AT_STATX_FORCE_SYNC,
    AT_STATX_DONT_SYNC,
];
pub const ACCESS_AT_FLAGS: &[(u64, &str)] = names![AT_EACCESS, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH];
pub const UNLINK_FLAGS: &[(u64, &str)] = names![AT_REMOVEDIR];
pub const CLOSE_RANGE_FLAGS: &[(u64, &str)] =
    &[(2, "CLOSE_RANGE_UNSHARE"), (4, "CLOSE_RANGE_CLOEXEC")];
pub const LINKAT_FLAGS: &[(u64, &str)] = names![AT_SYMLINK_FOLLOW, AT_EMPTY_PATH];
pub const MSYNC_FLAGS: &[(u64, &str)] = names![MS_ASYNC, MS_INVALIDATE, MS_SYNC];
pub const MFD_FLAGS: &[(u64, &str)] = names![MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB];
pub const ACCESS_MODE: &[(u64, &str)] = names![R_OK, W_OK, X_OK];
pub const PROT: &[(u64, &str)] = names![
    PROT_READ,
    PROT_WRITE,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP
];
const MAP_TYPES: &[(u64, &str)] = names![MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE];
const MAP_FLAGS: &[(u64, &str)] = names![
    MAP_FIXED,
    MAP_ANONYMOUS,
    MAP_32BIT,
    MAP_GROWSDOWN,
    MAP_DENYWRITE,
    MAP_EXECUTABLE,
    MAP_LOCKED,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_NONBLOCK,
    MAP_STACK,
    MAP_HUGETLB,
    MAP_SYNC,
    MAP_FIXED_NOREPLACE,
];
pub const MREMAP_FLAGS: &[(u64, &str)] = names![MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP];
pub const MADVICE: &[(u64, &str)] = names![
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_REMOVE,
    MADV_DONTFORK,
    MADV_DOFORK,
    MADV_MERGEABLE,
    MADV_UNMERGEABLE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_DONTDUMP,
    MADV_DODUMP,
    MADV_WIPEONFORK,
    MADV_KEEPONFORK,
];
pub const SIG_HOW: &[(u64, &str)] = names![SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK];
const SA_FLAGS: &[(u64, &str)] = names![
    SA_NOCLDSTOP,
    SA_NOCLDWAIT,
    SA_SIGINFO,
    SA_RESTORER,
    SA_ONSTACK,
    SA_RESTART,
    SA_NODEFER,
    SA_RESETHAND,
];
const CLONE_FLAGS: &[(u64, &str)] = names![
    CLONE_VM,
    CLONE_FS,
    CLONE_FILES,
    CLONE_SIGHAND,
    CLONE_PIDFD,
    CLONE_PTRACE,
    CLONE_VFORK,
    CLONE_PARENT,
    CLONE_THREAD,
    CLONE_NEWNS,
    CLONE_SYSVSEM,
    CLONE_SETTLS,
    CLONE_PARENT_SETTID,
    CLONE_CHILD_CLEARTID,
    CLONE_DETACHED,
    CLONE_UNTRACED,
    CLONE_CHILD_SETTID,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
    CLONE_IO,
];
pub const FCNTL_CMD: &[(u64, &str)] = names![
    F_DUPFD,
    F_GETFD,
    F_SETFD,
    F_GETFL,
    F_SETFL,
    F_GETLK,
    F_SETLK,
    F_SETLKW,
    F_SETOWN,
    F_GETOWN,
    F_SETSIG,
    F_GETSIG,
    F_OFD_GETLK,
    F_OFD_SETLK,
    F_OFD_SETLKW,
    F_SETLEASE,
    F_GETLEASE,
    F_NOTIFY,
    F_DUPFD_CLOEXEC,
    F_SETPIPE_SZ,
    F_GETPIPE_SZ,
    F_ADD_SEALS,
    F_GET_SEALS,
];
pub const IOCTL_REQ: &[(u64, &str)] = names_in![ioctl:
    TCGETS, TCSETS, TCSETSW, TCSETSF, TCSBRK, TCXONC, TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY,
    TIOCGPGRP, TIOCSPGRP, TIOCOUTQ, TIOCSTI, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCNOTTY,
    TIOCGSID, TIOCGPTN, TIOCSPTLCK, FIONBIO, FIONCLEX, FIOCLEX, FIOASYNC, TCGETS2, TCSETS2,
];
pub const WHENCE: &[(u64, &str)] = names![SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE];
pub const CLOCKS: &[(u64, &str)] = names![
    CLOCK_REALTIME,
    CLOCK_MONOTONIC,
    CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_THREAD_CPUTIME_ID,
    CLOCK_MONOTONIC_RAW,
    CLOCK_REALTIME_COARSE,
    CLOCK_MONOTONIC_COARSE,
    CLOCK_BOOTTIME,
    CLOCK_REALTIME_ALARM,
    CLOCK_BOOTTIME_ALARM,
    CLOCK_TAI,
];
pub const TIMER_FLAGS: &[(u64, &str)] = names![TIMER_ABSTIME];
pub const TFD_SETTIME_FLAGS: &[(u64, &str)] = names![TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET];
pub const EFD_FLAGS: &[(u64, &str)] = names![EFD_SEMAPHORE, EFD_CLOEXEC, EFD_NONBLOCK];
pub const EPOLL_CTL_OPS: &[(u64, &str)] = names![EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD];
pub const ITIMERS: &[(u64, &str)] = names![ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF];
/// `asm/prctl.h` (linux-raw-sys has only `ARCH_SET_FS` of these).
pub const ARCH_PRCTL: &[(u64, &str)] = &[
    (0x1001, "ARCH_SET_GS"),
    (g::ARCH_SET_FS as u64, "ARCH_SET_FS"),
    (0x1003, "ARCH_GET_FS"),
    (0x1004, "ARCH_GET_GS"),
    (0x1011, "ARCH_GET_CPUID"),
    (0x1012, "ARCH_SET_CPUID"),
];
pub const PRCTL: &[(u64, &str)] = names_in![prctl:
    PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_GET_KEEPCAPS,
    PR_SET_KEEPCAPS, PR_SET_NAME, PR_GET_NAME, PR_CAPBSET_READ, PR_CAPBSET_DROP,
    PR_GET_SECCOMP, PR_SET_SECCOMP, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER,
    PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_GET_TID_ADDRESS, PR_SET_THP_DISABLE,
    PR_GET_THP_DISABLE, PR_CAP_AMBIENT, PR_SET_VMA, PR_SET_MM,
];
pub const RLIMITS: &[(u64, &str)] = names![
    RLIMIT_CPU,
    RLIMIT_FSIZE,
    RLIMIT_DATA,
    RLIMIT_STACK,
    RLIMIT_CORE,
    RLIMIT_RSS,
    RLIMIT_NPROC,
    RLIMIT_NOFILE,
    RLIMIT_MEMLOCK,
    RLIMIT_AS,
    RLIMIT_LOCKS,
    RLIMIT_SIGPENDING,
    RLIMIT_MSGQUEUE,
    RLIMIT_NICE,
    RLIMIT_RTPRIO,
    RLIMIT_RTTIME,
];
pub const WAIT_OPTIONS: &[(u64, &str)] = names![
    WNOHANG,
    WUNTRACED,
    WEXITED,
    WCONTINUED,
    WNOWAIT,
    __WNOTHREAD,
    __WALL,
    __WCLONE,
];
pub const ID_TYPES: &[(u64, &str)] = names![P_ALL, P_PID, P_PGID, P_PIDFD];
pub const GRND_FLAGS: &[(u64, &str)] = names![GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE];
pub const RENAME_FLAGS: &[(u64, &str)] = names![RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT];
pub const ADDRESS_FAMILIES: &[(u64, &str)] = names_in![net:
    AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK,
];
pub const MSG_FLAGS: &[(u64, &str)] = names_in![net:
    MSG_OOB, MSG_PEEK, MSG_DONTROUTE, MSG_CTRUNC, MSG_TRUNC, MSG_DONTWAIT, MSG_EOR,
    MSG_WAITALL, MSG_NOSIGNAL, MSG_MORE, MSG_CMSG_CLOEXEC,
];
pub const SHUT_HOW: &[(u64, &str)] = &[(0, "SHUT_RD"), (1, "SHUT_WR"), (2, "SHUT_RDWR")];
pub const SOCK_FLAGS: &[(u64, &str)] = names![O_CLOEXEC, O_NONBLOCK];
pub const SOCKOPTS: &[(u64, &str)] = names_in![net:
    SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_PASSCRED,
    SO_PEERCRED, SO_RCVTIMEO_OLD, SO_SNDTIMEO_OLD, SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN,
];
const FUTEX_OPS: &[(u64, &str)] = names![
    FUTEX_WAIT,
    FUTEX_WAKE,
    FUTEX_FD,
    FUTEX_REQUEUE,
    FUTEX_CMP_REQUEUE,
    FUTEX_WAKE_OP,
    FUTEX_LOCK_PI,
    FUTEX_UNLOCK_PI,
    FUTEX_TRYLOCK_PI,
    FUTEX_WAIT_BITSET,
    FUTEX_WAKE_BITSET,
    FUTEX_WAIT_REQUEUE_PI,
    FUTEX_CMP_REQUEUE_PI,
    FUTEX_LOCK_PI2,
];

/// Formats a syscall line: `[tid] name(args) = result`. `result` is `None` for a call that
/// the scheduler completes later (fork, exec, wait) or that blocks and is retried.
pub fn line<P: Platform>(
    out: &mut String,
    t: &mut Task<P>,
    name: Option<&str>,
    args: &[Arg],
    ret: Ret,
    (n, a): (u64, &[u64; 6]),
    result: Option<SysResult>,
) {
    let _ = write!(out, "[{}] ", t.tid);
    match name {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "syscall_{n}");
        }
    }
    out.push('(');
    if name.is_none() {
        // An unknown syscall: its six registers.
        for (i, v) in a.iter().enumerate() {
            let _ = write!(out, "{}{v:#x}", if i > 0 { ", " } else { "" });
        }
    }
    for (i, kind) in args.iter().enumerate() {
        if let Arg::OpenMode(flags) = kind {
            let creates = (g::O_CREAT | g::__O_TMPFILE) as u64;
            if a[*flags as usize] & creates == 0 {
                continue;
            }
        }
        if i > 0 {
            out.push_str(", ");
        }
        arg(out, t, *kind, a, a[i], result);
    }
    out.push(')');
    match result {
        None => out.push_str(" = ?"),
        Some(Ok(_)) if ret == Ret::Never => out.push_str(" = ?"),
        Some(Ok(v)) => {
            let _ = match ret {
                Ret::Hex => write!(out, " = {v:#x}"),
                Ret::Oct => write!(out, " = 0{v:o}"),
                Ret::Dec | Ret::Never => write!(out, " = {}", v as i64),
            };
        }
        Some(Err(e)) => {
            let (ename, text) = describe(e);
            let _ = write!(out, " = -1 {ename} ({text})");
        }
    }
}

fn arg<P: Platform>(
    out: &mut String,
    t: &mut Task<P>,
    kind: Arg,
    a: &[u64; 6],
    v: u64,
    result: Option<SysResult>,
) {
    let _ = match kind {
        Arg::Int => write!(out, "{}", v as i64),
        Arg::Uint => write!(out, "{v}"),
        Arg::Ptr => ptr(out, v),
        Arg::Hex if v == 0 => write!(out, "0"),
        Arg::Hex => write!(out, "{v:#x}"),
        Arg::Mode => mode(out, v),
        Arg::Fd => write!(out, "{}", int(v)),
        Arg::DirFd if int(v) == g::AT_FDCWD => write!(out, "AT_FDCWD"),
        Arg::DirFd => write!(out, "{}", int(v)),
        Arg::Str => string(out, t, v),
        Arg::OpenMode(_) => mode(out, v),
        Arg::InBuf(len) => buffer(out, t, v, a[len as usize]),
        Arg::OutBuf(len) => match result {
            Some(Ok(n)) => buffer(out, t, v, n.min(a[len as usize])),
            _ => ptr(out, v),
        },
        Arg::InIov(count) => iovec(out, t, v, a[count as usize]),
        Arg::Flags(table) => flags(out, v, table, "0"),
        Arg::Enum(table) => value(out, v, table),
        Arg::OpenFlags => {
            let mode = match v & g::O_ACCMODE as u64 {
                0 => "O_RDONLY",
                1 => "O_WRONLY",
                2 => "O_RDWR",
                _ => "O_ACCMODE",
            };
            out.push_str(mode);
            let rest = v & !(g::O_ACCMODE as u64);
            // O_TMPFILE includes O_DIRECTORY; O_SYNC includes O_DSYNC: shown as strace does.
            if rest != 0 {
                out.push('|');
                flags(out, rest, OPEN_FLAGS, "")
            } else {
                Ok(())
            }
        }
        Arg::MmapFlags => {
            let ty = v & g::MAP_TYPE as u64;
            let _ = value(out, ty, MAP_TYPES);
            let rest = v & !(g::MAP_TYPE as u64);
            if rest != 0 {
                out.push('|');
                flags(out, rest, MAP_FLAGS, "")
            } else {
                Ok(())
            }
        }
        Arg::CloneFlags => {
            let sig = (v & 0xff) as i32;
            let rest = v & !0xff;
            if rest != 0 {
                let _ = flags(out, rest, CLONE_FLAGS, "");
                if sig != 0 {
                    out.push('|');
                }
            }
            if sig != 0 || rest == 0 {
                crate::signo::write_name(out, sig)
            } else {
                Ok(())
            }
        }
        Arg::FutexOp => {
            let cmd = v & u64::from(g::FUTEX_CMD_MASK.cast_unsigned());
            let _ = value(out, cmd, FUTEX_OPS);
            if v & g::FUTEX_PRIVATE_FLAG as u64 != 0 {
                out.push_str("_PRIVATE");
            }
            if v & g::FUTEX_CLOCK_REALTIME as u64 != 0 {
                out.push_str("|FUTEX_CLOCK_REALTIME");
            }
            Ok(())
        }
        Arg::Signal => crate::signo::write_name(out, int(v)),
        Arg::SigSet => match read_u64(t, v) {
            Some(set) => sigset(out, set),
            None => ptr(out, v),
        },
        Arg::SigAction => sigaction(out, t, v),
        Arg::Timespec => match read::<P, linux::Timespec>(t, v) {
            Some(ts) => write!(out, "{{tv_sec={}, tv_nsec={}}}", ts.tv_sec, ts.tv_nsec),
            None => ptr(out, v),
        },
        Arg::Argv => argv(out, t, v),
        Arg::Envp => {
            let mut count = 0;
            while count < 100_000 && read_u64(t, v + count * 8).is_some_and(|p| p != 0) {
                count += 1;
            }
            write!(out, "{v:#x} /* {count} vars */")
        }
        Arg::PipeFds => match read::<P, [i32; 2]>(t, v).filter(|_| succeeded(result)) {
            Some([r, w]) => write!(out, "[{r}, {w}]"),
            None => ptr(out, v),
        },
        Arg::Stat => match read::<P, linux::Stat>(t, v).filter(|_| succeeded(result)) {
            Some(st) => {
                out.push_str("{st_mode=");
                file_mode(out, st.st_mode);
                write!(out, ", st_size={}, ...}}", st.st_size)
            }
            None => ptr(out, v),
        },
        Arg::SockAddr(len) => sockaddr(out, t, v, a[len as usize]),
        Arg::MsgHdr => match read::<P, [u64; 7]>(t, v) {
            Some(h) => {
                out.push_str("{msg_name=");
                let _ = sockaddr(out, t, h[0], h[1] & 0xffff_ffff);
                out.push_str(", msg_iov=");
                let _ = iovec(out, t, h[2], h[3]);
                write!(
                    out,
                    ", msg_iovlen={}, msg_controllen={}, msg_flags={:#x}}}",
                    h[3],
                    h[5],
                    low32(h[6])
                )
            }
            None => ptr(out, v),
        },
    };
}

/// A `sockaddr` at `addr` of `len` bytes: `{sa_family=AF_UNIX, sun_path="..."}` (an abstract
/// name starts with `@`, as strace shows it).
fn sockaddr<P: Platform>(
    out: &mut String,
    t: &mut Task<P>,
    addr: u64,
    len: u64,
) -> core::fmt::Result {
    let Ok(n) = usize::try_from(len) else {
        return ptr(out, addr);
    };
    if addr == 0 || !(2..=128).contains(&n) {
        return ptr(out, addr);
    }
    let mut b = vec![0u8; n];
    if t.mm.lock().copy_in(addr, &mut b).is_err() {
        return ptr(out, addr);
    }
    let family = u16::from_ne_bytes([b[0], b[1]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    if u32::from(family) == linux_raw_sys::net::AF_INET && n >= 8 {
        let ip = crate::net::inet::ip_text(&b[4..8]);
        return write!(
            out,
            "{{sa_family=AF_INET, sin_port=htons({}), sin_addr=inet_addr(\"{ip}\")}}",
            port(&b)
        );
    }
    if u32::from(family) == linux_raw_sys::net::AF_INET6 && n >= 24 {
        let ip = crate::net::inet::ip_text(&b[8..24]);
        return write!(
            out,
            "{{sa_family=AF_INET6, sin6_port=htons({}), inet_pton(AF_INET6, \"{ip}\", &sin6_addr)}}",
            port(&b)
        );
    }
    if u32::from(family) != linux_raw_sys::net::AF_UNIX {
        out.push_str("{sa_family=");
        let _ = value(out, u64::from(family), ADDRESS_FAMILIES);
        return write!(out, ", ...}}");
    }
    out.push_str("{sa_family=AF_UNIX");
    let path = &b[2..];
    if !path.is_empty() {
        out.push_str(", sun_path=");
        if path[0] == 0 {
            out.push('@');
            quote(out, &path[1..], false);
        } else {
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            quote(out, &path[..end], false);
        }
    }
    out.push('}');
    Ok(())
}

fn mode(out: &mut String, v: u64) -> core::fmt::Result {
    write!(out, "0{:o}", low32(v))
}

fn ptr(out: &mut String, v: u64) -> core::fmt::Result {
    if v == 0 {
        out.push_str("NULL");
        Ok(())
    } else {
        write!(out, "{v:#x}")
    }
}

/// A `T` the app has at `addr`; `None` for NULL or a bad pointer.
fn read<P: Platform, T: FromBytes + IntoBytes>(t: &mut Task<P>, addr: u64) -> Option<T> {
    if addr == 0 {
        return None;
    }
    t.mm.lock().read_obj(addr).ok()
}

fn read_u64<P: Platform>(t: &mut Task<P>, addr: u64) -> Option<u64> {
    read(t, addr)
}

fn succeeded(result: Option<SysResult>) -> bool {
    result.is_some_and(|r| r.is_ok())
}

/// Names the set bits of `v` from `table`, joined with `|`; bits without a name in hex.
fn flags(out: &mut String, v: u64, table: &[(u64, &str)], zero: &str) -> core::fmt::Result {
    if v == 0 {
        out.push_str(zero);
        return Ok(());
    }
    let mut rest = v;
    let mut first = true;
    for &(bit, name) in table {
        if bit != 0 && rest & bit == bit {
            if !first {
                out.push('|');
            }
            out.push_str(name);
            rest &= !bit;
            first = false;
        }
    }
    if rest != 0 {
        if !first {
            out.push('|');
        }
        write!(out, "{rest:#x}")?;
    }
    Ok(())
}

fn value(out: &mut String, v: u64, table: &[(u64, &str)]) -> core::fmt::Result {
    match table.iter().find(|e| e.0 == v) {
        Some(&(_, name)) => {
            out.push_str(name);
            Ok(())
        }
        None if v > 0xffff => write!(out, "{v:#x}"),
        None => write!(out, "{}", v as i64),
    }
}

/// Appends `bytes` as a C string literal the way strace escapes it.
pub fn quote(out: &mut String, bytes: &[u8], more: bool) {
    out.push('"');
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                // Octal, the shortest form unless the next byte is an octal digit.
                let next_digit = bytes.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n));
                let _ = if next_digit {
                    write!(out, "\\{b:03o}")
                } else {
                    write!(out, "\\{b:o}")
                };
            }
        }
    }
    out.push('"');
    if more {
        out.push_str("...");
    }
}

fn string<P: Platform>(out: &mut String, t: &mut Task<P>, addr: u64) -> core::fmt::Result {
    if addr == 0 {
        return ptr(out, addr);
    }
    match t.mm.lock().read_cstr(addr, MAX_PATH) {
        Ok(s) => {
            quote(out, &s, false);
            Ok(())
        }
        Err(_) => ptr(out, addr),
    }
}

fn buffer<P: Platform>(
    out: &mut String,
    t: &mut Task<P>,
    addr: u64,
    len: u64,
) -> core::fmt::Result {
    let shown = usize::try_from(len).map_or(MAX_STR, |l| l.min(MAX_STR));
    let mut b = vec![0u8; shown];
    if addr == 0 || t.mm.lock().copy_in(addr, &mut b).is_err() {
        return ptr(out, addr);
    }
    quote(out, &b, len > shown as u64);
    Ok(())
}

fn iovec<P: Platform>(
    out: &mut String,
    t: &mut Task<P>,
    addr: u64,
    count: u64,
) -> core::fmt::Result {
    out.push('[');
    for i in 0..count.min(4) {
        let Some(linux::IoVec {
            iov_base: base,
            iov_len: len,
        }) = read(t, addr.wrapping_add(i * 16))
        else {
            out.push_str("...]");
            return Ok(());
        };
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{iov_base=");
        buffer(out, t, base, len)?;
        write!(out, ", iov_len={len}}}")?;
    }
    if count > 4 {
        out.push_str(", ...");
    }
    out.push(']');
    Ok(())
}

fn argv<P: Platform>(out: &mut String, t: &mut Task<P>, addr: u64) -> core::fmt::Result {
    if addr == 0 {
        return ptr(out, addr);
    }
    out.push('[');
    for i in 0..=MAX_ARGV as u64 {
        let Some(p) = read_u64(t, addr.wrapping_add(i * 8)) else {
            out.push_str("...");
            break;
        };
        if p == 0 {
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        if i == MAX_ARGV as u64 {
            out.push_str("...");
            break;
        }
        match t.mm.lock().read_cstr(p, MAX_PATH) {
            Ok(s) => {
                let more = s.len() > MAX_STR;
                quote(out, &s[..s.len().min(MAX_STR)], more);
            }
            Err(_) => {
                ptr(out, p)?;
            }
        }
    }
    out.push(']');
    Ok(())
}

/// `[INT TERM]`, or `~[KILL STOP]` when most signals are in the set.
fn sigset(out: &mut String, set: u64) -> core::fmt::Result {
    let bits = if set.count_ones() > 32 {
        out.push('~');
        !set
    } else {
        set
    };
    out.push('[');
    let mut first = true;
    for sig in 1..=64 {
        if bits & (1u64 << (sig - 1)) != 0 {
            if !first {
                out.push(' ');
            }
            first = false;
            let mut name = String::new();
            let _ = crate::signo::write_name(&mut name, sig);
            out.push_str(name.strip_prefix("SIG").unwrap_or(&name));
        }
    }
    out.push(']');
    Ok(())
}

fn sigaction<P: Platform>(out: &mut String, t: &mut Task<P>, addr: u64) -> core::fmt::Result {
    let Some(linux::SigAction {
        handler,
        flags: fl,
        restorer,
        mask,
    }) = read(t, addr)
    else {
        return ptr(out, addr);
    };
    out.push_str("{sa_handler=");
    match handler {
        0 => out.push_str("SIG_DFL"),
        1 => out.push_str("SIG_IGN"),
        h => write!(out, "{h:#x}")?,
    }
    out.push_str(", sa_mask=");
    sigset(out, mask)?;
    out.push_str(", sa_flags=");
    flags(out, fl, SA_FLAGS, "0")?;
    if fl & g::SA_RESTORER as u64 != 0 {
        write!(out, ", sa_restorer={restorer:#x}")?;
    }
    out.push('}');
    Ok(())
}

fn file_mode(out: &mut String, mode: u32) {
    let ty = match mode & g::S_IFMT {
        g::S_IFREG => "S_IFREG",
        g::S_IFDIR => "S_IFDIR",
        g::S_IFLNK => "S_IFLNK",
        g::S_IFCHR => "S_IFCHR",
        g::S_IFBLK => "S_IFBLK",
        g::S_IFIFO => "S_IFIFO",
        g::S_IFSOCK => "S_IFSOCK",
        _ => "0",
    };
    let _ = write!(out, "{ty}|0{:o}", mode & 0o7777);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names() {
        let mut s = String::new();
        flags(
            &mut s,
            g::O_CLOEXEC as u64 | g::O_CREAT as u64 | 0x8000_0000,
            OPEN_FLAGS,
            "0",
        )
        .unwrap();
        assert_eq!(s, "O_CREAT|O_CLOEXEC|0x80000000");
    }

    #[test]
    fn sigsets() {
        let mut s = String::new();
        sigset(&mut s, (1 << 1) | (1 << 14)).unwrap();
        assert_eq!(s, "[INT TERM]");
        let mut s = String::new();
        sigset(&mut s, !((1 << 8) | (1 << 18))).unwrap();
        assert_eq!(s, "~[KILL STOP]");
        let mut s = String::new();
        sigset(&mut s, 1 << 32).unwrap();
        assert_eq!(s, "[RTMIN+1]");
    }

    #[test]
    fn quoting() {
        let mut s = String::new();
        quote(&mut s, b"a\"b\\\n\x00\x01x\x1b1", true);
        assert_eq!(s, "\"a\\\"b\\\\\\n\\0\\1x\\0331\"...");
    }
}

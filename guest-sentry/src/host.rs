//! The host interface: everything the Sentry may ask of the host. On kvm it is served by
//! hypercalls to the VMM; on the fallbacks by direct calls into `vmm`'s host-service module.
//! Implementations must treat every request as untrusted (the VMM checks every field).
//!
//! The host tree is changed only in write-through mode (`vmm run --rw`): by [`Host::modify`]
//! and through handles from [`Host::open_write`] (both refused with EROFS otherwise). By
//! default what the sandbox writes stays in the Sentry's in-memory overlay.

use crate::abi::HostStat;
use crate::errno::Errno;

/// A range of Sentry-visible memory (an address in the Sentry's own address space) handed to
/// the host for I/O. It is a raw range, not a Rust reference: app pages may change under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub addr: u64,
    pub len: u64,
}

/// Host clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    Realtime,
    Monotonic,
}

/// How the sandbox ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code (0..=255) when `signal` is 0.
    pub code: i32,
    /// The fatal signal, or 0.
    pub signal: i32,
}

pub trait Host {
    /// Writes the gathered `bufs` to host stdio `fd` (0..=2). Returns bytes written.
    fn write(&self, fd: u32, bufs: &[Buf]) -> Result<u64, Errno>;
    /// Reads from host stdio `fd` into the scattered `bufs`. Returns bytes read.
    fn read(&self, fd: u32, bufs: &[Buf]) -> Result<u64, Errno>;
    /// Opens a file under the sandbox root for reading (`flags`: any of `abi::OPEN_*`; opens for
    /// writing are [`Host::open_write`]). Returns a host handle.
    fn open(&self, path: &[u8], flags: u64) -> Result<u32, Errno>;
    /// The program the sandbox was started with, opened by the host.
    fn exe_handle(&self) -> u32;
    /// Reads from an open handle at `offset` into Sentry memory.
    fn pread(&self, handle: u32, buf: &mut [u8], offset: u64) -> Result<u64, Errno>;
    /// Reads from an open handle at `offset` into the scattered Sentry-visible `bufs`.
    fn preadv(&self, handle: u32, bufs: &[Buf], offset: u64) -> Result<u64, Errno>;
    /// `getdents64` on a directory handle (Linux `struct linux_dirent64` records).
    fn getdents(&self, handle: u32, buf: &mut [u8]) -> Result<u64, Errno>;
    /// `lseek` on a handle.
    fn lseek(&self, handle: u32, offset: i64, whence: u32) -> Result<u64, Errno>;
    /// The target of the symlink at `path`, into `out`; returns its length.
    fn readlink(&self, path: &[u8], out: &mut [u8]) -> Result<u64, Errno>;
    fn close(&self, handle: u32);
    /// `fstat` of a handle (`stdio = false`) or a host stdio fd (`stdio = true`).
    fn fstat(&self, fd: u32, stdio: bool) -> Result<HostStat, Errno>;
    /// `stat` of a path under the sandbox root (one host operation).
    fn stat(&self, path: &[u8], nofollow: bool) -> Result<HostStat, Errno>;
    /// `fstatfs` of a handle: the host filesystem it is on.
    fn statfs(&self, handle: u32) -> Result<crate::abi::HostStatfs, Errno>;
    /// `TCGETS` or `TCSETS`/`TCSETSW`/`TCSETSF` (36-byte [`crate::linux::Termios`]) or
    /// `TIOCGWINSZ` (8-byte [`crate::linux::Winsize`]) on a host stdio fd: `out` is filled by
    /// the queries and read by the sets.
    fn tty_ioctl(&self, fd: u32, request: u64, out: &mut [u8]) -> Result<(), Errno>;
    /// A diagnostic line (no trailing newline) for the user's terminal.
    fn log(&self, line: &str);
    /// Nanoseconds on `clock`.
    fn now(&self, clock: Clock) -> u64;
    /// Sleeps the whole Sentry for up to `ns` nanoseconds (at most 1 s; callers loop); returns
    /// early when a host signal arrives.
    fn sleep(&self, ns: u64);
    /// Takes the host signals that arrived for the sandbox since the last call (bit n =
    /// signal n): SIGINT/SIGQUIT from the terminal, SIGTERM/SIGHUP sent to `vmm`.
    fn take_signals(&self) -> u64;
    /// Write-through mode (`vmm run --rw`; EROFS otherwise): opens `path` with `flags` (Linux
    /// values: [`crate::abi::OPEN_WRITE_FLAGS`] and the `OPEN_*` ones), creating it with
    /// `mode`.
    fn open_write(&self, path: &[u8], flags: u64, mode: u32) -> Result<u32, Errno>;
    /// Writes the gathered `bufs` to a handle at `offset` (an `O_APPEND` handle appends).
    fn pwritev(&self, handle: u32, bufs: &[Buf], offset: u64) -> Result<u64, Errno>;
    /// `ftruncate` ([`crate::abi::HANDLE_FTRUNCATE`], `arg` = length) or `fsync`
    /// ([`crate::abi::HANDLE_FSYNC`]) of a handle.
    fn handle_op(&self, handle: u32, op: u64, arg: u64) -> Result<(), Errno>;
    /// Write-through mode: a change to the host tree.
    fn modify(&self, op: &HostOp) -> Result<(), Errno>;
}

/// A change to the host tree (write-through mode). Paths are absolute inside the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostOp<'a> {
    Mkdir {
        path: &'a [u8],
        mode: u32,
    },
    Unlink {
        path: &'a [u8],
        dir: bool,
    },
    Rename {
        from: &'a [u8],
        to: &'a [u8],
    },
    Symlink {
        target: &'a [u8],
        path: &'a [u8],
    },
    /// A hard link at `to` to the file at `from` (neither path's last component followed).
    Link {
        from: &'a [u8],
        to: &'a [u8],
    },
    Truncate {
        path: &'a [u8],
        len: u64,
    },
    Chmod {
        path: &'a [u8],
        mode: u32,
    },
    Chown {
        path: &'a [u8],
        uid: u32,
        gid: u32,
        nofollow: bool,
    },
    /// `times` = atime sec, nsec, mtime sec, nsec (`UTIME_NOW`/`UTIME_OMIT` as in Linux).
    Utimens {
        path: &'a [u8],
        times: [i64; 4],
        nofollow: bool,
    },
}

//! Linux x86-64 ABI structures the Sentry reads from and writes to app memory, as `#[repr(C)]`
//! types with Linux's layout (explicit padding fields where Linux has padding, since
//! [`IntoBytes`] allows none). They are read and written whole through
//! [`crate::mm::Mm::read_obj`] and [`crate::mm::Mm::write_obj`]; each size is checked against
//! Linux's at compile time.
//!
//! The kvm boot/hypercall ABI between the Sentry and the VMM is elsewhere ([`crate::abi`]).

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct timespec`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}
const _: () = assert!(size_of::<Timespec>() == 16);

impl Timespec {
    /// A time in nanoseconds (negative: before the epoch, with `tv_nsec` in `0..1e9`).
    pub fn from_ns(ns: i64) -> Self {
        Timespec {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000),
        }
    }

    /// A duration or clock reading in nanoseconds.
    pub fn from_ns_u64(ns: u64) -> Self {
        Timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        }
    }
}

/// `struct timeval`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}
const _: () = assert!(size_of::<Timeval>() == 16);

impl Timeval {
    /// A duration or clock reading in nanoseconds (truncated to microseconds).
    pub fn from_ns_u64(ns: u64) -> Self {
        Timeval {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_usec: ((ns % 1_000_000_000) / 1000) as i64,
        }
    }
}

/// `struct timezone` (`gettimeofday`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timezone {
    pub tz_minuteswest: i32,
    pub tz_dsttime: i32,
}
const _: () = assert!(size_of::<Timezone>() == 8);

/// `struct itimerval`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerval {
    pub it_interval: Timeval,
    pub it_value: Timeval,
}
const _: () = assert!(size_of::<Itimerval>() == 32);

/// `struct rusage`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    /// `ru_maxrss` … `ru_nivcsw`.
    pub counters: [i64; 14],
}
const _: () = assert!(size_of::<Rusage>() == 144);

/// `struct rlimit` / `struct rlimit64`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}
const _: () = assert!(size_of::<Rlimit>() == 16);

/// `struct k_sigaction` as the x86-64 `rt_sigaction` syscall sees it (also the Sentry's record
/// of a disposition).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
const _: () = assert!(size_of::<SigAction>() == 32);

/// `struct statfs` (x86-64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}
const _: () = assert!(size_of::<Statfs>() == 120);

/// `struct stat` (x86-64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub _pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: Timespec,
    pub st_mtime: Timespec,
    pub st_ctime: Timespec,
    pub _unused: [i64; 3],
}
const _: () = assert!(size_of::<Stat>() == 144);

/// `struct statx_timestamp`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub _reserved: i32,
}
const _: () = assert!(size_of::<StatxTimestamp>() == 16);

impl StatxTimestamp {
    /// A time in nanoseconds (negative: before the epoch).
    pub fn from_ns(ns: i64) -> Self {
        StatxTimestamp {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000) as u32,
            _reserved: 0,
        }
    }
}

/// `struct statx`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Statx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub _spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub stx_mnt_id: u64,
    pub stx_dio_mem_align: u32,
    pub stx_dio_offset_align: u32,
    pub _spare3: [u64; 12],
}
const _: () = assert!(size_of::<Statx>() == 256);

/// The fixed head of a `struct linux_dirent64` record (the NUL-terminated name follows, and
/// the record is padded to `d_reclen`, a multiple of 8). Packed: the head is 19 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Dirent64 {
    pub d_ino: u64,
    pub d_off: i64,
    pub d_reclen: u16,
    pub d_type: u8,
}
const _: () = assert!(size_of::<Dirent64>() == 19);

/// `struct iovec`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct IoVec {
    pub iov_base: u64,
    pub iov_len: u64,
}
const _: () = assert!(size_of::<IoVec>() == 16);

/// `struct pollfd` (`events`/`revents` as the unsigned bit sets they are).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PollFd {
    pub fd: i32,
    pub events: u16,
    pub revents: u16,
}
const _: () = assert!(size_of::<PollFd>() == 8);

/// `struct utsname` (each field 65 bytes, NUL-padded).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}
const _: () = assert!(size_of::<Utsname>() == 390);

/// `struct sysinfo` (x86-64).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub _pad1: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub _pad2: u32,
}
const _: () = assert!(size_of::<Sysinfo>() == 112);

/// `struct termios` as the `TCGETS`/`TCSETS` ioctls see it (the kernel's, not glibc's).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; 19],
}
const _: () = assert!(size_of::<Termios>() == 36);

/// `struct flock` (`fcntl` `F_GETLK`/`F_SETLK`/`F_OFD_*`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub _pad: u32,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub _pad2: u32,
}
const _: () = assert!(size_of::<Flock>() == 32);

/// `struct winsize` (`TIOCGWINSZ`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}
const _: () = assert!(size_of::<Winsize>() == 8);

/// `stack_t` (`sigaltstack`, `uc_stack`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StackT {
    pub ss_sp: u64,
    pub ss_flags: i32,
    pub _pad: i32,
    pub ss_size: u64,
}
const _: () = assert!(size_of::<StackT>() == 24);

/// `siginfo_t` (128 bytes): the common head and the `_sifields` union, which one of
/// [`SigFault`] or [`SigChld`] fills (`zerocopy::transmute!` into `fields`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Siginfo {
    pub si_signo: i32,
    pub si_errno: i32,
    pub si_code: i32,
    pub _pad: i32,
    pub fields: [u64; 14],
}
const _: () = assert!(size_of::<Siginfo>() == 128);

/// `siginfo_t`'s `_sigfault` (SIGSEGV, SIGBUS, SIGILL, SIGFPE): the fault address.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigFault {
    pub si_addr: u64,
    pub _rest: [u64; 13],
}
const _: () = assert!(size_of::<SigFault>() == 112);

/// `siginfo_t`'s `_kill` and `_sigchld` (which begins as `_kill` does): the sender or child,
/// and for SIGCHLD the child's exit code or signal and its CPU times.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigChld {
    pub si_pid: i32,
    pub si_uid: u32,
    pub si_status: i32,
    pub _pad: i32,
    pub si_utime: i64,
    pub si_stime: i64,
    pub _rest: [u64; 10],
}
const _: () = assert!(size_of::<SigChld>() == 112);

/// `siginfo_t`'s `_timer` (a POSIX timer's signal, `SI_TIMER`): the timer, its overrun
/// count and `sigev_value`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigTimer {
    pub si_timerid: i32,
    pub si_overrun: i32,
    pub si_value: u64,
    pub _rest: [u64; 12],
}
const _: () = assert!(size_of::<SigTimer>() == 112);

/// `struct sigevent` (`timer_create`): `sigev_value`, the signal, how to notify, and the
/// thread of `SIGEV_THREAD_ID` (the rest of the union is the C library's).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sigevent {
    pub sigev_value: u64,
    pub sigev_signo: i32,
    pub sigev_notify: i32,
    pub sigev_notify_thread_id: i32,
    pub _pad: [i32; 11],
}
const _: () = assert!(size_of::<Sigevent>() == 64);

/// `struct sigcontext` (x86-64), the `uc_mcontext` of a signal frame.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Sigcontext {
    /// r8–r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, in this order (the order
    /// of [`crate::platform::sigcontext_regs`]).
    pub gregs: [u64; 18],
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
    /// Address of the FXSAVE area, or 0.
    pub fpstate: u64,
    pub _reserved1: [u64; 8],
}
const _: () = assert!(size_of::<Sigcontext>() == 256);

/// The kernel's `struct ucontext` (the prefix glibc's `ucontext_t` shares).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Ucontext {
    pub uc_flags: u64,
    pub uc_link: u64,
    pub uc_stack: StackT,
    pub uc_mcontext: Sigcontext,
    pub uc_sigmask: u64,
}
const _: () = assert!(size_of::<Ucontext>() == 304);

/// `struct rt_sigframe` (x86-64): what a handler finds at its stack pointer. The FXSAVE area
/// `uc_mcontext.fpstate` points to lies above it.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct RtSigframe {
    /// The return address: `sa_restorer`.
    pub pretcode: u64,
    pub uc: Ucontext,
    pub info: Siginfo,
}
const _: () = assert!(size_of::<RtSigframe>() == 8 + 304 + 128);

/// The legacy x87/SSE state area `FXSAVE` writes (`struct fxregs_state`, 512 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FxSave {
    pub cwd: u16,
    pub swd: u16,
    pub twd: u16,
    pub fop: u16,
    pub rip: u64,
    pub rdp: u64,
    pub mxcsr: u32,
    pub mxcsr_mask: u32,
    pub st_space: [u32; 32],
    pub xmm_space: [u32; 64],
    pub padding: [u32; 24],
}
const _: () = assert!(size_of::<FxSave>() == crate::platform::FXSAVE_SIZE);

// The offsets the Sentry used to write by hand, and that apps and libcs read.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Stat, st_rdev) == 40);
    assert!(offset_of!(Stat, st_atime) == 72);
    assert!(offset_of!(Stat, st_ctime) == 104);
    assert!(offset_of!(Statx, stx_mode) == 28);
    assert!(offset_of!(Statx, stx_ino) == 32);
    assert!(offset_of!(Statx, stx_atime) == 64);
    assert!(offset_of!(Statx, stx_mtime) == 112);
    assert!(offset_of!(Statx, stx_rdev_major) == 128);
    assert!(offset_of!(Statx, stx_dev_minor) == 140);
    assert!(offset_of!(Sysinfo, procs) == 80);
    assert!(offset_of!(Sysinfo, totalhigh) == 88);
    assert!(offset_of!(Sysinfo, mem_unit) == 104);
    assert!(offset_of!(StackT, ss_size) == 16);
    assert!(offset_of!(Siginfo, fields) == 16);
    assert!(offset_of!(SigChld, si_status) == 8);
    assert!(offset_of!(SigTimer, si_overrun) == 4);
    assert!(offset_of!(SigTimer, si_value) == 8);
    assert!(offset_of!(Sigevent, sigev_notify) == 12);
    assert!(offset_of!(Sigevent, sigev_notify_thread_id) == 16);
    assert!(offset_of!(Sigcontext, cs) == 144);
    assert!(offset_of!(Sigcontext, oldmask) == 168);
    assert!(offset_of!(Sigcontext, cr2) == 176);
    assert!(offset_of!(Sigcontext, fpstate) == 184);
    assert!(offset_of!(Ucontext, uc_stack) == 16);
    assert!(offset_of!(Ucontext, uc_mcontext) == 40);
    assert!(offset_of!(Ucontext, uc_sigmask) == 296);
    assert!(offset_of!(RtSigframe, uc) == 8);
    assert!(offset_of!(RtSigframe, info) == 312);
    assert!(offset_of!(FxSave, mxcsr) == 24);
    assert!(offset_of!(FxSave, mxcsr_mask) == 28);
    assert!(offset_of!(Termios, c_cc) == 17);
    assert!(offset_of!(Dirent64, d_reclen) == 16);
    assert!(offset_of!(Dirent64, d_type) == 18);
};

/// `struct epoll_event`: packed on x86-64 (12 bytes, `data` unaligned).
#[repr(C, packed)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}
const _: () = assert!(size_of::<EpollEvent>() == 12);

/// `struct itimerspec` (`timerfd_settime`, `timer_settime`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Itimerspec {
    pub it_interval: Timespec,
    pub it_value: Timespec,
}
const _: () = assert!(size_of::<Itimerspec>() == 32);

/// `struct signalfd_siginfo`, what a signalfd read returns per signal.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SignalfdSiginfo {
    pub ssi_signo: u32,
    pub ssi_errno: i32,
    pub ssi_code: i32,
    pub ssi_pid: u32,
    pub ssi_uid: u32,
    pub ssi_fd: i32,
    pub ssi_tid: u32,
    pub ssi_band: u32,
    pub ssi_overrun: u32,
    pub ssi_trapno: u32,
    pub ssi_status: i32,
    pub ssi_int: i32,
    pub ssi_ptr: u64,
    pub ssi_utime: u64,
    pub ssi_stime: u64,
    pub ssi_addr: u64,
    pub ssi_addr_lsb: u16,
    pub _pad2: u16,
    pub ssi_syscall: i32,
    pub ssi_call_addr: u64,
    pub ssi_arch: u32,
    pub _pad: [u8; 28],
}
const _: () = assert!(size_of::<SignalfdSiginfo>() == 128);

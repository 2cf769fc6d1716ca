//! The boot protocol and hypercall ABI between the `vmm` process (the VMM) and the Sentry
//! running as the guest kernel on the kvm platform.
//!
//! Both sides compile this module: the Sentry writes these structures, the VMM reads them out
//! of guest memory and checks every field before acting on it. Everything is `repr(C)` with
//! fixed-size fields so the layout is identical on both sides.
//!
//! Guest-physical layout (the memory file is guest-physical memory, one memslot at 0):
//!
//! | range                         | what                                              |
//! |-------------------------------|---------------------------------------------------|
//! | `0x0000..0x1000`              | never mapped (catches physical null pointers)      |
//! | `BOOT_INFO_GPA` (one page)    | [`BootInfo`], written by the VMM                   |
//! | `ARGS_GPA..KERNEL_PHYS`       | argv/envp/exe strings for the first process       |
//! | `KERNEL_PHYS..`               | the Sentry image (ELF `PT_LOAD`s at their `p_paddr`) |
//! | after the image               | boot page tables built by the VMM                 |
//! | `free_start..mem_size`        | free frames: Sentry heap, page tables, app memory  |

/// Hypercall I/O port: `out dx, eax` with `dx = HYPERCALL_PORT` and `eax` = guest-physical
/// address of a [`Hypercall`] block (the block is always below 4 GiB).
pub const HYPERCALL_PORT: u16 = 0x7e0;

/// Where the VMM places [`BootInfo`].
pub const BOOT_INFO_GPA: u64 = 0x1000;
/// A 64-bit word, in the boot-info page after [`BootInfo`], that the VMM keeps writing after
/// boot: bit n set = host signal n arrived for the sandbox (Ctrl-C at the terminal, `kill` of
/// `vmm`). The VMM sets bits atomically; the Sentry takes them with an atomic swap.
pub const HOST_SIGNALS_GPA: u64 = BOOT_INFO_GPA + 0x800;
const _: () = assert!(core::mem::size_of::<BootInfo>() <= 0x800);
/// The interrupt vector the VMM injects to get the Sentry's attention while the app runs
/// (`ring0::VECTOR_KICK`).
pub const KICK_VECTOR: u32 = 32;
/// Where the VMM places the first process's argument strings (see [`BootInfo::args_len`]).
pub const ARGS_GPA: u64 = 0x2000;
/// Room for the argument strings.
pub const ARGS_MAX: u64 = KERNEL_PHYS - ARGS_GPA;
/// Physical load address of the Sentry image (its `p_paddr`s start here).
pub const KERNEL_PHYS: u64 = 0x20_0000;
/// Virtual address of physical 0 in the kernel image mapping (`-mcmodel=kernel` range).
pub const KERNEL_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Virtual address of physical 0 in the Sentry's direct map of the whole memory file.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8880_0000_0000;
/// Top of the app (lower-half) address range, exclusive. The 128 KiB above it (up to Linux's
/// `TASK_SIZE`) are kept from the app on every platform: the fallbacks put their stub code there.
pub const USER_TOP: u64 = 0x0000_7fff_fffe_0000;
/// Lowest address an app may map (as Linux's default `vm.mmap_min_addr`).
pub const USER_BOTTOM: u64 = 0x1_0000;

/// `BootInfo::magic`.
pub const BOOT_MAGIC: u64 = 0x766d_6d2d_626f_6f74; // "vmm-boot"
/// `BootInfo::version`; bumped on any layout change.
pub const BOOT_VERSION: u64 = 3;

/// `BootInfo::flags`: print every syscall (`--strace`).
pub const BOOT_FLAG_STRACE: u64 = 1 << 0;
/// `BootInfo::flags`: the VMM single-steps the guest to count instructions (`--single-step`);
/// the Sentry keeps the trap flag set across syscall entry and in app code.
pub const BOOT_FLAG_SINGLE_STEP: u64 = 1 << 1;
/// `BootInfo::flags`: `--ro`, no overlay (writes to files fail with EROFS).
pub const BOOT_FLAG_READ_ONLY: u64 = 1 << 2;
/// `BootInfo::flags`: `--rw`, file writes go through to the host tree (no overlay).
pub const BOOT_FLAG_WRITE_THROUGH: u64 = 1 << 3;

/// Handed to the Sentry at boot (physical [`BOOT_INFO_GPA`], `rdi` holds its direct-map address).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub magic: u64,
    pub version: u64,
    /// Size of guest-physical memory (= the memory file), bytes.
    pub mem_size: u64,
    /// First free physical byte (page-aligned): everything below is image, boot tables, boot info.
    pub free_start: u64,
    /// Physical address of the kernel page-table root the VMM built (loaded in CR3).
    pub kernel_root: u64,
    /// Guest TSC frequency in kHz (0 if unknown: the Sentry then asks the host for the time).
    pub tsc_khz: u64,
    /// Host `CLOCK_REALTIME` and `CLOCK_MONOTONIC` (ns) taken just before the vCPU first ran.
    pub realtime_ns: u64,
    pub monotonic_ns: u64,
    /// Seed for the Sentry's random generator (`getrandom`, `AT_RANDOM`), from the host's.
    pub random_seed: [u8; 32],
    /// `BOOT_FLAG_*`.
    pub flags: u64,
    /// At [`ARGS_GPA`]: `execfn\0exe\0cwd\0argv0\0...\0envp0\0...\0` — `argc` argv strings
    /// then `envc`.
    pub args_len: u64,
    pub argc: u64,
    pub envc: u64,
    /// Host terminal facts for fd 0..2: bit n set = fd n is a terminal.
    pub stdio_tty: u64,
    /// `--pids-limit`: the most tasks the sandbox may hold at once (0: no limit).
    pub pids_limit: u64,
    /// `--strace=LIST`: bit n of word n/64 set = syscall n is traced (with
    /// [`BOOT_FLAG_STRACE`]); all bits set: every syscall.
    pub strace_only: [u64; 8],
    /// `uname`'s nodename: `hostname[..hostname_len]` (0: the default, `vmm`).
    pub hostname_len: u64,
    pub hostname: [u8; 64],
}

/// Hypercall numbers (`Hypercall::op`). Arguments are listed as `args[i]`.
pub mod op {
    /// The sandbox is done. `args[0]` = exit code, `args[1]` = fatal signal (0 if exited),
    /// `args[2]` = exec errno, `args[3]` = the CPU features ring 0 enabled (`CPU_*` bits, for
    /// `--exit-stats`).
    pub const EXIT: u64 = 1;
    /// Write a gather list to a host stdio fd. `args[0]` = fd (1 or 2),
    /// `args[1]` = GPA of `[IoVec; args[2]]`. Returns bytes written or `-errno`.
    pub const WRITE: u64 = 2;
    /// Read into a scatter list from host stdin. `args[0]` = fd (0),
    /// `args[1]` = GPA of `[IoVec; args[2]]`. Returns bytes read or `-errno`.
    pub const READ: u64 = 3;
    /// Open a file under the sandbox root, read-only. `args[0]` = GPA of the path,
    /// `args[1]` = its length, `args[2]` = flags (only `super::OPEN_*`). Returns a handle (>= 0)
    /// or `-errno`.
    pub const OPEN: u64 = 4;
    /// `args[0]` = handle, `args[1]` = GPA of buffer, `args[2]` = length, `args[3]` = offset.
    pub const PREAD: u64 = 5;
    /// `args[0]` = handle.
    pub const CLOSE: u64 = 6;
    /// `args[0]` = handle or stdio fd (with `args[1]` = 1 for stdio), `args[2]` = GPA of a
    /// [`super::HostStat`]. Returns 0 or `-errno`.
    pub const FSTAT: u64 = 7;
    /// Terminal query on a stdio fd: `args[0]` = fd, `args[1]` = `TCGETS` or `TIOCGWINSZ`,
    /// `args[2]` = GPA of the result buffer (60 or 8 bytes). Returns 0 or `-errno`.
    pub const IOCTL: u64 = 8;
    /// A log line from the Sentry (`--strace` output, warnings). `args[0]` = GPA, `args[1]` = len.
    pub const LOG: u64 = 9;
    /// The Sentry panicked. `args[0]` = GPA of the message, `args[1]` = len. Ends the sandbox.
    pub const PANIC: u64 = 10;
    /// Current host time: `args[0]` = clock id (0 realtime, 1 monotonic). Returns ns.
    pub const CLOCK: u64 = 11;
    /// Read a handle at an offset into a scatter list: `args[0]` = handle, `args[1]` = GPA of
    /// `[IoVec; args[2]]`, `args[3]` = offset. Returns bytes read or `-errno`.
    pub const PREADV: u64 = 12;
    /// `getdents64` on a directory handle: `args[0]` = handle, `args[1]` = GPA, `args[2]` = len.
    pub const GETDENTS: u64 = 13;
    /// `lseek` on a handle: `args[0]` = handle, `args[1]` = offset (i64), `args[2]` = whence.
    pub const LSEEK: u64 = 14;
    /// The target of a symlink (not followed): `args[0]`/`args[1]` = path GPA/len,
    /// `args[2]`/`args[3]` = output GPA/len. Returns the target's length or `-errno`.
    pub const READLINK: u64 = 15;
    /// Sleep on the host: `args[0]` = nanoseconds (at most 1 s per call). Returns 0.
    pub const SLEEP: u64 = 16;
    /// `stat` of a path in one exit: `args[0]`/`args[1]` = path GPA/len, `args[2]` = 1 not to
    /// follow a final symlink, `args[3]` = GPA of a [`super::HostStat`].
    pub const STAT: u64 = 17;
    /// Open for writing (write-through mode only, else EROFS): `args[0]`/`args[1]` = path
    /// GPA/len, `args[2]` = Linux open flags (only [`super::OPEN_WRITE_FLAGS`] and the `OPEN_*`
    /// ones), `args[3]` = mode for `O_CREAT`. Returns a handle or `-errno`.
    pub const OPEN_WRITE: u64 = 18;
    /// Write a gather list to a handle: `args[0]` = handle, `args[1]` = GPA of
    /// `[IoVec; args[2]]`, `args[3]` = offset (ignored by `O_APPEND` handles, which append).
    pub const PWRITEV: u64 = 19;
    /// `args[0]` = handle, `args[1]` = [`super::HANDLE_FTRUNCATE`] (with `args[2]` = length) or
    /// [`super::HANDLE_FSYNC`].
    pub const HANDLE: u64 = 20;
    /// A change to the host tree (write-through mode only, else EROFS): `args[0]` = a
    /// `MODIFY_*` kind, `args[1]`/`args[2]` = path GPA/len, `args[3]`/`args[4]` = second path
    /// (rename target, symlink target) or the times (`[i64; 4]`, utimens) GPA/len, `args[5]` =
    /// mode, length, `uid << 32 | gid` or the nofollow flag.
    pub const MODIFY: u64 = 21;
    /// Interrupt the guest (inject [`super::KICK_VECTOR`]) `args[0]` ns from now, replacing
    /// any earlier request: the Sentry has a timer due or tasks waiting for the CPU while the
    /// app may run without calling it. Returns 0.
    pub const PREEMPT: u64 = 22;
    /// `fstatfs` of a handle: `args[0]` = handle, `args[1]` = GPA of a
    /// [`super::HostStatfs`]. Returns 0 or `-errno`.
    pub const STATFS: u64 = 23;
}

/// `EXIT` `args[3]` bits.
pub const CPU_XSAVE: u64 = 1 << 0;
pub const CPU_SMEP: u64 = 1 << 1;
pub const CPU_SMAP: u64 = 1 << 2;
pub const CPU_PCID: u64 = 1 << 3;

/// Open flags a write-through open may carry besides the `OPEN_*` ones (Linux values):
/// `O_WRONLY | O_RDWR | O_CREAT | O_EXCL | O_TRUNC | O_APPEND`.
pub const OPEN_WRITE_FLAGS: u64 = 0o1 | 0o2 | 0o100 | 0o200 | 0o1000 | 0o2000;
pub const HANDLE_FTRUNCATE: u64 = 1;
pub const HANDLE_FSYNC: u64 = 2;
pub const MODIFY_MKDIR: u64 = 1;
pub const MODIFY_UNLINK: u64 = 2;
pub const MODIFY_RMDIR: u64 = 3;
pub const MODIFY_RENAME: u64 = 4;
pub const MODIFY_SYMLINK: u64 = 5;
pub const MODIFY_TRUNCATE: u64 = 6;
pub const MODIFY_CHMOD: u64 = 7;
pub const MODIFY_CHOWN: u64 = 8;
pub const MODIFY_LCHOWN: u64 = 9;
pub const MODIFY_UTIMENS: u64 = 10;
pub const MODIFY_LUTIMENS: u64 = 11;
pub const MODIFY_LINK: u64 = 12;

/// OPEN flags (Linux values): the only ones the host serves.
pub const OPEN_DIRECTORY: u64 = 0o200000;
pub const OPEN_NOFOLLOW: u64 = 0o400000;
pub const OPEN_PATH: u64 = 0o10000000;
/// Host open flag (no Linux `O_` flag): fail with ELOOP where resolving the path would
/// follow any symlink (`RESOLVE_NO_SYMLINKS`). The Sentry asks this after a host ENOENT to
/// learn whether the path went through a symlink, which it may need to walk itself (into
/// its own `/proc`, `/dev`, `/sys`, or the overlay).
pub const OPEN_NO_SYMLINKS: u64 = 1 << 32;

/// Longest LOG or PANIC message (bytes); the VMM refuses longer ones as malformed.
pub const LOG_MAX: usize = 64 << 10;

/// Longest gather/scatter list a single WRITE/READ hypercall takes.
pub const IOV_MAX: usize = 64;
/// Longest path an OPEN hypercall takes.
pub const PATH_MAX: usize = 4096;

/// One element of a gather/scatter list in a hypercall: a guest-physical range.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoVec {
    pub gpa: u64,
    pub len: u64,
}

/// The request block of a hypercall. The Sentry fills `op` and `args`, does `out`, and reads `ret`.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Hypercall {
    pub op: u64,
    pub args: [u64; 6],
    pub ret: i64,
}

/// What the host's `fstatfs` says of the filesystem a handle is on (`struct statfs` less
/// `f_fsid`, which names a host device and is not passed on).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStatfs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

impl HostStatfs {
    pub const ZERO: HostStatfs = HostStatfs {
        fs_type: 0,
        bsize: 0,
        blocks: 0,
        bfree: 0,
        bavail: 0,
        files: 0,
        ffree: 0,
        namelen: 0,
        frsize: 0,
        flags: 0,
    };
}

/// The subset of `struct stat` the host reports for an open file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct HostStat {
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub dev: u64,
    pub ino: u64,
    pub rdev: u64,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

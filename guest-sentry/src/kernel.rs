//! The Sentry's core: the kernel state, tasks, starting the first program ([`run`]) and what
//! one event of a task does (`handle_event`: its syscall, fault or exception). The task loop
//! that is the same on every platform — `loop { match ctx.switch(..) { Syscall => dispatch,
//! Fault => mm, ... } }` — and the scheduler around it are in [`crate::sched`].

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::errno::Errno;
use crate::file::{File, OpenFile};
use crate::host::{ExitStatus, Host};
use crate::loader;
use crate::memfile::MemoryFile;
use crate::mm::{Mm, Segv};
use crate::platform::{Access, Event, Platform, UserRegs};
use crate::shared::Shared;
use crate::signal::{self, SignalState};

/// What to run, as the VMM or `vmm` hands it over.
pub struct Spawn {
    /// The path the program was started by (`AT_EXECFN`).
    pub execfn: Vec<u8>,
    /// The program's canonical path (`/proc/self/exe`).
    pub exe_path: Vec<u8>,
    /// The initial current directory (absolute, inside the sandbox).
    pub cwd: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
}

/// A set of syscall numbers (the x86-64 table's: 0..512).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallSet(pub [u64; 8]);

impl SyscallSet {
    pub const ALL: SyscallSet = SyscallSet([!0; 8]);
    pub const NONE: SyscallSet = SyscallSet([0; 8]);

    /// Whether `nr` is in the set (numbers past the table are in it only in [`Self::ALL`]).
    pub fn contains(&self, nr: u64) -> bool {
        match self.0.get((nr / 64) as usize) {
            Some(word) => word & (1 << (nr % 64)) != 0,
            None => *self == Self::ALL,
        }
    }

    /// Adds `nr` (numbers past the table are ignored).
    pub fn insert(&mut self, nr: u64) {
        if let Some(word) = self.0.get_mut((nr / 64) as usize) {
            *word |= 1 << (nr % 64);
        }
    }
}

impl Default for SyscallSet {
    fn default() -> Self {
        Self::ALL
    }
}

/// The sandbox's host name: `uname`'s nodename (the OCI runtime's `hostname`; default `vmm`).
#[derive(Clone, Copy, Debug)]
pub struct Hostname {
    len: u8,
    bytes: [u8; Hostname::MAX],
}

impl Hostname {
    /// The longest host name (`HOST_NAME_MAX`).
    pub const MAX: usize = 64;

    /// `name` if it is 1..=64 bytes without NUL.
    pub fn new(name: &[u8]) -> Option<Self> {
        if name.is_empty() || name.len() > Self::MAX || name.contains(&0) {
            return None;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..name.len()].copy_from_slice(name);
        Some(Hostname {
            len: name.len() as u8,
            bytes,
        })
    }

    /// What an app's `sethostname`/`setdomainname` sets: up to 64 bytes (empty allowed, as
    /// Linux allows it; a NUL ends the name).
    pub fn from_app(name: &[u8]) -> Option<Self> {
        if name.len() > Self::MAX {
            return None;
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let mut bytes = [0; Self::MAX];
        bytes[..end].copy_from_slice(&name[..end]);
        Some(Hostname {
            len: end as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Default for Hostname {
    fn default() -> Self {
        Hostname::new(b"vmm").expect("a valid host name")
    }
}

/// Kernel-wide options.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// Print every syscall with its result (those in `strace_only`).
    pub strace: bool,
    /// `--strace=LIST`: the syscalls traced (all by default).
    pub strace_only: SyscallSet,
    /// `--ro`: no overlay; writes to files fail with EROFS.
    pub read_only: bool,
    /// `--rw`: no overlay; writes go through to the host tree.
    pub write_through: bool,
    /// `--pids-limit`: the most tasks (live or not yet reaped) the sandbox holds at once;
    /// `fork`/`clone` past it fail with EAGAIN, as under a cgroup's `pids.max`. 0: no limit.
    pub pids_limit: u32,
    /// `--cpus`: the most apps running at once where the platform runs apps of different
    /// processes in parallel ([`crate::platform::Platform::PARALLEL`]); 0 and 1: one at a
    /// time.
    pub cpus: u32,
    /// The most bytes of file data the overlay holds; 0: half the memory file, as tmpfs's
    /// default size is half the RAM (its files' pages are frames of it, so app memory and
    /// overlay data together stay within `--memory`).
    pub overlay_limit: u64,
    /// `uname`'s nodename (`sethostname` changes it, for the sandbox only).
    pub hostname: Hostname,
}

/// Kernel-wide state shared by every task.
pub struct Kernel<'h> {
    pub host: &'h dyn Host,
    pub mem: Rc<MemoryFile>,
    pub config: Config,
    pub rng: ChaCha20Rng,
    /// Syscall numbers already reported as unknown (each is logged once).
    pub unknown_logged: UnknownLog,
    /// The argument registers of the syscall being served, kept for its `--strace` line (a
    /// handler may change the registers); written only when tracing.
    pub strace_args: [u64; 6],
    /// `CLOCK_MONOTONIC` when the sandbox started (for the CPU-time clocks).
    pub start_ns: u64,
    /// Where the sandbox's writes to files go (the host tree is never modified).
    pub overlay: crate::overlay::Overlay,
    /// Other processes' `/proc` entries for the syscall that asked for them.
    pub proc_view: Option<crate::fsimpl::procfs::ProcView>,
    /// The CPU's MXCSR mask as an FXSAVE image reports it (0 until first read at a
    /// sigreturn): bits outside it must not be loaded.
    pub mxcsr_mask: u32,
    /// The terminal's foreground process group (`TIOCGPGRP`/`TIOCSPGRP`): where Ctrl-C goes.
    pub foreground_pgid: u32,
    /// Program images kept between execs.
    pub images: crate::image_cache::ImageCache,
    /// Where the platform can show it without a call: the word the host sets bits in when
    /// host signals arrive (`Host::take_signals` takes them). The scheduler's fast path only
    /// looks at it; None: it asks `take_signals`.
    pub host_signal_word: Option<&'static core::sync::atomic::AtomicU64>,
    /// Tasks waiting on futex words.
    pub futex: crate::futex::Futexes,
    /// Names bound by Unix domain sockets, Sentry-wide.
    pub unix: crate::net::unix::Names,
    /// The loopback network's port table (TCP and UDP, IPv4 and IPv6).
    pub ports: crate::net::inet::Ports,
    /// `uname`'s domainname (`setdomainname`; `(none)` until set, as Linux's).
    pub domainname: Option<Hostname>,
    /// The sandbox's System V IPC namespace (semaphores, message queues, shared memory).
    pub ipc: crate::ipc::Ipc,
    /// Pseudo-terminals (`/dev/ptmx`).
    pub ptys: crate::tty::Ptys,
    /// Advisory file locks (`fcntl`, `flock`).
    pub locks: crate::locks::Locks,
}

impl<'h> Kernel<'h> {
    pub fn new(host: &'h dyn Host, mem: Rc<MemoryFile>, config: Config, seed: [u8; 32]) -> Self {
        let start_ns = host.now(crate::host::Clock::Monotonic);
        let overlay_limit = match config.overlay_limit {
            // tmpfs's default size.
            0 => mem.size() / 2,
            n => n,
        };
        let boot_ns = host.now(crate::host::Clock::Realtime) as i64;
        let mut k = Kernel {
            host,
            mem: mem.clone(),
            config,
            rng: ChaCha20Rng::from_seed(seed),
            unknown_logged: UnknownLog::default(),
            strace_args: [0; 6],
            start_ns,
            overlay: crate::overlay::Overlay::new(
                !config.read_only && !config.write_through,
                overlay_limit,
                mem,
                boot_ns,
            ),
            proc_view: None,
            mxcsr_mask: 0,
            foreground_pgid: 1,
            images: crate::image_cache::ImageCache::new(!config.write_through),
            host_signal_word: None,
            futex: Default::default(),
            unix: Default::default(),
            ports: Default::default(),
            domainname: None,
            ipc: Default::default(),
            ptys: Default::default(),
            locks: Default::default(),
        };
        let mut r = [0u8; 2];
        k.random_bytes(&mut r);
        k.ports.seed(u16::from_ne_bytes(r));
        k
    }

    pub fn random_bytes(&mut self, out: &mut [u8]) {
        self.rng.fill_bytes(out);
    }

    /// A formatted diagnostic line to the host's stderr.
    pub fn log(&self, args: core::fmt::Arguments) {
        let mut s = String::from("vmm: sentry: ");
        let _ = s.write_fmt(args);
        self.host.log(&s);
    }
}

/// Which unsupported syscall numbers have been logged. Bounded in memory and time whatever
/// the app tries: numbers below [`UnknownLog::DENSE`] are one bit each; others are kept up to
/// [`UnknownLog::SPARSE_MAX`], after which one last line says the rest go unlogged.
#[derive(Default)]
pub struct UnknownLog {
    dense: [u64; (UnknownLog::DENSE / 64) as usize],
    sparse: alloc::collections::BTreeSet<u64>,
    /// The line saying that further numbers go unlogged was printed.
    saturated: bool,
}

/// What [`UnknownLog::first_time`] says about a number.
#[derive(Debug, PartialEq, Eq)]
pub enum LogVerdict {
    /// Not seen before: log it.
    Log,
    /// Seen before, or past the limit after its notice.
    Quiet,
    /// The first number past the limit: say that no more are logged.
    Saturated,
}

impl UnknownLog {
    /// Covers every number in the x86-64 and x32 tables (x32 adds 512).
    const DENSE: u64 = 1024;
    const SPARSE_MAX: usize = 64;

    /// Records `n`; whether (and how) to log it.
    pub fn first_time(&mut self, n: u64) -> LogVerdict {
        if n < Self::DENSE {
            let (w, b) = ((n / 64) as usize, n % 64);
            let seen = self.dense[w] & (1 << b) != 0;
            self.dense[w] |= 1 << b;
            return if seen {
                LogVerdict::Quiet
            } else {
                LogVerdict::Log
            };
        }
        if self.sparse.contains(&n) {
            return LogVerdict::Quiet;
        }
        if self.sparse.len() < Self::SPARSE_MAX {
            self.sparse.insert(n);
            return LogVerdict::Log;
        }
        if core::mem::replace(&mut self.saturated, true) {
            LogVerdict::Quiet
        } else {
            LogVerdict::Saturated
        }
    }
}

/// Resource limits (`prlimit64`), Linux defaults for an unprivileged process.
pub use crate::linux::Rlimit;
pub const RLIM_INFINITY: u64 = u64::MAX;
pub const RLIM_NLIMITS: usize = 16;

/// What the threads of one process share (`CLONE_THREAD`): its identity, parent, group and
/// session, limits, timers, job state, the signals sent to the process as a whole, and how
/// it ended.
pub struct ThreadGroup {
    pub ppid: u32,
    /// Process group and session.
    pub pgid: u32,
    pub sid: u32,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    /// `ITIMER_REAL` (`alarm`, `setitimer`): when SIGALRM is due, and its reload interval (ns).
    pub alarm: Option<(u64, u64)>,
    /// POSIX timers (`timer_create`): the process's own, kept by none of its children, deleted
    /// by `execve`.
    pub timers: crate::posix_timers::PosixTimers,
    /// Job control: stopped or not, and the stop/continue its parent has yet to hear of.
    pub job: crate::signal::JobState,
    /// Signals sent to the process: any thread that does not block one takes it.
    pub pending: crate::signal::Pending,
    /// Set by `exit_group`, a fatal signal or an `execve` by another thread: every thread
    /// ends, and the process's status is this.
    pub group_exit: Option<ExitStatus>,
    /// How the leader thread ended, if it ended before the others (the status a parent's
    /// `wait` reports, as on Linux, unless the group exited as a whole).
    pub leader_exit: Option<ExitStatus>,
    pub exe_path: Vec<u8>,
    /// The arguments of the last exec, each NUL-terminated (`/proc/<pid>/cmdline`).
    pub cmdline: Vec<u8>,
    /// Threads alive.
    pub threads: u32,
    /// The signal the parent gets when the process exits (SIGCHLD for a `fork`; 0: none).
    pub exit_signal: i32,
    /// The pty this process took as its controlling terminal (inherited by children; it is
    /// theirs while it stays their session's: [`crate::tty::controlling`]). None: the host
    /// terminal, if any, as before.
    pub ctty: Option<crate::tty::PtyRef>,
}

impl ThreadGroup {
    /// A new process's group: no timers, nothing pending, not stopped, no thread yet
    /// ([`Task::new`] counts them).
    pub fn new(
        ppid: u32,
        (pgid, sid): (u32, u32),
        rlimits: [Rlimit; RLIM_NLIMITS],
        exe_path: Vec<u8>,
        cmdline: Vec<u8>,
        exit_signal: i32,
    ) -> Self {
        ThreadGroup {
            ppid,
            pgid,
            sid,
            rlimits,
            alarm: None,
            timers: Default::default(),
            job: Default::default(),
            pending: Default::default(),
            group_exit: None,
            leader_exit: None,
            exe_path,
            cmdline,
            threads: 0,
            exit_signal,
            ctty: None,
        }
    }
}

/// The open file descriptors (`CLONE_FILES` shares them).
#[derive(Clone, Default)]
pub struct FdTable {
    pub fds: Vec<Option<Rc<OpenFile>>>,
    /// Descriptors with `FD_CLOEXEC`.
    pub cloexec: alloc::collections::BTreeSet<u64>,
}

impl FdTable {
    /// Installs `f` at the lowest free descriptor at or above `min` and below `limit`
    /// (RLIMIT_NOFILE): which, or None when all are taken.
    pub fn alloc(&mut self, min: usize, limit: u64, f: Rc<OpenFile>) -> Option<u64> {
        let limit = limit.min(1 << 20) as usize;
        let fd = (min..limit).find(|&i| self.fds.get(i).is_none_or(|e| e.is_none()))?;
        if fd >= self.fds.len() {
            self.fds.resize_with(fd + 1, || None);
        }
        self.fds[fd] = Some(f);
        self.cloexec.remove(&(fd as u64));
        Some(fd as u64)
    }
}

/// Current directory and umask (`CLONE_FS` shares them).
#[derive(Clone)]
pub struct FsContext {
    /// An absolute path inside the sandbox.
    pub cwd: Vec<u8>,
    pub umask: u32,
}

/// Signal dispositions (`CLONE_SIGHAND` shares them).
pub type SigHand = [crate::signal::SigAction; crate::signal::NSIG];

/// One thread of the app. What Linux lets threads share is behind a [`Shared`] handle each,
/// shared or copied at `clone` by the flag that says so.
pub struct Task<P: Platform> {
    pub tid: u32,
    /// The thread group's id (the process id every thread of it reports).
    pub pid: u32,
    pub regs: UserRegs,
    pub mm: Shared<Mm<P::AddressSpace>>,
    pub ctx: P::Context,
    pub files: Shared<FdTable>,
    pub fs: Shared<FsContext>,
    pub sighand: Shared<SigHand>,
    pub tg: Shared<ThreadGroup>,
    /// This thread's mask, its own pending signals, alternate stack.
    pub signals: SignalState,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    /// The thread name (`PR_SET_NAME`, `/proc/self/comm`), NUL-padded.
    pub comm: [u8; 16],
    /// The nice value (-20..=19; `setpriority`), inherited by clones. The Sentry's
    /// scheduler takes turns regardless: it is kept and reported.
    pub nice: i32,
    /// Set when the thread has exited (the whole group has when `tg.group_exit` is set).
    pub exit: Option<ExitStatus>,
    /// What the last syscall asks of the scheduler (fork, exec, wait, block, ...).
    pub request: Option<crate::sched::Request>,
    /// Whether the task runs, waits in a syscall, or was woken to retry it.
    pub state: crate::sched::RunState,
    /// The deadline (CLOCK_MONOTONIC ns) of the syscall the task waits in, if it has one.
    pub wake_at: Option<u64>,
    /// Bytes a blocking stream-socket write has moved so far in the syscall it waits in
    /// (Linux's blocking stream write moves everything before it returns; a signal that
    /// interrupts the wait makes it return this count instead of EINTR).
    pub partial_write: u64,
    /// A `CLONE_VFORK` child: the parent thread waiting until this task execs or exits.
    pub vfork_parent: Option<u32>,
    /// A `CLONE_VFORK` parent: the child it waits for.
    pub vfork_child: Option<u32>,
    /// Whether its app runs on its own ([`crate::sched::App`]).
    pub app: crate::sched::App,
}

/// What a new task is made of ([`Task::new`]).
pub struct TaskParts<P: Platform> {
    pub tid: u32,
    pub pid: u32,
    pub regs: UserRegs,
    pub mm: Shared<Mm<P::AddressSpace>>,
    pub ctx: P::Context,
    pub files: Shared<FdTable>,
    pub fs: Shared<FsContext>,
    pub sighand: Shared<SigHand>,
    pub tg: Shared<ThreadGroup>,
    pub blocked: u64,
    pub altstack: (u64, u64, bool),
    pub comm: [u8; 16],
}

impl<P: Platform> Task<P> {
    /// The one constructor: a thread about to run at `regs`.
    pub fn new(p: TaskParts<P>) -> Self {
        p.tg.lock().threads += 1;
        Task {
            tid: p.tid,
            pid: p.pid,
            regs: p.regs,
            mm: p.mm,
            ctx: p.ctx,
            files: p.files,
            fs: p.fs,
            sighand: p.sighand,
            tg: p.tg,
            signals: SignalState {
                blocked: p.blocked,
                altstack: p.altstack,
                ..Default::default()
            },
            clear_child_tid: 0,
            robust_list: (0, 0),
            comm: p.comm,
            nice: 0,
            exit: None,
            request: None,
            state: crate::sched::RunState::Running,
            wake_at: None,
            partial_write: 0,
            vfork_parent: None,
            vfork_child: None,
            app: crate::sched::App::Here,
        }
    }

    /// The sandbox's first task (pid 1), about to run at `regs` in `mm`, with host stdio as
    /// descriptors 0-2.
    pub fn first(mm: Mm<P::AddressSpace>, ctx: P::Context, regs: UserRegs, spawn: Spawn) -> Self {
        let tg = ThreadGroup::new(
            0,
            (1, 1),
            default_rlimits(),
            spawn.exe_path.clone(),
            cmdline_of(&spawn.argv),
            crate::signal::SIGCHLD,
        );
        let files = FdTable {
            fds: (0..3)
                .map(|fd| Some(Rc::new(OpenFile::new(File::Stdio(fd), false))))
                .collect(),
            cloexec: Default::default(),
        };
        Task::new(TaskParts {
            tid: 1,
            pid: 1,
            regs,
            mm: Shared::new(mm),
            ctx,
            files: Shared::new(files),
            fs: Shared::new(FsContext {
                cwd: spawn.cwd,
                umask: 0o022,
            }),
            sighand: Shared::new([crate::signal::SigAction::default(); crate::signal::NSIG]),
            tg: Shared::new(tg),
            blocked: 0,
            altstack: (0, 0, false),
            comm: comm_of(&spawn.exe_path),
        })
    }

    /// Whether this thread leads its group (its tid is the process id).
    pub fn is_leader(&self) -> bool {
        self.tid == self.pid
    }

    /// Whether this task waits for a `CLONE_VFORK` child to exec or exit.
    pub fn vfork_child_pending(&self) -> bool {
        self.vfork_child.is_some()
    }
}

fn default_rlimits() -> [Rlimit; RLIM_NLIMITS] {
    let inf = Rlimit {
        cur: RLIM_INFINITY,
        max: RLIM_INFINITY,
    };
    let mut r = [inf; RLIM_NLIMITS];
    r[3] = Rlimit {
        cur: 8 << 20,
        max: RLIM_INFINITY,
    }; // RLIMIT_STACK
    r[4] = Rlimit {
        cur: 0,
        max: RLIM_INFINITY,
    }; // RLIMIT_CORE
    r[6] = Rlimit {
        cur: 63_704,
        max: 63_704,
    }; // RLIMIT_NPROC
    r[7] = Rlimit {
        cur: 1024,
        max: 4096,
    }; // RLIMIT_NOFILE
    r[8] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    }; // RLIMIT_MEMLOCK
    r[11] = Rlimit {
        cur: 63_704,
        max: 63_704,
    }; // RLIMIT_SIGPENDING
    r[12] = Rlimit {
        cur: 819_200,
        max: 819_200,
    }; // RLIMIT_MSGQUEUE
    r[13] = Rlimit { cur: 0, max: 0 }; // RLIMIT_NICE
    r[14] = Rlimit { cur: 0, max: 0 }; // RLIMIT_RTPRIO
    r
}

/// The default thread name: the program's file name, at most 15 bytes.
/// `argv` as `/proc/<pid>/cmdline` shows it: each argument NUL-terminated.
pub fn cmdline_of(argv: &[Vec<u8>]) -> Vec<u8> {
    argv.iter()
        .flat_map(|a| a.iter().copied().chain([0]))
        .collect()
}

fn comm_of(path: &[u8]) -> [u8; 16] {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let mut c = [0u8; 16];
    let n = name.len().min(15);
    c[..n].copy_from_slice(&name[..n]);
    c
}

/// IDs every task reports: the sandbox runs its program as root of its own world, as runsc does.
pub const SANDBOX_IDS: [u32; 4] = [0, 0, 0, 0];

/// Why [`run`] could not run the program to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The program could not be started (`execve` would have failed with this errno).
    Exec(Errno),
    /// The platform failed (e.g. a stub process died).
    Platform(Errno),
}

/// The syscall layer as the task loop sees it. Whoever builds the kernel hands it to [`run`]
/// (`syscalls::layer()`): the kernel and the scheduler never import the syscall table.
pub struct Syscalls<P: Platform> {
    /// Serves the syscall the task just made (number in `orig_rax`); the result goes to `rax`.
    pub dispatch: fn(&mut Kernel, &mut Task<P>),
    /// Whether a handler installed with `SA_RESTART` restarts syscall `nr` when it interrupts
    /// it (the table says, per syscall).
    pub restartable: fn(u64) -> bool,
}

impl<P: Platform> Clone for Syscalls<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Platform> Copy for Syscalls<P> {}

/// Starts `spawn` and runs it, and everything it starts, to completion (the task loop is
/// [`crate::sched::run`]), serving syscalls with `syscalls`.
pub fn run<P: Platform>(
    platform: &mut P,
    kernel: &mut Kernel,
    spawn: Spawn,
    syscalls: Syscalls<P>,
) -> Result<ExitStatus, RunError> {
    let image =
        loader::read_image(kernel.host, kernel.host.exe_handle()).map_err(RunError::Exec)?;
    // A dynamically linked program: its interpreter (the dynamic loader) too.
    let interp = match loader::interpreter(&image).map_err(RunError::Exec)? {
        Some(path) => {
            let h = kernel.host.open(&path, 0).map_err(RunError::Exec)?;
            let r = loader::read_image(kernel.host, h);
            kernel.host.close(h);
            Some(r.map_err(RunError::Exec)?)
        }
        None => None,
    };
    let space = platform.new_address_space().map_err(RunError::Platform)?;
    let mut mm = Mm::new(space, kernel.mem.clone());
    let mut random = [0u8; 16];
    kernel.random_bytes(&mut random);
    let loaded = loader::load(
        &mut mm,
        &image,
        interp.as_deref(),
        &spawn.execfn,
        &spawn.argv,
        &spawn.envp,
        random,
        SANDBOX_IDS,
    )
    .map_err(RunError::Exec)?;
    drop(image);
    let st = kernel.host.fstat(kernel.host.exe_handle(), false);
    if let (Ok(st), None) = (st, &interp) {
        let key = crate::image_cache::ImageKey::of(&st);
        let mem = kernel.mem.clone();
        kernel.images.keep(&mem, key, &mut mm, loaded.layout);
    }
    let ctx = platform.new_context().map_err(RunError::Platform)?;
    let task = Task::first(mm, ctx, loaded.regs, spawn);
    crate::sched::run(platform, kernel, task, syscalls)
}

/// A `syscall` the task made: its site patched where the platform can (systrap), then served.
#[inline]
pub(crate) fn serve_syscall<P: Platform>(
    kernel: &mut Kernel,
    task: &mut Task<P>,
    dispatch: fn(&mut Kernel, &mut Task<P>),
) {
    if <P::AddressSpace as crate::platform::AddressSpace>::PATCHES_SITES {
        crate::patch::patch_site(&mut task.mm.lock(), task.regs.rip, task.regs.orig_rax);
    }
    dispatch(kernel, task)
}

/// Runs one event of `task`: its syscall, fault or exception.
pub(crate) fn handle_event<P: Platform>(
    kernel: &mut Kernel,
    task: &mut Task<P>,
    event: Event,
    syscalls: Syscalls<P>,
) {
    let dispatch = syscalls.dispatch;
    match event {
        Event::Syscall => serve_syscall(kernel, task, dispatch),
        Event::Exception { vector: 6, .. }
            if crate::patch::serve_ud(&mut task.mm.lock(), task.regs.rip) =>
        {
            // The old `syscall` of a patched site, reached by a jump: serve it as one.
            let r = &mut task.regs;
            r.orig_rax = r.rax;
            r.rip += 2;
            r.rcx = r.rip;
            r.r11 = r.eflags;
            dispatch(kernel, task)
        }
        Event::Fault { addr, access } if access.execute && addr == task.regs.rip => {
            if let Some(nr) = vsyscall_number(addr) {
                serve_vsyscall(kernel, task, nr, dispatch);
            } else {
                let r = task.mm.lock().handle_fault(addr, access);
                if let Err(e) = r {
                    fault_signal(kernel, task, addr, access, e);
                }
            }
        }
        Event::Fault { addr, access } => {
            let r = task.mm.lock().handle_fault(addr, access);
            if let Err(e) = r {
                fault_signal(kernel, task, addr, access, e);
            }
        }
        Event::Exception { vector, error_code } => {
            let sig = signal::for_exception(vector);
            if kernel.config.strace {
                kernel.log(format_args!(
                    "[{}] exception {} (error {:#x}) at {:#x} -> {}",
                    task.tid,
                    vector,
                    error_code,
                    task.regs.rip,
                    signal::name(sig)
                ));
            }
            let info = signal::SigInfo {
                signo: sig,
                code: signal::SI_KERNEL,
                addr: task.regs.rip,
                ..Default::default()
            };
            signal::deliver_fault(kernel, task, info);
        }
        Event::Syscall32 => {
            // The i386 ABI (int 0x80, sysenter, syscall from 32-bit code) is not served: its
            // numbers mean other syscalls than the x86-64 table's, so none may reach it.
            let n = task.regs.orig_rax;
            if kernel
                .unknown_logged
                .first_time(u64::MAX - (n & 0xffff_ffff))
                == LogVerdict::Log
            {
                kernel.log(format_args!(
                    "unsupported 32-bit syscall {} (i386 ABI): ENOSYS",
                    n & 0xffff_ffff
                ));
            }
            task.regs.rax = crate::errno::to_rax(Err(crate::errno::ENOSYS));
        }
        Event::Interrupt => {}
    }
}

/// The legacy vsyscall page (`0xffffffffff600000`): old static binaries call its three entries
/// as functions. Where the host's kernel does not hand them over (kvm: the page is not
/// mapped, so the call faults), the Sentry emulates them as Linux's `vsyscall=xonly` does.
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// The syscall an entry of the vsyscall page stands for.
fn vsyscall_number(addr: u64) -> Option<u64> {
    match addr.checked_sub(VSYSCALL_PAGE)? {
        0x000 => Some(linux_raw_sys::general::__NR_gettimeofday as u64),
        0x400 => Some(linux_raw_sys::general::__NR_time as u64),
        0x800 => Some(linux_raw_sys::general::__NR_getcpu as u64),
        _ => None,
    }
}

/// Serves a call of a vsyscall entry: the syscall, then the `ret` the entry would run.
fn serve_vsyscall<P: Platform>(
    kernel: &mut Kernel,
    task: &mut Task<P>,
    nr: u64,
    dispatch: fn(&mut Kernel, &mut Task<P>),
) {
    let Ok(ret) = task.mm.lock().read_obj::<u64>(task.regs.rsp) else {
        let access = Access {
            read: true,
            write: false,
            execute: false,
        };
        let addr = task.regs.rsp;
        return fault_signal(kernel, task, addr, access, crate::mm::Segv::MapErr);
    };
    task.regs.orig_rax = nr;
    dispatch(kernel, task);
    task.regs.rip = ret;
    task.regs.rsp = task.regs.rsp.wrapping_add(8);
}

/// The default thread name of a program.
pub(crate) fn comm_for(path: &[u8]) -> [u8; 16] {
    comm_of(path)
}

fn fault_signal<P: Platform>(
    kernel: &mut Kernel,
    task: &mut Task<P>,
    addr: u64,
    access: Access,
    e: Segv,
) {
    if kernel.config.strace {
        kernel.log(format_args!(
            "[{}] page fault at {:#x} ({}) rip {:#x}: {:?} -> SIGSEGV",
            task.tid,
            addr,
            if access.execute {
                "exec"
            } else if access.write {
                "write"
            } else {
                "read"
            },
            task.regs.rip,
            e
        ));
    }
    if e == Segv::Oom {
        kernel.log(format_args!(
            "out of sandbox memory at {addr:#x}; killing the program"
        ));
        task.exit = Some(ExitStatus {
            code: 0,
            signal: signal::SIGKILL,
        });
        return;
    }
    let code = if e == Segv::AccErr {
        signal::SEGV_ACCERR
    } else {
        signal::SEGV_MAPERR
    };
    signal::deliver_fault(
        kernel,
        task,
        signal::SigInfo {
            signo: signal::SIGSEGV,
            code,
            addr,
            ..Default::default()
        },
    );
}

#[cfg(test)]
mod tests {
    use super::{LogVerdict, UnknownLog};

    #[test]
    fn unknown_log_is_bounded_and_logs_each_number_once() {
        let mut log = UnknownLog::default();
        assert_eq!(log.first_time(335), LogVerdict::Log);
        assert_eq!(log.first_time(335), LogVerdict::Quiet);
        assert_eq!(log.first_time(1023), LogVerdict::Log);
        for n in 0..UnknownLog::SPARSE_MAX as u64 {
            assert_eq!(log.first_time(5000 + n), LogVerdict::Log);
        }
        assert_eq!(log.first_time(5000), LogVerdict::Quiet);
        assert_eq!(log.first_time(1 << 40), LogVerdict::Saturated);
        // Past the limit nothing more is kept or logged, however many numbers arrive.
        for n in 0..100_000u64 {
            assert_eq!(log.first_time(u64::MAX - n), LogVerdict::Quiet);
        }
        assert_eq!(log.sparse.len(), UnknownLog::SPARSE_MAX);
        // Small numbers are still tracked exactly.
        assert_eq!(log.first_time(7), LogVerdict::Log);
    }
}

//! One host-side runner over the three platforms: a [`Request`] (the program, its arguments and
//! environment, the sandbox root and limits) is resolved into the [`Program`] the Sentry
//! receives, run on the chosen [`Platform`], and comes back as how the sandbox ended
//! ([`End`]) and the run's statistics ([`Stats`]). `vmm run` is a thin command line over
//! [`run`]; the OCI runtime's `create`/`start` use [`prepare`] and [`Prepared::run`].

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::host;
use crate::kvm::KvmError;
use crate::sandbox::{self, SandboxError};

/// The most processes a sandbox holds unless the request says otherwise (container runtimes
/// set a few thousand; on the fallbacks each is a host process).
pub const DEFAULT_PIDS_LIMIT: u32 = 4096;

/// The most apps `--cpus` lets run at once.
pub const MAX_CPUS: u32 = 64;

/// `--cpus`'s default: the host's CPUs (those this process may use), at most [`MAX_CPUS`].
pub fn default_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| (n.get() as u32).min(MAX_CPUS))
}

/// The sandbox's memory (the memory file: app memory and the Sentry's) unless the request
/// says otherwise.
pub const DEFAULT_MEMORY: u64 = 1 << 30;

/// The PATH programs are looked up on when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How app code runs and how its syscalls reach the Sentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// The Sentry is a VM's ring-0 kernel.
    Kvm,
    /// The Sentry runs in `vmm`; the app in a stub process trapped by seccomp.
    Systrap,
    /// The Sentry runs in `vmm`; the app in a stub process stopped by `PTRACE_SYSEMU`.
    Ptrace,
}

impl Platform {
    /// Every platform, in the order `vmm platforms` lists them and `auto` tries them.
    pub const ALL: [Platform; 3] = [Platform::Kvm, Platform::Systrap, Platform::Ptrace];

    /// The platform's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Kvm => "kvm",
            Platform::Systrap => "systrap",
            Platform::Ptrace => "ptrace",
        }
    }

    /// What `--platform auto` picks: kvm where the probe VM works, else systrap where
    /// seccomp traps work, else ptrace.
    pub fn detect() -> Platform {
        if crate::probe::probe(Platform::Kvm).usable {
            Platform::Kvm
        } else if crate::probe::probe(Platform::Systrap).usable {
            Platform::Systrap
        } else {
            Platform::Ptrace
        }
    }
}

/// What the Sentry traces (`--strace`). A struct so that a syscall filter and a log file can
/// join the switch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Strace {
    /// Print every syscall with its result (on stderr, or the `--strace-log` file).
    pub enabled: bool,
    /// `--strace=LIST`: only these syscalls; `None`: all of them.
    pub only: Option<guest_sentry::kernel::SyscallSet>,
}

impl Strace {
    fn only(&self) -> guest_sentry::kernel::SyscallSet {
        self.only.unwrap_or_default()
    }
}

/// What to run, where and with which limits.
#[derive(Clone, Debug)]
pub struct Request {
    /// The program as given: a path (relative ones from `cwd`), or a name looked up on the
    /// `PATH` of `env`. It is also the program's `argv[0]`.
    pub program: OsString,
    /// The program's arguments after `argv[0]`.
    pub args: Vec<OsString>,
    /// The program's environment, `NAME=value` each.
    pub env: Vec<OsString>,
    /// The initial current directory inside the sandbox (absolute). `None`: the host's
    /// current directory when the root is the host's `/`, else `/`.
    pub cwd: Option<PathBuf>,
    /// The sandbox root: a host directory, canonical.
    pub root: PathBuf,
    /// The sandbox's memory in bytes (a multiple of 2 MiB, 64 MiB to 3 GiB).
    pub memory: u64,
    /// `--ro`: no overlay; writes to files fail with EROFS.
    pub read_only: bool,
    /// `--rw`: no overlay; writes go through to the host tree.
    pub write_through: bool,
    /// The most processes the sandbox holds at once (0: no limit).
    pub pids_limit: u32,
    /// How many apps may run at once (`--cpus`; the platforms that can run them in
    /// parallel).
    pub cpus: u32,
    pub strace: Strace,
    /// Single-step the guest and count its instructions (kvm only; slow).
    pub single_step: bool,
    /// `uname`'s nodename (the OCI runtime's `hostname`; default `vmm`).
    pub hostname: guest_sentry::kernel::Hostname,
}

impl Request {
    /// A request to run `program` with `args` (after `argv[0]`), an empty environment, the
    /// host's `/` as the root (with the writable overlay) and the default limits.
    pub fn new(program: OsString, args: Vec<OsString>) -> Request {
        Request {
            program,
            args,
            env: Vec::new(),
            cwd: None,
            root: PathBuf::from("/"),
            memory: DEFAULT_MEMORY,
            read_only: false,
            write_through: false,
            pids_limit: DEFAULT_PIDS_LIMIT,
            cpus: default_cpus(),
            strace: Strace::default(),
            single_step: false,
            hostname: Default::default(),
        }
    }

    /// `PATH` from the request's environment.
    fn path_var(&self) -> OsString {
        self.env
            .iter()
            .find_map(|e| e.as_bytes().strip_prefix(b"PATH="))
            .map(|p| OsString::from_vec(p.to_vec()))
            .unwrap_or_else(|| DEFAULT_PATH.into())
    }
}

/// The program and its arguments as the Sentry receives them.
pub struct Program {
    /// The program, open (the confined `vmm` opens no paths).
    pub file: File,
    /// The path the program was started by (`AT_EXECFN`).
    pub execfn: Vec<u8>,
    /// The program's canonical path (`/proc/self/exe`).
    pub exe_path: Vec<u8>,
    /// The initial current directory inside the sandbox (absolute).
    pub cwd: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
}

/// How the sandbox ended.
#[derive(Debug)]
pub enum End {
    /// The sandbox's init exited with this status.
    Exited(i32),
    /// The sandbox's init died of this signal.
    Signaled(i32),
    /// The program could not be started (its first `execve` failed).
    ExecFailed(ExecFailure),
    /// The Sentry reported a fatal error.
    Panic(String),
    /// The sandbox was ended from outside the Sentry: the guest broke the hypercall protocol
    /// or crashed, or a stub process died.
    Killed(String),
}

/// Why the program could not be started.
#[derive(Debug, Default)]
pub struct ExecFailure {
    /// The program's path inside the sandbox.
    pub path: PathBuf,
    /// The errno of the failed `execve`.
    pub errno: i32,
    /// Whether the program is dynamically linked (then its ELF interpreter is the likely
    /// culprit of an ENOEXEC).
    pub dynamic: bool,
}

impl ExecFailure {
    /// A failure with `errno`, the rest filled in by [`Prepared::run`].
    pub fn errno(errno: i32) -> ExecFailure {
        ExecFailure {
            errno,
            ..ExecFailure::default()
        }
    }
}

impl std::fmt::Display for ExecFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = std::io::Error::from_raw_os_error(self.errno);
        let hint = if self.errno == libc::ENOEXEC && self.dynamic {
            " (a dynamically linked program: its ELF interpreter could not be loaded)"
        } else {
            ""
        };
        write!(f, "{}: cannot execute: {why}{hint}", self.path.display())
    }
}

/// What the run counted, by platform; serialized as the `--exit-stats` file.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "platform", rename_all = "lowercase")]
pub enum Stats {
    Kvm(KvmStats),
    Systrap {
        /// Syscalls that came through the seccomp trap.
        trapped_syscalls: u64,
        /// Syscalls that came through patched call sites, without a signal.
        fast_syscalls: u64,
    },
    Ptrace,
}

/// VM exits and hypercalls seen during a kvm run.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct KvmStats {
    pub exits: u64,
    pub io_exits: u64,
    pub other_exits: u64,
    pub interrupted: u64,
    pub hypercalls: u64,
    /// With `single_step`: guest instructions executed in the app (ring 3) and the Sentry.
    pub steps_user: u64,
    pub steps_kernel: u64,
    /// CPU features the Sentry enabled (`abi::CPU_*`), as `"cpu": {"xsave": bool, ...}`.
    #[serde(rename = "cpu", serialize_with = "cpu_features")]
    pub guest_cpu: u64,
}

fn cpu_features<S: serde::Serializer>(bits: &u64, s: S) -> Result<S::Ok, S::Error> {
    use guest_sentry::abi::{CPU_PCID, CPU_SMAP, CPU_SMEP, CPU_XSAVE};
    #[derive(Serialize)]
    struct Cpu {
        xsave: bool,
        smep: bool,
        smap: bool,
        pcid: bool,
    }
    Cpu {
        xsave: bits & CPU_XSAVE != 0,
        smep: bits & CPU_SMEP != 0,
        smap: bits & CPU_SMAP != 0,
        pcid: bits & CPU_PCID != 0,
    }
    .serialize(s)
}

/// PROGRAM could not be found or is not a program.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("{0}: No such file or directory")]
    NoSuchFile(String),
    #[error("{0}: command not found")]
    CommandNotFound(String),
    #[error("{name}: not found in the sandbox root {root}")]
    NotInRoot { name: String, root: String },
    #[error("{name}: {source}")]
    Open {
        name: String,
        source: std::io::Error,
    },
    #[error("{0}: not a regular file")]
    NotRegular(String),
    #[error("{0}: Permission denied")]
    NotExecutable(String),
}

/// Why a sandbox could not be run (its program's own failures are an [`End`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("--single-step needs the kvm platform")]
    SingleStepNeedsKvm,
    #[error("installing signal forwarding: {0}")]
    Signals(std::io::Error),
    #[error("kvm: {0}")]
    Kvm(#[from] KvmError),
    #[error("{platform}: {source}")]
    Fallback {
        platform: &'static str,
        source: SandboxError,
    },
}

impl RunError {
    /// `vmm run`'s exit status for this failure: 127 when the program is not found, 126 when
    /// it cannot be executed, 2 for options that do not fit the platform, 125 when the
    /// sandbox itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Program(
                ProgramError::NoSuchFile(_)
                | ProgramError::CommandNotFound(_)
                | ProgramError::NotInRoot { .. },
            ) => 127,
            RunError::Program(_) => 126,
            RunError::SingleStepNeedsKvm => 2,
            RunError::Signals(_) | RunError::Kvm(_) | RunError::Fallback { .. } => 125,
        }
    }
}

/// A request whose program was found and opened, ready to run.
pub struct Prepared {
    request: Request,
    program: Program,
}

/// Finds and opens the request's program (inside the sandbox root, with the sandbox's own
/// rules when the root is not the host's `/`) and builds what the Sentry receives.
pub fn prepare(request: Request) -> Result<Prepared, ProgramError> {
    let (file, execfn, exe_path, cwd) = if request.root == Path::new("/") {
        let given = Path::new(&request.program);
        let path = match &request.cwd {
            Some(cwd)
                if !given.as_os_str().as_bytes().starts_with(b"/")
                    && given.as_os_str().as_bytes().contains(&b'/') =>
            {
                cwd.join(given)
            }
            _ => given.to_path_buf(),
        };
        let path = resolve(&path, &request.path_var())?;
        let file = open_program(&path)?;
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        // The sandbox root is the host's `/`, so the host's current directory is valid inside.
        let cwd = match &request.cwd {
            Some(cwd) => cwd.clone().into_os_string().into_vec(),
            None => std::env::current_dir()
                .map(|d| d.into_os_string().into_vec())
                .unwrap_or_else(|_| b"/".to_vec()),
        };
        (
            file,
            path.into_os_string().into_vec(),
            canonical.into_os_string().into_vec(),
            cwd,
        )
    } else {
        let cwd = request
            .cwd
            .as_ref()
            .map(|c| c.clone().into_os_string().into_vec())
            .unwrap_or_else(|| b"/".to_vec());
        let (file, path) = resolve_in_root(
            &request.root,
            &cwd,
            request.program.as_bytes(),
            &request.path_var(),
        )?;
        (file, path.clone(), path, cwd)
    };
    let mut argv = vec![request.program.as_bytes().to_vec()];
    argv.extend(request.args.iter().map(|a| a.as_bytes().to_vec()));
    let envp = request.env.iter().map(|e| e.as_bytes().to_vec()).collect();
    let program = Program {
        file,
        execfn,
        exe_path,
        cwd,
        argv,
        envp,
    };
    Ok(Prepared { request, program })
}

impl Prepared {
    /// Runs the sandbox on `platform` until it ends. From here on Ctrl-C and `kill vmm`
    /// reach the sandboxed program, not vmm, and vmm confines itself (see `confine.rs`):
    /// whatever must be opened by path is opened before this is called.
    pub fn run(self, platform: Platform) -> Result<(End, Stats), RunError> {
        let Prepared {
            request: r,
            program,
        } = self;
        if r.single_step && platform != Platform::Kvm {
            return Err(RunError::SingleStepNeedsKvm);
        }
        host::forward_signals().map_err(RunError::Signals)?;
        let path = PathBuf::from(OsString::from_vec(program.execfn.clone()));
        let exe = program.file.try_clone().ok();
        let (mut end, stats) = match platform {
            Platform::Kvm => {
                let cfg = crate::kvm::Config {
                    mem_size: r.memory,
                    strace: r.strace.enabled,
                    strace_only: r.strace.only(),
                    single_step: r.single_step,
                    read_only: r.read_only,
                    write_through: r.write_through,
                    pids_limit: r.pids_limit,
                    hostname: r.hostname,
                };
                let (end, stats) = crate::kvm::run(&cfg, program, &r.root)?;
                (end, Stats::Kvm(stats))
            }
            Platform::Systrap | Platform::Ptrace => {
                let kind = if platform == Platform::Systrap {
                    sandbox::Kind::Systrap
                } else {
                    sandbox::Kind::Ptrace
                };
                let config = guest_sentry::kernel::Config {
                    strace: r.strace.enabled,
                    strace_only: r.strace.only(),
                    read_only: r.read_only,
                    write_through: r.write_through,
                    pids_limit: r.pids_limit,
                    cpus: r.cpus,
                    hostname: r.hostname,
                    ..Default::default()
                };
                sandbox::run(kind, r.memory, config, program, &r.root).map_err(|source| {
                    RunError::Fallback {
                        platform: platform.name(),
                        source,
                    }
                })?
            }
        };
        if let End::ExecFailed(f) = &mut end {
            f.path = path;
            f.dynamic = f.errno == libc::ENOEXEC && exe.as_ref().is_some_and(is_dynamic);
        }
        Ok((end, stats))
    }
}

/// Runs `request` on `platform`: [`prepare`], then [`Prepared::run`]. (`vmm run` opens its
/// `--exit-stats` file between the two; the OCI runtime calls this.)
#[allow(
    dead_code,
    reason = "the entry point of the OCI runtime (vmm/src/oci/)"
)]
pub fn run(platform: Platform, request: Request) -> Result<(End, Stats), RunError> {
    prepare(request)?.run(platform)
}

/// Finds PROGRAM as a shell would: a path if it has a '/', else the first match on `path`.
fn resolve(program: &Path, path: &std::ffi::OsStr) -> Result<PathBuf, ProgramError> {
    let name = program.display().to_string();
    if program.as_os_str().as_bytes().contains(&b'/') {
        if program.exists() {
            return Ok(program.to_path_buf());
        }
        return Err(ProgramError::NoSuchFile(name));
    }
    for dir in std::env::split_paths(path) {
        let cand = dir.join(program);
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(ProgramError::CommandNotFound(name))
}

/// Finds PROGRAM inside the sandbox root `root`: a path (relative ones from `cwd`) or a name
/// searched on `path`, resolved with the sandbox's own rules.
fn resolve_in_root(
    root: &Path,
    cwd: &[u8],
    program: &[u8],
    path: &std::ffi::OsStr,
) -> Result<(File, Vec<u8>), ProgramError> {
    use std::os::unix::fs::PermissionsExt;
    let name = String::from_utf8_lossy(program).into_owned();
    let candidates: Vec<Vec<u8>> = if program.contains(&b'/') {
        let mut p = Vec::new();
        if program[0] != b'/' {
            p.extend_from_slice(cwd);
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
        }
        p.extend_from_slice(program);
        vec![p]
    } else {
        std::env::split_paths(path)
            .map(|d| {
                let mut p = d.into_os_string().into_vec();
                p.push(b'/');
                p.extend_from_slice(program);
                p
            })
            .collect()
    };
    for cand in &candidates {
        match host::open_in_root(root, cand) {
            Ok(f) => {
                let meta = f.metadata().map_err(|source| ProgramError::Open {
                    name: name.clone(),
                    source,
                })?;
                if !meta.is_file() {
                    return Err(ProgramError::NotRegular(name));
                }
                if meta.permissions().mode() & 0o111 == 0 {
                    return Err(ProgramError::NotExecutable(name));
                }
                return Ok((f, cand.clone()));
            }
            Err(host::Errno(libc::ENOENT | libc::ENOTDIR)) => continue,
            Err(e) => {
                return Err(ProgramError::Open {
                    name,
                    source: std::io::Error::from_raw_os_error(e.0),
                })
            }
        }
    }
    Err(ProgramError::NotInRoot {
        name,
        root: root.display().to_string(),
    })
}

fn open_program(path: &Path) -> Result<File, ProgramError> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.display().to_string();
    let open_err = |source| ProgramError::Open {
        name: name.clone(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    if !meta.is_file() {
        return Err(ProgramError::NotRegular(name));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(ProgramError::NotExecutable(name));
    }
    Ok(file)
}

/// Whether the ELF file has a PT_INTERP header (read through the open file: the confined
/// vmm opens no paths).
fn is_dynamic(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; 64 << 10];
    let n = file.read_at(&mut b, 0).unwrap_or(0);
    b.truncate(n);
    let Ok(h) = goblin::elf::Elf::parse_header(&b) else {
        return false;
    };
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    goblin::elf::ProgramHeader::parse(&b, h.e_phoff as usize, h.e_phnum as usize, ctx)
        .map(|phs| {
            phs.iter()
                .any(|p| p.p_type == goblin::elf::program_header::PT_INTERP)
        })
        .unwrap_or(false)
}

/// vmm's exit status when the sandbox itself failed (125, as runc and runsc say it).
pub const EXIT_VMM_FAILED: u8 = 125;

/// Says `vmm: MSG` on stderr (one line) and gives the exit status `code`.
pub fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "vmm: {msg}");
    ExitCode::from(code)
}

/// Runs a prepared sandbox to its end (`vmm run`, and an OCI container once started) and
/// says how vmm exits: the program's status, or why the sandbox failed. `stats_file`: where
/// `--exit-stats` goes (opened before vmm confines itself).
pub fn run_prepared(
    prepared: Prepared,
    platform: Platform,
    stats_file: Option<(&Path, std::io::Result<std::fs::File>)>,
) -> ExitCode {
    let (end, stats) = match prepared.run(platform) {
        Ok(x) => x,
        Err(e) => return fail(e.exit_code(), e),
    };
    if let Some((path, file)) = stats_file {
        write_exit_stats(path, file, &stats);
    }
    match end {
        End::Exited(code) => ExitCode::from(code as u8),
        End::Signaled(signal) => ExitCode::from(128 + signal as u8),
        End::ExecFailed(f) => fail(126, f),
        End::Panic(msg) => fail(EXIT_VMM_FAILED, format_args!("sandbox kernel error: {msg}")),
        End::Killed(why) => fail(EXIT_VMM_FAILED, format_args!("sandbox killed: {why}")),
    }
}

fn write_exit_stats(path: &Path, file: std::io::Result<std::fs::File>, stats: &Stats) {
    let written = file.and_then(|mut f| {
        let mut json = serde_json::to_vec(stats)?;
        json.push(b'\n');
        f.write_all(&json)
    });
    if let Err(e) = written {
        log::warn!("writing {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_stats_keep_their_shape() {
        let kvm = Stats::Kvm(KvmStats {
            exits: 7,
            io_exits: 3,
            guest_cpu: guest_sentry::abi::CPU_SMEP,
            ..KvmStats::default()
        });
        assert_eq!(
            serde_json::to_string(&kvm).unwrap(),
            "{\"platform\":\"kvm\",\"exits\":7,\"io_exits\":3,\"other_exits\":0,\"interrupted\":0,\
             \"hypercalls\":0,\"steps_user\":0,\"steps_kernel\":0,\
             \"cpu\":{\"xsave\":false,\"smep\":true,\"smap\":false,\"pcid\":false}}"
        );
        let systrap = Stats::Systrap {
            trapped_syscalls: 1,
            fast_syscalls: 2,
        };
        assert_eq!(
            serde_json::to_string(&systrap).unwrap(),
            "{\"platform\":\"systrap\",\"trapped_syscalls\":1,\"fast_syscalls\":2}"
        );
        assert_eq!(
            serde_json::to_string(&Stats::Ptrace).unwrap(),
            "{\"platform\":\"ptrace\"}"
        );
    }

    #[test]
    fn path_comes_from_the_environment() {
        let mut r = Request::new("x".into(), vec![]);
        assert_eq!(r.path_var(), DEFAULT_PATH);
        r.env = vec!["HOME=/root".into(), "PATH=/opt/bin:/bin".into()];
        assert_eq!(r.path_var(), "/opt/bin:/bin");
    }
}

//! `vmm`: run an unmodified Linux x86-64 program with every syscall served by the Sentry.
//!
//! ```text
//! vmm run [--platform kvm|systrap|ptrace|auto] [--strace] [--exit-stats FILE] [--memory MIB] [--] PROGRAM [ARGS...]
//! vmm platforms [--json]
//! ```
//!
//! Exit status: the program's, or 128+N when it died of signal N; 2 for a bad command line,
//! 126/127 when the program cannot be executed / found, 125 when the sandbox itself failed.

mod bench;
mod confine;
mod host;
mod kvm;
mod oci;
mod sandbox;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: vmm run [--platform kvm|systrap|ptrace|auto] [--root DIR] [--ro|--rw] [--strace] [--exit-stats FILE] [--memory MIB] [--pids-limit N] [--single-step] [--debug] [--] PROGRAM [ARGS...]
       vmm platforms [--json]
       vmm bench [--reps N] [--quick] [--json] [--svg FILE]";

/// Exit status for failures of vmm itself (as runsc/docker use 125).
const EXIT_VMM_FAILED: u8 = 125;

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("vmm: {msg} (see 'vmm --help')");
    ExitCode::from(2)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlatformChoice {
    Auto,
    Kvm,
    Systrap,
    Ptrace,
}

/// The most processes a sandbox holds unless `--pids-limit` says otherwise (container
/// runtimes set a few thousand; on the fallbacks each is a host process).
const DEFAULT_PIDS_LIMIT: u32 = 4096;

struct RunArgs {
    platform: PlatformChoice,
    strace: bool,
    single_step: bool,
    read_only: bool,
    write_through: bool,
    exit_stats: Option<PathBuf>,
    memory_mib: u64,
    pids_limit: u32,
    /// The sandbox root (a host directory, canonical).
    root: PathBuf,
    program: OsString,
    args: Vec<OsString>,
    /// The program's working directory inside a `--root` sandbox (default `/`; the OCI
    /// runtime's `process.cwd`).
    cwd: Option<Vec<u8>>,
    /// `uname`'s nodename (the OCI runtime's `hostname`).
    hostname: guest_sentry::kernel::Hostname,
}

fn parse_run(mut it: impl Iterator<Item = OsString>) -> Result<RunArgs, String> {
    let mut r = RunArgs {
        platform: PlatformChoice::Auto,
        strace: false,
        single_step: false,
        read_only: false,
        write_through: false,
        exit_stats: None,
        memory_mib: 1024,
        pids_limit: DEFAULT_PIDS_LIMIT,
        root: PathBuf::from("/"),
        program: OsString::new(),
        args: Vec::new(),
        cwd: None,
        hostname: Default::default(),
    };
    let value = |it: &mut dyn Iterator<Item = OsString>, flag: &str| {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    };
    loop {
        let Some(a) = it.next() else {
            return Err("run: missing PROGRAM".into());
        };
        let s = a.to_string_lossy().into_owned();
        match s.as_str() {
            "--" => {
                r.program = it.next().ok_or("run: missing PROGRAM after --")?;
                break;
            }
            "--strace" => r.strace = true,
            "--single-step" => r.single_step = true,
            "--debug" => confine::set_verbose(true),
            "--ro" => r.read_only = true,
            "--rw" => r.write_through = true,
            "--platform" => {
                let v = value(&mut it, "--platform")?;
                r.platform = match v.to_string_lossy().as_ref() {
                    "auto" => PlatformChoice::Auto,
                    "kvm" => PlatformChoice::Kvm,
                    "systrap" => PlatformChoice::Systrap,
                    "ptrace" => PlatformChoice::Ptrace,
                    other => {
                        return Err(format!(
                            "unknown platform '{other}' (kvm, systrap, ptrace or auto)"
                        ))
                    }
                };
            }
            "--exit-stats" => r.exit_stats = Some(PathBuf::from(value(&mut it, "--exit-stats")?)),
            "--root" => {
                let v = PathBuf::from(value(&mut it, "--root")?);
                r.root = std::fs::canonicalize(&v)
                    .ok()
                    .filter(|p| p.is_dir())
                    .ok_or_else(|| format!("--root: {} is not a directory", v.display()))?;
            }
            "--memory" => {
                let v = value(&mut it, "--memory")?;
                r.memory_mib = v
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .filter(|&m: &u64| (64..=3072).contains(&m) && m % 2 == 0)
                    .ok_or_else(|| {
                        format!(
                            "--memory: '{}' is not an even number of MiB in 64..=3072",
                            v.to_string_lossy()
                        )
                    })?;
            }
            "--pids-limit" => {
                let v = value(&mut it, "--pids-limit")?;
                r.pids_limit = v
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .filter(|&n: &u32| n >= 1)
                    .ok_or_else(|| {
                        format!(
                            "--pids-limit: '{}' is not a number of processes (1 or more)",
                            v.to_string_lossy()
                        )
                    })?;
            }
            _ if s.starts_with("--platform=") => {
                return Err("write '--platform NAME' (two words)".into());
            }
            _ if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("run: unknown option '{s}'"))
            }
            _ => {
                r.program = a;
                break;
            }
        }
    }
    if r.read_only && r.write_through {
        return Err("run: --ro and --rw exclude each other".into());
    }
    if r.program.is_empty() {
        return Err("run: PROGRAM is empty".into());
    }
    r.args = it.collect();
    Ok(r)
}

/// Finds PROGRAM as a shell would: a path if it has a '/', else the first match on PATH.
fn resolve(program: &Path) -> Result<PathBuf, (u8, String)> {
    let name = program.display();
    if program.as_os_str().as_bytes().contains(&b'/') {
        if program.exists() {
            return Ok(program.to_path_buf());
        }
        return Err((127, format!("{name}: No such file or directory")));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(program);
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err((127, format!("{name}: command not found")))
}

/// Finds PROGRAM inside the sandbox root `root`: a path (relative ones from `/`, the initial
/// cwd) or a name searched on PATH, resolved with the sandbox's own rules.
fn resolve_in_root(root: &Path, program: &[u8]) -> Result<(std::fs::File, Vec<u8>), (u8, String)> {
    use std::os::unix::fs::PermissionsExt;
    let name = String::from_utf8_lossy(program).into_owned();
    let candidates: Vec<Vec<u8>> = if program.contains(&b'/') {
        let mut p = Vec::new();
        if program[0] != b'/' {
            p.push(b'/');
        }
        p.extend_from_slice(program);
        vec![p]
    } else {
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path)
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
                let meta = f.metadata().map_err(|e| (126, format!("{name}: {e}")))?;
                if !meta.is_file() {
                    return Err((126, format!("{name}: not a regular file")));
                }
                if meta.permissions().mode() & 0o111 == 0 {
                    return Err((126, format!("{name}: Permission denied")));
                }
                return Ok((f, cand.clone()));
            }
            Err(libc::ENOENT) | Err(libc::ENOTDIR) => continue,
            Err(e) => {
                return Err((
                    126,
                    format!("{name}: {}", std::io::Error::from_raw_os_error(e)),
                ))
            }
        }
    }
    Err((
        127,
        format!("{name}: not found in the sandbox root {}", root.display()),
    ))
}

fn open_program(path: &Path) -> Result<std::fs::File, (u8, String)> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| (126, format!("{name}: {e}")))?;
    let meta = file.metadata().map_err(|e| (126, format!("{name}: {e}")))?;
    if !meta.is_file() {
        return Err((126, format!("{name}: not a regular file")));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err((126, format!("{name}: Permission denied")));
    }
    Ok(file)
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn cmd_platforms(json: bool) -> ExitCode {
    let kvm = kvm::probe::probe();
    let systrap = kvm::probe::probe_fallback(sandbox::Kind::Systrap);
    let ptrace = kvm::probe::probe_fallback(sandbox::Kind::Ptrace);
    // Written without println!, which panics when stdout is a closed pipe (`vmm platforms | head`).
    let mut out = Vec::new();
    if json {
        let _ = writeln!(
            out,
            "{{\"kvm\":{{\"usable\":{},\"reason\":{}}},\"systrap\":{{\"usable\":{},\"reason\":{}}},\"ptrace\":{{\"usable\":{},\"reason\":{}}}}}",
            kvm.usable,
            json_escape(&kvm.reason),
            systrap.usable,
            json_escape(&systrap.reason),
            ptrace.usable,
            json_escape(&ptrace.reason)
        );
    } else {
        let state = if kvm.usable { "usable  " } else { "unusable" };
        let _ = writeln!(out, "kvm      {state}  {}", kvm.reason);
        let state = if systrap.usable {
            "usable  "
        } else {
            "unusable"
        };
        let _ = writeln!(out, "systrap  {state}  {}", systrap.reason);
        let state = if ptrace.usable {
            "usable  "
        } else {
            "unusable"
        };
        let _ = writeln!(out, "ptrace   {state}  {}", ptrace.reason);
    }
    let _ = std::io::stdout().write_all(&out);
    ExitCode::SUCCESS
}

fn cmd_run(r: RunArgs) -> ExitCode {
    let code = run_sandbox(r);
    // However the sandbox ended, the terminal gets its modes back.
    host::restore_terminal();
    code
}

fn run_sandbox(r: RunArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("vmm: {msg}");
        ExitCode::from(code)
    };
    let platform = match r.platform {
        PlatformChoice::Auto => {
            // kvm where the probe VM works, else systrap where seccomp traps work, else ptrace.
            if kvm::probe::probe().usable {
                PlatformChoice::Kvm
            } else if kvm::probe::probe_fallback(sandbox::Kind::Systrap).usable {
                PlatformChoice::Systrap
            } else {
                PlatformChoice::Ptrace
            }
        }
        p => p,
    };
    // From here on Ctrl-C and `kill vmm` reach the sandboxed program, not vmm.
    if let Err(e) = host::forward_signals() {
        return fail(125, format!("installing signal forwarding: {e}"));
    }
    let (file, execfn, exe_path, cwd) = if r.root == Path::new("/") {
        let path = match resolve(Path::new(&r.program)) {
            Ok(p) => p,
            Err((code, msg)) => return fail(code, msg),
        };
        let file = match open_program(&path) {
            Ok(f) => f,
            Err((code, msg)) => return fail(code, msg),
        };
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        // The sandbox root is the host's `/`, so the host's current directory is valid inside.
        let cwd = std::env::current_dir()
            .map(|d| d.into_os_string().into_vec())
            .unwrap_or_else(|_| b"/".to_vec());
        (
            file,
            path.into_os_string().into_vec(),
            canonical.into_os_string().into_vec(),
            cwd,
        )
    } else {
        match resolve_in_root(&r.root, r.program.as_bytes()) {
            Ok((file, path)) => {
                let cwd = r.cwd.clone().unwrap_or_else(|| b"/".to_vec());
                (file, path.clone(), path, cwd)
            }
            Err((code, msg)) => return fail(code, msg),
        }
    };
    let path = PathBuf::from(OsString::from_vec(execfn.clone()));
    // Opened now: once confined, vmm reaches no host path (see confine.rs).
    let stats_file = r
        .exit_stats
        .as_deref()
        .map(|p| (p, std::fs::File::create(p)));
    let exe = file.try_clone().ok();
    let mut argv = vec![r.program.clone().into_vec()];
    argv.extend(r.args.iter().map(|a| a.as_bytes().to_vec()));
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let prog = kvm::Program {
        file,
        execfn,
        exe_path,
        cwd,
        argv,
        envp,
    };
    let end = if platform == PlatformChoice::Kvm {
        let cfg = kvm::Config {
            mem_size: r.memory_mib << 20,
            strace: r.strace,
            single_step: r.single_step,
            read_only: r.read_only,
            write_through: r.write_through,
            pids_limit: r.pids_limit,
            hostname: r.hostname,
        };
        let (end, stats) = match kvm::run(&cfg, prog, &r.root) {
            Ok(x) => x,
            Err(e) => return fail(EXIT_VMM_FAILED, format!("kvm: {e}")),
        };
        write_exit_stats(
            stats_file,
            &format!(
                "{{\"platform\":\"kvm\",\"exits\":{},\"io_exits\":{},\"other_exits\":{},\"interrupted\":{},\"hypercalls\":{},\"steps_user\":{},\"steps_kernel\":{},\"cpu\":{{\"xsave\":{},\"smep\":{},\"smap\":{},\"pcid\":{}}}}}",
                stats.exits, stats.io_exits, stats.other_exits, stats.interrupted, stats.hypercalls, stats.steps_user, stats.steps_kernel,
                stats.guest_cpu & guest_sentry::abi::CPU_XSAVE != 0,
                stats.guest_cpu & guest_sentry::abi::CPU_SMEP != 0,
                stats.guest_cpu & guest_sentry::abi::CPU_SMAP != 0,
                stats.guest_cpu & guest_sentry::abi::CPU_PCID != 0
            ),
        );
        end
    } else {
        if r.single_step {
            return fail(2, "--single-step needs the kvm platform".into());
        }
        let (kind, name) = if platform == PlatformChoice::Systrap {
            (sandbox::Kind::Systrap, "systrap")
        } else {
            (sandbox::Kind::Ptrace, "ptrace")
        };
        let config = guest_sentry::kernel::Config {
            strace: r.strace,
            read_only: r.read_only,
            write_through: r.write_through,
            pids_limit: r.pids_limit,
            overlay_limit: 0,
            hostname: r.hostname,
        };
        let end = match sandbox::run(kind, r.memory_mib << 20, config, prog, &r.root) {
            Ok(end) => end,
            Err(e) => return fail(EXIT_VMM_FAILED, format!("{name}: {e}")),
        };
        let json = if kind == sandbox::Kind::Systrap {
            let (trapped, fast) = fallback::systrap::syscall_counts();
            format!(
                "{{\"platform\":\"{name}\",\"trapped_syscalls\":{trapped},\"fast_syscalls\":{fast}}}"
            )
        } else {
            format!("{{\"platform\":\"{name}\"}}")
        };
        write_exit_stats(stats_file, &json);
        end
    };
    match end {
        kvm::End::Exited { exec_errno, .. } if exec_errno != 0 => {
            let why = std::io::Error::from_raw_os_error(exec_errno);
            let hint = if exec_errno == libc::ENOEXEC && exe.as_ref().is_some_and(is_dynamic) {
                " (a dynamically linked program: its ELF interpreter could not be loaded)"
            } else {
                ""
            };
            fail(
                126,
                format!("{}: cannot execute: {why}{hint}", path.display()),
            )
        }
        kvm::End::Exited {
            code, signal: 0, ..
        } => ExitCode::from(code as u8),
        kvm::End::Exited { signal, .. } => ExitCode::from(128 + signal as u8),
        kvm::End::Panic(msg) => fail(EXIT_VMM_FAILED, format!("sandbox kernel error: {msg}")),
        kvm::End::Killed(why) => fail(EXIT_VMM_FAILED, format!("sandbox killed: {why}")),
    }
}

fn write_exit_stats(file: Option<(&Path, std::io::Result<std::fs::File>)>, json: &str) {
    if let Some((path, file)) = file {
        if let Err(e) = file.and_then(|mut f| f.write_all(format!("{json}\n").as_bytes())) {
            eprintln!("vmm: writing {}: {e}", path.display());
        }
    }
}

/// Whether the ELF file has a PT_INTERP header (read through the open file: the confined
/// vmm opens no paths).
fn is_dynamic(file: &std::fs::File) -> bool {
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

fn parse_bench(mut it: impl Iterator<Item = OsString>) -> Result<bench::Options, String> {
    let mut o = bench::Options {
        reps: 3,
        json: false,
        svg: None,
        scale_down: 1,
    };
    while let Some(a) = it.next() {
        match a.to_string_lossy().as_ref() {
            "--json" => o.json = true,
            "--quick" => o.scale_down = 10,
            "--svg" => o.svg = Some(PathBuf::from(it.next().ok_or("--svg needs a file")?)),
            "--reps" => {
                o.reps = it
                    .next()
                    .and_then(|v| v.to_str().and_then(|s| s.parse().ok()))
                    .filter(|&n: &usize| (1..=100).contains(&n))
                    .ok_or("--reps needs a number in 1..=100")?
            }
            other => return Err(format!("bench: unknown option '{other}'")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    // The OCI runtime command line (containerd, Docker): see oci/mod.rs.
    if let Some(code) = oci::dispatch(&std::env::args_os().skip(1).collect::<Vec<_>>()) {
        return code;
    }
    let mut args = std::env::args_os().skip(1);
    let Some(cmd) = args.next() else {
        return usage_error("missing command");
    };
    match cmd.to_string_lossy().as_ref() {
        "run" => match parse_run(args) {
            Ok(r) => cmd_run(r),
            Err(e) => usage_error(&e),
        },
        "platforms" => {
            let rest: Vec<OsString> = args.collect();
            match rest
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .as_slice()
            {
                [] => cmd_platforms(false),
                [j] if j == "--json" => cmd_platforms(true),
                _ => usage_error("platforms takes only --json"),
            }
        }
        "bench" => match parse_bench(args) {
            Ok(o) => bench::run(o),
            Err(e) => usage_error(&e),
        },
        "__probe-kvm" => ExitCode::from(kvm::probe::child() as u8),
        "__probe-ptrace" => ExitCode::from(kvm::probe::child_fallback(sandbox::Kind::Ptrace) as u8),
        "__probe-systrap" => {
            ExitCode::from(kvm::probe::child_fallback(sandbox::Kind::Systrap) as u8)
        }
        "-h" | "--help" | "help" => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            ExitCode::SUCCESS
        }
        "-V" | "--version" => {
            let _ = writeln!(std::io::stdout(), "vmm {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown command '{other}'")),
    }
}

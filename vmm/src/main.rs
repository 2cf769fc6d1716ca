//! `vmm`: run an unmodified Linux x86-64 program with every syscall served by the Sentry.
//!
//! ```text
//! vmm [--debug] [--debug-log FILE] COMMAND
//! vmm run [--platform kvm|systrap|ptrace|auto] [--root DIR] [--ro|--rw] [--strace]
//!         [--exit-stats FILE] [--memory MIB] [--pids-limit N] [--single-step] [--]
//!         PROGRAM [ARGS...]
//! vmm platforms [--json]
//! vmm bench [--platform kvm|systrap|ptrace|runsc-ptrace,...] [--reps N] [--quick] [--json]
//!           [--svg FILE]
//! vmm --help | vmm COMMAND --help | vmm --version
//! ```
//!
//! Options take their value as the next word or after `=` (`--platform kvm`,
//! `--platform=kvm`). Everything after PROGRAM is the program's, even if it looks like an
//! option.
//!
//! Exit status of `vmm run`: the program's, or 128+N when it died of signal N; 2 for a bad
//! command line, 126/127 when the program cannot be executed / found, 125 when the sandbox
//! itself failed. Other commands: 0, 2 for a bad command line, 125 when they failed.

use vmm::runner::{fail, run_prepared};
use vmm::{bench, host, logger, oci, probe, runner};

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use runner::Platform;

/// Exit status for failures of vmm itself (as runsc/docker use 125).
/// The end of `vmm run --help` (the module doc says the same).
const RUN_EXIT_STATUS: &str = "Exit status: the program's, or 128+N when it died of signal N; \
2 for a bad command line, 126/127 when the program cannot be executed / found, 125 when the \
sandbox itself failed.";

/// Exit status for a bad command line.
const EXIT_USAGE: u8 = 2;

/// Run an unmodified Linux x86-64 program with every syscall served by the Sentry, a
/// Linux-compatible kernel of our own (on kvm, systrap or ptrace).
#[derive(Debug, Parser)]
#[command(
    name = "vmm",
    version,
    propagate_version = true,
    subcommand_required = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

/// Options of every command (given before or after the command's name).
#[derive(Debug, Args)]
struct GlobalOptions {
    /// Log what vmm does (its set-up and confinement steps) on stderr.
    #[arg(long, global = true, help_heading = "Global options")]
    debug: bool,
    /// Write vmm's log, at debug level, to FILE (warnings still go to stderr too).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    debug_log: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run PROGRAM in a sandbox (exit status: the program's, 128+N for signal N).
    #[command(after_help = RUN_EXIT_STATUS)]
    Run(RunArgs),
    /// Say which platforms work on this host, and why not.
    Platforms(PlatformsArgs),
    /// Microbenchmarks of every usable platform beside native execution.
    Bench(BenchArgs),
    /// The kvm probe's child process (see `vmm platforms`).
    #[command(name = "__probe-kvm", hide = true)]
    ProbeKvm,
    /// The systrap probe's child process.
    #[command(name = "__probe-systrap", hide = true)]
    ProbeSystrap,
    /// The ptrace probe's child process.
    #[command(name = "__probe-ptrace", hide = true)]
    ProbePtrace,
}

/// `--platform`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlatformChoice {
    /// kvm where a probe VM works, else systrap, else ptrace.
    Auto,
    /// The Sentry is a VM's ring-0 kernel.
    Kvm,
    /// The app runs in a stub process whose syscalls seccomp traps.
    Systrap,
    /// The app runs in a stub process stopped on every syscall by ptrace.
    Ptrace,
}

impl PlatformChoice {
    fn resolve(self) -> Platform {
        match self {
            PlatformChoice::Auto => Platform::detect(),
            PlatformChoice::Kvm => Platform::Kvm,
            PlatformChoice::Systrap => Platform::Systrap,
            PlatformChoice::Ptrace => Platform::Ptrace,
        }
    }
}

/// `vmm bench --platform`: a sandbox platform, or gVisor's runsc on its ptrace platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchColumn {
    Kvm,
    Systrap,
    Ptrace,
    RunscPtrace,
}

impl BenchColumn {
    fn name(self) -> &'static str {
        match self {
            BenchColumn::Kvm => "kvm",
            BenchColumn::Systrap => "systrap",
            BenchColumn::Ptrace => "ptrace",
            BenchColumn::RunscPtrace => "runsc-ptrace",
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// How app code runs and its syscalls reach the Sentry.
    #[arg(long, value_enum, value_name = "PLATFORM", default_value_t = PlatformChoice::Auto)]
    platform: PlatformChoice,
    /// The sandbox root: a host directory (seen through a writable overlay unless --ro or
    /// --rw).
    #[arg(long, value_name = "DIR", default_value = "/", value_parser = parse_root)]
    root: PathBuf,
    /// No overlay: writes to files fail with EROFS.
    #[arg(long, conflicts_with = "rw")]
    ro: bool,
    /// No overlay: file writes go through to the host tree.
    #[arg(long)]
    rw: bool,
    #[command(flatten)]
    strace: StraceArgs,
    /// Write the run's statistics (VM exits, trapped syscalls) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    exit_stats: Option<PathBuf>,
    /// The sandbox's memory, in MiB (even, 64 to 3072).
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = parse_memory)]
    memory: u64,
    /// The most processes the sandbox holds at once.
    #[arg(long, value_name = "N", default_value_t = runner::DEFAULT_PIDS_LIMIT,
          value_parser = parse_pids_limit)]
    pids_limit: u32,
    /// How many of the sandbox's processes may run app code at once (default: the host's
    /// CPUs, at most 64). 1: one at a time. The systrap platform runs them in parallel;
    /// ptrace and kvm run one at a time yet.
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    cpus: Option<u32>,
    /// Single-step the guest and count its instructions (kvm only; slow).
    #[arg(long)]
    single_step: bool,
    /// The program: a path, or a name looked up on PATH.
    #[arg(value_name = "PROGRAM", required = true,
          value_parser = clap::builder::OsStringValueParser::new().try_map(non_empty))]
    program: OsString,
    /// The program's arguments (passed as they are, even those that look like options).
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<OsString>,
}

/// `--strace`, its syscall filter and its log file.
#[derive(Debug, Args)]
struct StraceArgs {
    /// Print every syscall with its result on stderr; `--strace=open,read`: only those
    /// (names or numbers).
    #[arg(
        long = "strace",
        value_name = "SYSCALLS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    strace: Option<String>,
    /// Trace only these syscalls (names or numbers, comma-separated; as runsc's
    /// --strace-syscalls). Implies --strace.
    #[arg(long = "strace-syscalls", value_name = "SYSCALLS")]
    syscalls: Option<String>,
    /// Write the trace, and the Sentry's other log lines, to FILE instead of stderr. Implies
    /// --strace.
    #[arg(long = "strace-log", value_name = "FILE")]
    log: Option<PathBuf>,
}

impl StraceArgs {
    fn enabled(&self) -> bool {
        self.strace.is_some() || self.syscalls.is_some() || self.log.is_some()
    }

    /// The syscalls to trace: `None` for all of them.
    fn only(&self) -> Result<Option<guest_sentry::kernel::SyscallSet>, String> {
        let lists: Vec<&str> = [&self.strace, &self.syscalls]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|l| !l.is_empty())
            .collect();
        if lists.is_empty() {
            return Ok(None);
        }
        let mut set = guest_sentry::kernel::SyscallSet::NONE;
        for name in lists.iter().flat_map(|l| l.split(',')) {
            let name = name.trim();
            let nr = match name.parse::<u64>() {
                Ok(n) if n < 512 => n,
                Ok(n) => return Err(format!("--strace: syscall number {n} is not below 512")),
                Err(_) => guest_sentry::syscalls::table::number(name)
                    .map(u64::from)
                    .ok_or_else(|| {
                        format!(
                            "--strace: unknown syscall '{name}' (the Sentry does not serve it; give its number to trace it)"
                        )
                    })?,
            };
            set.insert(nr);
        }
        Ok(Some(set))
    }
}

#[derive(Debug, Args)]
struct PlatformsArgs {
    /// Print {"kvm": {"usable": BOOL, "reason": TEXT}, "systrap": ..., "ptrace": ...}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Only these columns beside native (comma list or repeated; default: every usable
    /// platform, and runsc-ptrace where runsc is installed). Naming one that cannot run here
    /// is an error.
    #[arg(
        long = "platform",
        value_enum,
        value_name = "PLATFORM",
        value_delimiter = ','
    )]
    platforms: Vec<BenchColumn>,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    reps: u16,
    /// A tenth of the iterations, and on kvm only the Sentry instruction counts that take
    /// seconds, not minutes, in the kvm rig (for a quick look).
    #[arg(long)]
    quick: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Also draw the results as an SVG bar chart into FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

fn parse_root(v: &str) -> Result<PathBuf, String> {
    std::fs::canonicalize(v)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| format!("{v} is not a directory"))
}

fn parse_memory(v: &str) -> Result<u64, String> {
    v.parse()
        .ok()
        .filter(|&m: &u64| (64..=3072).contains(&m) && m % 2 == 0)
        .ok_or_else(|| format!("'{v}' is not an even number of MiB in 64..=3072"))
}

fn parse_pids_limit(v: &str) -> Result<u32, String> {
    v.parse()
        .ok()
        .filter(|&n: &u32| n >= 1)
        .ok_or_else(|| format!("'{v}' is not a number of processes (1 or more)"))
}

fn parse_cpus(v: &str) -> Result<u32, String> {
    v.parse()
        .ok()
        .filter(|n: &u32| (1..=runner::MAX_CPUS).contains(n))
        .ok_or_else(|| format!("'{v}' is not a number of CPUs in 1..={}", runner::MAX_CPUS))
}

fn non_empty(v: OsString) -> Result<OsString, String> {
    if v.is_empty() {
        return Err("PROGRAM is empty".into());
    }
    Ok(v)
}

/// A clap error as vmm's usage errors read: one line on stderr (tests and scripts read one).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let mut msg = String::new();
    if matches!(
        e.kind(),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        msg.push_str("missing command");
    } else {
        // clap's message, its hints joined on, without the usage that follows.
        let text = e.render().to_string();
        for line in text.lines().map(str::trim) {
            if line.starts_with("Usage:") || line.starts_with("For more information") {
                break;
            }
            if line.is_empty() {
                continue;
            }
            if !msg.is_empty() {
                msg.push_str(if msg.ends_with(':') { " " } else { "; " });
            }
            msg.push_str(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    let _ = writeln!(std::io::stderr(), "vmm: {msg} (see 'vmm --help')");
    ExitCode::from(EXIT_USAGE)
}

fn cmd_platforms(args: PlatformsArgs) -> ExitCode {
    #[derive(Serialize)]
    struct Platforms {
        kvm: probe::Verdict,
        systrap: probe::Verdict,
        ptrace: probe::Verdict,
    }
    let all = Platforms {
        kvm: probe::probe(Platform::Kvm),
        systrap: probe::probe(Platform::Systrap),
        ptrace: probe::probe(Platform::Ptrace),
    };
    // Written without println!, which panics when stdout is a closed pipe (`vmm platforms | head`).
    let mut out = Vec::new();
    if args.json {
        let _ = serde_json::to_writer(&mut out, &all);
        out.push(b'\n');
    } else {
        for (name, v) in [
            ("kvm", &all.kvm),
            ("systrap", &all.systrap),
            ("ptrace", &all.ptrace),
        ] {
            let state = if v.usable { "usable  " } else { "unusable" };
            let _ = writeln!(out, "{name:<8} {state}  {}", v.reason);
        }
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
    let platform = r.platform.resolve();
    log::debug!("platform {}", platform.name());
    let mut request = runner::Request::new(r.program, r.args);
    request.env = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k;
            e.push("=");
            e.push(v);
            e
        })
        .collect();
    request.root = r.root;
    request.memory = r.memory << 20;
    request.read_only = r.ro;
    request.write_through = r.rw;
    request.pids_limit = r.pids_limit;
    if let Some(n) = r.cpus {
        request.cpus = n;
    }
    let only = match r.strace.only() {
        Ok(only) => only,
        Err(msg) => return fail(2, format_args!("{msg} (see 'vmm run --help')")),
    };
    request.strace = runner::Strace {
        enabled: r.strace.enabled(),
        only,
    };
    if let Some(path) = &r.strace.log {
        // Opened now: once confined, vmm reaches no host path (see confine.rs).
        match std::fs::File::create(path) {
            Ok(f) => host::set_sentry_log(f),
            Err(e) => return fail(2, format_args!("--strace-log: {}: {e}", path.display())),
        }
    }
    request.single_step = r.single_step;
    let prepared = match runner::prepare(request) {
        Ok(p) => p,
        Err(e) => {
            let e = runner::RunError::from(e);
            return fail(e.exit_code(), e);
        }
    };
    // Opened now: once confined, vmm reaches no host path (see confine.rs).
    let stats_file = r
        .exit_stats
        .as_deref()
        .map(|p| (p, std::fs::File::create(p)));
    run_prepared(prepared, platform, stats_file)
}

fn main() -> ExitCode {
    // The OCI runtime command line (containerd, Docker): see oci/mod.rs.
    if let Some(code) = oci::dispatch(&std::env::args_os().skip(1).collect::<Vec<_>>()) {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => usage_error(&e),
            }
        }
    };
    let log_file = match &cli.global.debug_log {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Some(f),
            Err(e) => {
                return fail(
                    EXIT_USAGE,
                    format_args!("--debug-log: cannot open {}: {e}", path.display()),
                )
            }
        },
        None => None,
    };
    logger::init(cli.global.debug, log_file);
    match cli.command {
        Command::Run(r) => cmd_run(r),
        Command::Platforms(p) => cmd_platforms(p),
        Command::Bench(b) => bench::run(bench::Options {
            reps: b.reps.into(),
            json: b.json,
            svg: b.svg,
            scale_down: if b.quick { 10 } else { 1 },
            only: (!b.platforms.is_empty()).then(|| b.platforms.iter().map(|c| c.name()).collect()),
        }),
        Command::ProbeKvm => ExitCode::from(probe::child(Platform::Kvm)),
        Command::ProbeSystrap => ExitCode::from(probe::child(Platform::Systrap)),
        Command::ProbePtrace => ExitCode::from(probe::child(Platform::Ptrace)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vmm").chain(args.iter().copied()))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args).unwrap().command {
            Command::Run(r) => r,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn program_arguments_are_passed_untouched() {
        let r = run_args(&["run", "ls", "-la", "--strace", "--", "--platform=kvm"]);
        assert_eq!(r.program, "ls");
        assert_eq!(r.args, ["-la", "--strace", "--", "--platform=kvm"]);
        assert!(!r.strace.enabled());
        let r = run_args(&["run", "--strace", "--", "-weird", "x"]);
        assert_eq!(r.program, "-weird");
        assert_eq!(r.args, ["x"]);
        assert!(r.strace.enabled());
        assert_eq!(r.strace.only(), Ok(None));
        // `--strace PROG`: PROG is the program, not a filter.
        let r = run_args(&["run", "--strace", "true"]);
        assert_eq!(r.program, "true");
        assert_eq!(r.strace.only(), Ok(None));
    }

    #[test]
    fn strace_filters_by_name_or_number() {
        let r = run_args(&["run", "--strace=openat,read,39", "true"]);
        let set = r.strace.only().unwrap().unwrap();
        assert!(set.contains(257) && set.contains(0) && set.contains(39));
        assert!(!set.contains(1) && !set.contains(600));
        let r = run_args(&["run", "--strace-syscalls", "write", "true"]);
        assert!(r.strace.enabled() && r.strace.only().unwrap().unwrap().contains(1));
        let r = run_args(&["run", "--strace=nosuchcall", "true"]);
        assert!(r
            .strace
            .only()
            .unwrap_err()
            .contains("unknown syscall 'nosuchcall'"));
    }

    #[test]
    fn options_take_values_either_way() {
        for args in [
            &["run", "--platform=ptrace", "--memory=128", "x"][..],
            &["run", "--platform", "ptrace", "--memory", "128", "x"],
        ] {
            let r = run_args(args);
            assert_eq!(r.platform, PlatformChoice::Ptrace);
            assert_eq!(r.memory, 128);
        }
        let r = run_args(&["run", "x"]);
        assert_eq!(r.platform, PlatformChoice::Auto);
        assert_eq!(r.memory, 1024);
        assert_eq!(r.pids_limit, runner::DEFAULT_PIDS_LIMIT);
        assert_eq!(r.root, Path::new("/"));
        let cli = parse(&["run", "--debug", "x"]).unwrap();
        assert!(cli.global.debug);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["run"][..],
            &["run", "--"],
            &["run", ""],
            &["run", "--platform", "bogus", "x"],
            &["run", "--memory", "65", "x"],
            &["run", "--memory", "4096", "x"],
            &["run", "--pids-limit", "0", "x"],
            &["run", "--ro", "--rw", "x"],
            &["run", "--no-such-flag", "x"],
            &["bench", "--reps", "0"],
            &["bench", "--bogus"],
            &["bench", "--platform", "bogus"],
            &["bench", "--platform", "kvm,"],
            &["platforms", "x"],
            &[],
        ] {
            let e = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn probe_subcommands_are_hidden() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("platforms"), "{help}");
        assert!(!help.contains("__probe"), "{help}");
        assert!(matches!(
            parse(&["__probe-systrap"]).unwrap().command,
            Command::ProbeSystrap
        ));
    }
}

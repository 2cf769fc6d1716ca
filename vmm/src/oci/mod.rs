//! `vmm` as an OCI runtime: the command line containerd's `io.containerd.runc.v2` shim and
//! Docker send to `runc` (`create`, `start`, `state`, `kill`, `delete`, `run --bundle`, `list`,
//! `ps`, `features`; `exec` is refused for now).
//!
//! The model is runc's: `create` validates the bundle's `config.json`, makes the state
//! directory `ROOT/ID` and spawns the container process — a detached `vmm __oci-init` that
//! inherits create's stdio (or a pty's slave, whose master goes over `--console-socket`),
//! prepares the sandbox and blocks opening `ROOT/ID/exec.fifo` for writing. `start` opens the
//! FIFO for reading, which releases it: it then runs the sandbox (the existing `vmm run` code,
//! `crate::cmd_run`) and exits with the program's status. That process is the container's pid:
//! `kill` signals it, vmm forwards them to the sandbox, and the shim reaps it.
//!
//! Errors: one line on stderr (and in `--log`, as JSON with `--log-format json`), exit 1.

mod cgroup;
mod hooks;
mod init;
mod spec;
mod state;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Subcommands that are always the OCI runtime's (`run` only with `--bundle`, or after a
/// global option).
const OCI_COMMANDS: [&str; 17] = [
    "create",
    "start",
    "state",
    "kill",
    "delete",
    "list",
    "ps",
    "features",
    "exec",
    "pause",
    "resume",
    "update",
    "events",
    "checkpoint",
    "restore",
    "spec",
    init::SUBCOMMAND,
];

/// Global options taking a value (runc's).
const GLOBAL_VALUE: [&str; 6] = [
    "--root",
    "--log",
    "--log-format",
    "--criu",
    "--rootless",
    "--platform",
];
/// Global flags (runc's).
const GLOBAL_FLAG: [&str; 2] = ["--systemd-cgroup", "--debug"];

/// Options of the plain `vmm run` (and OCI `run`) that take a value: skipped when looking
/// for `--bundle`.
const RUN_VALUE: [&str; 8] = [
    "--platform",
    "--root",
    "--exit-stats",
    "--memory",
    "--pids-limit",
    "--pid-file",
    "--console-socket",
    "--preserve-fds",
];

/// Whether `vmm ARGS` is the OCI command line; then runs it and returns its exit status.
/// Everything else (`vmm run PROG`, `vmm platforms`, ...) returns `None` and is main.rs's.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    let s: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if !classify(&s) {
        return None;
    }
    let mut argv = vec![OsString::from("vmm")];
    argv.extend(args.iter().cloned());
    Some(main(argv))
}

/// Whether the command line is the OCI runtime's.
fn classify(s: &[String]) -> bool {
    let mut i = 0;
    let mut globals = false;
    while i < s.len() {
        let a = s[i].as_str();
        if GLOBAL_FLAG.contains(&a) {
            i += 1;
        } else if GLOBAL_VALUE.contains(&a) {
            i += 2;
        } else if GLOBAL_VALUE
            .iter()
            .chain(GLOBAL_FLAG.iter())
            .any(|g| a.starts_with(&format!("{g}=")))
        {
            i += 1;
        } else {
            break;
        }
        globals = true;
    }
    let cmd = s.get(i).map(String::as_str);
    match cmd {
        Some("run") => globals || run_has_bundle(&s[i + 1..]),
        Some(c) => globals || OCI_COMMANDS.contains(&c),
        None => globals,
    }
}

/// Whether the arguments of `run` name a bundle before the program (`--` or the first
/// positional argument ends the options of the plain `vmm run`).
fn run_has_bundle(rest: &[String]) -> bool {
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => return false,
            "-b" | "--bundle" => return true,
            _ if a.starts_with("--bundle=") || a.starts_with("-b=") => return true,
            _ if RUN_VALUE.contains(&a.as_str()) => {
                it.next();
            }
            _ if a.starts_with('-') && a.len() > 1 => {}
            _ => return false,
        }
    }
    false
}

#[derive(Parser, Debug)]
#[command(
    name = "vmm",
    about = "vmm as an OCI runtime (the runc command line)",
    disable_version_flag = true
)]
struct Cli {
    /// Directory of the containers' state.
    #[arg(long, default_value = "/run/vmm")]
    root: PathBuf,
    /// Log file (errors and warnings; default stderr).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Accepted for compatibility (vmm makes no cgroups).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Debug log lines.
    #[arg(long)]
    debug: bool,
    /// The platform of containers whose config.json has no dev.vmm.platform annotation
    /// (an engine's runtime entry can pass it: Docker's runtimeArgs).
    #[arg(long, value_parser = ["auto", "kvm", "systrap", "ptrace"])]
    platform: Option<String>,
    /// Accepted for compatibility (no checkpoints).
    #[arg(long, hide = true)]
    criu: Option<String>,
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug, Clone)]
struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Where to write the container process's pid.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the pty master to (process.terminal).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Accepted for compatibility.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for compatibility.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the container process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// The container ID.
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// The container's state (JSON).
    State { id: String },
    /// Send a signal (name or number, default TERM) to the container's process.
    Kill {
        /// Signal every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a stopped (or, with --force, any) container.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Do not wait for the container.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Accepted for compatibility (the state is deleted after the container ends).
        #[arg(long)]
        keep: bool,
    },
    /// The containers under --root.
    List {
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// The container's processes.
    Ps {
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// What this runtime supports (JSON).
    Features,
    /// A new process in a running container (not supported yet).
    Exec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Freeze the container's processes (its cgroup's freezer).
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    #[command(hide = true)]
    Update {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    #[command(hide = true)]
    Events {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    #[command(hide = true)]
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    #[command(hide = true)]
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Write a starter config.json (rootfs `rootfs`, `sh` on a terminal) into the bundle.
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// Accepted for compatibility.
        #[arg(long)]
        rootless: bool,
    },
    /// The container process (spawned by `create`).
    #[command(name = "__oci-init", hide = true)]
    OciInit {
        /// The container's state directory.
        #[arg(long)]
        state_dir: PathBuf,
        /// The pipe end to report readiness on.
        #[arg(long)]
        sync_fd: i32,
    },
}

/// Where errors and warnings go: stderr (errors always, as runc does) and the `--log` file.
pub struct Log {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
    /// The global options, for the container process's command line.
    pub globals: Vec<OsString>,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// `--platform`: the default platform.
    pub platform: Option<String>,
}

impl Log {
    fn open(path: Option<&std::path::Path>, json: bool, debug: bool) -> Log {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let mut globals = Vec::new();
        if let Some(p) = path {
            // Absolute: the container process must find it whatever its directory.
            let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            globals.extend([OsString::from("--log"), p.into_os_string()]);
        }
        if json {
            globals.extend([OsString::from("--log-format"), OsString::from("json")]);
        }
        if debug {
            globals.push(OsString::from("--debug"));
        }
        Log {
            file,
            json,
            debug,
            globals,
            systemd_cgroup: false,
            platform: None,
        }
    }

    fn line(&self, level: &str, msg: &str) {
        let text = if self.json {
            let mut o = serde_json::Map::new();
            o.insert("level".into(), level.into());
            o.insert("msg".into(), msg.into());
            o.insert("time".into(), rfc3339_now().into());
            format!("{}\n", serde_json::Value::Object(o))
        } else {
            format!("{} vmm {level}: {msg}\n", rfc3339_now())
        };
        if let Some(mut f) = self.file.as_ref() {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// An error: stderr and the log file.
    pub fn error(&self, msg: &str) {
        let _ = writeln!(std::io::stderr(), "vmm: {msg}");
        self.line("error", msg);
    }

    /// A warning (an ignored or approximated config.json field): the log file, or stderr
    /// when there is none.
    pub fn warn(&self, msg: &str) {
        if self.file.is_some() {
            self.line("warning", msg);
        } else {
            let _ = writeln!(std::io::stderr(), "vmm: warning: {msg}");
        }
    }

    /// A debug line (`--debug` only).
    pub fn debug(&self, msg: &str) {
        if self.debug {
            if self.file.is_some() {
                self.line("debug", msg);
            } else {
                let _ = writeln!(std::io::stderr(), "vmm: debug: {msg}");
            }
        }
    }
}

/// Now as RFC 3339 UTC (`2006-01-02T15:04:05.000000000Z`).
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// A failed command: its message (one line) and exit status.
pub struct Failure {
    pub msg: String,
    pub code: u8,
}

impl<T: Into<String>> From<T> for Failure {
    fn from(msg: T) -> Self {
        Failure {
            msg: msg.into(),
            code: 1,
        }
    }
}

pub type Res<T> = Result<T, Failure>;

fn main(argv: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(1),
            };
        }
    };
    let mut log = Log::open(cli.log.as_deref(), cli.log_format == "json", cli.debug);
    log.systemd_cgroup = cli.systemd_cgroup;
    log.platform = cli.platform.clone();
    crate::logger::init(cli.debug, None);
    let root = cli.root.clone();
    let result: Res<ExitCode> = match cli.cmd {
        Cmd::Create(c) => init::create(&log, &root, &c, false).map(|_| ExitCode::SUCCESS),
        Cmd::Start { id } => state::start(&log, &root, &id).map(|()| ExitCode::SUCCESS),
        Cmd::State { id } => state::print_state(&root, &id).map(|()| ExitCode::SUCCESS),
        Cmd::Kill { all, id, signal } => {
            state::kill(&log, &root, &id, signal.as_deref(), all).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Delete { force, id } => {
            state::delete(&log, &root, &id, force).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Run {
            create, detach, ..
        } => init::run(&log, &root, &create, detach),
        Cmd::List { format, quiet } => {
            state::list(&root, &format, quiet).map(|()| ExitCode::SUCCESS)
        }
        Cmd::Ps { format, id, .. } => state::ps(&root, &id, &format).map(|()| ExitCode::SUCCESS),
        Cmd::Features => {
            let _ = writeln!(std::io::stdout(), "{}", features());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exec { .. } => Err(Failure::from(
            "exec is not supported yet: the Sentry cannot start a second process in a running sandbox",
        )),
        Cmd::Pause { id } => state::pause(&log, &root, &id, true).map(|()| ExitCode::SUCCESS),
        Cmd::Resume { id } => state::pause(&log, &root, &id, false).map(|()| ExitCode::SUCCESS),
        Cmd::Update { .. } => Err("update is not supported by vmm".into()),
        Cmd::Events { .. } => Err("events is not supported by vmm".into()),
        Cmd::Checkpoint { .. } | Cmd::Restore { .. } => {
            Err("checkpoint and restore are not supported by vmm".into())
        }
        Cmd::Spec { bundle, .. } => write_spec(&bundle).map(|()| ExitCode::SUCCESS),
        Cmd::OciInit { state_dir, sync_fd } => Ok(init::init(&log, &state_dir, sync_fd)),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            log.error(&f.msg);
            ExitCode::from(f.code)
        }
    }
}

/// `vmm spec`: a starter config.json, as `runc spec` writes (refuses to overwrite one).
fn write_spec(bundle: &std::path::Path) -> Res<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("{} already exists", path.display()).into());
    }
    let spec = serde_json::json!({
        "ociVersion": spec::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "annotations": {"dev.vmm.platform": "auto"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
    });
    let text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// `vmm features`: the runtime-spec `features.md` document.
fn features() -> String {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "nodev", "noexec", "rbind", "bind", "rprivate", "private", "relatime", "strictatime", "mode", "size", "newinstance", "ptmxmode", "gid"],
        "linux": {
            "namespaces": ["mount", "pid", "network", "ipc", "uts", "user", "cgroup"],
            "capabilities": [],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "dev.vmm.platform": "the platform of this container: kvm, systrap, ptrace or auto",
            "org.opencontainers.runc.checkpoint.enabled": "false"
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    fn oci(args: &[&str]) -> bool {
        let s: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        // dispatch() runs the command: the classification alone is tested.
        super::classify(&s)
    }

    #[test]
    fn which_command_lines_are_oci() {
        assert!(oci(&["create", "--bundle", "b", "id"]));
        assert!(oci(&[
            "--root",
            "/run/x",
            "--log",
            "l",
            "--log-format",
            "json",
            "start",
            "id"
        ]));
        assert!(oci(&["--root=/run/x", "state", "id"]));
        assert!(oci(&[
            "--platform",
            "ptrace",
            "create",
            "--bundle",
            "b",
            "id"
        ]));
        assert!(oci(&["run", "--bundle", "b", "id"]));
        assert!(oci(&["run", "-b", "b", "id"]));
        assert!(oci(&["run", "-d", "--pid-file", "p", "--bundle=b", "id"]));
        assert!(oci(&["--root", "r", "run", "id"]));
        assert!(oci(&["features"]));
        assert!(!oci(&["run", "--", "prog", "--bundle", "x"]));
        assert!(!oci(&["run", "prog", "-b", "x"]));
        assert!(!oci(&[
            "run",
            "--platform",
            "systrap",
            "--root",
            "/r",
            "prog"
        ]));
        assert!(!oci(&["run", "--root", "-b", "prog"]));
        assert!(!oci(&["platforms", "--json"]));
        assert!(!oci(&["bench"]));
        assert!(!oci(&["--help"]));
        assert!(!oci(&[]));
    }
}

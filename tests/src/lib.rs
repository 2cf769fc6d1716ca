//! Test harness: runs the C test programs (built by `build.rs` into one
//! directory per variant) natively and under `vmm run`, and compares.
//!
//! Environment variables:
//! - `VMM_BIN`: the vmm binary (default: `<target>/<profile>/vmm`, next to
//!   the directory holding the test executables; build it with
//!   `cargo build -p vmm` first).
//! - `VMM_TEST_PROGS`: directory of built programs (default: the one
//!   `build.rs` produced, `VMM_TEST_PROGS_DIR` at compile time).
//! - `VMM_TEST_VARIANTS`: comma list restricting variants (`musl`,
//!   `musl-pie`, `glibc`, `glibc-pie`); default: every variant built.
//! - `VMM_TEST_PLATFORMS`: comma list of platforms to test; default: every
//!   platform `vmm platforms --json` reports.
//! - `VMM_REQUIRE_PLATFORMS`: comma list of platforms that must be usable;
//!   an unusable one fails the test instead of being skipped.

pub mod diff;
pub mod hostcheck;

use std::ffi::{OsStr, OsString};
use std::fmt::{self, Write as _};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use diff::line_diff;

/// Every variant `build.rs` knows how to build, in test order.
pub const ALL_VARIANTS: [&str; 4] = ["musl", "musl-pie", "glibc", "glibc-pie"];

/// Platforms assumed when `vmm platforms --json` cannot be asked.
pub const KNOWN_PLATFORMS: [&str; 3] = ["kvm", "systrap", "ptrace"];

/// Any single run taking longer than this is killed and fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The whole environment every program (and vmm) runs with.
pub const FIXED_ENV: [(&str, &str); 3] =
    [("PATH", "/usr/bin:/bin"), ("HOME", "/"), ("VMMTEST", "1")];

// ---------------------------------------------------------------- locations

/// Directory holding `<variant>/<program>`.
pub fn progs_dir() -> PathBuf {
    match std::env::var_os("VMM_TEST_PROGS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("VMM_TEST_PROGS_DIR")),
    }
}

/// The variants to test: those built (or present in `VMM_TEST_PROGS`),
/// filtered by `VMM_TEST_VARIANTS`. Panics if that leaves none.
pub fn variants() -> Vec<&'static str> {
    let dir = progs_dir();
    let wanted = env_list("VMM_TEST_VARIANTS");
    if let Some(w) = &wanted {
        for v in w {
            assert!(
                ALL_VARIANTS.contains(&v.as_str()),
                "VMM_TEST_VARIANTS: unknown variant {v:?} (known: {ALL_VARIANTS:?})"
            );
        }
    }
    let v: Vec<&'static str> = ALL_VARIANTS
        .iter()
        .copied()
        .filter(|v| dir.join(v).is_dir())
        .filter(|v| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == v)))
        .collect();
    assert!(
        !v.is_empty(),
        "no test program variants found in {} (VMM_TEST_VARIANTS={:?})",
        dir.display(),
        wanted
    );
    v
}

/// Absolute path of a built test program. Panics if it is missing.
pub fn prog_path(variant: &str, prog: &str) -> PathBuf {
    let p = progs_dir().join(variant).join(prog);
    assert!(p.is_file(), "test program {} not built", p.display());
    p
}

/// The vmm binary: `VMM_BIN`, else `vmm` in the profile directory above the
/// running test executable (`target/<profile>/deps/<test>`).
pub fn vmm_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("VMM_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("VMM_BIN={} does not exist", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let p = dir.join("vmm");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "vmm binary not found at {} (run `cargo build -p vmm` with the same profile, or set VMM_BIN)",
            p.display()
        ))
    }
}

/// Like [`vmm_bin`], panicking with the reason.
pub fn vmm_bin_or_panic() -> PathBuf {
    vmm_bin().unwrap_or_else(|e| panic!("{e}"))
}

fn env_list(var: &str) -> Option<Vec<String>> {
    let v = std::env::var(var).ok()?;
    Some(
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

// ---------------------------------------------------------------- running

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Shell-like rendering of what ran, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl RunOutput {
    /// Exit status as a shell reports it: the code, or 128+N for signal N.
    pub fn code(&self) -> i32 {
        shell_status(&self.status)
    }

    /// The signal that killed the process, if any.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(
            f,
            "status: {} ({:?})",
            describe_status(&self.status),
            self.elapsed
        )?;
        writeln!(f, "stdout:\n{}", indent(&self.stdout_str()))?;
        write!(f, "stderr:\n{}", indent(&tail(&self.stderr_str(), 40)))
    }
}

/// The code, or 128+N for death by signal N.
pub fn shell_status(s: &ExitStatus) -> i32 {
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => -1,
    }
}

fn describe_status(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("signal {sig} (shell status {})", 128 + sig),
        _ => format!("{s}"),
    }
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        return "    (empty)".into();
    }
    s.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    if all.len() <= lines {
        return s.to_string();
    }
    format!(
        "... ({} lines omitted)\n{}",
        all.len() - lines,
        all[all.len() - lines..].join("\n")
    )
}

fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs `program args` with the fixed environment, stdin from /dev/null,
/// stdout/stderr captured, no core dumps, in its own process group; kills the
/// group and panics after [`TIMEOUT`].
pub fn run_command<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> RunOutput {
    run_command_timeout(program, args, TIMEOUT)
}

/// [`run_command`] with an explicit timeout.
pub fn run_command_timeout<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    timeout: Duration,
) -> RunOutput {
    run_inner(program, args, timeout, None)
}

/// Runs `program args` with stdin held open (a pipe nobody writes) and sends `sig` to its
/// process group each time it prints a line starting with `ready` — what a terminal does to
/// its foreground process group on Ctrl-C.
pub fn run_signalled<S: AsRef<OsStr>>(program: &Path, args: &[S], sig: i32) -> RunOutput {
    run_inner(program, args, TIMEOUT, Some(sig))
}

/// Makes the command's process dump no core (a crash under test must not fill the disk).
pub(crate) fn no_core_dumps(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setrlimit(2), which is async-signal-safe; it touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `zero` is a valid rlimit that outlives the call.
            if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn run_inner<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    timeout: Duration,
    signal_on_ready: Option<i32>,
) -> RunOutput {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(FIXED_ENV)
        .stdin(if signal_on_ready.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    no_core_dumps(&mut cmd);
    let (command, start, mut child) = spawn_quoted(&mut cmd, program, args);
    let pid = child.id() as libc::pid_t;
    let _stdin = child.stdin.take();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out_t = match signal_on_ready {
        None => reader(Box::new(child.stdout.take().unwrap())),
        Some(sig) => {
            let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
            std::thread::spawn(move || {
                use std::io::BufRead;
                let mut buf = Vec::new();
                loop {
                    let mut line = Vec::new();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if line.starts_with(b"ready") {
                        // Let the program reach the wait it announced.
                        std::thread::sleep(Duration::from_millis(100));
                        // SAFETY: kill(2) of the group we created for the child.
                        unsafe { libc::kill(-pid, sig) };
                    }
                    buf.extend_from_slice(&line);
                }
                buf
            })
        }
    };
    let err_t = reader(Box::new(child.stderr.take().unwrap()));

    // Poll with WNOWAIT so the exited child stays a zombie: its pid (and so
    // the process-group id) cannot be reused before we kill the group.
    let mut timed_out = false;
    loop {
        if exited_nowait(pid) {
            break;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed();
    // Kill whatever is left in the group (the child on timeout, or a helper
    // process that would otherwise keep the pipes open).
    kill_group(pid);
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("waiting for `{command}`: {e}"));
    let out = RunOutput {
        command,
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        elapsed,
    };
    if timed_out {
        panic!("timed out after {timeout:?}, killed:\n{out}");
    }
    out
}

/// Runs `program args` on a fresh pseudo-terminal (24 rows, 80 columns) as the session
/// leader with it as controlling terminal, stdin, stdout and stderr — as a shell would start
/// it. For each `(expect, keys)` step, waits until the terminal output shows `expect` (after
/// the previous step's), then types `keys` (e.g. `"\x03"`: Ctrl-C). The output is what the
/// terminal showed (echo included), in `stdout`.
pub fn run_in_pty<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    steps: &[(&str, &[u8])],
) -> RunOutput {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::{Arc, Mutex};
    let (mut m, mut sl) = (0, 0);
    let ws = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: out-parameters for the two fds; null name and termios, a valid winsize.
    if unsafe { libc::openpty(&mut m, &mut sl, std::ptr::null_mut(), std::ptr::null(), &ws) } != 0 {
        panic!("openpty: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors we own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(sl)) };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(FIXED_ENV)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe; the closure touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (command, start, mut child) = spawn_quoted(&mut cmd, program, args);
    drop(cmd);
    drop(slave);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        let fd = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(fd);
            let mut buf = [0u8; 4096];
            // Ends with EIO once every holder of the terminal's other side is gone.
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut from = 0;
    let mut failed = None;
    for (expect, keys) in steps {
        loop {
            let out = seen.lock().unwrap().clone();
            if let Some(i) = find(&out[from..], expect.as_bytes()) {
                from += i + expect.len();
                break;
            }
            if start.elapsed() > TIMEOUT || exited_nowait(child.id() as libc::pid_t) {
                failed = Some(format!("never saw {expect:?}"));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if failed.is_some() {
            break;
        }
        // Let the program reach the read or wait it announced.
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: writing a byte slice to the terminal's master side.
        unsafe { libc::write(master.as_raw_fd(), keys.as_ptr().cast(), keys.len()) };
    }
    let pid = child.id() as libc::pid_t;
    while !exited_nowait(pid) && start.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    // SAFETY: kill(2) of our child (a no-op once it exited).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = child.wait().expect("waiting for the child");
    let _ = reader.join();
    let out = RunOutput {
        command,
        status,
        stdout: seen.lock().unwrap().clone(),
        stderr: Vec::new(),
        elapsed,
    };
    if let Some(why) = failed {
        panic!("{why}:\n{out}");
    }
    out
}

/// Spawns `cmd` (which runs `program args`); returns how it reads as a shell line, when it
/// started, and the child.
fn spawn_quoted<S: AsRef<OsStr>>(
    cmd: &mut Command,
    program: &Path,
    args: &[S],
) -> (String, Instant, std::process::Child) {
    let mut command = shell_quote(program.as_os_str());
    for a in args {
        command.push(' ');
        command.push_str(&shell_quote(a.as_ref()));
    }
    let start = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn `{command}`: {e}"));
    (command, start, child)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True once `pid` (our child) has exited; does not reap it.
fn exited_nowait(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t; WNOWAIT leaves the child
    // waitable, so std's later wait() still reaps it.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return false;
        }
        panic!("waitid({pid}): {e}");
    }
    // SAFETY: waitid filled `info` (or left it zeroed when nothing changed);
    // si_pid is valid for SIGCHLD-style information.
    unsafe { info.si_pid() != 0 }
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid signals the process group we
    // created for the child (process_group(0) made its pid the pgid); it has
    // no memory-safety preconditions. ESRCH (already gone) is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// A listing of every entry under `dir`: relative path, kind, permission bits, size or link
/// target, content hash of files — what two runs of the same script must agree on.
pub fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let mode = md.permissions().mode() & 0o7777;
            if md.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if md.is_dir() {
                out.push(format!("{rel}/ {mode:o}"));
                stack.push(p);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.push(format!(
                    "{rel} {mode:o} {} {:?}",
                    data.len(),
                    String::from_utf8_lossy(&data)
                ));
            }
        }
    }
    out
}

/// Runs a test program directly on the host.
pub fn run_native<S: AsRef<OsStr>>(variant: &str, prog: &str, args: &[S]) -> RunOutput {
    run_command(&prog_path(variant, prog), args)
}

/// `vmm run --platform <platform> <extra_vmm_flags...> -- <prog> <args...>`.
pub fn run_vmm<S: AsRef<OsStr>>(
    platform: &str,
    variant: &str,
    prog: &str,
    args: &[S],
    extra_vmm_flags: &[&str],
) -> RunOutput {
    let vmm = vmm_bin_or_panic();
    let mut a: Vec<OsString> = vec!["run".into(), "--platform".into(), platform.into()];
    a.extend(extra_vmm_flags.iter().map(OsString::from));
    a.push("--".into());
    a.push(prog_path(variant, prog).into_os_string());
    a.extend(args.iter().map(|s| s.as_ref().to_os_string()));
    run_command(&vmm, &a)
}

/// Runs vmm with arbitrary arguments (CLI tests).
pub fn run_vmm_raw<S: AsRef<OsStr>>(args: &[S]) -> RunOutput {
    run_command(&vmm_bin_or_panic(), args)
}

// ---------------------------------------------------------------- comparing

/// Compares a native run with a sandboxed one: shell exit status and stdout
/// always; stderr too when the program itself wrote some natively (vmm may
/// log to stderr otherwise). Returns a readable report on mismatch.
pub fn check_same(native: &RunOutput, sandboxed: &RunOutput) -> Result<(), String> {
    let mut problems = String::new();
    if native.code() != sandboxed.code() {
        let _ = writeln!(
            problems,
            "exit status differs: native {}, sandboxed {}",
            describe_status(&native.status),
            describe_status(&sandboxed.status)
        );
    }
    if native.stdout != sandboxed.stdout {
        let _ = writeln!(
            problems,
            "stdout differs (- native, + sandboxed):\n{}",
            line_diff(&native.stdout_str(), &sandboxed.stdout_str())
        );
    }
    if !native.stderr.is_empty() && native.stderr != sandboxed.stderr {
        let _ = writeln!(
            problems,
            "stderr differs (- native, + sandboxed):\n{}",
            line_diff(&native.stderr_str(), &sandboxed.stderr_str())
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{problems}\n--- native:\n{native}\n--- sandboxed:\n{sandboxed}"
        ))
    }
}

/// Panicking form of [`check_same`].
pub fn assert_same(native: &RunOutput, sandboxed: &RunOutput) {
    if let Err(e) = check_same(native, sandboxed) {
        panic!("native and sandboxed runs differ:\n{e}");
    }
}

// ---------------------------------------------------------------- platforms

/// One entry of `vmm platforms --json`.
#[derive(Debug, Clone)]
pub struct PlatformInfo {
    pub name: String,
    pub usable: bool,
    pub reason: String,
}

/// The parsed output of `vmm platforms --json` (asked once per process).
pub fn query_platforms() -> Result<Vec<PlatformInfo>, String> {
    static CACHE: OnceLock<Result<Vec<PlatformInfo>, String>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let vmm = vmm_bin()?;
            let out = run_command(&vmm, &["platforms", "--json"]);
            if !out.status.success() {
                return Err(format!(
                    "`vmm platforms --json` failed ({}): {}",
                    describe_status(&out.status),
                    out.stderr_str().trim()
                ));
            }
            parse_platforms(&out.stdout_str())
                .map_err(|e| format!("cannot parse `vmm platforms --json` output: {e}"))
        })
        .clone()
}

/// Parses `{"kvm":{"usable":bool,"reason":"..."}, ...}`.
pub fn parse_platforms(text: &str) -> Result<Vec<PlatformInfo>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{e} in {text:?}"))?;
    let obj = v.as_object().ok_or("top level is not an object")?;
    obj.iter()
        .map(|(name, info)| {
            let usable = info
                .get("usable")
                .and_then(serde_json::Value::as_bool)
                .ok_or_else(|| format!("{name}: missing boolean \"usable\""))?;
            let reason = info
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string();
            Ok(PlatformInfo {
                name: name.clone(),
                usable,
                reason,
            })
        })
        .collect()
}

/// Whether kvm is among the platforms under test; if not, says so (a kvm-only test then
/// skips, printing why).
pub fn kvm_or_skip(test: &str) -> bool {
    if platforms_under_test().iter().any(|p| p == "kvm") {
        true
    } else {
        eprintln!("skipping {test}: kvm is not among the platforms under test");
        false
    }
}

/// The platforms to run sandboxed tests on.
///
/// Requested = `VMM_TEST_PLATFORMS` (default: all reported by vmm, or
/// [`KNOWN_PLATFORMS`] if vmm cannot be asked) plus `VMM_REQUIRE_PLATFORMS`.
/// A requested platform that is not usable panics if required, else prints
/// `skipping <platform>: <reason>` to stderr and is left out.
pub fn platforms_under_test() -> Vec<String> {
    let requested_env = env_list("VMM_TEST_PLATFORMS");
    let required = env_list("VMM_REQUIRE_PLATFORMS").unwrap_or_default();
    let query = query_platforms();

    let mut requested: Vec<String> = match (&requested_env, &query) {
        (Some(r), _) => r.clone(),
        (None, Ok(infos)) => infos.iter().map(|i| i.name.clone()).collect(),
        (None, Err(_)) => KNOWN_PLATFORMS.iter().map(|s| s.to_string()).collect(),
    };
    for r in &required {
        if !requested.contains(r) {
            requested.push(r.clone());
        }
    }

    let mut usable = Vec::new();
    let mut fatal = Vec::new();
    for p in requested {
        let reason = match &query {
            Err(e) => Some(e.clone()),
            Ok(infos) => match infos.iter().find(|i| i.name == p) {
                Some(i) if i.usable => None,
                Some(i) if i.reason.is_empty() => Some("not usable (no reason given)".into()),
                Some(i) => Some(i.reason.clone()),
                None => Some("not reported by `vmm platforms --json`".into()),
            },
        };
        match reason {
            None => usable.push(p),
            Some(why) if required.contains(&p) => {
                fatal.push(format!("{p} (in VMM_REQUIRE_PLATFORMS): {why}"))
            }
            Some(why) => eprintln!("skipping {p}: {why}"),
        }
    }
    if !fatal.is_empty() {
        panic!("required platform(s) not usable:\n  {}", fatal.join("\n  "));
    }
    if usable.is_empty() {
        eprintln!("no usable platform: sandboxed checks skipped");
    }
    usable
}

/// Runs `case(platform, variant)` for every platform under test and every
/// variant; collects all failures and panics once with all of them.
pub fn for_each_case(test: &str, mut case: impl FnMut(&str, &str) -> Result<(), String>) {
    let platforms = platforms_under_test();
    let variants = variants();
    let mut failures = Vec::new();
    let mut total = 0;
    for p in &platforms {
        for v in &variants {
            total += 1;
            if let Err(e) = case(p, v) {
                failures.push(format!("=== {test} [{p}/{v}]\n{e}"));
            }
        }
    }
    if !failures.is_empty() {
        panic!(
            "{test}: {} of {total} case(s) failed\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// The lines of `expected` that start with one of `prefixes` and ": " (the cases of a C test
/// program name the lines they print), each with its newline.
pub fn lines_of(expected: &str, prefixes: &[&str]) -> String {
    expected
        .lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(&format!("{p}: "))))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Case `case` of test program `prog` (its one argument), on every platform under test and
/// every variant: natively it must exit 0 printing exactly `want` (else the test or this
/// host is wrong, and it says so), and sandboxed the same as natively.
pub fn case_as_expected(prog: &str, case: &str, want: &str) {
    for_each_case(&format!("{prog} {case}"), |p, v| {
        let native = run_native(v, prog, &[case]);
        if native.code() != 0 || native.stdout_str() != want {
            return Err(format!(
                "case {case} differs natively from what is expected (a test bug, or this host):\n\
                 expected:\n{want}\n{native}"
            ));
        }
        let sandboxed = run_vmm(p, v, prog, &[case], &[]);
        check_same(&native, &sandboxed)
    });
}

/// Runs `prog args` natively and under vmm on `platform`, and compares.
pub fn compare(platform: &str, variant: &str, prog: &str, args: &[&str]) -> Result<(), String> {
    let native = run_native(variant, prog, args);
    let sandboxed = run_vmm(platform, variant, prog, args, &[]);
    check_same(&native, &sandboxed)
}

// ---------------------------------------------------------------- exit stats

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh path in the temp dir (not created).
pub fn temp_path(tag: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("vmm-tests-{}-{n}-{tag}", std::process::id()))
}

/// Runs `prog args` under vmm with `--exit-stats FILE` and returns the run
/// plus the `exits` count from the JSON file.
pub fn run_with_exit_stats(
    platform: &str,
    variant: &str,
    prog: &str,
    args: &[&str],
) -> Result<(RunOutput, u64), String> {
    let file = temp_path("exit-stats.json");
    let _ = std::fs::remove_file(&file);
    let file_s = file.to_str().expect("temp path is UTF-8").to_string();
    let out = run_vmm(platform, variant, prog, args, &["--exit-stats", &file_s]);
    let text = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    let text = text.map_err(|e| format!("--exit-stats file {file_s} not written ({e})\n{out}"))?;
    let exits = parse_exit_stats(&text).map_err(|e| format!("{e}\n{out}"))?;
    Ok((out, exits))
}

/// Extracts `exits` from `{"platform":"kvm","exits":N,...}`.
pub fn parse_exit_stats(text: &str) -> Result<u64, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("exit stats: {e} in {text:?}"))?;
    v.get("exits")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("exit stats: no non-negative integer \"exits\" in {text:?}"))
}

/// Runs `program args` under `vmm run` on every platform under test and panics, listing each
/// platform whose run differs from `native` (the caller's native run of the same command,
/// checked as the test needs). `what` names the runs in the failure text.
pub fn assert_same_as_native(what: &str, native: &RunOutput, program: &Path, args: &[&str]) {
    let program = program.to_str().expect("UTF-8 path");
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let mut argv = vec!["run", "--platform", p.as_str(), "--", program];
        argv.extend_from_slice(args);
        let sandboxed = run_vmm_raw(&argv);
        if let Err(e) = check_same(native, &sandboxed) {
            failures.push(format!("=== {what} [{p}]\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The Python script `progs/SCRIPT`, run by `/usr/bin/python3 -I` natively (it must succeed)
/// and on every platform, with the same results; skips, saying why, where python3 or the
/// script is absent (the kvm rig carries test binaries only).
pub fn python_script_same_as_native(test: &str, script: &str, what: &str) {
    let python = Path::new("/usr/bin/python3");
    if !python.is_file() {
        eprintln!("skipping {test}: no /usr/bin/python3");
        return;
    }
    let script = progs_src_dir().join(script);
    if !script.is_file() {
        eprintln!("skipping {test}: {} is not here", script.display());
        return;
    }
    let script = script.to_str().expect("UTF-8 path");
    let native = run_command(python, &["-I", script]);
    assert!(native.status.success(), "native run failed:\n{native}");
    assert_same_as_native(what, &native, python, &["-I", script]);
}

/// CPython's regression test `module` (Debian's `libpython3.11-testsuite`), run verbosely by
/// `/usr/bin/python3 -m test` natively (it must pass) and on every platform: each test's
/// outcome (ok, skipped and why, FAIL, ERROR) and the summary must be the same. `extra`: more
/// arguments (`-m PATTERN` to pick tests). Skips, saying why, where python3 or the test suite
/// is absent (the kvm rig carries test binaries only).
pub fn cpython_test_same_as_native(test: &str, module: &str, extra: &[&str]) {
    let python = Path::new("/usr/bin/python3");
    let suite = Path::new("/usr/lib/python3.11/test").join(format!("{module}.py"));
    if !python.is_file() || !suite.is_file() {
        eprintln!(
            "skipping {test}: no /usr/bin/python3 or no {} (libpython3.11-testsuite)",
            suite.display()
        );
        return;
    }
    let mut args = vec!["-m", "test", "-v", module];
    args.extend_from_slice(extra);
    let outcomes = |out: &RunOutput| cpython_outcomes(&out.stdout_str());
    let native = run_command(python, &args);
    assert!(native.status.success(), "native run failed:\n{native}");
    let want = outcomes(&native);
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let mut argv = vec!["run", "--platform", p.as_str(), "--", "/usr/bin/python3"];
        argv.extend_from_slice(&args);
        let sandboxed = run_vmm_raw(&argv);
        let got = outcomes(&sandboxed);
        if got != want || !sandboxed.status.success() {
            failures.push(format!(
                "=== {module} [{p}]: outcomes differ\n--- native:\n{want}\n--- sandboxed:\n{got}\n{sandboxed}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `text` with the pid in CPython's test file names (`@test_26519_tmp`) made `N`.
fn normalize_test_pids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("@test_") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// The outcomes in `python3 -m test -v` output: one line per test, its name (from the line
/// that starts it) and how it ended (at the end of that line or, after the test's own output,
/// on a line of its own); then the totals.
fn cpython_outcomes(text: &str) -> String {
    let mut lines = Vec::new();
    let mut current = String::new();
    for l in text.lines() {
        let l = l.trim_end();
        if l.starts_with("test") {
            if let Some(end) = l.find(')').filter(|_| l.contains(" (")) {
                current = l[..=end].to_string();
            }
        }
        let tail = l.rsplit_once("... ").map_or(l, |(_, t)| t);
        // Test file names carry the pid ("@test_26519_tmpæ").
        let tail = normalize_test_pids(tail);
        let tail = tail.as_str();
        let ended = [
            "ok",
            "FAIL",
            "ERROR",
            "expected failure",
            "unexpected success",
        ]
        .contains(&tail)
            || tail.starts_with("skipped");
        if ended {
            lines.push(format!("{current}: {tail}"));
        } else if l.starts_with("Ran ") {
            // "Ran N tests in 0.3s": the time varies.
            lines.push(l.split(" in ").next().unwrap_or(l).to_string());
        } else if l == "OK" || l.starts_with("OK (") || l.starts_with("FAILED") {
            lines.push(l.to_string());
        }
    }
    lines.join("\n")
}

/// The test programs' sources (`tests/progs`).
fn progs_src_dir() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "progs"].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpython_outcomes_of_verbose_output() {
        let text = "== CPython 3.11.2\ntest_fork (test.test_pty.PtyTest.test_fork) ... calling\nWaiting\nok\n\
                    test_b (m.C.test_b)\nDoc line. ... skipped 'no'\ntest_c (m.C.test_c) ... FAIL\n\
                    ---\nRan 3 tests in 0.040s\n\nFAILED (failures=1, skipped=1)\n";
        assert_eq!(
            normalize_test_pids("skipped \"could not encode '@test_26519_tmp\u{e6}'\""),
            "skipped \"could not encode '@test_N_tmp\u{e6}'\""
        );
        assert_eq!(
            cpython_outcomes(text),
            "test_fork (test.test_pty.PtyTest.test_fork): ok\ntest_b (m.C.test_b): skipped 'no'\n\
             test_c (m.C.test_c): FAIL\nRan 3 tests\nFAILED (failures=1, skipped=1)"
        );
    }

    #[test]
    fn shell_status_of_signal() {
        let s = ExitStatus::from_raw(11); // killed by SIGSEGV
        assert_eq!(shell_status(&s), 139);
        let s = ExitStatus::from_raw(42 << 8);
        assert_eq!(shell_status(&s), 42);
    }

    #[test]
    fn platforms_json() {
        let p = parse_platforms(
            r#"{"kvm":{"usable":true,"reason":""},"systrap":{"usable":false,"reason":"not yet"}}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].usable && p[0].name == "kvm");
        assert!(!p[1].usable && p[1].reason == "not yet");
        assert!(parse_platforms("{\"kvm\":{}}").is_err());
        assert!(parse_platforms("").is_err());
    }

    #[test]
    fn exit_stats_json() {
        assert_eq!(parse_exit_stats(r#"{"platform":"kvm","exits":17}"#), Ok(17));
        assert!(parse_exit_stats(r#"{"platform":"kvm"}"#).is_err());
    }

    #[test]
    #[should_panic(expected = "timed out")]
    fn timeout_kills() {
        run_command_timeout(Path::new("/bin/sleep"), &["30"], Duration::from_millis(300));
    }

    #[test]
    fn leftover_group_members_are_killed() {
        // The background sleep holds stdout open; killing the group after
        // the shell exits must close it instead of waiting 30 s.
        let out = run_command_timeout(
            Path::new("/bin/sh"),
            &["-c", "sleep 30 & echo hi; exit 3"],
            Duration::from_secs(20),
        );
        assert_eq!(out.code(), 3);
        assert_eq!(out.stdout_str(), "hi\n");
        assert!(out.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn fixed_environment_and_stdin() {
        let out = run_command(Path::new("/bin/sh"), &["-c", "env | sort; cat; ulimit -c"]);
        let s = out.stdout_str();
        assert!(s.contains("HOME=/\n") && s.contains("VMMTEST=1\n"), "{out}");
        assert!(s.ends_with("0\n"), "core dumps must be off\n{out}");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(OsStr::new("a/b")), "a/b");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
    }
}

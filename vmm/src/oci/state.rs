//! The containers' state under `--root`: one directory per ID holding `state.json` (written
//! atomically: a temporary file renamed over it), `plan.json` (the container process's
//! instructions), `exec.fifo` (present until `start`) and `lock`, which every command that
//! reads or changes the container holds (`flock`), so racing commands cannot corrupt it.
//!
//! The status is derived, as runc's: `stopped` when the container process is gone (its pid
//! no longer names a live process started at the recorded time: no pid-reuse confusion),
//! else `created` while `exec.fifo` exists, else `running`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{spec::OCI_VERSION, Failure, Log, Res};

pub const FIFO: &str = "exec.fifo";
pub const PLAN: &str = "plan.json";
/// Present while the container is paused.
const PAUSED: &str = "paused";
const STATE: &str = "state.json";
const LOCK: &str = "lock";

/// What `create` records about a container.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// The process's start time (`/proc/PID/stat` field 22), to tell it from a reuse of its pid.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Checks an ID as runc does (no path tricks).
pub fn check_id(id: &str) -> Res<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid container id {id:?} (letters, digits and _+-. only)").into())
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// A held lock on a container's state directory (released on drop).
pub struct Locked {
    _file: std::fs::File,
    pub dir: PathBuf,
}

/// Locks the existing container `id`.
pub fn lock(root: &Path, id: &str) -> Res<Locked> {
    check_id(id)?;
    let dir = dir(root, id);
    let file = std::fs::File::open(dir.join(LOCK))
        .map_err(|_| Failure::from(format!("container {id} does not exist")))?;
    flock(&file)?;
    // A delete that held the lock before us removed the directory.
    if !dir.join(LOCK).exists() {
        return Err(format!("container {id} does not exist").into());
    }
    Ok(Locked { _file: file, dir })
}

/// Makes the state directory of a new container and locks it; fails if the ID exists.
pub fn make(root: &Path, id: &str) -> Res<Locked> {
    check_id(id)?;
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot make the state root {}: {e}", root.display()))?;
    let dir = dir(root, id);
    // The plan holds the container's environment (secrets, often): the directory is root's.
    let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    match made {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!("container with id {id} already exists").into())
        }
        Err(e) => return Err(format!("cannot make {}: {e}", dir.display()).into()),
    }
    let file = std::fs::File::create(dir.join(LOCK))
        .map_err(|e| format!("cannot make {}: {e}", dir.join(LOCK).display()))?;
    flock(&file)?;
    Ok(Locked { _file: file, dir })
}

fn flock(file: &std::fs::File) -> Res<()> {
    loop {
        // SAFETY: a valid fd; no pointers.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("locking the container state: {e}").into());
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Res<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let r = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::from(format!("cannot write {}: {e}", path.display()))
    })
}

impl Locked {
    pub fn save(&self, s: &Saved) -> Res<()> {
        let text = serde_json::to_vec(s).map_err(|e| format!("state: {e}"))?;
        write_atomic(&self.dir.join(STATE), &text)
    }

    /// The saved state; `None` while `create` has not finished.
    pub fn load(&self) -> Option<Saved> {
        let text = std::fs::read(self.dir.join(STATE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn status(&self, s: &Saved) -> Status {
        if !alive(s.pid, s.start_time) {
            Status::Stopped
        } else if self.dir.join(FIFO).exists() {
            Status::Created
        } else if self.dir.join(PAUSED).exists() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Removes the state directory (the lock file last) and the cgroups `create` made (the
    /// container process is gone).
    pub fn remove(&self) {
        super::cgroup::remove(&super::cgroup::load(&self.dir));
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name() != LOCK {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = std::fs::remove_file(self.dir.join(LOCK));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `/proc/PID/stat`'s state letter and start time.
fn proc_stat(pid: i32) -> Option<(u8, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.bytes().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The start time of a live process.
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Whether `pid` is the live (not zombie) process that started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Some((st, t)) if t == start && st != b'Z' && st != b'X')
}

fn state_json(l: &Locked, s: &Saved) -> serde_json::Value {
    let status = l.status(s);
    let mut v = hook_state(s, status.name());
    if status == Status::Stopped {
        v["pid"] = 0.into();
    }
    v
}

/// The state JSON (what `state` prints and hooks read on stdin) with `status`.
pub fn hook_state(s: &Saved, status: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": s.id,
        "status": status,
        "pid": s.pid,
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "owner": "",
        "annotations": s.annotations,
    })
}

fn load_or_missing(l: &Locked, id: &str) -> Res<Saved> {
    l.load()
        .ok_or_else(|| Failure::from(format!("container {id} does not exist")))
}

pub fn print_state(root: &Path, id: &str) -> Res<()> {
    let l = lock(root, id)?;
    let s = load_or_missing(&l, id)?;
    let text = serde_json::to_string_pretty(&state_json(&l, &s)).unwrap_or_default();
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(())
}

/// `start`: releases the container process waiting on `exec.fifo`.
pub fn start(log: &Log, root: &Path, id: &str) -> Res<()> {
    let l = lock(root, id)?;
    let s = load_or_missing(&l, id)?;
    match l.status(&s) {
        Status::Stopped => return Err("cannot start a container that has stopped".into()),
        Status::Running => return Err("cannot start an already running container".into()),
        Status::Paused => return Err("cannot start a paused container".into()),
        Status::Created => {}
    }
    let fifo = l.dir.join(FIFO);
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: a NUL-terminated path; the fd is checked. Non-blocking: a reader opens at once.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "opening {}: {}",
            fifo.display(),
            std::io::Error::last_os_error()
        )
        .into());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 100) };
        if n > 0 {
            let mut b = [0u8; 1];
            // SAFETY: a 1-byte buffer.
            let r = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if r == 1 {
                break;
            }
            if r == 0 && p.revents & libc::POLLHUP != 0 {
                return Err("the container process closed exec.fifo without starting".into());
            }
        }
        if !alive(s.pid, s.start_time) {
            return Err("cannot start a container that has stopped".into());
        }
    }
    let _ = std::fs::remove_file(&fifo);
    log.debug(&format!("container {id} started (pid {})", s.pid));
    let hooks = super::hooks::load(&l.dir);
    if let Err(e) = super::hooks::run(&hooks, "poststart", &hook_state(&s, "running")) {
        log.warn(&e.msg);
    }
    Ok(())
}

/// A signal by name (`TERM`, `SIGTERM`, `term`) or number.
pub fn parse_signal(s: &str) -> Res<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal number {n}").into());
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(format!("unknown signal {s:?}").into()),
    };
    Ok(n)
}

/// The signals `kill` can deliver: those vmm forwards to the sandbox (`host::FORWARDED`:
/// INT, QUIT, TERM, HUP), and those acting on the sandbox's host process as a whole (KILL;
/// STOP and CONT freeze and thaw it). Any other would kill vmm by its default action instead
/// of reaching the program: refused.
const DELIVERABLE: [i32; 7] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGCONT,
];

pub fn kill(log: &Log, root: &Path, id: &str, signal: Option<&str>, all: bool) -> Res<()> {
    let sig = parse_signal(signal.unwrap_or("TERM"))?;
    if !DELIVERABLE.contains(&sig) {
        return Err(format!(
            "signal {} is not delivered to the sandbox yet (TERM, INT, QUIT, HUP, KILL, STOP, CONT are)",
            signal.unwrap_or("")
        )
        .into());
    }
    let l = lock(root, id)?;
    let s = load_or_missing(&l, id)?;
    if l.status(&s) == Status::Stopped {
        return Err("container not running".into());
    }
    if all {
        // The container's processes are the sandbox's, inside its one host process.
        log.debug("kill --all: the container process is the only host process to signal");
    }
    // SAFETY: no pointers; the pid was checked to be the container's (start time) above.
    if unsafe { libc::kill(s.pid, sig) } != 0 {
        return Err(format!("kill {}: {}", s.pid, std::io::Error::last_os_error()).into());
    }
    Ok(())
}

pub fn delete(log: &Log, root: &Path, id: &str, force: bool) -> Res<()> {
    let l = match lock(root, id) {
        Ok(l) => l,
        Err(_) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(s) = l.load() else {
        // create did not finish (it failed or is still at work): nothing runs yet unless
        // forced.
        if force {
            l.remove();
            return Ok(());
        }
        return Err(format!("container {id} is being created").into());
    };
    match l.status(&s) {
        Status::Stopped => {}
        st @ (Status::Running | Status::Paused) if !force => {
            return Err(format!(
                "cannot delete container {id} that is not stopped: {}",
                st.name()
            )
            .into())
        }
        // A created container is deleted (killed) without --force, as runc does.
        st => {
            if st == Status::Paused {
                // A frozen process does not die of SIGKILL until thawed.
                let _ = super::cgroup::freeze(&super::cgroup::load(&l.dir), false);
            }
            // SAFETY: no pointers; the pid is the container's (start time checked).
            unsafe { libc::kill(s.pid, libc::SIGKILL) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while alive(s.pid, s.start_time) {
                if std::time::Instant::now() > deadline {
                    return Err(
                        format!("container {id}: its process {} does not die", s.pid).into(),
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    let hooks = super::hooks::load(&l.dir);
    if let Err(e) = super::hooks::run(&hooks, "poststop", &hook_state(&s, "stopped")) {
        log.warn(&e.msg);
    }
    l.remove();
    log.debug(&format!("container {id} deleted"));
    Ok(())
}

/// `pause` (`true`) and `resume`: freeze or thaw the container's cgroup.
pub fn pause(log: &Log, root: &Path, id: &str, pause: bool) -> Res<()> {
    let l = lock(root, id)?;
    let s = load_or_missing(&l, id)?;
    let st = l.status(&s);
    match (pause, st) {
        (true, Status::Running) => {
            super::cgroup::freeze(&super::cgroup::load(&l.dir), true)?;
            write_atomic(&l.dir.join(PAUSED), b"")?;
        }
        (false, Status::Paused) => {
            super::cgroup::freeze(&super::cgroup::load(&l.dir), false)?;
            let _ = std::fs::remove_file(l.dir.join(PAUSED));
        }
        (true, _) => return Err(format!("container {id} is not running: {}", st.name()).into()),
        (false, _) => return Err(format!("container {id} is not paused: {}", st.name()).into()),
    }
    log.debug(&format!(
        "container {id} {}",
        if pause { "paused" } else { "resumed" }
    ));
    Ok(())
}

/// Every container under `root` with its state (those being created left out).
fn all(root: &Path) -> Vec<serde_json::Value> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|id| {
            let l = lock(root, id).ok()?;
            let s = l.load()?;
            Some(state_json(&l, &s))
        })
        .collect()
}

pub fn list(root: &Path, format: &str, quiet: bool) -> Res<()> {
    let states = all(root);
    let mut out = String::new();
    if quiet {
        for s in &states {
            out.push_str(s["id"].as_str().unwrap_or(""));
            out.push('\n');
        }
    } else if format == "json" {
        out = format!("{}\n", serde_json::Value::Array(states));
    } else {
        out.push_str("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
        for s in &states {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\troot\n",
                s["id"].as_str().unwrap_or(""),
                s["pid"],
                s["status"].as_str().unwrap_or(""),
                s["bundle"].as_str().unwrap_or(""),
                s["created"].as_str().unwrap_or("")
            ));
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// `ps`: the container's host processes — its one `vmm` process (the sandbox's own
/// processes live inside the Sentry).
pub fn ps(root: &Path, id: &str, format: &str) -> Res<()> {
    let l = lock(root, id)?;
    let s = load_or_missing(&l, id)?;
    let pids: Vec<i32> = if l.status(&s) == Status::Stopped {
        vec![]
    } else {
        vec![s.pid]
    };
    let out = if format == "json" {
        format!("{}\n", serde_json::to_string(&pids).unwrap_or_default())
    } else {
        let mut o = String::from("PID\tCMD\n");
        for p in &pids {
            o.push_str(&format!("{p}\tvmm (container {id})\n"));
        }
        o
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

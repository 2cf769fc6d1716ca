//! `create`, `run --bundle` and the container process (`vmm __oci-init`).
//!
//! `create` spawns `/proc/self/exe __oci-init --state-dir DIR --sync-fd N` with its own stdio
//! (or a pty slave, the master sent over `--console-socket`). The init reads `plan.json`,
//! takes on the container's environment, checks that the program exists in the rootfs, says
//! `ok` (or the error) on the sync pipe, then blocks opening `exec.fifo` for writing until
//! `start` opens it for reading; then it runs the sandbox through `crate::cmd_run` (the
//! existing `vmm run` path: the seam to re-point to the platform-neutral runner) and exits
//! with the program's status.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::spec::{self, Plan};
use super::state::{self, Saved};
use super::{CreateArgs, Failure, Log, Res};

/// The hidden subcommand of the container process.
pub const SUBCOMMAND: &str = "__oci-init";

fn cstring(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default()
}

fn os_err(what: &str) -> Failure {
    Failure::from(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// `create`: returns the container process's pid (a child of this process).
pub fn create(log: &Log, root: &Path, c: &CreateArgs, foreground: bool) -> Res<i32> {
    let bundle = std::fs::canonicalize(&c.bundle)
        .ok()
        .filter(|b| b.is_dir())
        .ok_or_else(|| format!("bundle {} is not a directory", c.bundle.display()))?;
    let spec = spec::load(&bundle)?;
    let mut plan = spec::plan(
        log,
        &spec,
        &bundle,
        c.console_socket.is_some() || foreground,
    )?;
    if plan.platform == "auto" {
        plan.platform = auto_platform(log, root);
    }
    if c.preserve_fds > 0 {
        log.warn(&format!(
            "--preserve-fds {}: extra fds are not passed into the sandbox (its programs see stdio only)",
            c.preserve_fds
        ));
    }
    let hooks = super::hooks::parse(log, spec.hooks.as_ref())?;
    let locked = state::make(root, &c.id)?;
    let mut child = None;
    let what = Prepared {
        bundle: &bundle,
        spec: &spec,
        plan: &plan,
        hooks: &hooks,
    };
    match create_in(log, &locked, c, &what, &mut child) {
        Ok(pid) => Ok(pid),
        Err(e) => {
            if let Some(pid) = child {
                // SAFETY: our own child; no pointers.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            locked.remove();
            Err(e)
        }
    }
}

/// What `create` checked before making the state directory.
struct Prepared<'a> {
    bundle: &'a Path,
    spec: &'a spec::Spec,
    plan: &'a Plan,
    hooks: &'a super::hooks::Hooks,
}

fn create_in(
    log: &Log,
    l: &state::Locked,
    c: &CreateArgs,
    what: &Prepared,
    child_pid: &mut Option<i32>,
) -> Res<i32> {
    let Prepared {
        bundle,
        spec,
        plan,
        hooks,
    } = *what;
    // The working directory: made in the rootfs if missing, as runc does.
    let cwd_host = plan.rootfs.join(plan.cwd.trim_start_matches('/'));
    if !cwd_host.is_dir() {
        if plan.read_only {
            return Err(format!(
                "process.cwd {} does not exist in the read-only rootfs",
                plan.cwd
            )
            .into());
        }
        std::fs::create_dir_all(&cwd_host)
            .map_err(|e| format!("making process.cwd {} in the rootfs: {e}", plan.cwd))?;
    }
    let plan_text = serde_json::to_vec(plan).map_err(|e| format!("plan: {e}"))?;
    state::write_atomic(&l.dir.join(state::PLAN), &plan_text)?;
    let fifo = l.dir.join(state::FIFO);
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkfifo(cstring(&fifo).as_ptr(), 0o622) } != 0 {
        return Err(os_err("mkfifo exec.fifo"));
    }
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("pipe2"));
    }
    // SAFETY: fresh fds we own.
    let (sync_r, sync_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("vmm");
    cmd.args(&log.globals);
    cmd.arg(SUBCOMMAND)
        .arg("--state-dir")
        .arg(&l.dir)
        .arg("--sync-fd")
        .arg(sync_w.as_raw_fd().to_string());
    let w = sync_w.as_raw_fd();
    let mut slave = None;
    if plan.terminal {
        if let Some(sock) = &c.console_socket {
            let (master, s) = open_pty()?;
            send_fd(sock, &master)?;
            drop(master);
            slave = Some(s);
        }
    }
    let tty = slave.as_ref().map(|s| s.as_raw_fd());
    if let Some(s) = &slave {
        for (i, f) in [0, 1, 2].iter().enumerate() {
            let _ = f;
            let fd = s.try_clone().map_err(|e| format!("dup of the pty: {e}"))?;
            match i {
                0 => cmd.stdin(fd),
                1 => cmd.stdout(fd),
                _ => cmd.stderr(fd),
            };
        }
    }
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl, setsid, ioctl).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(w, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if tty.is_some() {
                // The pty is the container's controlling terminal, as under runc.
                libc::setsid();
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting the container process: {e}"))?;
    let pid = child.id() as i32;
    *child_pid = Some(pid);
    if let Some(path) = &plan.cgroups_path {
        // Before the process runs anything of the container: its stubs start in the group.
        let joined = super::cgroup::join(log, path, pid, &plan.limits, log.systemd_cgroup)?;
        super::cgroup::save(&l.dir, &joined)?;
    }
    drop(cmd);
    drop(slave);
    drop(sync_w);
    let mut answer = String::new();
    let _ = std::fs::File::from(sync_r).read_to_string(&mut answer);
    match answer.trim_end() {
        "ok" => {}
        "" => return Err("the container process ended before it was ready".into()),
        msg => return Err(msg.trim_start_matches("error: ").to_string().into()),
    }
    let start_time =
        state::start_time(pid).ok_or("the container process ended before it was ready")?;
    let saved = Saved {
        id: c.id.clone(),
        pid,
        start_time,
        bundle: bundle.to_path_buf(),
        rootfs: plan.rootfs.clone(),
        created: super::rfc3339_now(),
        annotations: spec.annotations.clone(),
    };
    if !hooks.is_empty() {
        super::hooks::save(&l.dir, hooks)?;
        let st = state::hook_state(&saved, "creating");
        super::hooks::run(hooks, "prestart", &st)?;
        super::hooks::run(hooks, "createRuntime", &st)?;
    }
    l.save(&saved)?;
    if let Some(p) = &c.pid_file {
        state::write_atomic(p, pid.to_string().as_bytes())?;
    }
    log.debug(&format!("container {} created (pid {pid})", c.id));
    Ok(pid)
}

/// What `--platform auto` picks on this host, probed once per boot and vmm binary and kept
/// in `ROOT/.auto-platform` (the kvm probe costs ≈0.1 s: not on every container start).
fn auto_platform(log: &Log, root: &Path) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let exe = std::fs::metadata("/proc/self/exe")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            format!("{}:{}:{}", m.ino(), m.size(), m.mtime())
        })
        .unwrap_or_default();
    let key = format!("{}/{exe}", boot.trim());
    let _ = std::fs::create_dir_all(root);
    let cache = root.join(".auto-platform");
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Some((k, p)) = text.trim().rsplit_once(' ') {
            if k == key && ["kvm", "systrap", "ptrace"].contains(&p) {
                return p.to_string();
            }
        }
    }
    let p = crate::runner::Platform::detect().name();
    log.debug(&format!("platform auto: {p} on this host"));
    let _ = state::write_atomic(&cache, format!("{key} {p}\n").as_bytes());
    p.to_string()
}

/// A new pty: (master, slave).
fn open_pty() -> Res<(OwnedFd, OwnedFd)> {
    // SAFETY: plain calls on the fd we get back, checked; ptsname_r writes into buf.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return Err(os_err("posix_openpt"));
        }
        let master = OwnedFd::from_raw_fd(m);
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return Err(os_err("unlockpt"));
        }
        let mut buf = [0 as libc::c_char; 128];
        if libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) != 0 {
            return Err(os_err("ptsname"));
        }
        let s = libc::open(
            buf.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if s < 0 {
            return Err(os_err("opening the pty slave"));
        }
        Ok((master, OwnedFd::from_raw_fd(s)))
    }
}

/// Sends `fd` over the unix socket at `path` (SCM_RIGHTS, with the name runc sends).
fn send_fd(path: &Path, fd: &OwnedFd) -> Res<()> {
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("connecting to the console socket {}: {e}", path.display()))?;
    let name = b"/dev/ptmx";
    let mut iov = libc::iovec {
        iov_base: name.as_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msg points at iov and cbuf, both alive for the call; the cmsg header and data
    // are written inside cbuf (CMSG_FIRSTHDR of a buffer of CMSG_SPACE bytes).
    let r = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cm = libc::CMSG_FIRSTHDR(&msg);
        (*cm).cmsg_level = libc::SOL_SOCKET;
        (*cm).cmsg_type = libc::SCM_RIGHTS;
        (*cm).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<RawFd>(), fd.as_raw_fd());
        libc::sendmsg(sock.as_raw_fd(), &msg, 0)
    };
    if r < 0 {
        return Err(os_err("sending the pty over the console socket"));
    }
    Ok(())
}

/// The container process.
pub fn init(log: &Log, state_dir: &Path, sync_fd: i32) -> ExitCode {
    // SAFETY: create passed us this fd (the write end of the sync pipe) and nothing else
    // owns it here.
    let mut sync = unsafe { std::fs::File::from_raw_fd(sync_fd) };
    // SAFETY: no pointers: the fd must not reach the sandboxed program.
    unsafe { libc::fcntl(sync_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let (prepared, platform) = match prepare(state_dir) {
        Ok(r) => r,
        Err(f) => {
            let _ = writeln!(sync, "error: {}", f.msg);
            return ExitCode::from(f.code);
        }
    };
    let _ = writeln!(sync, "ok");
    drop(sync);
    // Wait for `start`.
    let fifo = cstring(&state_dir.join(state::FIFO));
    let fd = loop {
        // SAFETY: a NUL-terminated path; blocks until a reader opens the FIFO.
        let fd = unsafe { libc::open(fifo.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            break fd;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            log.error(&format!(
                "container process: opening exec.fifo: {}",
                std::io::Error::last_os_error()
            ));
            return ExitCode::from(1);
        }
    };
    // SAFETY: a fresh fd we own.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = f.write_all(b"0");
    drop(f);
    let code = crate::runner::run_prepared(prepared, platform, None);
    // However the sandbox ended, the terminal gets its modes back.
    crate::host::restore_terminal();
    code
}

/// Reads the plan and makes the run's arguments; the process takes on the container's
/// environment (the program gets exactly `process.env`).
fn prepare(state_dir: &Path) -> Res<(crate::runner::Prepared, crate::runner::Platform)> {
    use crate::runner::{Platform, Request};
    let text = std::fs::read(state_dir.join(state::PLAN))
        .map_err(|e| format!("reading the container's plan: {e}"))?;
    let plan: Plan = serde_json::from_slice(&text).map_err(|e| format!("the plan: {e}"))?;
    if let Some(ns) = &plan.netns {
        join_netns(ns)?;
    }
    for e in &plan.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {}
            _ => {
                return Err(
                    format!("config.json: process.env entry {e:?} is not NAME=VALUE").into(),
                )
            }
        }
    }
    let mut request = Request::new(
        OsString::from(&plan.args[0]),
        plan.args[1..].iter().map(OsString::from).collect(),
    );
    // The program gets exactly `process.env` (and is looked up on its PATH).
    request.env = plan.env.iter().map(OsString::from).collect();
    request.cwd = Some(PathBuf::from(&plan.cwd));
    request.root = plan.rootfs.clone();
    request.memory = plan.memory_mib << 20;
    request.read_only = plan.read_only;
    request.pids_limit = plan.pids_limit;
    request.cpus = plan.cpus;
    request.hostname = plan
        .hostname
        .as_deref()
        .and_then(|h| guest_sentry::kernel::Hostname::new(h.as_bytes()))
        .unwrap_or_default();
    let platform = match plan.platform.as_str() {
        "kvm" => Platform::Kvm,
        "systrap" => Platform::Systrap,
        "ptrace" => Platform::Ptrace,
        _ => Platform::detect(),
    };
    let prepared =
        crate::runner::prepare(request).map_err(|e| format!("exec {:?}: {e}", plan.args[0]))?;
    Ok((prepared, platform))
}

/// Puts this process in the container's network namespace (`new`: a fresh one, as runc
/// makes for a `network` namespace without a path).
fn join_netns(ns: &str) -> Res<()> {
    if ns == "new" {
        // SAFETY: no pointers.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(os_err("unshare(CLONE_NEWNET)"));
        }
        return Ok(());
    }
    let f = std::fs::File::open(ns).map_err(|e| format!("network namespace {ns}: {e}"))?;
    // SAFETY: a valid fd; no pointers.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(os_err(&format!("joining the network namespace {ns}")));
    }
    Ok(())
}

static RUN_CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: i32) {
    let pid = RUN_CHILD.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal safe; no pointers.
        unsafe { libc::kill(pid, sig) };
    }
}

/// `run --bundle`: create + start; unless detached, waits for the container, deletes it and
/// exits with its status.
pub fn run(log: &Log, root: &Path, c: &CreateArgs, detach: bool) -> Res<ExitCode> {
    let pid = create(log, root, c, !detach)?;
    if !detach {
        RUN_CHILD.store(pid, std::sync::atomic::Ordering::SeqCst);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            // SAFETY: a zeroed sigaction whose handler only calls kill.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }
    if let Err(e) = state::start(log, root, &c.id) {
        let _ = state::delete(log, root, &c.id, true);
        return Err(e);
    }
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    let mut status = 0;
    loop {
        // SAFETY: status is a valid int; pid is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(os_err("waiting for the container"));
        }
    }
    let _ = state::delete(log, root, &c.id, true);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(ExitCode::from(code as u8))
}

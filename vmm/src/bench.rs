//! `vmm bench`: microbenchmarks of every usable platform in one run, beside native execution and
//! the raw trap mechanisms measured in the same run (so every figure is a ratio to something
//! measured next to it), and `runsc --platform=ptrace` when it is installed.
//!
//! The workload is `bench/bench_prog.c` (embedded), which times its own loop and prints the
//! mean ns per iteration; start-to-exit is timed from outside.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

static BENCH_PROG: &[u8] = include_bytes!(env!("VMM_BENCH_PROG"));

pub struct Options {
    pub reps: usize,
    pub json: bool,
    pub svg: Option<PathBuf>,
    /// Divides every iteration count (for quick runs).
    pub scale_down: u64,
    /// Only these columns beside native (`None`: every one that can run here).
    pub only: Option<Vec<&'static str>>,
}

/// `vmm bench --json`: `{"unit": "ns", "results": {OP: {COLUMN: ns}}, "raw": {...},
/// "ratios": {NAME: ratio}}`, operations and ratios in the table's order.
#[derive(Serialize)]
struct Json<'a> {
    unit: &'static str,
    results: Ordered<&'a str, BTreeMap<&'a str, f64>>,
    raw: Raw,
    ratios: Ordered<&'a str, Option<f64>>,
    /// kvm only: Sentry (guest ring 0) instructions per operation, single-stepped.
    kvm_sentry_instructions: Ordered<&'a str, f64>,
}

/// The raw trap mechanisms, ns per round trip (`null` where unavailable).
#[derive(Serialize)]
struct Raw {
    seccomp_trap_getpid: Option<f64>,
    ptrace_sysemu_getpid: Option<f64>,
    ptrace_sysemu_getpid_pinned: Option<f64>,
}

/// A JSON object whose members keep the order of the pairs.
struct Ordered<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The operations measured inside the program, with their iteration counts.
const OPS: &[(&str, &str, u64)] = &[
    ("getpid", "getpid round trip", 50_000),
    ("getpid_site", "getpid, libc-wrapper form", 50_000),
    ("fault", "first-touch page fault", 5_000),
    ("mmap16", "mmap+touch+munmap 16 pages", 500),
    ("write1", "1-byte stdout write", 20_000),
    ("pipe", "pipe ping-pong round trip", 2_000),
    ("unix_pp", "Unix socket ping-pong round trip", 2_000),
    ("tcp_pp", "loopback TCP ping-pong round trip", 2_000),
    ("tcp_64k", "loopback TCP stream, per 64 KiB", 16_384),
    ("epoll1", "epoll_wait, one ready fd", 20_000),
    ("fork", "fork+exit+wait", 200),
    ("exec", "execve of a static binary", 50),
    ("thread", "pthread_create+join", 2_000),
    ("futex_pp", "futex ping-pong round trip", 2_000),
    // Scaling: K workers each spin N blocks of 1000 syscall-free steps; ns of wall time per
    // block, so K=2 over K=1 is the wall-time ratio (~160 ms of wall for K=1 natively).
    ("spin1", "1 thread spin, per 1k steps", 150_000),
    ("spin2", "2 threads spin, per 1k steps", 150_000),
    ("spinproc1", "1 process spin, per 1k steps", 150_000),
    ("spinproc2", "2 processes spin, per 1k steps", 150_000),
    ("getpid2", "2 threads' getpid, aggregate", 50_000),
];

/// Columns that ratios are given for (always all of them, `null` where not measured, so the
/// JSON keys do not depend on the host).
const RATIO_COLUMNS: &[&str] = &["native", "systrap", "ptrace", "kvm", "runsc-ptrace"];
const SANDBOXES: &[&str] = &["systrap", "ptrace", "kvm"];

/// A limit on one run of the program, so that a hang shows as a failure, not a stuck bench.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The go_hello row: a static Go program (its runtime starts threads), built at bench time.
const GO_HELLO: &str =
    "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n";

/// The busybox row: a shell script with a pipeline, command substitution, a loop and applets
/// that fork and exec, timed start to exit.
const BUSYBOX: &str = "/bin/busybox";
const BUSYBOX_SCRIPT: &str = "i=0; while [ $i -lt 10 ]; do i=$((i+1)); echo line $i; done | sort -r | head -n 3 | wc -l >/dev/null; ls /usr/bin | wc -l >/dev/null; cat /etc/passwd | sha256sum >/dev/null; x=$(uname -s); test -n \"$x\"";

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// How to run the program in one column of the table.
#[derive(Clone)]
enum Runner {
    Native,
    Vmm(&'static str),
    Runsc(PathBuf),
}

impl Runner {
    fn command(&self, prog: &Path, args: &[String]) -> Command {
        let mut c = match self {
            Runner::Native => Command::new(prog),
            Runner::Vmm(p) => {
                let mut c = Command::new(std::env::current_exe().unwrap_or_else(|_| "vmm".into()));
                c.args(["run", "--platform", p, "--"]).arg(prog);
                c
            }
            Runner::Runsc(runsc) => {
                let mut c = Command::new(runsc);
                c.args(["--platform=ptrace", "--network=none", "do"])
                    .arg(prog);
                c
            }
        };
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Mean ns per iteration as the program reports it, or why there is none.
    fn op(&self, prog: &Path, op: &str, n: u64) -> Result<f64, String> {
        let (_, stderr) = run_within(
            &mut self.command(prog, &[op.to_string(), n.to_string()]),
            RUN_LIMIT,
        )?;
        stderr
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("no figure on stderr: {}", last_line(&stderr)))
    }

    /// Wall time of one start-to-exit run of `prog args`, ns, or why there is none.
    fn start_exit(&self, prog: &Path, args: &[&str]) -> Result<f64, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (wall, _) = run_within(&mut self.command(prog, &args), RUN_LIMIT)?;
        Ok(wall.as_nanos() as f64)
    }
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Runs `cmd` (stderr piped) to its exit, killing it after `limit`: its wall time and stderr
/// when it succeeds, else what went wrong.
fn run_within(cmd: &mut Command, limit: Duration) -> Result<(Duration, String), String> {
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let reader = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = std::io::Read::read_to_end(&mut e, &mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if t.elapsed() < limit => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let wall = t.elapsed();
    let stderr = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    match status {
        None => Err(format!("killed after {} s", limit.as_secs())),
        Some(st) if !st.success() => Err(format!("{st}: {}", last_line(&stderr))),
        Some(_) => Ok((wall, stderr)),
    }
}

/// Builds the go_hello program into `dir` with `go` (static: CGO_ENABLED=0), everything it
/// writes (build cache, GOPATH) inside `dir`.
fn build_go_hello(dir: &Path) -> Result<PathBuf, String> {
    let go = find_in_path("go")
        .or_else(|| Some(PathBuf::from("/usr/lib/go/bin/go")).filter(|p| p.is_file()))
        .ok_or("go is not installed")?;
    let src = dir.join("hello.go");
    let bin = dir.join("go_hello");
    std::fs::write(&src, GO_HELLO).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let mut cmd = Command::new(&go);
    cmd.current_dir(dir)
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    run_within(&mut cmd, Duration::from_secs(300))
        .map_err(|e| format!("{} build failed: {e}", go.display()))?;
    Ok(bin)
}

/// Operations whose Sentry instructions are counted on kvm, with the two iteration counts and
/// whether `--quick` counts them too. (Not `fault`: its mapping grows with the count, so the
/// difference is not per fault; see tests/tests/fast_paths.rs for that.) Every step is a VM
/// exit: in the kvm rig `mmap16` (~130 000 Sentry instructions an iteration, page zeroing
/// counted per `rep` iteration) and `pipe` (a fork) take 150 s and 65 s, the others 6-9 s
/// per run, so a quick run leaves those two out.
const KVM_COUNTED: &[(&str, u64, u64, bool)] = &[
    ("getpid", 10, 60, true),
    ("getpid_site", 10, 60, true),
    ("mmap16", 4, 12, false),
    ("write1", 10, 30, true),
    ("pipe", 4, 12, false),
];

/// Sentry (guest ring 0) instructions per iteration of `op` on kvm: `vmm run --single-step`
/// with two iteration counts, from the `steps_kernel` of their `--exit-stats`. Deterministic
/// (unlike times): in the kvm rig these are the figures to read.
fn kvm_sentry_instructions(dir: &Path, prog: &Path, op: &str, a: u64, b: u64) -> Option<f64> {
    let steps = |n: u64| -> Option<u64> {
        let stats = dir.join("steps.json");
        let st = Command::new(std::env::current_exe().ok()?)
            .args(["run", "--platform", "kvm", "--single-step", "--exit-stats"])
            .arg(&stats)
            .arg("--")
            .arg(prog)
            .args([op.to_string(), n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let text = std::fs::read_to_string(&stats).ok()?;
        let _ = std::fs::remove_file(&stats);
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        st.success().then_some(())?;
        v.get("steps_kernel")?.as_u64()
    };
    let (sa, sb) = (steps(a)?, steps(b)?);
    Some((sb as f64 - sa as f64) / (b - a) as f64)
}

/// Native `getpid` under a seccomp filter that traps it; the SIGSYS handler returns directly:
/// the floor for systrap. Runs in a child (a filter cannot be removed). ns per call.
fn raw_seccomp_trap(n: u64) -> Option<f64> {
    extern "C" fn on_sigsys(_: i32, _: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid ucontext for an SA_SIGINFO handler.
        unsafe { (*(ctx as *mut libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RAX as usize] = 1 };
    }
    in_child(move || {
        // SAFETY: single-threaded child; the handler only writes its own ucontext.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
            let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
            let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
            let ret = (libc::BPF_RET | libc::BPF_K) as u16;
            let filter = [
                libc::sock_filter {
                    code: ld,
                    jt: 0,
                    jf: 0,
                    k: 0,
                },
                libc::sock_filter {
                    code: jeq,
                    jt: 0,
                    jf: 1,
                    k: libc::SYS_getpid as u32,
                },
                libc::sock_filter {
                    code: ret,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_TRAP,
                },
                libc::sock_filter {
                    code: ret,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ALLOW,
                },
            ];
            let prog = libc::sock_fprog {
                len: 4,
                filter: filter.as_ptr() as *mut _,
            };
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0 {
                return None;
            }
            let t = Instant::now();
            for _ in 0..n {
                libc::syscall(libc::SYS_getpid);
            }
            Some(t.elapsed().as_nanos() as f64 / n as f64)
        }
    })
}

/// `getpid` in a child stopped by `PTRACE_SYSEMU`, with GETREGS/SETREGS per stop as the
/// ptrace platform does: the floor for ptrace. ns per call.
fn raw_ptrace_sysemu(n: u64, pinned: bool) -> Option<f64> {
    in_child(move || raw_ptrace_sysemu_here(n, pinned))
}

fn raw_ptrace_sysemu_here(n: u64, pinned: bool) -> Option<f64> {
    if pinned {
        // SAFETY: pinning this (forked, single-threaded) process; the tracee inherits it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    // SAFETY: the child only traces itself and makes raw syscalls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        // SAFETY: in the child.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            for _ in 0..n {
                libc::syscall(libc::SYS_getpid);
            }
            libc::_exit(0);
        }
    }
    let wait = || {
        let mut st = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        st
    };
    wait();
    let t = Instant::now();
    let mut calls = 0u64;
    loop {
        // SAFETY: our stopped tracee; regs is a valid out-parameter.
        unsafe { libc::ptrace(libc::PTRACE_SYSEMU, pid, 0, 0) };
        let st = wait();
        if !libc::WIFSTOPPED(st) {
            break;
        }
        // SAFETY: all-zero bytes are a valid user_regs_struct (plain integers).
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs);
            regs.rax = pid as u64;
            libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs);
        }
        calls += 1;
        if calls > n + 10 {
            // SAFETY: our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    (calls >= n).then(|| t.elapsed().as_nanos() as f64 / calls as f64)
}

/// Runs `f` in a forked child and returns what it sends back.
fn in_child(f: impl FnOnce() -> Option<f64>) -> Option<f64> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-parameter.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: the child runs `f` (raw syscalls, no locks held across fork) and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let v = f().unwrap_or(f64::NAN);
        // SAFETY: writing 8 bytes to our pipe, then leaving without running destructors.
        unsafe {
            libc::write(fds[1], v.to_le_bytes().as_ptr().cast(), 8);
            libc::_exit(0);
        }
    }
    let mut b = [0u8; 8];
    // SAFETY: reading our pipe; reaping our child.
    unsafe {
        libc::close(fds[1]);
        let got = libc::read(fds[0], b.as_mut_ptr().cast(), 8);
        libc::close(fds[0]);
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        if got != 8 {
            return None;
        }
    }
    Some(f64::from_le_bytes(b)).filter(|v| v.is_finite())
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn run(opts: Options) -> std::process::ExitCode {
    let dir = std::env::temp_dir().join(format!("vmm-bench-{}", std::process::id()));
    let prog = dir.join("bench_prog");
    let write = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&prog, BENCH_PROG))
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755))
        });
    if let Err(e) = write {
        eprintln!("vmm: bench: cannot write the benchmark program: {e}");
        return std::process::ExitCode::from(125);
    }

    let wanted = |name: &str| opts.only.as_ref().is_none_or(|o| o.contains(&name));
    let mut columns: Vec<(String, Runner)> = vec![("native".into(), Runner::Native)];
    let mut skipped = Vec::new();
    // Columns named by --platform that cannot run here: the bench is refused.
    let mut refused = Vec::new();
    for platform in crate::runner::Platform::ALL {
        let name = platform.name();
        if !wanted(name) {
            continue;
        }
        let v = crate::probe::probe(platform);
        if v.usable {
            columns.push((name.into(), Runner::Vmm(name)));
        } else if opts.only.is_some() {
            refused.push(format!("{name}: {}", v.reason));
        } else {
            skipped.push(format!("{name}: {}", v.reason));
        }
    }
    if wanted("runsc-ptrace") {
        match find_in_path("runsc") {
            Some(p) => columns.push(("runsc-ptrace".into(), Runner::Runsc(p))),
            None if opts.only.is_some() => {
                refused.push("runsc-ptrace: runsc is not installed".into())
            }
            None => skipped.push("runsc-ptrace: runsc is not installed".into()),
        }
    }
    if !refused.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("vmm: bench: cannot run {}", refused.join("; "));
        return std::process::ExitCode::from(125);
    }

    let scale = opts.scale_down.max(1);
    // results[op][column] = median ns
    let mut results: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    // "column op: why" for runs that failed (the first failure of each).
    let mut failed: Vec<String> = Vec::new();
    let mut keep = |col: &str, row: &str, r: Result<f64, String>| match r {
        Ok(v) => Some(v),
        Err(e) => {
            let key = format!("{col} {row}: ");
            if !failed.iter().any(|f| f.starts_with(&key)) {
                failed.push(format!("{key}{e}"));
            }
            None
        }
    };
    for (op, _, n) in OPS {
        let n = (n / scale).max(1);
        for (col, runner) in &columns {
            let samples: Vec<f64> = (0..opts.reps)
                .filter_map(|_| keep(col, op, runner.op(&prog, op, n)))
                .collect();
            if let Some(m) = median(samples) {
                results
                    .entry(op.to_string())
                    .or_default()
                    .insert(col.clone(), m);
            }
        }
    }
    let busybox = Path::new(BUSYBOX);
    let mut whole: Vec<(&str, &Path, Vec<&str>)> = vec![("hello", &prog, vec!["exit"])];
    if busybox.is_file() {
        whole.push(("busybox", busybox, vec!["sh", "-c", BUSYBOX_SCRIPT]));
    } else {
        skipped.push(format!("busybox script: {BUSYBOX} is not installed"));
    }
    let go_hello = build_go_hello(&dir);
    match &go_hello {
        Ok(bin) => whole.push(("go_hello", bin.as_path(), vec![])),
        Err(e) => skipped.push(format!("go hello: {e}")),
    }
    for (row, program, args) in &whole {
        for (col, runner) in &columns {
            let samples: Vec<f64> = (0..opts.reps.max(5))
                .filter_map(|_| keep(col, row, runner.start_exit(program, args)))
                .collect();
            if let Some(m) = median(samples) {
                results
                    .entry(row.to_string())
                    .or_default()
                    .insert(col.clone(), m);
            }
        }
    }
    let n = (OPS[0].2 / scale).max(1);
    let raw_seccomp = median((0..opts.reps).filter_map(|_| raw_seccomp_trap(n)).collect());
    let raw = |pinned: bool| {
        median(
            (0..opts.reps)
                .filter_map(|_| raw_ptrace_sysemu((n / 5).max(1), pinned))
                .collect(),
        )
    };
    let raw_ptrace = raw(false);
    let raw_ptrace_pinned = raw(true);
    let kvm_counts: Vec<(&str, f64)> = if columns.iter().any(|(c, _)| c == "kvm") {
        KVM_COUNTED
            .iter()
            .filter(|&&(_, _, _, quick)| quick || scale == 1)
            .filter_map(|&(op, a, b, _)| {
                Some((op, kvm_sentry_instructions(&dir, &prog, op, a, b)?))
            })
            .collect()
    } else {
        Vec::new()
    };
    let _ = std::fs::remove_dir_all(&dir);

    let get = |op: &str, col: &str| results.get(op).and_then(|m| m.get(col)).copied();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut ratios: Vec<(String, Option<f64>)> = vec![
        (
            "systrap getpid / raw seccomp trap (target <= 2)",
            ratio(get("getpid", "systrap"), raw_seccomp),
        ),
        (
            "ptrace getpid / raw PTRACE_SYSEMU+regs, pinned as ptrace is (target <= 1.3)",
            ratio(get("getpid", "ptrace"), raw_ptrace_pinned),
        ),
        (
            "ptrace getpid / raw PTRACE_SYSEMU+regs, unpinned",
            ratio(get("getpid", "ptrace"), raw_ptrace),
        ),
        (
            "runsc-ptrace getpid / systrap getpid (target >= 2)",
            ratio(get("getpid", "runsc-ptrace"), get("getpid", "systrap")),
        ),
        (
            "runsc-ptrace getpid / ptrace getpid (target >= 2)",
            ratio(get("getpid", "runsc-ptrace"), get("getpid", "ptrace")),
        ),
        (
            "kvm getpid / native getpid",
            ratio(get("getpid", "kvm"), get("getpid", "native")),
        ),
        (
            "systrap getpid / native getpid",
            ratio(get("getpid", "systrap"), get("getpid", "native")),
        ),
        (
            "systrap getpid (libc-wrapper form, patched) / native getpid",
            ratio(get("getpid_site", "systrap"), get("getpid", "native")),
        ),
        (
            "systrap getpid (libc-wrapper form, patched) / raw seccomp trap",
            ratio(get("getpid_site", "systrap"), raw_seccomp),
        ),
        (
            "systrap fork+exit+wait / native",
            ratio(get("fork", "systrap"), get("fork", "native")),
        ),
        (
            "systrap busybox script / native",
            ratio(get("busybox", "systrap"), get("busybox", "native")),
        ),
        (
            "runsc-ptrace busybox script / systrap",
            ratio(get("busybox", "runsc-ptrace"), get("busybox", "systrap")),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for sandbox in SANDBOXES.iter().chain(&["runsc-ptrace"]) {
        ratios.push((
            format!("{sandbox} loopback TCP throughput / native (target >= 0.5)"),
            ratio(get("tcp_64k", "native"), get("tcp_64k", sandbox)),
        ));
        ratios.push((
            format!("{sandbox} loopback TCP round trip / native (target <= 5)"),
            ratio(get("tcp_pp", sandbox), get("tcp_pp", "native")),
        ));
    }
    for (op, what) in [
        ("thread", "pthread_create+join"),
        ("futex_pp", "futex ping-pong"),
        ("unix_pp", "Unix socket ping-pong"),
        ("epoll1", "epoll_wait one ready"),
    ] {
        for sandbox in SANDBOXES {
            ratios.push((
                format!("{sandbox} {what} / native"),
                ratio(get(op, sandbox), get(op, "native")),
            ));
        }
        for sandbox in SANDBOXES {
            ratios.push((
                format!("runsc-ptrace {what} / {sandbox}"),
                ratio(get(op, "runsc-ptrace"), get(op, sandbox)),
            ));
        }
    }
    for col in RATIO_COLUMNS {
        let target = |t: &'static str| {
            if *col == "native" {
                "idle 2 cores: ~1.0"
            } else {
                t
            }
        };
        ratios.push((
            format!(
                "{col} threads: 2 spinning / 1, wall ({})",
                target("target <= 1.1")
            ),
            ratio(get("spin2", col), get("spin1", col)),
        ));
        ratios.push((
            format!(
                "{col} processes: 2 spinning / 1, wall ({})",
                target("target <= 1.1")
            ),
            ratio(get("spinproc2", col), get("spinproc1", col)),
        ));
        ratios.push((
            format!(
                "{col} syscall scaling: 2 threads' getpid rate / 1 thread's ({})",
                target("target >= 1.5")
            ),
            ratio(get("getpid", col), get("getpid2", col)),
        ));
    }

    let labels: Vec<(&str, &str)> = OPS
        .iter()
        .map(|(op, label, _)| (*op, *label))
        .chain([
            ("hello", "static hello start to exit"),
            ("busybox", "busybox sh script, end to end"),
            ("go_hello", "static Go hello start to exit"),
        ])
        .collect();
    let mut out = String::new();
    if opts.json {
        let round = |v: f64, places: i32| {
            let scale = 10f64.powi(places);
            (v * scale).round() / scale
        };
        let json = Json {
            unit: "ns",
            results: Ordered(
                labels
                    .iter()
                    .map(|(op, _)| {
                        let cols = results
                            .get(*op)
                            .map(|m| m.iter().map(|(c, v)| (c.as_str(), round(*v, 1))).collect())
                            .unwrap_or_default();
                        (*op, cols)
                    })
                    .collect(),
            ),
            raw: Raw {
                seccomp_trap_getpid: raw_seccomp.map(|v| round(v, 3)),
                ptrace_sysemu_getpid: raw_ptrace.map(|v| round(v, 3)),
                ptrace_sysemu_getpid_pinned: raw_ptrace_pinned.map(|v| round(v, 3)),
            },
            ratios: Ordered(
                ratios
                    .iter()
                    .map(|(k, v)| (k.split(" (").next().unwrap(), v.map(|v| round(v, 3))))
                    .collect(),
            ),
            kvm_sentry_instructions: Ordered(
                kvm_counts
                    .iter()
                    .map(|&(op, v)| (op, round(v, 1)))
                    .collect(),
            ),
        };
        out.push_str(&serde_json::to_string(&json).unwrap_or_default());
        out.push('\n');
    } else {
        let names: Vec<&String> = columns.iter().map(|(c, _)| c).collect();
        out.push_str(&format!("{:<30}", "ns per operation (median)"));
        for c in &names {
            out.push_str(&format!("{c:>14}"));
        }
        out.push('\n');
        for (op, label) in &labels {
            out.push_str(&format!("{label:<30}"));
            for c in &names {
                match get(op, c) {
                    Some(v) => out.push_str(&format!("{v:>14.0}")),
                    None => out.push_str(&format!("{:>14}", "-")),
                }
            }
            out.push('\n');
        }
        out.push_str("\nraw mechanisms, same run:\n");
        let show = |v: Option<f64>| {
            v.map(|v| format!("{v:.0} ns"))
                .unwrap_or_else(|| "unavailable".into())
        };
        out.push_str(&format!(
            "  seccomp SECCOMP_RET_TRAP -> SIGSYS handler -> return: {}\n",
            show(raw_seccomp)
        ));
        out.push_str(&format!(
            "  PTRACE_SYSEMU stop + GETREGS/SETREGS + resume:        {}\n",
            show(raw_ptrace)
        ));
        out.push_str(&format!(
            "  same, tracer and tracee pinned to one CPU:            {}\n",
            show(raw_ptrace_pinned)
        ));
        out.push_str("\nratios:\n");
        for (k, v) in &ratios {
            out.push_str(&format!(
                "  {k}: {}\n",
                v.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "-".into())
            ));
        }
        if !kvm_counts.is_empty() {
            out.push_str(
                "\nkvm: Sentry instructions per operation (single-stepped; deterministic):\n",
            );
            for (op, v) in &kvm_counts {
                let label = labels.iter().find(|(o, _)| o == op).map_or(*op, |l| l.1);
                out.push_str(&format!("  {label:<30}{v:>10.1}\n"));
            }
        }
        for s in &skipped {
            out.push_str(&format!("not measured: {s}\n"));
        }
        for f in &failed {
            out.push_str(&format!("failed: {f}\n"));
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    if let Some(svg) = &opts.svg {
        if let Err(e) = draw_svg(
            svg,
            &labels,
            &columns.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
            &results,
        ) {
            eprintln!("vmm: bench: writing {}: {e}", svg.display());
            return std::process::ExitCode::from(125);
        }
    }
    std::process::ExitCode::SUCCESS
}

/// A grouped bar chart (log scale), one group per operation, one bar per platform.
fn draw_svg(
    path: &Path,
    labels: &[(&str, &str)],
    columns: &[String],
    results: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1100, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = labels.len();
    let width = columns.len() + 1;
    let max = results
        .values()
        .flat_map(|m| m.values())
        .fold(1.0f64, |a, &b| a.max(b));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "vmm bench: ns per operation (log scale)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..(groups * width) as f64, (1f64..max * 3.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&|x| {
            let g = (*x / width as f64) as usize;
            labels.get(g).map(|l| l.0.to_string()).unwrap_or_default()
        })
        .y_desc("ns")
        .draw()?;
    for (ci, col) in columns.iter().enumerate() {
        let color = Palette99::pick(ci).to_rgba();
        let bars: Vec<Rectangle<(f64, f64)>> = labels
            .iter()
            .enumerate()
            .filter_map(|(g, (op, _))| {
                let v = results.get(*op)?.get(col)?;
                let x = (g * width + ci) as f64 + 0.5;
                Some(Rectangle::new([(x, 1.0), (x + 0.9, *v)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(col.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

//! Threads: `progs/threads.c`, one case per run, natively and under every platform and
//! variant, must print the same and exit the same (each case must also pass natively: no
//! `FAIL`, and its known exit status); Python's `threading` (`progs/py_threads.py`); and real
//! multi-threaded tools when installed (`zstd -T2`, `xz -T2`), with `make -j2` beside them.
//!
//! What the C libraries ask of the kernel here (strace of the native runs):
//! - glibc 2.36 `pthread_create`: `clone3` first (flags VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|
//!   SETTLS|PARENT_SETTID|CLONE_CHILD_CLEARTID; falls back to `clone` on ENOSYS), all signals
//!   blocked around it (`rt_sigprocmask`), a guard page (`mprotect`); each new thread calls
//!   `rseq` (ENOSYS is tolerated) and `set_robust_list`; an exiting thread `madvise`s its stack
//!   away and calls `exit` (60), not `exit_group`. musl 1.2: `clone` with the same flags
//!   (plus DETACHED), `set_tid_address`; `tkill` for `pthread_kill`; `get_robust_list` to
//!   probe robust mutex support.
//! - `pthread_join` waits on the tid word the kernel clears (CLONE_CHILD_CLEARTID): glibc with
//!   `FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME` *without* the private flag, musl with plain
//!   `FUTEX_WAIT`; the kernel's wake at thread exit must reach those waiters, and private and
//!   shared operations on the same private-memory word must meet.
//! - Mutexes: `FUTEX_WAIT_PRIVATE`/`FUTEX_WAKE_PRIVATE`; glibc's timed and cond waits:
//!   `FUTEX_WAIT_BITSET_PRIVATE[|FUTEX_CLOCK_REALTIME]`; process-shared and robust mutexes:
//!   the same without the private flag. PI mutexes: `FUTEX_LOCK_PI`/`FUTEX_UNLOCK_PI`
//!   (`_PRIVATE`); glibc probes them at `pthread_mutex_init` (ENOSYS: EOPNOTSUPP, 95) and musl at
//!   `pthread_mutexattr_setprotocol` (ENOSYS, 38). Robust mutexes need the exit-time walk of
//!   the `set_robust_list` list (FUTEX_OWNER_DIED, a wake) for threads and whole processes.
//! - Cancellation: glibc sends SIGRTMIN (32) with `tgkill`, musl SIG 33 with `tkill`; glibc
//!   installs its SIGRT_1 (33, set*id broadcast) handler at start-up.
//! - glibc's `posix_spawn` (make, Python's subprocess): `clone3(CLONE_VM|CLONE_VFORK)` on a
//!   stack of its own; make then has the child call `setresuid`/`setresgid(-1, uid, -1)`
//!   before exec (so `make_two_jobs` also needs those two syscalls).

use std::path::{Path, PathBuf};
use vmm_tests::{
    assert_same_as_native, check_same, for_each_case, platforms_under_test,
    python_script_same_as_native, run_command, run_native, run_vmm, run_vmm_raw, RunOutput,
};

/// The cases `threads` knows, by group (one test each), with the exit status each ends with.
const GROUPS: &[(&str, &[(&str, i32)])] = &[
    (
        "sync",
        &[
            ("ids", 0),
            ("mutex_cond", 0),
            ("mutex_counter", 0),
            ("barrier", 0),
            ("sync_misc", 0),
            ("timed", 0),
        ],
    ),
    ("tls", &[("tls", 0), ("keys", 0)]),
    ("cancel", &[("cancel", 0)]),
    (
        "lifetimes",
        &[("detached", 0), ("join_many", 0), ("pthread_exit", 0)],
    ),
    (
        "signals",
        &[
            ("pthread_kill", 0),
            ("process_signal", 0),
            ("sigwait", 0),
            ("sigmask", 0),
        ],
    ),
    (
        "exits",
        &[
            ("exit_group", 42),
            ("exit_group_raw", 43),
            ("main_returns", 6),
            ("fatal_signal", 143),
            ("segv_thread", 139),
            ("main_exit", 5),
            ("main_exit_last", 0),
        ],
    ),
    (
        "exec_fork",
        &[("exec_thread", 3), ("exec_main", 3), ("fork_thread", 0)],
    ),
    (
        "futex_processes",
        &[("futex_shared", 0), ("futex_wake_count", 0)],
    ),
    (
        "pi_robust",
        &[("pi_mutex", 0), ("robust", 0), ("robust_shared", 0)],
    ),
    ("proc_sched", &[("proc_count", 0), ("sched", 0)]),
    ("raw_clone", &[("raw_clone", 0), ("clone3", 0)]),
    ("shared_fs", &[("shared_fs", 0)]),
];

/// The native run must be a pass: the known status, no `FAIL` or `FATAL` line.
fn native_ok(case: &str, want: i32, native: &RunOutput) -> Result<(), String> {
    let out = native.stdout_str();
    if native.code() != want || out.contains(": FAIL") || out.contains("FATAL") {
        return Err(format!(
            "case {case} fails natively (want status {want}; a test bug, or this host):\n{native}"
        ));
    }
    Ok(())
}

/// Every case of `group`, natively and sandboxed on each platform and variant.
fn group(name: &str) {
    let cases = GROUPS
        .iter()
        .find(|(g, _)| *g == name)
        .unwrap_or_else(|| panic!("no group {name}"))
        .1;
    for_each_case(&format!("threads {name}"), |p, v| {
        let mut failures = Vec::new();
        for &(case, want) in cases {
            let native = run_native(v, "threads", &[case]);
            let result = native_ok(case, want, &native).and_then(|()| {
                let sandboxed = run_vmm(p, v, "threads", &[case], &[]);
                check_same(&native, &sandboxed)
            });
            if let Err(e) = result {
                failures.push(format!("--- case {case}\n{e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n"))
        }
    });
}

#[test]
fn sync() {
    group("sync");
}

#[test]
fn tls() {
    group("tls");
}

#[test]
fn cancel() {
    group("cancel");
}

#[test]
fn lifetimes() {
    group("lifetimes");
}

#[test]
fn signals() {
    group("signals");
}

#[test]
fn exits() {
    group("exits");
}

#[test]
fn exec_fork() {
    group("exec_fork");
}

#[test]
fn futex_processes() {
    group("futex_processes");
}

#[test]
fn pi_robust() {
    group("pi_robust");
}

#[test]
fn proc_sched() {
    group("proc_sched");
}

#[test]
fn raw_clone() {
    group("raw_clone");
}

#[test]
fn shared_fs() {
    group("shared_fs");
}

/// The groups above name every case the program has (its no-argument run lists them, each
/// with its status), so a case added to threads.c is not left out here.
#[test]
fn every_case_is_in_a_group() {
    let v = vmm_tests::variants()[0];
    let all = run_native(v, "threads", &[] as &[&str]);
    assert!(all.status.success(), "native run of every case:\n{all}");
    let listed: Vec<(String, i32)> = all
        .stdout_str()
        .lines()
        .filter_map(|l| l.strip_prefix("== "))
        .filter_map(|l| {
            let (name, status) = l.split_once(": status ")?;
            Some((name.to_string(), status.parse().ok()?))
        })
        .collect();
    let mut grouped: Vec<(String, i32)> = GROUPS
        .iter()
        .flat_map(|(_, cs)| cs.iter().map(|&(c, s)| (c.to_string(), s)))
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    grouped.sort();
    assert_eq!(sorted, grouped, "cases in threads.c vs GROUPS here\n{all}");
}

// ---------------------------------------------------------------- Python

#[test]
fn python_threads() {
    python_script_same_as_native("python_threads", "py_threads.py", "python threads");
}

// ---------------------------------------------------------------- real tools

/// A fresh directory under the target directory's tmp (not /tmp), removed when dropped (a
/// failing test too).
struct WorkDir(PathBuf);

impl WorkDir {
    /// None (the test skips, saying why) where it cannot be made: a rig that carries the test
    /// binaries but not the build tree.
    fn new(tag: &str) -> Option<WorkDir> {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("threads-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        if let Err(e) = std::fs::create_dir_all(&d) {
            eprintln!("skipping {tag}: cannot make {}: {e}", d.display());
            return None;
        }
        Some(WorkDir(d))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// About 3 MiB of text that compresses, but not to nothing: several blocks for `xz`, several
/// jobs for `zstd`.
fn write_input(dir: &Path) -> PathBuf {
    let mut s = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    while s.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % 8) as usize]);
        s.push_str(&format!(" {} ", x % 100_000));
        if x.is_multiple_of(11) {
            s.push('\n');
        }
    }
    let p = dir.join("input.txt");
    std::fs::write(&p, s).unwrap();
    p
}

/// `/bin/sh -c script`, natively and on each platform: same output and status.
fn shell_everywhere(what: &str, script: &str) {
    let sh = Path::new("/bin/sh");
    let native = run_command(sh, &["-c", script]);
    assert!(
        native.status.success() && !native.stdout.is_empty(),
        "native {what} failed:\n{native}"
    );
    assert_same_as_native(what, &native, sh, &["-c", script]);
}

fn tool_or_skip(test: &str, tool: &str) -> bool {
    if !Path::new(tool).is_file() {
        eprintln!("skipping {test}: {tool} is not installed (apt-get install zstd xz-utils make)");
        return false;
    }
    // The real tool, not a busybox applet of the same name (the kvm rig's `xz` is one, without
    // threads).
    let version = std::process::Command::new(tool).arg("--version").output();
    let busybox = match &version {
        Ok(o) => {
            let text = [&o.stdout[..], &o.stderr[..]].concat();
            !o.status.success() || String::from_utf8_lossy(&text).contains("BusyBox")
        }
        Err(_) => true,
    };
    if busybox {
        eprintln!(
            "skipping {test}: {tool} is not the real tool (a busybox applet, or it does not run)"
        );
        return false;
    }
    true
}

/// A Go program (static, `CGO_ENABLED=0`): goroutines on several OS threads, channels, timers,
/// async preemption of a spinning goroutine (SIGURG by `tgkill`), the netpoller and
/// `os/exec` (`tests/progs/go_threads`). Built by build.rs where Go is installed.
#[test]
fn go_program() {
    let prog = vmm_tests::progs_dir().join("go").join("go_threads");
    if !prog.is_file() {
        eprintln!(
            "skipping go_program: {} was not built (no Go toolchain: apt-get install golang-go)",
            prog.display()
        );
        return;
    }
    let native = run_command(&prog, &[] as &[&str]);
    assert!(native.status.success(), "native run failed:\n{native}");
    assert_same_as_native("go_threads", &native, &prog, &[]);
}

/// `zstd -T2` (two worker threads) compresses, the result decompresses to the input, and the
/// compressed bytes are those of the native run (zstd's output does not depend on timing).
#[test]
fn zstd_two_threads() {
    if !tool_or_skip("zstd_two_threads", "/usr/bin/zstd") {
        return;
    }
    let Some(dir) = WorkDir::new("zstd") else {
        return;
    };
    let input = write_input(&dir.0);
    let i = input.display();
    let script = format!(
        "set -e; zstd -q -T2 -c {i} | sha256sum; \
         zstd -q -T2 -c {i} | zstd -q -d -c | cmp - {i} && echo round trip same"
    );
    shell_everywhere("zstd -T2", &script);
}

/// `xz -T2` with small blocks (several compressed by two threads), then a threaded decompress.
#[test]
fn xz_two_threads() {
    if !tool_or_skip("xz_two_threads", "/usr/bin/xz") {
        return;
    }
    let Some(dir) = WorkDir::new("xz") else {
        return;
    };
    let input = write_input(&dir.0);
    let i = input.display();
    let script = format!(
        "set -e; xz -T2 --block-size=256KiB -c < {i} | sha256sum; \
         xz -T2 --block-size=256KiB -c < {i} | xz -T2 -d -c | cmp - {i} && echo round trip same"
    );
    shell_everywhere("xz -T2", &script);
}

/// `make -j2` over a small generated tree (processes, not threads, but a parallel build is
/// where thread-using tools run): each run gets a copy of its own, so none sees another's
/// outputs. make starts jobs with glibc's `posix_spawn`: `clone3`/`clone` with
/// CLONE_VM|CLONE_VFORK, then `setresuid`/`setresgid` in the child.
#[test]
fn make_two_jobs() {
    if !tool_or_skip("make_two_jobs", "/usr/bin/make") {
        return;
    }
    let Some(dir) = WorkDir::new("make") else {
        return;
    };
    let tree = |name: &str| {
        let d = dir.0.join(name);
        std::fs::create_dir_all(d.join("src")).unwrap();
        let mut mk = String::from("OBJS := $(patsubst src/%.in,out/%.o,$(wildcard src/*.in))\n");
        mk += "all: out/all.txt\n";
        mk += "out/all.txt: $(OBJS)\n\tcat $(sort $(OBJS)) > $@\n";
        mk += "out/%.o: src/%.in | out\n\tsleep 0.01; tr a-z A-Z < $< > $@\n";
        mk += "out:\n\tmkdir -p out\n";
        mk += ".PHONY: all\n";
        std::fs::write(d.join("Makefile"), mk).unwrap();
        for n in 0..12 {
            std::fs::write(
                d.join(format!("src/f{n:02}.in")),
                format!("file {n} says hello\n"),
            )
            .unwrap();
        }
        d
    };
    let sh = Path::new("/bin/sh");
    let script = |d: &Path| {
        format!(
            "set -e; cd {}; make -s -j2 --no-print-directory; cat out/all.txt; ls out | wc -l",
            d.display()
        )
    };
    let native = run_command(sh, &["-c", &script(&tree("native"))]);
    assert!(native.status.success(), "native make failed:\n{native}");
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let d = tree(&format!("sandbox-{p}"));
        let sandboxed = run_vmm_raw(&["run", "--platform", &p, "--", "/bin/sh", "-c", &script(&d)]);
        if let Err(e) = check_same(&native, &sandboxed) {
            failures.push(format!("=== make -j2 [{p}]\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Each test program under `vmm run` on every platform under test and every
//! variant, compared with the same program run natively.
//!
//! Platforms: `VMM_TEST_PLATFORMS` / `VMM_REQUIRE_PLATFORMS` (see the
//! library docs). An unusable platform is skipped with a line on stderr.

use vmm_tests::{check_same, compare, for_each_case, run_native, run_vmm, RunOutput};

fn expect(cond: bool, what: &str, out: &RunOutput) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}\n{out}"))
    }
}

const NO_ARGS: &[&str] = &[];

#[test]
fn hello() {
    for_each_case("hello", |p, v| compare(p, v, "hello", NO_ARGS));
}

#[test]
fn echo_args() {
    for_each_case("echo_args", |p, v| {
        compare(p, v, "echo_args", NO_ARGS)?;
        compare(
            p,
            v,
            "echo_args",
            &[
                "",
                "hello world",
                "ünïcödé ✓ 日本",
                "--flag",
                "a=b",
                "--",
                "-x",
            ],
        )
    });
}

#[test]
fn exit_codes() {
    for_each_case("exit_codes", |p, v| {
        for code in ["0", "1", "42", "255"] {
            for mode in ["exit", "_exit", "syscall"] {
                compare(p, v, "exit_code", &[code, mode])?;
            }
        }
        Ok(())
    });
}

#[test]
fn mem() {
    for_each_case("mem", |p, v| compare(p, v, "mem", NO_ARGS));
}

#[test]
fn efault() {
    for_each_case("efault", |p, v| compare(p, v, "efault", NO_ARGS));
}

#[test]
fn segv_null() {
    for_each_case("segv_null", |p, v| {
        let native = run_native(v, "segv_null", NO_ARGS);
        expect(
            native.signal() == Some(11),
            "native run must die of SIGSEGV",
            &native,
        )?;
        let sandboxed = run_vmm(p, v, "segv_null", NO_ARGS, &[]);
        expect(
            sandboxed.code() == 139,
            "vmm must exit 139 (128+SIGSEGV)",
            &sandboxed,
        )?;
        check_same(&native, &sandboxed)
    });
}

#[test]
fn segv_rodata() {
    for_each_case("segv_rodata", |p, v| {
        for mode in ["rodata", "mmap"] {
            let native = run_native(v, "segv_rodata", &[mode]);
            expect(
                native.signal() == Some(11),
                "native run must die of SIGSEGV",
                &native,
            )?;
            let sandboxed = run_vmm(p, v, "segv_rodata", &[mode], &[]);
            expect(
                sandboxed.code() == 139,
                "vmm must exit 139 (128+SIGSEGV)",
                &sandboxed,
            )?;
            check_same(&native, &sandboxed)?;
        }
        Ok(())
    });
}

#[test]
fn enosys() {
    for_each_case("enosys", |p, v| compare(p, v, "enosys", NO_ARGS));
}

#[test]
fn syscalls() {
    for_each_case("syscalls", |p, v| compare(p, v, "syscalls", NO_ARGS));
}

#[test]
fn write_n() {
    for_each_case("write_n", |p, v| {
        compare(p, v, "write_n", &["0"])?;
        compare(p, v, "write_n", &["10"])
    });
}

#[test]
fn exits_loop() {
    for_each_case("exits_loop", |p, v| {
        compare(p, v, "exits_loop", &["0"])?;
        compare(p, v, "exits_loop", &["500"])
    });
}

#[test]
fn strace() {
    for_each_case("strace", |p, v| {
        let native = run_native(v, "hello", NO_ARGS);
        let traced = run_vmm(p, v, "hello", NO_ARGS, &["--strace"]);
        check_same(&native, &traced)?;
        let stderr = traced.stderr_str();
        // Lines may carry a "[pid] " prefix; match loosely. glibc's stdio flushes with write,
        // musl's with writev.
        let write14 = stderr.lines().any(|l| {
            (l.contains("write(1,") || l.contains("writev(1,")) && l.trim_end().ends_with("= 14")
        });
        expect(
            write14,
            "--strace: no `write(1, ...) = 14` or `writev(1, ...) = 14` line",
            &traced,
        )?;
        let exit_group = stderr.lines().any(|l| l.contains("exit_group("));
        expect(exit_group, "--strace: no `exit_group(` line", &traced)?;
        // Without --strace, no syscall lines.
        let quiet = run_vmm(p, v, "hello", NO_ARGS, &[]);
        expect(
            !quiet
                .stderr_str()
                .lines()
                .any(|l| l.contains("write(1,") || l.contains("writev(1,")),
            "syscall trace printed without --strace",
            &quiet,
        )
    });
}

#[test]
fn strace_decoded() {
    // A fixed program's calls read as strace(1) prints them: names, decoded flags, strings,
    // buffers (the bytes the call returned), structures, errors by name.
    for_each_case("strace_decoded", |p, v| {
        let file = vmm_tests::temp_path("strace-me");
        std::fs::write(&file, "root:x:0:0:root").map_err(|e| e.to_string())?;
        let path = file.to_str().unwrap();
        let native = run_native(v, "strace_me", &[path]);
        let traced = run_vmm(p, v, "strace_me", &[path], &["--strace"]);
        let _ = std::fs::remove_file(&file);
        check_same(&native, &traced)?;
        let stderr = traced.stderr_str();
        let want = [
            format!("] openat(AT_FDCWD, \"{path}\", O_RDONLY|O_CLOEXEC) = 3"),
            "] read(3, \"root:x:0:0:\", 11) = 11".to_string(),
            "] close(3) = 0".to_string(),
            "] rt_sigaction(SIGINT, {sa_handler=0x".to_string(),
            ", sa_mask=[], sa_flags=SA_RESTART}, NULL, 8) = 0".to_string(),
            "] openat(AT_FDCWD, \"/nonexistent/x\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = -1 ENOENT (No such file or directory)".to_string(),
            "] mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x".to_string(),
            "] write(1, \"done\\n\", 5) = 5".to_string(),
            "] exit_group(0) = ?".to_string(),
        ];
        for w in &want {
            expect(
                stderr.lines().any(|l| l.contains(w.as_str())),
                &format!("--strace: no line containing `{w}`"),
                &traced,
            )?;
        }
        Ok(())
    });
}

#[test]
fn strace_filter_and_log_file() {
    // `--strace=LIST` traces only the syscalls named (or numbered); `--strace-log FILE` sends
    // the trace there, leaving the program's stderr alone.
    for_each_case("strace_filter_and_log_file", |p, v| {
        // A file of the test's own: the rig has no /etc/passwd.
        let file = vmm_tests::temp_path("strace-filter");
        std::fs::write(&file, "root:x:0:0:root").map_err(|e| e.to_string())?;
        let path = file.to_str().unwrap();
        let traced = run_vmm(p, v, "strace_me", &[path], &["--strace=openat,231"]);
        let stderr = traced.stderr_str();
        let lines: Vec<&str> = stderr.lines().collect();
        expect(
            lines.len() == 3
                && lines.iter().filter(|l| l.contains("] openat(")).count() == 2
                && lines.iter().any(|l| l.contains("] exit_group(0) = ?")),
            "--strace=openat,231: want exactly the two openat lines and exit_group",
            &traced,
        )?;
        let log = vmm_tests::temp_path("strace-log");
        let flag = format!("--strace-log={}", log.display());
        let out = run_vmm(p, v, "strace_me", &[path], &[flag.as_str()]);
        let written = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&file);
        expect(
            out.code() == 0 && out.stderr_str().is_empty(),
            "--strace-log: the trace must not reach stderr",
            &out,
        )?;
        expect(
            written.contains("] write(1, \"done\\n\", 5) = 5"),
            &format!("--strace-log file lacks the write line: {written:?}"),
            &out,
        )
    });
}

#[test]
fn strace_errors() {
    // An unimplemented syscall is traced with its error.
    for_each_case("strace_errors", |p, v| {
        let traced = run_vmm(p, v, "enosys", NO_ARGS, &["--strace"]);
        expect(
            traced.code() == 0,
            "enosys under --strace must still exit 0",
            &traced,
        )?;
        let has_enosys = traced
            .stderr_str()
            .lines()
            .any(|l| l.contains("= -1 ENOSYS"));
        expect(has_enosys, "--strace: no `= -1 ENOSYS` line", &traced)
    });
}

#[test]
fn stub_code_cannot_reach_the_host() {
    // Jumping to a `syscall` instruction in the fallbacks' stub page must not run a host
    // syscall: the directory the program asks for must not appear on the host.
    for_each_case("stub_code_cannot_reach_the_host", |p, v| {
        let target = vmm_tests::temp_path("escape-dir");
        let t = target.to_str().unwrap();
        let native = run_native(v, "escape_stub", &[t]);
        expect(
            native.signal() == Some(11),
            "native run must die of SIGSEGV (nothing mapped there)",
            &native,
        )?;
        let sandboxed = run_vmm(p, v, "escape_stub", &[t], &[]);
        let escaped = target.exists();
        let _ = std::fs::remove_dir(&target);
        expect(
            !escaped,
            "the program created a host directory through the stub page",
            &sandboxed,
        )?;
        expect(
            sandboxed.code() != 0,
            "the escape attempt must not end in success",
            &sandboxed,
        )
    });
}

#[test]
fn file_times() {
    // utimensat/futimens, and writes and truncation moving mtime and ctime, in the overlay.
    for_each_case("file_times", |p, v| compare(p, v, "file_times", &[]));
}

#[test]
fn pty() {
    // Pseudo-terminals: names, modes and stat, the line discipline, a controlling terminal
    // with ^C, SIGWINCH, SIGTTIN and the hang-up (tests/progs/pty.c).
    for_each_case("pty", |p, v| compare(p, v, "pty", NO_ARGS));
}

#[test]
fn locks() {
    // Advisory locks between processes: POSIX record locks, OFD locks, flock, lockf
    // (tests/progs/locks.c).
    for_each_case("locks", |p, v| compare(p, v, "locks", NO_ARGS));
}

#[test]
fn pipe_size() {
    // F_GETPIPE_SZ/F_SETPIPE_SZ (tests/progs/pipe_size.c).
    for_each_case("pipe_size", |p, v| compare(p, v, "pipe_size", NO_ARGS));
}

#[test]
fn parallel() {
    // Processes whose apps run at the same time (tests/progs/parallel.c): with the default
    // --cpus (the host's CPUs), one at a time, and more than the host has.
    for_each_case("parallel", |p, v| {
        let native = run_native(v, "parallel", NO_ARGS);
        for cpus in [None, Some("1"), Some("4")] {
            let opts: Vec<&str> = cpus.map(|n| vec!["--cpus", n]).unwrap_or_default();
            let sandboxed = run_vmm(p, v, "parallel", NO_ARGS, &opts);
            check_same(&native, &sandboxed).map_err(|e| format!("--cpus {cpus:?}: {e}"))?;
        }
        Ok(())
    });
}

#[test]
fn trailing_slash() {
    // A trailing '/' names a directory (tests/progs/trailing_slash.c).
    for_each_case("trailing_slash", |p, v| {
        compare(p, v, "trailing_slash", NO_ARGS)
    });
}

#[test]
fn priority() {
    // getpriority/setpriority: the process, a child by pid, a group, the user, the errors.
    for_each_case("priority", |p, v| compare(p, v, "priority", &[]));
}

#[test]
fn rename() {
    // Files, symlinks and the sandbox's own directory trees, RENAME_NOREPLACE, the errors.
    for_each_case("rename", |p, v| compare(p, v, "rename", &[]));
}

#[test]
fn vectored_io() {
    // preadv/pwritev/preadv2/pwritev2 on a host file, an overlay file and a pipe.
    for_each_case("vectored", |p, v| {
        let dir = vmm_tests::temp_path("vectored");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "hello\n").unwrap();
        let d = dir.to_str().unwrap().to_string();
        let r = compare(p, v, "vectored", &[&d]);
        let _ = std::fs::remove_dir_all(&dir);
        r
    });
}

#[test]
fn fs_read() {
    for_each_case("fs_read", |p, v| {
        let dir = vmm_tests::temp_path("fs-read");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), "hello\n").unwrap();
        std::fs::write(dir.join("b.txt"), "two\nlines\n").unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let r = compare(p, v, "fs_read", &[&d]);
        let _ = std::fs::remove_dir_all(&dir);
        r
    });
}

#[test]
fn symlinks() {
    for_each_case("symlinks", |p, v| {
        let dir = vmm_tests::temp_path("symlinks");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let run_native_fresh = || {
            let out = run_native(v, "symlinks", &[&d]);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            out
        };
        let mut native = run_native_fresh();
        let sandboxed = run_vmm(p, v, "symlinks", &[&d], &[]);
        // The sandbox wrote to its overlay only.
        let untouched = std::fs::read_dir(&dir).unwrap().next().is_none();
        // Natively a chain of exactly 40 links (Linux's limit) now and then fails with ELOOP:
        // when the lockless (RCU) walk gives up midway, Linux walks again without resetting
        // the link count (fs/namei.c, filename_lookup), which happens under load. The Sentry
        // counts each walk from zero; the native side gets two more tries before they differ.
        for _ in 0..2 {
            if check_same(&native, &sandboxed).is_ok() {
                break;
            }
            native = run_native_fresh();
        }
        let _ = std::fs::remove_dir_all(&dir);
        check_same(&native, &sandboxed)?;
        expect(untouched, "the host directory must stay empty", &sandboxed)
    });
}

#[test]
fn devices() {
    for_each_case("devices", |p, v| compare(p, v, "devices", &[]));
}

#[test]
fn signals() {
    for_each_case("signals", |p, v| {
        compare(p, v, "signals", &[])?;
        compare(p, v, "signals", &["term"])
    });
}

#[test]
fn poll_select() {
    for_each_case("poll_select", |p, v| compare(p, v, "poll_select", &[]));
}

#[test]
fn timers() {
    for_each_case("timers", |p, v| {
        compare(p, v, "timers", &[])?;
        compare(p, v, "timers", &["die"])
    });
}

#[test]
fn procfs() {
    for_each_case("procfs", |p, v| compare(p, v, "procfs", &[]));
}

#[test]
fn procs() {
    for_each_case("procs", |p, v| compare(p, v, "procs", NO_ARGS));
}

/// Signals from outside: SIGINT to the process group (a terminal's Ctrl-C) while the program
/// pauses, spins without syscalls (preemption) and blocks reading stdin; SIGINT's default
/// action; SIGTERM to a handler. Each compared with the same signals sent to the native run.
#[test]
fn host_signals() {
    for_each_case("host_signals", |p, v| {
        for (mode, sig) in [
            ("handler", libc::SIGINT),
            ("default", libc::SIGINT),
            ("term", libc::SIGTERM),
        ] {
            let native =
                vmm_tests::run_signalled(&vmm_tests::prog_path(v, "host_signals"), &[mode], sig);
            let vmm = vmm_tests::vmm_bin_or_panic();
            let prog = vmm_tests::prog_path(v, "host_signals");
            let sandboxed = vmm_tests::run_signalled(
                &vmm,
                &[
                    std::ffi::OsStr::new("run"),
                    std::ffi::OsStr::new("--platform"),
                    std::ffi::OsStr::new(p),
                    std::ffi::OsStr::new("--"),
                    prog.as_os_str(),
                    std::ffi::OsStr::new(mode),
                ],
                sig,
            );
            check_same(&native, &sandboxed)?;
        }
        Ok(())
    });
}

/// Handlers that wreck SSE (and AVX) registers and MXCSR interrupt floating-point code
/// anywhere (preemption): the interrupted computation is unchanged, and the frames are the
/// whole XSAVE state in Linux's format, as natively.
///
/// Where the sandbox's CPU has no AVX while the host has (the kvm rig: its emulated SVM does
/// not keep a guest's XCR0, so the guest kernel runs without XSAVE), the AVX cases cannot
/// run there: both runs then skip them, saying so.
#[test]
fn fpu_signals() {
    for_each_case("fpu_signals", |p, v| {
        let probe = run_vmm(p, v, "fpu_signals", &["probe"], &[]);
        let native_probe = run_native(v, "fpu_signals", &["probe"]);
        let args: &[&str] = if probe.stdout != native_probe.stdout {
            eprintln!(
                "fpu_signals [{p}/{v}]: the sandbox's CPU says {:?}, the host's {:?}: AVX cases skipped",
                String::from_utf8_lossy(&probe.stdout).trim(),
                String::from_utf8_lossy(&native_probe.stdout).trim()
            );
            &["noavx"]
        } else {
            NO_ARGS
        };
        compare(p, v, "fpu_signals", args)
    });
}

/// `mov $nr, %eax; syscall` sites that systrap rewrites into jumps after their first trap:
/// results, registers, flags, SSE state, the red zone, a jump at the old `syscall`, fork and
/// signals, as natively. On systrap the exit stats must also show that most of the program's
/// syscalls took the fast path (else this would only test the trap).
#[test]
fn patched_sites() {
    for_each_case("patched_sites", |p, v| {
        compare(p, v, "patched_sites", NO_ARGS)?;
        if p != "systrap" {
            return Ok(());
        }
        let file = vmm_tests::temp_path("patched.json");
        let f = file.to_str().unwrap().to_string();
        let out = run_vmm(p, v, "patched_sites", NO_ARGS, &["--exit-stats", &f]);
        let text = std::fs::read_to_string(&file);
        let _ = std::fs::remove_file(&file);
        let text = text.map_err(|e| format!("{f} not written: {e}\n{out}"))?;
        let j = serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| format!("{e}: {text:?}"))?;
        let count = |k: &str| j.get(k).and_then(serde_json::Value::as_u64);
        match (count("trapped_syscalls"), count("fast_syscalls")) {
            (Some(trapped), Some(fast)) if fast > 4000 && fast > 10 * trapped => Ok(()),
            _ => Err(format!(
                "[systrap/{v}] expected most syscalls through patched sites: {text}"
            )),
        }
    });
}

/// Job control: stops and continues (SIGSTOP, SIGTSTP, SIGCONT) reported by wait4 and waitid
/// and by SIGCHLD, signals to a stopped child, kill(0, …), SA_RESTART.
#[test]
fn jobs() {
    for_each_case("jobs", |p, v| compare(p, v, "jobs", NO_ARGS));
}

/// A program that changes its data, bss and heap and execs itself again (directly, and from a
/// forked child) starts each time from the pristine image, as natively: the images the Sentry
/// keeps between execs are never changed by a process.
#[test]
fn exec_again() {
    for_each_case("exec_again", |p, v| compare(p, v, "exec_again", NO_ARGS));
}

/// `mmap` of files: host files private, at an offset, written privately, shared read-only;
/// a file the program wrote; /dev/zero; the errors — as natively.
#[test]
fn file_mmap() {
    for_each_case("file_mmap", |p, v| compare(p, v, "file_mmap", NO_ARGS));
}

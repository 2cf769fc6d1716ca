//! Proves the test programs themselves: every program, every variant, run
//! natively, must produce the expected output. Needs no vmm.

use vmm_tests::{prog_path, run_native, variants, RunOutput, FIXED_ENV};

fn each_variant(test: &str, mut f: impl FnMut(&str) -> Result<(), String>) {
    let mut failures = Vec::new();
    for v in variants() {
        if let Err(e) = f(v) {
            failures.push(format!("=== {test} [native/{v}]\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn expect(cond: bool, what: &str, out: &RunOutput) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}\n{out}"))
    }
}

fn expect_ok_stdout(out: &RunOutput, stdout: &str) -> Result<(), String> {
    expect(out.code() == 0, "expected exit 0", out)?;
    expect(
        out.stdout_str() == stdout,
        &format!("expected stdout {stdout:?}"),
        out,
    )
}

fn lines(out: &RunOutput) -> Vec<String> {
    out.stdout_str().lines().map(str::to_string).collect()
}

#[test]
fn all_variants_built() {
    // build.rs builds all four on Debian 12 (musl-pie via a derived specs
    // file); losing one should be noticed.
    if std::env::var_os("VMM_TEST_VARIANTS").is_none()
        && std::env::var_os("VMM_TEST_PROGS").is_none()
    {
        assert_eq!(variants(), vmm_tests::ALL_VARIANTS.to_vec());
    }
}

#[test]
fn hello() {
    each_variant("hello", |v| {
        let out = run_native(v, "hello", &[] as &[&str]);
        expect_ok_stdout(&out, "Hello, world!\n")
    });
}

#[test]
fn echo_args() {
    let args = ["", "hello world", "ünïcödé ✓ 日本", "--flag", "a=b"];
    each_variant("echo_args", |v| {
        let out = run_native(v, "echo_args", &args);
        expect(out.code() == 0, "expected exit 0", &out)?;
        let path = prog_path(v, "echo_args");
        let mut want = vec![
            format!("argc={}", args.len() + 1),
            format!("argv[0]={}", path.display()),
        ];
        for (i, a) in args.iter().enumerate() {
            want.push(format!("argv[{}]={a}", i + 1));
        }
        // std passes an env_clear()ed environment sorted by name.
        let mut env: Vec<_> = FIXED_ENV.to_vec();
        env.sort();
        for (i, (k, val)) in env.iter().enumerate() {
            want.push(format!("env[{i}]={k}={val}"));
        }
        want.push("AT_PAGESZ=4096".into());
        let got = lines(&out);
        expect(got.len() > want.len(), "too few lines", &out)?;
        expect(
            got[..want.len()] == want[..],
            &format!("expected prefix {want:#?}"),
            &out,
        )?;
        let rest = &got[want.len()..];
        expect(rest[0].starts_with("AT_PHNUM="), "AT_PHNUM line", &out)?;
        let phnum: u32 = rest[0]["AT_PHNUM=".len()..].parse().unwrap_or(0);
        expect(phnum >= 2, "AT_PHNUM >= 2", &out)?;
        let tail = [
            "AT_PHENT=56",
            "raw auxv ok",
            "phdr ok",
            "entry ok",
            "random ok",
            "execfn ok",
        ];
        expect(rest[1..] == tail, &format!("expected tail {tail:#?}"), &out)
    });
}

#[test]
fn exit_codes() {
    each_variant("exit_codes", |v| {
        for code in [0, 1, 42, 255] {
            for mode in ["exit", "_exit", "syscall"] {
                let out = run_native(v, "exit_code", &[code.to_string().as_str(), mode]);
                expect(
                    out.code() == code,
                    &format!("expected exit {code} ({mode})"),
                    &out,
                )?;
                expect(
                    out.stdout.is_empty() && out.stderr.is_empty(),
                    "no output",
                    &out,
                )?;
            }
        }
        let out = run_native(v, "exit_code", &["3"]);
        expect(out.code() == 3, "default mode", &out)
    });
}

#[test]
fn mem() {
    let names = [
        "brk_query",
        "brk_grow",
        "brk_rw",
        "brk_query_grown",
        "brk_shrink",
        "brk_query_shrunk",
        "brk_regrow_zero",
        "mmap_anon",
        "mmap_aligned",
        "mmap_zero",
        "mmap_rw",
        "mmap_page_edges",
        "munmap",
        "remmap",
        "remmap_zero",
        "munmap_again",
        "mprotect_setup",
        "mprotect_ro",
        "mprotect_ro_read",
        "mprotect_rw",
        "mprotect_rw_write",
        "reserve",
        "mmap_fixed",
        "mmap_fixed_rw",
        "munmap_reserve",
        "mmap_hint",
        "mmap_len0_einval",
        "munmap_unaligned_einval",
        "mmap_fixed_unaligned_einval",
        "mremap_grow_in_place",
        "mremap_no_move_enomem",
        "mremap_move_keeps_data",
        "mremap_shrink",
        "mremap_unaligned_einval",
        "mremap_bad_flags_einval",
        "mremap_unmapped_efault",
    ];
    let mut want: String = names.iter().map(|n| format!("ok {n}\n")).collect();
    want.push_str("mem: all ok\n");
    each_variant("mem", |v| {
        expect_ok_stdout(&run_native(v, "mem", &[] as &[&str]), &want)
    });
}

#[test]
fn efault() {
    let want = "write(1, 0x10, 5) = -1 EFAULT\n\
                write(1, -4096, 5) = -1 EFAULT\n\
                read(pipe, 0x10, 5) = -1 EFAULT\n\
                read(0, -4096, 5) = -1 EFAULT\n\
                pipe data intact\n";
    each_variant("efault", |v| {
        expect_ok_stdout(&run_native(v, "efault", &[] as &[&str]), want)
    });
}

#[test]
fn segv_null() {
    each_variant("segv_null", |v| {
        let out = run_native(v, "segv_null", &[] as &[&str]);
        expect(out.signal() == Some(11), "expected death by SIGSEGV", &out)?;
        expect(out.code() == 139, "shell status 139", &out)?;
        expect(out.stdout_str() == "before\n", "stdout before", &out)
    });
}

#[test]
fn segv_rodata() {
    each_variant("segv_rodata", |v| {
        for mode in ["rodata", "mmap"] {
            let out = run_native(v, "segv_rodata", &[mode]);
            expect(
                out.signal() == Some(11),
                &format!("{mode}: expected SIGSEGV"),
                &out,
            )?;
            expect(out.stdout_str() == "before\n", "stdout before", &out)?;
        }
        Ok(())
    });
}

#[test]
fn enosys() {
    let want = "syscall(1000) = -1 ENOSYS\nsyscall(549) = -1 ENOSYS\nENOSYS ok\n";
    each_variant("enosys", |v| {
        expect_ok_stdout(&run_native(v, "enosys", &[] as &[&str]), want)
    });
}

#[test]
fn syscalls() {
    // stdout is a pipe here, so both terminal ioctls fail with ENOTTY.
    let want = "getpid positive\n\
                gettid == getpid\n\
                getppid nonnegative\n\
                getuid == geteuid\n\
                getgid == getegid\n\
                sysname=Linux\n\
                machine=x86_64\n\
                monotonic ok\n\
                realtime ok\n\
                getrandom ok\n\
                rlimit ok\n\
                exe ok\n\
                TIOCGWINSZ: ENOTTY\n\
                TCGETS: ENOTTY\n\
                sigaction ok\n\
                sigprocmask ok\n\
                pipe2(O_CLOEXEC) sets close-on-exec\n\
                pipe2(0) leaves close-on-exec clear\n\
                syscalls: all ok\n";
    each_variant("syscalls", |v| {
        expect_ok_stdout(&run_native(v, "syscalls", &[] as &[&str]), want)
    });
}

#[test]
fn exits_loop() {
    each_variant("exits_loop", |v| {
        for n in ["0", "1", "200"] {
            let out = run_native(v, "exits_loop", &[n]);
            expect_ok_stdout(&out, "")?;
            expect(out.stderr.is_empty(), "no stderr", &out)?;
        }
        Ok(())
    });
}

#[test]
fn write_n() {
    each_variant("write_n", |v| {
        expect_ok_stdout(&run_native(v, "write_n", &["0"]), "")?;
        expect_ok_stdout(&run_native(v, "write_n", &["10"]), "xxxxxxxxxx")
    });
}

//! vmm's command line: usage errors and `vmm platforms`. These need the vmm
//! binary (see `VMM_BIN`) but no usable platform, except where noted.

use vmm_tests::{
    parse_platforms, platforms_under_test, prog_path, run_vmm_raw, variants, RunOutput,
};

/// Stderr must be exactly one non-empty line.
fn one_line_stderr(out: &RunOutput) -> Result<String, String> {
    let s = out.stderr_str();
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() == 1 {
        Ok(lines[0].to_string())
    } else {
        Err(format!(
            "expected a one-line error on stderr, got {} lines\n{out}",
            lines.len()
        ))
    }
}

fn usage_error(args: &[&str]) {
    let out = run_vmm_raw(args);
    assert_eq!(
        out.code(),
        2,
        "expected exit 2 for `vmm {}`\n{out}",
        args.join(" ")
    );
    one_line_stderr(&out).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.stdout.is_empty(),
        "usage error must not write stdout\n{out}"
    );
}

#[test]
fn run_without_program() {
    usage_error(&["run"]);
}

#[test]
fn run_with_only_separator() {
    usage_error(&["run", "--"]);
}

#[test]
fn bogus_platform() {
    let hello = prog_path(variants()[0], "hello");
    usage_error(&["run", "--platform", "bogus", hello.to_str().unwrap()]);
    usage_error(&["run", "--platform", "bogus", "x"]);
}

#[test]
fn platform_flag_without_value() {
    usage_error(&["run", "--platform"]);
}

#[test]
fn unknown_flag() {
    usage_error(&["run", "--no-such-flag", "x"]);
}

#[test]
fn unknown_subcommand() {
    usage_error(&["frobnicate"]);
}

#[test]
fn no_arguments() {
    usage_error(&[]);
}

#[test]
fn nonexistent_program() {
    let missing = "/nonexistent/vmm-tests/no-such-program";
    let platforms = platforms_under_test();
    if platforms.is_empty() {
        eprintln!("skipping nonexistent_program: no usable platform");
        return;
    }
    for p in platforms {
        let out = run_vmm_raw(&["run", "--platform", &p, "--", missing]);
        assert_ne!(
            out.code(),
            0,
            "[{p}] running a missing program must fail\n{out}"
        );
        let line = one_line_stderr(&out).unwrap_or_else(|e| panic!("[{p}] {e}"));
        assert!(
            line.contains(missing),
            "[{p}] error must name the path\n{out}"
        );
    }
}

#[test]
fn platforms_json() {
    let out = run_vmm_raw(&["platforms", "--json"]);
    assert_eq!(out.code(), 0, "`vmm platforms --json` must succeed\n{out}");
    let infos = parse_platforms(&out.stdout_str()).unwrap_or_else(|e| panic!("{e}\n{out}"));
    for want in ["kvm", "systrap", "ptrace"] {
        assert!(
            infos.iter().any(|i| i.name == want),
            "`vmm platforms --json` does not list {want}\n{out}"
        );
    }
    for i in &infos {
        assert!(
            i.usable || !i.reason.is_empty(),
            "{} is unusable but gives no reason\n{out}",
            i.name
        );
    }
}

#[test]
fn platforms_human() {
    let out = run_vmm_raw(&["platforms"]);
    assert_eq!(out.code(), 0, "`vmm platforms` must succeed\n{out}");
    let s = out.stdout_str();
    assert!(s.contains("kvm"), "`vmm platforms` must mention kvm\n{out}");
}

#[test]
fn bench_unknown_option_is_a_usage_error() {
    usage_error(&["bench", "--bogus"]);
}

#[test]
fn bench_json_has_every_operation_for_every_usable_platform() {
    // Shape only: timings are for reading, never asserted.
    // With VMM_TEST_PLATFORMS set (the kvm rig sets kvm) only those columns are benched
    // (`--platform`): under nested emulation every column takes minutes.
    let platforms: Vec<String> = vmm_tests::query_platforms()
        .expect("vmm platforms --json")
        .into_iter()
        .filter(|p| p.usable)
        .map(|p| p.name)
        .collect();
    let (platforms, mut args) = match std::env::var("VMM_TEST_PLATFORMS") {
        Ok(_) => {
            let p = vmm_tests::platforms_under_test();
            let list = p.join(",");
            (p, vec!["--platform".to_string(), list])
        }
        Err(_) => (platforms, Vec::new()),
    };
    if platforms.is_empty() {
        eprintln!("skipping: no platform is usable here");
        return;
    }
    args.splice(
        0..0,
        ["bench", "--quick", "--reps", "1", "--json"].map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vmm_tests::run_command_timeout(
        &vmm_tests::vmm_bin_or_panic(),
        &args,
        std::time::Duration::from_secs(600),
    );
    assert_eq!(out.code(), 0, "vmm {args:?} failed:\n{out}");
    let text = out.stdout_str();
    let j = serde_json::from_str::<serde_json::Value>(&text)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"));
    let results = j.get("results").expect("results");
    let mut ops = vec![
        "getpid",
        "getpid_site",
        "fault",
        "mmap16",
        "write1",
        "pipe",
        "unix_pp",
        "tcp_pp",
        "tcp_64k",
        "epoll1",
        "fork",
        "exec",
        "hello",
    ];
    if std::path::Path::new("/bin/busybox").is_file() {
        ops.push("busybox");
    }
    for op in ops {
        let row = results
            .get(op)
            .unwrap_or_else(|| panic!("no {op} row in {text}"));
        assert!(
            row.get("native").is_some(),
            "no native figure for {op} in {text}"
        );
        for p in &platforms {
            assert!(row.get(p).is_some(), "no {p} figure for {op} in {text}");
        }
        for col in ["systrap", "ptrace", "kvm"] {
            assert!(
                platforms.iter().any(|p| p == col) || row.get(col).is_none(),
                "{col} was not asked for but has a figure for {op} in {text}"
            );
        }
    }
    let raw = j.get("raw").expect("raw mechanisms");
    assert!(raw.get("seccomp_trap_getpid").is_some() && raw.get("ptrace_sysemu_getpid").is_some());
}

#[test]
fn bench_refuses_a_platform_that_cannot_run_here() {
    // One line and 125, before any benchmark runs: naming a column is a demand, not a wish.
    let infos = vmm_tests::query_platforms().expect("vmm platforms --json");
    let Some(p) = infos.iter().find(|p| !p.usable) else {
        eprintln!("skipping: every platform is usable here, none to refuse");
        return;
    };
    let out = vmm_tests::run_command_timeout(
        &vmm_tests::vmm_bin_or_panic(),
        &["bench", "--quick", "--reps", "1", "--platform", &p.name],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.code(), 125, "{out}");
    let err = out.stderr_str();
    assert!(
        err.trim().lines().count() == 1 && err.contains(&p.name) && out.stdout.is_empty(),
        "want one line naming {} on stderr and nothing on stdout:\n{out}",
        p.name
    );
}

#[test]
fn root_must_be_a_directory() {
    usage_error(&["run", "--root", "/nonexistent-vmm-root", "/bin/true"]);
}

#[test]
fn ro_and_rw_exclude_each_other() {
    usage_error(&["run", "--ro", "--rw", "/bin/true"]);
}

#[test]
fn bad_pids_limit() {
    for v in ["0", "-1", "many", ""] {
        usage_error(&["run", "--pids-limit", v, "x"]);
    }
    usage_error(&["run", "--pids-limit"]);
}

#[test]
fn bad_strace_filter() {
    // A name the Sentry does not know, a number past the table, an uncreatable log file.
    usage_error(&["run", "--strace=nosuchcall", "/bin/true"]);
    usage_error(&["run", "--strace=100000", "/bin/true"]);
    usage_error(&["run", "--strace-log", "/nonexistent-dir/trace", "/bin/true"]);
}

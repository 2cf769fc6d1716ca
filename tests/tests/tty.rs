//! Programs on a terminal: Ctrl-C typed at the terminal reaches the sandboxed program (while it
//! waits, while it spins without syscalls, while it reads the terminal), `/dev/tty`, the window
//! size, the foreground group and raw mode — each compared with the same keystrokes typed at
//! the native program. Every platform under test, musl build.

use vmm_tests::{check_same, platforms_under_test, prog_path, run_in_pty, vmm_bin_or_panic};

fn compare_in_pty(prog: &str, args: &[&str], steps: &[(&str, &[u8])]) {
    let path = prog_path("musl", prog);
    let native = run_in_pty(&path, args, steps);
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let mut vargs: Vec<std::ffi::OsString> = vec![
            "run".into(),
            "--platform".into(),
            p.clone().into(),
            "--".into(),
        ];
        vargs.push(path.clone().into_os_string());
        vargs.extend(args.iter().map(Into::into));
        let sandboxed = run_in_pty(&vmm_bin_or_panic(), &vargs, steps);
        if let Err(e) = check_same(&native, &sandboxed) {
            failures.push(format!("=== {prog} {args:?} [{p}]\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ctrl_c_at_a_terminal() {
    compare_in_pty(
        "host_signals",
        &["handler"],
        &[
            ("ready pause", b"\x03"),
            ("ready spin", b"\x03"),
            ("ready read", b"\x03"),
        ],
    );
    compare_in_pty("host_signals", &["default"], &[("ready default", b"\x03")]);
}

#[test]
fn dev_tty_and_terminal_modes() {
    compare_in_pty("tty", &[], &[("ready", b"x")]);
}

/// Ctrl-Z at an interactive shell (busybox ash, with job control) stops `vmm` as a whole (its
/// stubs with it) and `fg` resumes the sandboxed program where it was: the shell reports the
/// job stopped, and the program then finishes its work.
#[test]
fn ctrl_z_stops_vmm_and_fg_resumes_it() {
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        // The markers are split in the command so the terminal's echo of it does not match.
        let command = format!(
            "{} run --platform {p} -- /bin/busybox sh -c 'echo st\"\"arted; sleep 1; echo fin\"\"ished'\n",
            vmm_bin_or_panic().display()
        );
        let out = run_in_pty(
            std::path::Path::new("/bin/busybox"),
            &["env", "PS1=ready> ", "/bin/busybox", "sh", "-i"],
            &[
                ("ready>", command.as_bytes()),
                ("started", b"\x1a"),
                ("Stopped", b"fg\n"),
                ("finished", b"exit\n"),
            ],
        );
        let text = out.stdout_str();
        if !(text.contains("Stopped") && text.contains("finished")) {
            failures.push(format!(
                "[{p}] expected the job stopped, then finished:\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// util-linux's `script` makes a pty inside the sandbox (`/dev/ptmx`) and runs a shell on it:
/// `tty`, `test -t`, the default modes (`stty -g`), the size, `/dev/tty`, and the exit code
/// through, byte for byte as natively (the output passes the pty: `\r\n`).
#[test]
fn script_runs_a_shell_on_a_pty_of_the_sandbox() {
    let script = std::path::Path::new("/usr/bin/script");
    if !script.is_file() {
        eprintln!("skipping script_runs_a_shell_on_a_pty_of_the_sandbox: no /usr/bin/script");
        return;
    }
    let cmd = "tty | sed 's/[0-9]*$/N/'; test -t 0 && echo stdin is a terminal; stty -g; \
               stty size; echo $(( 6 * 7 )) > /dev/tty; exit 3";
    let args = ["-qec", cmd, "/dev/null"];
    let native = vmm_tests::run_command(script, &args);
    assert_eq!(native.code(), 3, "native run:\n{native}");
    vmm_tests::assert_same_as_native("script -qec", &native, script, &args);
}

/// CPython's own pty tests (`test_pty`: `os.openpty`, `pty.fork`, `pty.spawn`, reads of the
/// master at EOF) with the same results as natively.
#[test]
fn cpython_test_pty() {
    vmm_tests::cpython_test_same_as_native("cpython_test_pty", "test_pty", &[]);
}

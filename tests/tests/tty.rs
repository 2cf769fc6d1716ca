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

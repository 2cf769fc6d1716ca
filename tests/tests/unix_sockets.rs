//! Unix domain sockets served by the Sentry — socketpair, stream/dgram/seqpacket, abstract
//! and path names, fd passing between processes and threads, credentials, shutdown, EPIPE,
//! readiness, buffer limits — compared with native runs on every platform under test and
//! every variant; and Python (socketpair, multiprocessing Pipe and Listener/Client, asyncio)
//! as a real program uses them.

use std::path::{Path, PathBuf};
use vmm_tests::{
    check_same, compare, for_each_case, platforms_under_test, run_command, run_vmm_raw,
};

#[test]
fn unix_sockets() {
    for_each_case("unix_sockets", |p, v| compare(p, v, "unix_sockets", &[]));
}

#[test]
fn python_unix_sockets() {
    let python = Path::new("/usr/bin/python3");
    if !python.is_file() {
        eprintln!("skipping python_unix_sockets: no /usr/bin/python3");
        return;
    }
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "progs", "py_unix.py"]
        .iter()
        .collect();
    let script = script.to_str().expect("UTF-8 path");
    let native = run_command(python, &["-I", script]);
    assert!(native.status.success(), "native run failed:\n{native}");
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let sandboxed = run_vmm_raw(&[
            "run",
            "--platform",
            &p,
            "--",
            "/usr/bin/python3",
            "-I",
            script,
        ]);
        if let Err(e) = check_same(&native, &sandboxed) {
            failures.push(format!("=== python unix sockets [{p}]\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Readiness and event descriptors — epoll, eventfd, timerfd, signalfd, and poll/select over
//! them — compared with native runs on every platform under test and every variant; and
//! Python's `selectors` (epoll underneath) as a real program uses them.

use std::path::{Path, PathBuf};
use vmm_tests::{
    check_same, compare, for_each_case, platforms_under_test, run_command, run_vmm_raw,
};

#[test]
fn events() {
    for_each_case("events", |p, v| compare(p, v, "events", &[]));
}

#[test]
fn python_selectors() {
    let python = Path::new("/usr/bin/python3");
    if !python.is_file() {
        eprintln!("skipping python_selectors: no /usr/bin/python3");
        return;
    }
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "progs", "py_selectors.py"]
        .iter()
        .collect();
    if !script.is_file() {
        eprintln!(
            "skipping python_selectors: {} is not here",
            script.display()
        );
        return;
    }
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
            failures.push(format!("=== python selectors [{p}]\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! CPython's own regression tests (Debian's `libpython3.11-testsuite`) under `vmm run` on
//! every platform under test: each test's outcome (ok, skipped and why, failed) as natively.
//! Suites nobody here wrote, on the file syscalls. (`test_pty` is in `tty.rs`.)
//!
//! Not here yet, as they still differ from native runs: `test_fcntl` (`F_NOTIFY`),
//! `test_stat`/`test_pathlib` (no FIFOs in the overlay: `mkfifo` fails), `test_shutil`
//! (FIFOs; `disk_usage` finds 0 bytes used on the overlay root), `test_tempfile`
//! (`test_cleanup_with_symlink_modes`).

use vmm_tests::cpython_test_same_as_native;

#[test]
fn cpython_test_os() {
    cpython_test_same_as_native("cpython_test_os", "test_os", &[]);
}

#[test]
fn cpython_test_glob() {
    cpython_test_same_as_native("cpython_test_glob", "test_glob", &[]);
}

#[test]
fn cpython_test_fileio() {
    cpython_test_same_as_native("cpython_test_fileio", "test_fileio", &[]);
}

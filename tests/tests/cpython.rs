//! CPython's own regression tests (Debian's `libpython3.11-testsuite`) under `vmm run` on
//! every platform under test: each test's outcome (ok, skipped and why, failed) as natively.
//! Suites nobody here wrote, on the file, terminal and process syscalls.

use vmm_tests::cpython_test_same_as_native;

#[test]
fn cpython_test_os() {
    cpython_test_same_as_native("cpython_test_os", "test_os", &[]);
}

#[test]
fn cpython_test_fcntl() {
    cpython_test_same_as_native("cpython_test_fcntl", "test_fcntl", &[]);
}

#[test]
fn cpython_test_stat() {
    cpython_test_same_as_native("cpython_test_stat", "test_stat", &[]);
}

#[test]
fn cpython_test_glob() {
    cpython_test_same_as_native("cpython_test_glob", "test_glob", &[]);
}

#[test]
fn cpython_test_tempfile() {
    cpython_test_same_as_native("cpython_test_tempfile", "test_tempfile", &[]);
}

#[test]
fn cpython_test_shutil() {
    cpython_test_same_as_native("cpython_test_shutil", "test_shutil", &[]);
}

#[test]
fn cpython_test_pathlib() {
    cpython_test_same_as_native("cpython_test_pathlib", "test_pathlib", &[]);
}

#[test]
fn cpython_test_fileio() {
    cpython_test_same_as_native("cpython_test_fileio", "test_fileio", &[]);
}

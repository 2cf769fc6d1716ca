//! Directories made in the overlay used through open descriptors (`fstat`, `fchdir`, the
//! `*at` calls relative to them): coreutils' `mkdir -p` and `rm -rf`, Python's
//! `shutil.rmtree`, `TemporaryDirectory`, `os.fwalk` — compared with native runs.

use vmm_tests::{assert_same_as_native, python_script_same_as_native, run_command};

#[test]
fn python_overlay_dirs() {
    python_script_same_as_native(
        "python_overlay_dirs",
        "py_overlay_dirs.py",
        "python overlay dirs",
    );
}

#[test]
fn coreutils_mkdir_p_and_rm_rf() {
    let sh = std::path::Path::new("/bin/sh");
    let dir = vmm_tests::temp_path("overlay_dirs");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "cd {} && mkdir -p x/y/z && touch x/y/f && ls -R x && mv x/y x/w && ls x && rm -rf x && ls",
        dir.display()
    );
    let args = ["-c", script.as_str()];
    let native = run_command(sh, &args);
    assert!(native.status.success(), "native run failed:\n{native}");
    std::fs::create_dir_all(&dir).unwrap();
    assert_same_as_native("mkdir -p / rm -rf", &native, sh, &args);
    let _ = std::fs::remove_dir_all(&dir);
}

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

#[test]
fn host_directory_keeps_its_entries_after_chmod_and_touch() {
    // A host directory whose mode or times the sandbox changes still lists the host's
    // entries (they vanished: the overlay's copy of the directory hid them), and is not
    // empty for rmdir.
    let sh = std::path::Path::new("/bin/sh");
    let dir = vmm_tests::temp_path("host_dir_meta");
    let make = || {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), "a").unwrap();
        std::fs::write(dir.join("sub/c"), "c").unwrap();
    };
    make();
    let script = format!(
        "cd {} && chmod 700 . && ls && touch -d '2001-01-01 00:00:00' sub && ls sub && stat -c %a . && stat -c %Y sub \
         && rmdir sub 2>/dev/null; echo rmdir $? && rm sub/c && rmdir sub && ls",
        dir.display()
    );
    let args = ["-c", script.as_str()];
    let native = run_command(sh, &args);
    assert!(native.status.success(), "native run failed:\n{native}");
    make();
    assert_same_as_native("chmod/touch of a host directory", &native, sh, &args);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tests/progs/SCRIPT HOST_DIR` by `/usr/bin/python3`, natively and then on every
/// platform, each on a fresh host fixture (`hf`, a file; `hl`, a symlink to it; `hd/x`) that
/// the native run may change and the sandboxed ones must not; the fixture's directory for
/// the caller's checks after, or None when there is no python3 (said on stderr).
fn python_on_a_host_fixture(test: &str, script: &str, what: &str) -> Option<std::path::PathBuf> {
    let python = std::path::Path::new("/usr/bin/python3");
    if !python.is_file() {
        eprintln!("skipping {test}: no /usr/bin/python3");
        return None;
    }
    let script = [env!("CARGO_MANIFEST_DIR"), "progs", script]
        .iter()
        .collect::<std::path::PathBuf>();
    let dir = vmm_tests::temp_path(test);
    let make = || {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("hd")).unwrap();
        std::fs::write(dir.join("hf"), "data\n").unwrap();
        std::fs::write(dir.join("hd/x"), "").unwrap();
        std::os::unix::fs::symlink("hf", dir.join("hl")).unwrap();
    };
    make();
    let args = [script.to_str().unwrap(), dir.to_str().unwrap()];
    let native = run_command(python, &args);
    assert!(native.status.success(), "native run failed:\n{native}");
    make();
    assert_same_as_native(what, &native, python, &args);
    Some(dir)
}

#[test]
fn ownership_is_recorded() {
    // chown & co. of sandbox-made and host entries (tests/progs/py_ownership.py): the owner,
    // group and mode stat reports after each, as natively; the host fixture stays as it was.
    let Some(dir) = python_on_a_host_fixture("ownership", "py_ownership.py", "ownership") else {
        return;
    };
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir.join("hf")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o644),
        "host file changed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extended_attributes() {
    // user.*/trusted.* attributes of sandbox-made and host entries (tests/progs/py_xattrs.py),
    // as natively; the host fixture stays without any.
    let Some(dir) = python_on_a_host_fixture("xattrs", "py_xattrs.py", "extended attributes")
    else {
        return;
    };
    let listed = run_command(
        std::path::Path::new("/usr/bin/python3"),
        &[
            "-c",
            "import os, sys; print(os.listxattr(sys.argv[1]))",
            dir.join("hf").to_str().unwrap(),
        ],
    );
    assert_eq!(
        listed.stdout_str().trim(),
        "[]",
        "the host file got attributes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

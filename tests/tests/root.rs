//! `--root DIR`: the sandbox sees DIR as `/`, and no path — `..`, an absolute symlink, a
//! relative symlink climbing out — reaches the host outside it. Runs on every platform.

use std::path::Path;

use vmm_tests::{platforms_under_test, run_vmm_raw, temp_path};

#[test]
fn paths_stay_inside_the_root() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping: /bin/busybox is not installed (apt-get install busybox-static; tests/run-all does)");
        return;
    }
    let root = temp_path("root");
    for d in ["bin", "etc", "data/deep"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("etc/hostname"), "inside-root\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("data/abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc", root.join("data/deep/rel")).unwrap();
    let r = root.to_str().unwrap();
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let run = |args: &[&str]| {
            let mut a = vec!["run", "--platform", &p, "--root", r, "--"];
            a.extend_from_slice(args);
            run_vmm_raw(&a)
        };
        let cat = run(&[
            "/bin/busybox",
            "cat",
            "/etc/hostname",
            "/../../../etc/hostname",
            "/data/abs/hostname",
            "/data/deep/rel/hostname",
        ]);
        if cat.code() != 0 || cat.stdout_str() != "inside-root\n".repeat(4) {
            failures.push(format!(
                "[{p}] escaping paths did not all resolve inside the root:\n{cat}"
            ));
        }
        let ls = run(&["busybox", "ls", "/", "/.."]);
        if ls.code() != 0 || ls.stdout_str() != "/:\nbin\ndata\netc\n\n/..:\nbin\ndata\netc\n" {
            failures.push(format!("[{p}] the root's listing is not DIR's:\n{ls}"));
        }
        let magic = run(&["/bin/busybox", "cat", "/proc/self/root/etc/passwd"]);
        if magic.code() == 0 {
            failures.push(format!("[{p}] a /proc magic link was followed:\n{magic}"));
        }
        let missing = run(&["/bin/nothere"]);
        if missing.code() != 127 {
            failures.push(format!(
                "[{p}] a program missing from the root must give 127:\n{missing}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

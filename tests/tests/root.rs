//! `--root DIR`: the sandbox sees DIR as `/`, and no path — `..`, an absolute symlink, a
//! relative symlink climbing out — reaches the host outside it. Runs on every platform.

use std::path::Path;

use vmm_tests::{platforms_under_test, run_vmm_raw, temp_path, tree};

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

/// `--rw`: the script's changes land in the host directory, exactly as the same script run
/// natively changes an identical copy — and its output matches.
#[test]
fn rw_writes_through_like_native() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping: /bin/busybox is not installed (apt-get install busybox-static; tests/run-all does)");
        return;
    }
    let script = "cd \"$1\" && echo new > n.txt && echo more >> a.txt && mkdir -p d/e && mv n.txt d/ \
        && mv sub sub2 && ln -s a.txt lnk && chmod 640 a.txt && truncate -s 2 d/n.txt \
        && rm sub2/k && rmdir sub2 && cp a.txt d/e/copy && tar cf t.tar d && rm -r d && tar xf t.tar \
        && rm t.tar && echo x | dd of=dd.out bs=1 seek=3 2>/dev/null; ls -la | wc -l; cat a.txt lnk; \
        mkdir a.txt 2>/dev/null || echo mkdir failed $?; rmdir nothere 2>/dev/null || echo rmdir failed $?";
    let fixture = |tag: &str| {
        let d = temp_path(tag);
        std::fs::create_dir_all(d.join("w/sub")).unwrap();
        std::fs::write(d.join("w/a.txt"), "hello\n").unwrap();
        std::fs::write(d.join("w/sub/k"), "keep\n").unwrap();
        d
    };
    let native_dir = fixture("rw-native");
    let w = native_dir.join("w");
    let native = vmm_tests::run_command(
        Path::new("/bin/busybox"),
        &["sh", "-c", script, "sh", w.to_str().unwrap()],
    );
    let want = tree(&w);
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let dir = fixture("rw-sandbox");
        std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
        let sandboxed = run_vmm_raw(&[
            "run",
            "--platform",
            &p,
            "--root",
            dir.to_str().unwrap(),
            "--rw",
            "--",
            "/busybox",
            "sh",
            "-c",
            script,
            "sh",
            "/w",
        ]);
        if let Err(e) = vmm_tests::check_same(&native, &sandboxed) {
            failures.push(format!("[{p}] output differs from native:\n{e}"));
        }
        let got = tree(&dir.join("w"));
        if got != want {
            failures.push(format!(
                "[{p}] the host tree differs from the native run's:\n{}",
                vmm_tests::line_diff(&want.join("\n"), &got.join("\n"))
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&native_dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--rw` writes stay inside the root too: through absolute and climbing symlinks, `..`, a
/// rename and a chmod aimed outside — a sibling directory is left untouched, and what did get
/// written landed inside the root.
#[test]
fn rw_writes_stay_inside_the_root() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping: /bin/busybox is not installed (apt-get install busybox-static; tests/run-all does)");
        return;
    }
    let base = temp_path("rw-escape");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), "untouched\n").unwrap();
    std::fs::copy("/bin/busybox", root.join("busybox")).unwrap();
    let o = outside.to_str().unwrap();
    let before = tree(&base.join("outside"));
    let script = format!(
        "ln -s {o} /abs; ln -s ../../../../../../../../{o} /rel; \
         echo x > /abs/victim; echo x > /rel/victim; echo x > /../outside/victim; \
         chmod 777 /abs/victim; mkdir /abs/newdir; mv /busybox.copy /abs/ 2>/dev/null; \
         ln -s {o}/victim /direct; echo x >> /direct; chmod 777 /direct; truncate -s 0 /direct; \
         touch /direct; true"
    );
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let out = run_vmm_raw(&[
            "run",
            "--platform",
            &p,
            "--root",
            root.to_str().unwrap(),
            "--rw",
            "--",
            "/busybox",
            "sh",
            "-c",
            &script,
        ]);
        if out.code() != 0 {
            failures.push(format!("[{p}] script failed:\n{out}"));
        }
        let after = tree(&outside);
        if after != before {
            failures.push(format!(
                "[{p}] the directory outside the root changed:\n{}",
                vmm_tests::line_diff(&before.join("\n"), &after.join("\n"))
            ));
        }
        // `{o}` resolved inside the root: the writes went to root/{o}/..., which exists
        // only if the script created it there (it did not: mkdir -p is not used), so they
        // failed; nothing may have appeared outside.
        for l in ["abs", "rel", "direct"] {
            let _ = std::fs::remove_file(root.join(l));
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Real programs: Debian's static busybox applets, run natively and in the sandbox on every
//! platform, over a fixture directory, must give the same output and status. (Applets that
//! need fork/exec or writes arrive with processes and the overlay.)

use std::path::Path;

use vmm_tests::{check_same, platforms_under_test, run_command, run_vmm_raw, temp_path};

const BUSYBOX: &str = "/bin/busybox";

/// Whether Debian's static busybox is there; says why the test skips when it is not.
fn busybox_installed() -> bool {
    let there = Path::new(BUSYBOX).exists();
    if !there {
        eprintln!("skipping: {BUSYBOX} is not installed (apt-get install busybox-static; tests/run-all does)");
    }
    there
}

/// A fixture directory inside a private parent, so `ls -la`'s `..` line is stable while other
/// tests create and remove directories in the temp dir.
fn fixture() -> std::path::PathBuf {
    let dir = temp_path("busybox-fixture").join("fx");
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("a.txt"), "hello\n").unwrap();
    std::fs::write(
        dir.join("words"),
        "pear\napple\nfig\napple\nbanana\npear\napple\n",
    )
    .unwrap();
    std::fs::write(dir.join("sub/deeper/c.csv"), "x,1\ny,2\nz,3\n").unwrap();
    let big: String = (0..20000)
        .map(|i| format!("line {i} {}\n", i * 7919 % 1000))
        .collect();
    std::fs::write(dir.join("big.txt"), big).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    dir
}

#[test]
fn applets_match_native() {
    if !busybox_installed() {
        return;
    }
    let dir = fixture();
    let d = dir.to_str().unwrap().to_string();
    let f = |name: &str| format!("{d}/{name}");
    let cases: Vec<Vec<String>> = vec![
        vec!["cat".into(), f("a.txt"), f("link")],
        vec!["ls".into(), "-la".into(), d.clone()],
        vec!["ls".into(), "-R".into(), d.clone()],
        vec!["wc".into(), f("words"), f("big.txt")],
        vec!["sort".into(), f("words")],
        vec!["sort".into(), "-u".into(), "-r".into(), f("words")],
        vec!["uniq".into(), "-c".into(), f("words")],
        vec!["head".into(), "-n".into(), "3".into(), f("big.txt")],
        vec!["tail".into(), "-n".into(), "2".into(), f("big.txt")],
        vec!["grep".into(), "-c".into(), "apple".into(), f("words")],
        vec!["grep".into(), "-n".into(), "99$".into(), f("big.txt")],
        vec![
            "sed".into(),
            "-n".into(),
            "s/line 1\\([0-9]*\\) /X\\1 /p".into(),
            f("big.txt"),
        ],
        vec![
            "awk".into(),
            "-F,".into(),
            "{s += $2} END {print s}".into(),
            f("sub/deeper/c.csv"),
        ],
        vec!["find".into(), d.clone(), "-name".into(), "*.csv".into()],
        vec!["sha256sum".into(), f("big.txt"), f("a.txt")],
        vec!["md5sum".into(), f("words")],
        vec!["readlink".into(), f("link")],
        vec![
            "stat".into(),
            "-c".into(),
            "%n %s %F".into(),
            f("a.txt"),
            f("sub"),
        ],
        vec!["cat".into(), f("missing")],
        vec!["ls".into(), f("missing")],
    ];
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        for args in &cases {
            let native = run_command(Path::new(BUSYBOX), args);
            let mut vargs: Vec<String> = vec![
                "run".into(),
                "--platform".into(),
                p.clone(),
                "--".into(),
                BUSYBOX.into(),
            ];
            vargs.extend(args.iter().cloned());
            let sandboxed = run_vmm_raw(&vargs);
            if let Err(e) = check_same(&native, &sandboxed) {
                failures.push(format!("=== busybox {} [{p}]\n{e}", args.join(" ")));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn sh_scripts_match_native() {
    if !busybox_installed() {
        return;
    }
    let dir = fixture();
    let d = dir.to_str().unwrap().to_string();
    // Pipelines, redirections, here-documents, subshells, loops, functions, traps, exit
    // statuses, command substitution, and applets re-executed through /proc/self/exe.
    let scripts = [
        format!("ls {d} | sort -r | head -n 3; echo status $?"),
        format!("cat {d}/words | sort | uniq -c | sort -rn | head -n 2"),
        format!("x=$(wc -l < {d}/words); echo lines $x; n=0; while [ $n -lt 5 ]; do n=$((n+1)); done; echo n $n"),
        "for i in 3 1 2; do echo $i; done | sort; (exit 7); echo sub $?; false || echo or; true && echo and".into(),
        "cat <<EOF | tr a-z A-Z\nhere document $((6*7))\nEOF\nf() { echo in f $1; return 5; }; f x; echo f $?".into(),
        "trap 'echo bye' EXIT; echo before; exit 3".into(),
        format!("find {d} -type f | sort | xargs wc -c | tail -n 1; grep -c apple {d}/words"),
        format!("cd {d}/sub && pwd && cd .. && ls -d s* && echo a b c | awk '{{print $3$2$1}}'"),
        "echo out; echo err >&2; exit 4".into(),
        "sleep 0.05; echo slept; sh -c 'exit 9'; echo child $?".into(),
        format!("sha256sum {d}/big.txt | cut -d' ' -f1 | wc -c; sed -n '2p' {d}/words"),
        // Background jobs, wait, signals and traps.
        "sleep 0.05 & wait; echo waited $?; (sleep 0.02; echo bg) & echo fg; wait".into(),
        "trap 'echo got usr1' USR1; kill -USR1 $$; echo after; yes | head -n 3".into(),
        "sleep 5 & p=$!; kill $p; wait $p 2>/dev/null; echo killed $?".into(),
        // date, env and xargs as their own applets.
        "TZ=UTC date -d @86400 '+%F %T'; date +%Y | wc -c; FOO=bar env | grep ^FOO=; env -i A=1 env; echo 3 1 2 | xargs -n 1 echo x | sort".into(),
    ];
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        for s in &scripts {
            let native = run_command(Path::new(BUSYBOX), &["sh", "-c", s]);
            let sandboxed = run_vmm_raw(&["run", "--platform", &p, "--", BUSYBOX, "sh", "-c", s]);
            if let Err(e) = check_same(&native, &sandboxed) {
                failures.push(format!("=== sh -c {s:?} [{p}]\n{e}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn overlay_writes_match_native_and_leave_the_host_untouched() {
    if !busybox_installed() {
        return;
    }
    // Creating, appending, overwriting (copy-up), truncating, renaming, removing files and
    // directories, tar create/extract — natively on one copy of the fixture, in the sandbox on
    // another, which must come out of it unchanged.
    let script = "cd \"$1\" || exit 9
        echo new > n.txt; echo more >> n.txt; cat n.txt
        echo changed > a.txt; cat a.txt link
        mkdir -p m/deep; mv n.txt m/deep/; ls -R m
        rm words; ls; rm -r sub; ls
        cp m/deep/n.txt copy; : > big.txt; wc -c copy big.txt
        tar cf t.tar m copy && mkdir x && cd x && tar xf ../t.tar && ls -R && cd ..
        touch stamp; chmod 640 stamp; ls -l stamp | cut -c1-10
        rmdir m 2>&1 | sed 's/.*: //'; mv m mm 2>/dev/null || cp -r m mm; ls -d mm
        ln -s copy lnk; readlink lnk; cat lnk; ls -l lnk | cut -c1-10; rm lnk; ls lnk 2>&1 | sed 's/.*: //'
        sha256sum copy | cut -c1-16; echo end";
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let native_dir = fixture();
        let sandbox_dir = fixture();
        let before = vmm_tests::tree(&sandbox_dir);
        let nd = native_dir.to_str().unwrap();
        let sd = sandbox_dir.to_str().unwrap();
        let native = run_command(Path::new(BUSYBOX), &["sh", "-c", script, "sh", nd]);
        let sandboxed = run_vmm_raw(&[
            "run",
            "--platform",
            &p,
            "--",
            BUSYBOX,
            "sh",
            "-c",
            script,
            "sh",
            sd,
        ]);
        if let Err(e) = check_same(&native, &sandboxed) {
            failures.push(format!("=== overlay script [{p}]\n{e}"));
        }
        if vmm_tests::tree(&sandbox_dir) != before {
            failures.push(format!("[{p}] the sandbox changed the host directory {sd}"));
        }
        // --ro: no overlay, writes fail and nothing changes either.
        let ro = run_vmm_raw(&[
            "run",
            "--platform",
            &p,
            "--ro",
            "--",
            BUSYBOX,
            "sh",
            "-c",
            "echo x > \"$1\"/new",
            "sh",
            sd,
        ]);
        if ro.code() == 0 || vmm_tests::tree(&sandbox_dir) != before {
            failures.push(format!("[{p}] --ro allowed a write:\n{ro}"));
        }
        let _ = std::fs::remove_dir_all(native_dir.parent().unwrap());
        let _ = std::fs::remove_dir_all(sandbox_dir.parent().unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

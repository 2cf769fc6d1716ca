//! Real programs: Debian's static busybox applets, run natively and in the sandbox on every
//! platform, over a fixture directory, must give the same output and status. (Applets that
//! need fork/exec or writes arrive with processes and the overlay.)

use std::path::Path;

use vmm_tests::{check_same, platforms_under_test, run_command, run_vmm_raw, temp_path};

const BUSYBOX: &str = "/bin/busybox";

fn fixture() -> std::path::PathBuf {
    let dir = temp_path("busybox-fixture");
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
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipping: {BUSYBOX} is not installed (apt-get install busybox-static; tests/run-all does)");
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
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

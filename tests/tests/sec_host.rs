//! The host side serves only regular files, directories and symlinks of normal filesystems,
//! whatever path led there: device nodes, FIFOs and sockets inside `--root DIR`, and host
//! procfs/sysfs/devtmpfs reached through symlinks or mount points, are refused (EACCES) with
//! the default overlay, `--ro` and `--rw`, while regular files still work; `--rw` never leaves
//! a set-uid file on the host. Runs on every platform.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use vmm_tests::{platforms_under_test, prog_path, run_command, temp_path, vmm_bin_or_panic};

const MODES: [&str; 3] = ["overlay", "--ro", "--rw"];

fn mknod(path: &Path, kind: u32, major: u32, minor: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a C string; makedev computes a number.
    let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(r, 0, "mknod {} (the tests run as root)", path.display());
}

fn symlink(target: &str, at: PathBuf) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

/// `vmm run --platform P [--root R] [MODE] -- probe ARGS`, optionally inside a private mount
/// namespace where `mounts` (fs type, mount point) are mounted first.
fn probe(
    platform: &str,
    root: Option<&Path>,
    mode: &str,
    prog: &Path,
    args: &[&str],
    mounts: &[(&str, PathBuf)],
) -> vmm_tests::RunOutput {
    let mut a: Vec<String> = vec!["run".into(), "--platform".into(), platform.into()];
    if let Some(r) = root {
        a.extend(["--root".into(), r.display().to_string()]);
    }
    if mode != "overlay" {
        a.push(mode.into());
    }
    a.push("--".into());
    a.push(prog.display().to_string());
    a.extend(args.iter().map(|s| s.to_string()));
    if mounts.is_empty() {
        return run_command(&vmm_bin_or_panic(), &a);
    }
    let mut script = String::new();
    for (fs, at) in mounts {
        script += &format!("mount -t {fs} {fs} '{}' && ", at.display());
    }
    script += "exec \"$@\"";
    let mut full = vec![
        "-m".to_string(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        script,
        "sh".into(),
        vmm_bin_or_panic().display().to_string(),
    ];
    full.extend(a);
    run_command(Path::new("/usr/bin/unshare"), &full)
}

/// The probe's line for `path`, from its output.
fn line<'a>(out: &'a str, path: &str) -> &'a str {
    out.lines()
        .find(|l| l.split(' ').next() == Some(path))
        .unwrap_or("")
}

#[test]
fn devices_fifos_sockets_and_proc_in_a_root_are_refused() {
    let base = temp_path("sec-root");
    let root = base.join("root");
    for d in ["data", "mnt/proc", "mnt/sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let prog = root.join("probe");
    std::fs::copy(prog_path("musl", "sec_host_probe"), &prog).unwrap();
    std::fs::write(root.join("data/file"), "regular\n").unwrap();
    mknod(&root.join("data/null"), libc::S_IFCHR, 1, 3);
    mknod(&root.join("data/zero"), libc::S_IFCHR, 1, 5);
    mknod(&root.join("data/fifo"), libc::S_IFIFO, 0, 0);
    let _sock = std::os::unix::net::UnixListener::bind(root.join("data/sock")).unwrap();
    for n in ["null", "zero", "file"] {
        symlink(&format!("/data/{n}"), root.join(format!("data/to-{n}")));
    }
    // Links to the host's /proc and /sys resolve inside the root: to the procfs and sysfs
    // mounted there (when a private mount namespace can be made), or to nothing.
    symlink("/proc/self/mem", root.join("data/mem"));
    symlink("../mnt/proc/self/mem", root.join("data/hostmem"));
    symlink("/mnt/proc/1/environ", root.join("data/environ"));
    symlink("/mnt/sys/kernel", root.join("data/kernel"));
    let mounted = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let mounts = if mounted {
        vec![
            ("proc", root.join("mnt/proc")),
            ("sysfs", root.join("mnt/sys")),
        ]
    } else {
        eprintln!("note: no private mount namespace here: host procfs inside the root not tested");
        Vec::new()
    };
    let paths = [
        "/data/file",
        "/data/to-file",
        "/data/null",
        "/data/zero",
        "/data/fifo",
        "/data/sock",
        "/data/to-null",
        "/data/to-zero",
        "/data/mem",
        "/data/hostmem",
        "/data/environ",
        "/data/kernel",
        "/mnt/proc",
        "/mnt/proc/self/mem",
        "/mnt/proc/self/maps",
        "/mnt/sys",
        "/mnt/sys/kernel",
    ];
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        for mode in MODES {
            let out = probe(&p, Some(&root), mode, Path::new("/probe"), &paths, &mounts);
            let text = out.stdout_str();
            if out.code() != 0 {
                failures.push(format!("[{p} {mode}] probe failed:\n{out}"));
                continue;
            }
            let w_ok = if mode == "--ro" { "EROFS" } else { "OK" };
            let w_no = if mode == "--ro" { "EROFS" } else { "EACCES" };
            let mut want = vec![
                format!("/data/file r=OK w={w_ok} p=OK s=reg l=reg"),
                format!("/data/to-file r=OK w={w_ok} p=OK s=reg l=lnk"),
            ];
            for (n, k) in [
                ("null", "chr"),
                ("zero", "chr"),
                ("fifo", "fifo"),
                ("sock", "sock"),
            ] {
                want.push(format!("/data/{n} r=EACCES w={w_no} p=EACCES s={k} l={k}"));
            }
            for n in ["null", "zero"] {
                want.push(format!(
                    "/data/to-{n} r=EACCES w={w_no} p=EACCES s=chr l=lnk"
                ));
            }
            if mode != "--ro" {
                // The root has no /proc: the link leads nowhere (a write-through or overlay
                // open may create what it names, inside the root — never the host's).
                let l = line(&text, "/data/mem");
                if l.contains(" r=OK") || l.contains(" p=OK") {
                    failures.push(format!("[{p} {mode}] {l}"));
                }
            }
            if mounted {
                // vmm's own mount namespace holds the root without the procfs and sysfs
                // mounted in it (vmm/src/confine.rs): their mount points are the empty
                // directories below them, and links into them lead nowhere. (Where vmm
                // could not unmount them, the host refuses both: EACCES, host.rs's tests.)
                let w_none = if mode == "--ro" { "EROFS" } else { "ENOENT" };
                let w_dir = if mode == "--ro" { "EROFS" } else { "EISDIR" };
                for n in ["hostmem", "environ", "kernel"] {
                    want.push(format!(
                        "/data/{n} r=ENOENT w={w_none} p=ENOENT s=ENOENT l=lnk"
                    ));
                }
                for d in ["/mnt/proc", "/mnt/sys"] {
                    want.push(format!("{d} r=OK w={w_dir} p=OK s=dir l=dir"));
                }
                for d in [
                    "/mnt/proc/self/mem",
                    "/mnt/proc/self/maps",
                    "/mnt/sys/kernel",
                ] {
                    want.push(format!(
                        "{d} r=ENOENT w={w_none} p=ENOENT s=ENOENT l=ENOENT"
                    ));
                }
            }
            for w in want {
                let path = w.split(' ').next().unwrap();
                let got = line(&text, path);
                // With the overlay, an O_RDWR open is a copy-up that reads the host file: a
                // refused read is refused whatever errno the overlay then reports.
                let same = got == w
                    || (mode == "overlay" && !got.contains(" w=OK") && strip_w(got) == strip_w(&w));
                if !same {
                    failures.push(format!("[{p} {mode}] want {w}\n  got  {got}"));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The line without its `w=` field.
fn strip_w(l: &str) -> String {
    l.split(' ')
        .filter(|f| !f.starts_with("w="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Under the default root (the host's `/`), symlinks to /proc, /sys and /dev lead into the
/// sandbox's own trees, never the host's: no vmm memory, maps or mounts, no kernel log, no
/// sysfs. (The Sentry walks such links itself; the host would refuse them — EACCES, see the
/// host unit tests — and vmm's mount namespace no longer has the host's procfs at all.)
#[test]
fn host_proc_sys_and_dev_through_symlinks_are_refused() {
    let dir = temp_path("sec-links");
    std::fs::create_dir_all(&dir).unwrap();
    let depth = "../".repeat(dir.components().count());
    for (n, t) in [
        ("mem", "/proc/self/mem".to_string()),
        ("maps", "/proc/self/maps".into()),
        ("environ", "/proc/1/environ".into()),
        ("kernel", "/sys/kernel".into()),
        ("kmsg", "/dev/kmsg".into()),
        ("devnull", "/dev/null".into()),
        ("mounts", format!("{depth}proc/self/mounts")),
    ] {
        symlink(&t, dir.join(n));
    }
    std::fs::write(dir.join("file"), "regular\n").unwrap();
    let d = dir.display().to_string();
    let names = [
        "mem", "maps", "environ", "kernel", "kmsg", "devnull", "mounts",
    ];
    let mut paths: Vec<String> = names.iter().map(|n| format!("{d}/{n}")).collect();
    paths.push(format!("{d}/file"));
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let prog = prog_path("musl", "sec_host_probe");
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        for mode in MODES {
            let out = probe(&p, None, mode, &prog, &args, &[]);
            let text = out.stdout_str();
            if out.code() != 0 {
                failures.push(format!("[{p} {mode}] probe failed:\n{out}"));
                continue;
            }
            let ro = mode == "--ro";
            for n in names {
                let path = format!("{d}/{n}");
                // What the sandbox's own /proc and /dev hold: its maps and /dev/null (opened
                // for writing as root may, as on Linux), nothing else of these.
                let want = match n {
                    "maps" | "devnull" => {
                        let kind = if n == "maps" { "reg" } else { "chr" };
                        let w = if ro { "EROFS" } else { "OK" };
                        format!("{path} r=OK w={w} p=OK s={kind} l=lnk")
                    }
                    _ => {
                        let w = if ro { "EROFS" } else { "ENOENT" };
                        format!("{path} r=ENOENT w={w} p=ENOENT s=ENOENT l=lnk")
                    }
                };
                let got = line(&text, &path);
                let ok = got == want;
                if !ok {
                    failures.push(format!("[{p} {mode}] want {want}\n got {got}"));
                }
            }
            let file = line(&text, &format!("{d}/file"));
            if !file.contains(" r=OK") || !file.contains(" s=reg") {
                failures.push(format!(
                    "[{p} {mode}] a regular file must still open: {file}"
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--rw`: a file created set-uid/set-gid and chmod'ed so lands on the host without those
/// bits; a directory keeps set-gid but not set-uid.
#[test]
fn rw_never_leaves_set_uid_on_the_host() {
    let root = temp_path("sec-suid");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(prog_path("musl", "sec_host_probe"), root.join("probe")).unwrap();
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let _ = std::fs::remove_file(root.join("out"));
        let _ = std::fs::remove_dir(root.join("out.d"));
        let out = probe(
            &p,
            Some(&root),
            "--rw",
            Path::new("/probe"),
            &["--create", "/out", "6755"],
            &[],
        );
        if out.stdout_str() != "creat OK\nchmod OK\nmkdir OK\nchmod dir OK\n" {
            failures.push(format!("[{p}] unexpected output:\n{out}"));
            continue;
        }
        let mode = |n: &str| {
            std::fs::metadata(root.join(n))
                .map(|m| m.mode() & 0o7777)
                .unwrap_or(0)
        };
        if mode("out") != 0o755 {
            failures.push(format!("[{p}] host file mode {:o}, want 755", mode("out")));
        }
        if mode("out.d") != 0o2755 {
            failures.push(format!(
                "[{p}] host directory mode {:o}, want 2755",
                mode("out.d")
            ));
        }
    }
    let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::remove_dir_all(&root);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

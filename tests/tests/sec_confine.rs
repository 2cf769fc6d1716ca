//! vmm confines itself (vmm/src/confine.rs): seen from outside, a running vmm is in a mount
//! namespace of its own whose `/` is an empty tmpfs (with a pid-only procfs), has
//! no_new_privs, a seccomp filter and only the capabilities its mode needs; inside, the
//! sandbox still sees the root's real submounts but none of the host's kernel filesystems.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmm_tests::{for_each_case, run_vmm_raw, vmm_bin_or_panic};

const BUSYBOX: &str = "/bin/busybox";

fn status_field(pid: u32, name: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Starts `vmm run --platform P [extra] -- busybox cat` (blocked on stdin), waits until it
/// has locked itself down, checks it from outside with `check`, then lets it exit.
fn while_running(
    platform: &str,
    extra: &[&str],
    check: impl FnOnce(u32) -> Result<(), String>,
) -> Result<(), String> {
    let mut child = Command::new(vmm_bin_or_panic())
        .args(["run", "--platform", platform])
        .args(extra)
        .args(["--", BUSYBOX, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting vmm: {e}"))?;
    let pid = child.id();
    let start = Instant::now();
    // Locked down: the seccomp field says "2" (filter mode).
    while status_field(pid, "Seccomp").as_deref() != Some("2") {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err("vmm did not lock itself down within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = check(pid);
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"bye\n");
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    result?;
    if !out.status.success() || out.stdout != b"bye\n" {
        return Err(format!(
            "the sandboxed cat failed: {:?}, stdout {:?}, stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

#[test]
fn vmm_sees_an_empty_root_and_keeps_few_rights() {
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipping: {BUSYBOX} is not installed");
        return;
    }
    for_each_case("vmm_sees_an_empty_root_and_keeps_few_rights", |p, v| {
        if v != "musl" {
            return Ok(()); // one run per platform is enough
        }
        for (extra, caps) in [(&[][..], 0x6u64), (&["--rw"][..], 0x1f)] {
            while_running(p, extra, |pid| {
                let ours = std::fs::read_link("/proc/self/ns/mnt").map_err(|e| e.to_string())?;
                let its = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).map_err(|e| e.to_string())?;
                if ours == its {
                    return Err("vmm is still in the host's mount namespace".into());
                }
                let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                    .map_err(|e| e.to_string())?;
                let mounts: Vec<(String, String, String)> = mi
                    .lines()
                    .map(|l| {
                        let f: Vec<&str> = l.split(' ').collect();
                        let sep = f.iter().position(|x| *x == "-").unwrap_or(f.len() - 1);
                        let at = |i: usize| f.get(i).copied().unwrap_or("").to_string();
                        (at(4), at(sep + 1), format!("{} {}", at(5), at(sep + 3)))
                    })
                    .collect();
                let ok = mounts.len() == 2
                    && mounts[0].0 == "/"
                    && mounts[0].1 == "tmpfs"
                    && mounts[0].2.starts_with("ro")
                    && mounts[1].0 == "/proc"
                    && mounts[1].1 == "proc"
                    && mounts[1].2.contains("subset=pid");
                if !ok {
                    return Err(format!(
                        "{extra:?}: vmm's mounts should be a read-only tmpfs at / and a pid-only procfs at /proc:\n{mi}"
                    ));
                }
                let want = [
                    ("NoNewPrivs", "1".to_string()),
                    ("CapEff", format!("{caps:016x}")),
                    ("CapPrm", format!("{caps:016x}")),
                    ("CapBnd", format!("{caps:016x}")),
                    ("CapInh", format!("{:016x}", 0)),
                    ("CapAmb", format!("{:016x}", 0)),
                ];
                for (field, value) in want {
                    let got = status_field(pid, field);
                    if got.as_deref() != Some(value.as_str()) {
                        return Err(format!("{extra:?}: {field}: {got:?}, want {value}"));
                    }
                }
                Ok(())
            })
            .map_err(|e| format!("[{p}] {e}"))?;
        }
        Ok(())
    });
}

#[test]
fn sandbox_sees_no_host_kernel_filesystems() {
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipping: {BUSYBOX} is not installed");
        return;
    }
    for_each_case("sandbox_sees_no_host_kernel_filesystems", |p, v| {
        if v != "musl" {
            return Ok(());
        }
        // Natively /sys is full; through vmm's copy of the root it is the empty directory
        // the host's sysfs is mounted on.
        let native = std::fs::read_dir("/sys").map(|d| d.count()).unwrap_or(0);
        if native == 0 {
            return Ok(()); // no sysfs here to hide
        }
        let out = run_vmm_raw(&["run", "--platform", p, "--", BUSYBOX, "ls", "-A", "/sys"]);
        if out.code() != 0 || !out.stdout_str().trim().is_empty() {
            return Err(format!(
                "[{p}] ls -A /sys in the sandbox should list nothing:\n{out}"
            ));
        }
        Ok(())
    });
}

/// With a root that has a real submount (a tmpfs) and a procfs under it (at `/hostproc`, not
/// where the Sentry's own procfs is), made in a mount namespace of the test's own: the
/// sandbox sees the submount's files, and the procfs's mount point as an empty directory.
#[test]
fn submounts_stay_visible_proc_under_the_root_does_not() {
    let unshare = Path::new("/usr/bin/unshare");
    // SAFETY: a plain getter.
    if !Path::new(BUSYBOX).exists() || !unshare.exists() || unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root, {BUSYBOX} and {}", unshare.display());
        return;
    }
    let vmm = vmm_bin_or_panic();
    for_each_case(
        "submounts_stay_visible_proc_under_the_root_does_not",
        |p, v| {
            if v != "musl" {
                return Ok(());
            }
            let dir = vmm_tests::temp_path("confine-root");
            std::fs::create_dir_all(dir.join("bin")).map_err(|e| e.to_string())?;
            std::fs::copy(BUSYBOX, dir.join("bin/busybox")).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(dir.join("sub")).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(dir.join("hostproc")).map_err(|e| e.to_string())?;
            let d = dir.display();
            let script = format!(
                "mount -t tmpfs sub {d}/sub && echo in-submount > {d}/sub/file && \
             mount -t proc proc {d}/hostproc && \
             exec {vmm} run --platform {p} --root {d} -- /bin/busybox sh -c \
             '/bin/busybox cat /sub/file; /bin/busybox ls -A /hostproc | /bin/busybox wc -l'",
                vmm = vmm.display()
            );
            let out = Command::new(unshare)
                .args(["--mount", "--propagation", "private", "sh", "-c", &script])
                .output()
                .map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(&dir);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
            if !out.status.success() || lines != ["in-submount", "0"] {
                return Err(format!(
                "[{p}] {:?}: stdout {stdout:?} (want the submount's file and an empty /hostproc), stderr {:?}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            }
            Ok(())
        },
    );
}

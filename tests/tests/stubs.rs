//! Fallback platforms: the app's stub processes die with the sandbox, whatever kills `vmm`, and
//! leave no zombies.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmm_tests::{for_each_case, prog_path, vmm_bin_or_panic};

/// Children of `pid`, from /proc.
fn children(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: split after the last ')'.
        let rest = &stat[stat.rfind(')').map(|i| i + 2).unwrap_or(0)..];
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

#[test]
fn stubs_die_with_vmm() {
    // Orphaned stubs are reparented to this process, so it can check they were killed and
    // reap them (no zombie survives).
    // SAFETY: prctl on this process.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    for_each_case("stubs_die_with_vmm", |p, v| {
        if p == "kvm" {
            return Ok(()); // no stub processes on kvm
        }
        let mut vmm = Command::new(vmm_bin_or_panic())
            .args(["run", "--platform", p, "--"])
            .arg(prog_path(v, "getpid_loop"))
            .arg("100000000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut stubs = Vec::new();
        while stubs.is_empty() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            stubs = children(vmm.id());
        }
        if stubs.is_empty() {
            let _ = vmm.kill();
            return Err(format!("[{p}/{v}] vmm started no stub process"));
        }
        vmm.kill().map_err(|e| e.to_string())?; // SIGKILL: no chance to clean up
        let _ = vmm.wait();
        for s in stubs {
            let mut status = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                // SAFETY: waiting for an orphan reparented to us (we are its subreaper).
                let r = unsafe { libc::waitpid(s, &mut status, libc::WNOHANG | libc::__WALL) };
                if r == s {
                    break;
                }
                if Instant::now() > deadline {
                    // SAFETY: clean up before failing.
                    unsafe { libc::kill(s, libc::SIGKILL) };
                    return Err(format!("[{p}/{v}] stub {s} outlived vmm by 10 s"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL) {
                return Err(format!(
                    "[{p}/{v}] stub {s} ended with status {status:#x}, not SIGKILL"
                ));
            }
        }
        Ok(())
    });
}

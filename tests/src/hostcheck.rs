//! Host-side checks for hostile programs under vmm: a run that watches vmm's host
//! descendants (every stub process) and reports any that outlive it, and snapshots of host
//! directories to prove a run changed nothing.
//!
//! [`run_watched`] makes this test process a child subreaper, so processes orphaned by vmm's
//! exit are reparented here and can be counted, killed and reaped; runs are serialized by a
//! process-wide lock so that every child of this process at the end of a run is that run's.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{exited_nowait, kill_group, no_core_dumps, spawn_quoted, RunOutput, FIXED_ENV};

static RUN_LOCK: Mutex<()> = Mutex::new(());

/// One process from /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    pub comm: String,
}

/// Every process in /proc (those that vanish while being read are left out).
pub fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push(Proc {
            pid,
            ppid,
            state,
            comm,
        });
    }
    out
}

/// `root` and every process below it (by parent links).
pub fn descendants(root: i32) -> Vec<Proc> {
    let all = processes();
    let mut kids: BTreeMap<i32, Vec<&Proc>> = BTreeMap::new();
    for p in &all {
        kids.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for c in kids.get(&p).into_iter().flatten() {
            out.push((*c).clone());
            stack.push(c.pid);
        }
    }
    out
}

/// What [`run_watched`] saw.
#[derive(Debug)]
pub struct Watched {
    pub out: RunOutput,
    /// The run passed its wall-clock limit and was killed.
    pub timed_out: bool,
    /// The most host processes below vmm seen at once (sampled every few ms).
    pub peak: usize,
    /// Processes still alive (not zombies) 3 s after vmm exited: `pid (comm) state`. They
    /// have been killed and reaped since.
    pub leftovers: Vec<String>,
}

fn set_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl on this process; no pointers.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

fn children_of_self() -> Vec<Proc> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    processes().into_iter().filter(|p| p.ppid == me).collect()
}

fn reap(pid: i32) {
    let mut st = 0;
    // SAFETY: waitpid for one of our own (reparented) children.
    unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
}

/// Runs `program args` like [`crate::run_command`] (fixed environment, stdin from /dev/null,
/// no core dumps, its own process group) while sampling its host descendants; kills
/// everything after `timeout` (reported, not a panic); afterwards waits up to 3 s for every
/// orphan to die and reports, kills and reaps those that do not.
pub fn run_watched<S: AsRef<OsStr>>(program: &Path, args: &[S], timeout: Duration) -> Watched {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    set_subreaper();
    // Orphans of an earlier run that was not watched: not ours to blame on this one.
    for p in children_of_self() {
        reap(p.pid);
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(FIXED_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    no_core_dumps(&mut cmd);
    let (command, start, mut child) = spawn_quoted(&mut cmd, program, args);
    let pid = child.id() as i32;
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out_t = reader(Box::new(child.stdout.take().unwrap()));
    let err_t = reader(Box::new(child.stderr.take().unwrap()));
    let mut peak = 0;
    let mut timed_out = false;
    let mut seen: BTreeSet<i32> = BTreeSet::new();
    loop {
        if exited_nowait(pid) {
            break;
        }
        let d = descendants(pid);
        peak = peak.max(d.len());
        seen.extend(d.iter().map(|p| p.pid));
        if start.elapsed() > timeout {
            timed_out = true;
            for p in descendants(pid) {
                // SAFETY: kill(2) of a process below our child.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    let elapsed = start.elapsed();
    kill_group(pid);
    let status = child.wait().expect("waiting for vmm");
    // Orphans (stubs that did not die with vmm) are now our children.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut leftovers = Vec::new();
    loop {
        let alive: Vec<Proc> = children_of_self()
            .into_iter()
            .filter(|p| {
                if p.state == 'Z' {
                    reap(p.pid);
                    false
                } else {
                    true
                }
            })
            .collect();
        if alive.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for p in alive {
                leftovers.push(format!("{} ({}) state {}", p.pid, p.comm, p.state));
                // SAFETY: kill(2) of an orphan reparented to us.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
                let mut st = 0;
                // SAFETY: reaping it.
                unsafe { libc::waitpid(p.pid, &mut st, libc::__WALL) };
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = RunOutput {
        command,
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        elapsed,
    };
    Watched {
        out,
        timed_out,
        peak,
        leftovers,
    }
}

/// Like [`crate::tree`], and also for device nodes, FIFOs and sockets (never opened), with
/// each entry's owner, inode number, link count and modification time: two snapshots of a
/// tree nothing touched are equal.
pub fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = match std::fs::read_dir(&d) {
            Ok(r) => r.flatten().collect(),
            Err(e) => {
                out.push(format!("{}: {e}", d.display()));
                continue;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                out.push(format!("{rel}: vanished"));
                continue;
            };
            let meta = format!(
                "mode {:o} uid {} gid {} ino {} nlink {} mtime {}.{:09}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.ino(),
                md.nlink(),
                md.mtime(),
                md.mtime_nsec()
            );
            let ft = md.file_type();
            if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap_or_default();
                out.push(format!("{rel} -> {} {meta}", t.display()));
            } else if ft.is_dir() {
                out.push(format!("{rel}/ {meta}"));
                stack.push(p);
            } else if ft.is_file() {
                let data = std::fs::read(&p).unwrap_or_default();
                out.push(format!(
                    "{rel} {meta} size {} hash {:016x}",
                    data.len(),
                    fnv(&data)
                ));
            } else if ft.is_char_device() || ft.is_block_device() {
                out.push(format!("{rel} dev {:x} {meta}", md.rdev()));
            } else {
                out.push(format!("{rel} special {meta}"));
            }
        }
    }
    out
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    h
}

/// The names in `dir` (not recursive).
pub fn names(dir: &Path) -> BTreeSet<OsString> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Entries of `after` not in `before`, leaving out what other processes on this machine make
/// in shared directories while tests run (other test processes' `vmm-tests-*` paths and
/// `vmm-*` copies, the kvm rig's `rig.*` directories, rustc and cc temporaries, cargo's
/// files). The sandboxed programs never use these prefixes (the fuzzer's names hold
/// `vmmfz`, the escape programs' `escape`).
pub fn new_names(before: &BTreeSet<OsString>, after: &BTreeSet<OsString>) -> Vec<String> {
    const OTHERS: [&str; 6] = ["vmm-", "rig.", "rustc", "cc", ".tmp", "tmp"];
    after
        .difference(before)
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !OTHERS.iter().any(|o| n.starts_with(o)))
        .collect()
}

/// Host directories a sandbox escape would most likely write to: `/`, `/tmp`, this
/// process's working directory.
pub fn watched_dirs() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/"), std::env::temp_dir()];
    if let Ok(c) = std::env::current_dir() {
        v.push(c);
    }
    v
}

/// Copies a tree (files with their permissions, symlinks as links, directories, device
/// nodes and FIFOs recreated with mknod).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            let c = std::ffi::CString::new(dst.as_os_str().as_bytes()).unwrap();
            // SAFETY: a NUL-terminated path; mode and device from the source.
            if unsafe { libc::mknod(c.as_ptr(), md.mode(), md.rdev()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// What is wrong with a finished run of vmm, independent of the program: a timeout, a crash
/// of vmm (a signal, exit 125, a panic message), processes left behind. Empty if nothing.
pub fn vmm_problems(w: &Watched) -> Vec<String> {
    let mut v = Vec::new();
    if w.timed_out {
        v.push(format!("hang: killed after {:?}", w.out.elapsed));
    }
    if let Some(s) = w.out.signal() {
        v.push(format!("vmm crashed: killed by signal {s}"));
    }
    if w.out.code() == 125 {
        v.push("vmm failed: exit 125".into());
    }
    let err = w.out.stderr_str();
    for needle in [
        "sentry panicked",
        "panicked",
        "memory allocation of",
        "has overflowed its stack",
        "fatal runtime error",
        "RUST_BACKTRACE",
    ] {
        if let Some(l) = err.lines().find(|l| l.contains(needle)) {
            v.push(format!("panic message: {}", l.trim()));
            break;
        }
    }
    if !w.leftovers.is_empty() {
        v.push(format!(
            "host processes left behind after vmm exited: {}",
            w.leftovers.join(", ")
        ));
    }
    v
}

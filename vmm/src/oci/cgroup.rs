//! `linux.cgroupsPath` and `linux.resources`: the container process (and so the sandbox's
//! stubs, its children) joins the cgroup the engine named in every mounted hierarchy (v1
//! controllers, v2), with the memory, pids and cpu limits applied, so the host's accounting
//! (the shim's stats and OOM events, the kubelet's) sees the sandbox, as under runc. A
//! relative path is taken under vmm's own cgroup. `--systemd-cgroup` paths
//! (`slice:prefix:name`) need systemd's D-Bus API: logged and not joined. Failing to join
//! (a read-only cgroupfs) is logged: the sandbox's own memory size still bounds it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Log, Res};

/// What `create` wrote into the cgroups, kept for `delete` (`cgroups.json`).
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Joined {
    /// The groups `create` made (removed by `delete`).
    pub dirs: Vec<PathBuf>,
    /// Every group the container process is in.
    pub member: Vec<PathBuf>,
}

pub const FILE: &str = "cgroups.json";

/// The limits to apply.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Limits {
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
}

/// The cgroup hierarchies mounted here: (mount point, super options, is v2).
fn hierarchies() -> Vec<(PathBuf, String, bool)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let opts = post.nth(1).unwrap_or("").to_string();
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if let Some(mp) = pre.split(' ').nth(4) {
            v.push((PathBuf::from(mp), opts, fstype == "cgroup2"));
        }
    }
    v
}

/// This process's cgroup in the hierarchy with super options `opts` (`/proc/self/cgroup`).
fn own_cgroup(opts: &str, v2: bool) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let matches = if v2 {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
        };
        if matches {
            return path.to_string();
        }
    }
    "/".into()
}

fn write(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value)
}

/// Puts `pid` into `path` in every hierarchy and applies `limits`; returns what to remove.
pub fn join(log: &Log, path: &str, pid: i32, limits: &Limits, systemd: bool) -> Res<Joined> {
    let mut joined = Joined::default();
    if systemd || path.contains(':') {
        log.warn(&format!(
            "cgroupsPath {path:?}: systemd cgroups are not joined (the sandbox's own limits apply)"
        ));
        return Ok(joined);
    }
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return Err(format!("cgroupsPath {path:?} climbs out with ..").into());
    }
    for (mount, opts, v2) in hierarchies() {
        let base = if path.starts_with('/') {
            mount.clone()
        } else {
            mount.join(own_cgroup(&opts, v2).trim_start_matches('/'))
        };
        let dir = base.join(rel);
        let existed = dir.is_dir();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log.warn(&format!(
                "cgroup {}: {e} (the host does not account the sandbox there)",
                dir.display()
            ));
            continue;
        }
        if !existed {
            joined.dirs.push(dir.clone());
        }
        if v2 {
            // Controllers for the new group, from the root down (failures: not delegated).
            let mut d = mount.clone();
            for c in dir
                .strip_prefix(&mount)
                .unwrap_or(Path::new(""))
                .components()
            {
                let _ = write(&d, "cgroup.subtree_control", "+memory +pids +cpu");
                d.push(c);
            }
        } else if opts.split(',').any(|o| o == "cpuset") {
            // A new cpuset group takes no tasks until it has cpus and mems: its parent's, from
            // the top down.
            let mut d = mount.clone();
            for c in dir
                .strip_prefix(&mount)
                .unwrap_or(Path::new(""))
                .components()
            {
                let parent = d.clone();
                d.push(c);
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let cur = std::fs::read_to_string(d.join(f)).unwrap_or_default();
                    if cur.trim().is_empty() {
                        if let Ok(v) = std::fs::read_to_string(parent.join(f)) {
                            let _ = write(&d, f, v.trim());
                        }
                    }
                }
            }
        }
        apply(log, &dir, v2, limits);
        match write(&dir, "cgroup.procs", &pid.to_string()) {
            Ok(()) => joined.member.push(dir),
            Err(e) => log.warn(&format!(
                "cgroup {}: joining: {e} (the host does not account the sandbox there)",
                dir.display()
            )),
        }
    }
    Ok(joined)
}

fn apply(log: &Log, dir: &Path, v2: bool, l: &Limits) {
    let set = |file: &str, value: String| {
        if dir.join(file).exists() {
            if let Err(e) = write(dir, file, &value) {
                log.warn(&format!("cgroup {}/{file} = {value}: {e}", dir.display()));
            }
        }
    };
    if let Some(m) = l.memory.filter(|&m| m > 0) {
        if v2 {
            set("memory.max", m.to_string());
        } else {
            set("memory.limit_in_bytes", m.to_string());
        }
    }
    if let Some(p) = l.pids.filter(|&p| p > 0) {
        set("pids.max", p.to_string());
    }
    if let Some(s) = l.cpu_shares.filter(|&s| s >= 2) {
        if v2 {
            set("cpu.weight", (1 + (s - 2) * 9999 / 262_142).to_string());
        } else {
            set("cpu.shares", s.to_string());
        }
    }
    if let Some(q) = l.cpu_quota.filter(|&q| q > 0) {
        let period = l.cpu_period.filter(|&p| p > 0).unwrap_or(100_000);
        if v2 {
            set("cpu.max", format!("{q} {period}"));
        } else {
            set("cpu.cfs_period_us", period.to_string());
            set("cpu.cfs_quota_us", q.to_string());
        }
    }
}

/// Freezes (`true`) or thaws the container's processes: the v1 freezer or v2's
/// `cgroup.freeze` (`pause`/`resume`).
pub fn freeze(j: &Joined, frozen: bool) -> Res<()> {
    for d in &j.member {
        if d.join("freezer.state").exists() {
            let want = if frozen { "FROZEN" } else { "THAWED" };
            write(d, "freezer.state", want).map_err(|e| format!("{}: {e}", d.display()))?;
            for _ in 0..1000 {
                let st = std::fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
                if st.trim() == want {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            return Err(format!("{}: not {want} after 1 s", d.display()).into());
        }
    }
    for d in &j.member {
        if d.join("cgroup.freeze").exists() {
            return write(d, "cgroup.freeze", if frozen { "1" } else { "0" })
                .map_err(|e| format!("{}: {e}", d.display()).into());
        }
    }
    Err("pause needs the container in a freezer cgroup (config.json linux.cgroupsPath)".into())
}

/// Removes the groups `join` made (the container process is gone). Its stubs die with it
/// (`PR_SET_PDEATHSIG`) a moment later, and a group with a process left cannot go: what is
/// left in the groups vmm made is killed (as runc's delete does), then the removal retried.
pub fn remove(j: &Joined) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    for d in j.dirs.iter().rev() {
        loop {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: no pointers; the pid is in a group this container made.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            match std::fs::remove_dir(d) {
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                _ => break,
            }
        }
    }
}

pub fn save(dir: &Path, j: &Joined) -> Res<()> {
    let text = serde_json::to_vec(j).map_err(|e| format!("cgroups: {e}"))?;
    super::state::write_atomic(&dir.join(FILE), &text)
}

pub fn load(dir: &Path) -> Joined {
    std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

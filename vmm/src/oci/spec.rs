//! The bundle's `config.json` (the OCI runtime spec's `config.md`), and what of it vmm honours:
//! [`Plan`], the container process's instructions, made by [`plan`] which refuses what vmm
//! cannot do (an error) and logs what it approximates or ignores (a warning).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Failure, Log, Res};

/// The spec version vmm implements (state's and features' `ociVersion`).
pub const OCI_VERSION: &str = "1.0.2";

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Spec {
    pub oci_version: String,
    pub process: Option<Process>,
    pub root: Option<Root>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<Mount>,
    pub hooks: Option<BTreeMap<String, Vec<Value>>>,
    pub annotations: BTreeMap<String, String>,
    pub linux: Option<Linux>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Process {
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    pub options: Vec<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Linux {
    pub resources: Option<Resources>,
    pub cgroups_path: Option<String>,
    pub namespaces: Vec<Namespace>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Resources {
    pub memory: Option<Memory>,
    pub cpu: Option<Value>,
    pub pids: Option<Pids>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Memory {
    pub limit: Option<i64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Pids {
    pub limit: Option<i64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
}

/// What the container process does: written by `create` into the state directory
/// (`plan.json`), read by `__oci-init`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Plan {
    /// The rootfs, canonical.
    pub rootfs: PathBuf,
    pub read_only: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// kvm, systrap, ptrace or auto.
    pub platform: String,
    pub memory_mib: u64,
    pub pids_limit: u32,
    /// How many apps run at once (`--cpus`): from `linux.resources.cpu`'s quota and cpuset.
    #[serde(default = "crate::runner::default_cpus")]
    pub cpus: u32,
    pub terminal: bool,
    pub hostname: Option<String>,
    /// A network namespace to join (`linux.namespaces` network `path`), or `new` for a fresh
    /// one, or none (the host's).
    pub netns: Option<String>,
    /// `linux.cgroupsPath`, joined by `create`, with these limits.
    pub cgroups_path: Option<String>,
    pub limits: super::cgroup::Limits,
}

/// How many CPUs a cpuset list names (`0-3,8`: 5); None if it is not one.
fn cpuset_count(list: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in list.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let c = part.trim().parse::<u32>().ok()?;
                (c, c)
            }
        };
        n = n.checked_add(hi.checked_sub(lo)? + 1)?;
    }
    Some(n)
}

/// Reads and parses `BUNDLE/config.json`.
pub fn load(bundle: &Path) -> Res<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text)
        .map_err(|e| Failure::from(format!("{}: malformed JSON: {e}", path.display())))
}

/// Mount destinations the Sentry provides itself (or that need nothing inside the sandbox):
/// accepted as they are.
const PROVIDED: [(&str, &str); 8] = [
    ("proc", "/proc"),
    ("sysfs", "/sys"),
    ("devpts", "/dev/pts"),
    ("tmpfs", "/dev"),
    ("tmpfs", "/dev/shm"),
    ("mqueue", "/dev/mqueue"),
    ("cgroup", "/sys/fs/cgroup"),
    ("cgroup2", "/sys/fs/cgroup"),
];

/// Files engines bind-mount into every container (Docker's three, and the kubelet's
/// termination-message file); until volumes exist the rootfs's own file is seen (a
/// termination message stays inside the sandbox).
const ENGINE_FILES: [&str; 4] = [
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/dev/termination-log",
];

/// The smallest and largest sandbox memory (`vmm run --memory`), MiB.
const MEMORY_MIB: (u64, u64) = (64, 3072);
/// The default sandbox memory, MiB (as `vmm run`).
const DEFAULT_MEMORY_MIB: u64 = 1024;

/// Checks `spec` and turns it into the container process's plan.
pub fn plan(log: &Log, spec: &Spec, bundle: &Path, terminal_ok: bool) -> Res<Plan> {
    if !spec.oci_version.is_empty() && !spec.oci_version.starts_with("1.") {
        return Err(format!(
            "config.json: ociVersion {} is not supported (1.x)",
            spec.oci_version
        )
        .into());
    }
    for key in spec.other.keys() {
        match key.as_str() {
            "windows" | "solaris" | "vm" | "zos" => {
                return Err(
                    format!("config.json: \"{key}\" is not supported (a Linux runtime)").into(),
                )
            }
            _ => log.debug(&format!("config.json: \"{key}\" ignored")),
        }
    }
    let root = spec.root.as_ref().ok_or("config.json: root is required")?;
    if root.path.is_empty() {
        return Err("config.json: root.path is empty".into());
    }
    let rootfs = bundle.join(&root.path);
    let rootfs = std::fs::canonicalize(&rootfs)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            format!(
                "rootfs ({}) does not exist or is not a directory",
                rootfs.display()
            )
        })?;
    let process = spec
        .process
        .as_ref()
        .ok_or("config.json: process is required")?;
    if process.args.is_empty() || process.args[0].is_empty() {
        return Err("config.json: process.args must not be empty".into());
    }
    let cwd = if process.cwd.is_empty() {
        "/".to_string()
    } else if !process.cwd.starts_with('/') {
        return Err(format!(
            "config.json: process.cwd {:?} is not an absolute path",
            process.cwd
        )
        .into());
    } else {
        process.cwd.clone()
    };
    if process.terminal && !terminal_ok {
        return Err("config.json: process.terminal needs --console-socket".into());
    }
    if process.user.uid != 0 || process.user.gid != 0 {
        return Err(format!(
            "config.json: process.user {}:{}: only uid 0 and gid 0 are supported yet",
            process.user.uid, process.user.gid
        )
        .into());
    }
    if process.user.additional_gids.iter().any(|&g| g != 0) {
        log.warn(&format!(
            "config.json: process.user.additionalGids {:?} ignored (the sandbox's groups are 0)",
            process.user.additional_gids
        ));
    }
    if process.user.umask.is_some() {
        log.warn("config.json: process.user.umask ignored");
    }
    for r in &process.rlimits {
        log.warn(&format!(
            "config.json: rlimit {} (soft {}, hard {}) not applied: the Sentry has its own limits",
            r.kind, r.soft, r.hard
        ));
    }
    for key in process.other.keys() {
        // capabilities, apparmorProfile, oomScoreAdj, selinuxLabel, consoleSize, ...: the
        // sandbox is its own kernel; these have nothing to act on.
        log.debug(&format!("config.json: process.{key} ignored"));
    }
    for m in &spec.mounts {
        let kind = m.kind.as_deref().unwrap_or("");
        let dest = m.destination.trim_end_matches('/');
        let is_bind = kind == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind");
        if is_bind {
            if ENGINE_FILES.contains(&dest) {
                log.warn(&format!(
                    "config.json: bind mount of {} on {dest} not made (no volumes yet): the rootfs's own file is seen",
                    m.source.as_deref().unwrap_or("?")
                ));
                continue;
            }
            return Err(format!(
                "config.json: bind mount {} on {dest}: bind mounts (volumes) are not supported yet",
                m.source.as_deref().unwrap_or("?")
            )
            .into());
        }
        if PROVIDED.contains(&(kind, dest)) {
            log.debug(&format!(
                "config.json: mount {kind} on {dest}: provided by the Sentry"
            ));
        } else if kind == "tmpfs" {
            log.warn(&format!(
                "config.json: tmpfs on {dest} not mounted (no mounts yet): the rootfs's directory is used"
            ));
        } else {
            return Err(
                format!("config.json: mount of type {kind:?} on {dest} is not supported").into(),
            );
        }
    }
    let mut memory_mib = DEFAULT_MEMORY_MIB;
    let mut pids_limit = crate::runner::DEFAULT_PIDS_LIMIT;
    let mut cpus = crate::runner::default_cpus();
    let mut netns = None;
    let mut limits = super::cgroup::Limits::default();
    let mut cgroups_path = None;
    if let Some(linux) = &spec.linux {
        cgroups_path = linux.cgroups_path.clone().filter(|p| !p.is_empty());
        if let Some(res) = &linux.resources {
            limits.memory = res.memory.as_ref().and_then(|m| m.limit);
            limits.pids = res.pids.as_ref().and_then(|p| p.limit);
            if let Some(cpu) = &res.cpu {
                limits.cpu_shares = cpu.get("shares").and_then(Value::as_u64);
                limits.cpu_quota = cpu.get("quota").and_then(Value::as_i64);
                limits.cpu_period = cpu.get("period").and_then(Value::as_u64);
                // `docker run --cpus 1.5` (a quota of 1.5 periods) runs 2 apps at once,
                // `--cpuset-cpus 0-2` 3: the cgroup holds them to it.
                if let Some(q) = limits.cpu_quota.filter(|&q| q > 0) {
                    let period = limits.cpu_period.filter(|&p| p > 0).unwrap_or(100_000);
                    cpus = cpus.min((q as u64).div_ceil(period).min(u32::MAX as u64) as u32);
                }
                if let Some(set) = cpu.get("cpus").and_then(Value::as_str) {
                    match cpuset_count(set) {
                        Some(n) => cpus = cpus.min(n),
                        None if set.trim().is_empty() => {}
                        None => {
                            return Err(format!(
                                "config.json: linux.resources.cpu.cpus {set:?} is not a CPU list"
                            )
                            .into())
                        }
                    }
                }
                cpus = cpus.max(1);
            }
        }
        if let Some(res) = &linux.resources {
            if let Some(limit) = res.memory.as_ref().and_then(|m| m.limit) {
                if limit > 0 {
                    let want = (limit as u64).div_ceil(1 << 20);
                    let even = want + (want & 1);
                    memory_mib = even.clamp(MEMORY_MIB.0, MEMORY_MIB.1);
                    if memory_mib != want {
                        log.warn(&format!(
                            "config.json: memory limit {limit} bytes: the sandbox gets {memory_mib} MiB (even, {}..={} MiB)",
                            MEMORY_MIB.0, MEMORY_MIB.1
                        ));
                    }
                }
            }
            if let Some(p) = res.pids.as_ref().and_then(|p| p.limit) {
                if p > 0 {
                    pids_limit = p.min(i64::from(u32::MAX)) as u32;
                }
            }
            for key in res.other.keys() {
                log.debug(&format!("config.json: linux.resources.{key} ignored"));
            }
            for key in res.memory.iter().flat_map(|m| m.other.keys()) {
                log.debug(&format!(
                    "config.json: linux.resources.memory.{key} ignored"
                ));
            }
            if res.cpu.is_some() && cgroups_path.is_none() {
                log.warn("config.json: linux.resources.cpu not applied (no cgroupsPath)");
            }
        }
        for ns in &linux.namespaces {
            if ns.kind == "network" {
                netns = Some(ns.path.clone().unwrap_or_else(|| "new".into()));
            }
        }
        for key in linux.other.keys() {
            log.debug(&format!("config.json: linux.{key} ignored"));
        }
    }
    match &netns {
        None => log.warn(
            "config.json: no network namespace (the host's network): the sandbox has its own loopback only (host networking is not served yet)",
        ),
        Some(ns) => log.warn(&format!(
            "config.json: network namespace {ns}: the sandbox has its own loopback only: the namespace's interfaces are not used"
        )),
    }
    let platform = match spec.annotations.get("dev.vmm.platform").map(String::as_str) {
        None => log.platform.clone().unwrap_or_else(|| "auto".into()),
        Some(p @ ("auto" | "kvm" | "systrap" | "ptrace")) => p.to_string(),
        Some(other) => {
            return Err(format!(
                "annotation dev.vmm.platform: unknown platform {other:?} (kvm, systrap, ptrace or auto)"
            )
            .into())
        }
    };
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        if guest_sentry::kernel::Hostname::new(h.as_bytes()).is_none() {
            return Err(format!("config.json: hostname {h:?} is longer than 64 bytes").into());
        }
    }
    Ok(Plan {
        rootfs,
        read_only: root.readonly,
        args: process.args.clone(),
        env: process.env.clone(),
        cwd,
        platform,
        memory_mib,
        pids_limit,
        cpus,
        terminal: process.terminal,
        hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
        netns,
        cgroups_path,
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::cpuset_count;

    #[test]
    fn cpuset_lists() {
        assert_eq!(cpuset_count("0"), Some(1));
        assert_eq!(cpuset_count("0-3"), Some(4));
        assert_eq!(cpuset_count("0-3,8, 10-11"), Some(7));
        assert_eq!(cpuset_count("3-1"), None);
        assert_eq!(cpuset_count("a"), None);
        assert_eq!(cpuset_count("1,"), None);
    }
}

//! OCI hooks (`config.json` `hooks`), run as runc runs them, in the runtime's namespaces with
//! the container's state JSON on stdin: `prestart` and `createRuntime` by `create` once the
//! container process is ready (a failure fails the create), `poststart` by `start` and
//! `poststop` by `delete` (a failure is logged). `createContainer` and `startContainer` run
//! inside the container's namespaces under runc; a vmm sandbox has no host namespace for them
//! to enter: they are logged and not run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Failure, Log, Res};

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<u64>,
}

/// The hooks by kind, as config.json has them.
pub type Hooks = BTreeMap<String, Vec<Hook>>;

/// The file in the state directory keeping the container's hooks for `start` and `delete`.
pub const FILE: &str = "hooks.json";

/// Parses config.json's `hooks`, logging the kinds that are not run.
pub fn parse(log: &Log, raw: Option<&BTreeMap<String, Vec<serde_json::Value>>>) -> Res<Hooks> {
    let mut out = Hooks::new();
    for (kind, list) in raw.into_iter().flatten() {
        if list.is_empty() {
            continue;
        }
        match kind.as_str() {
            "prestart" | "createRuntime" | "poststart" | "poststop" => {}
            "createContainer" | "startContainer" => {
                log.warn(&format!(
                    "config.json: {kind} hooks not run (they run inside the container's namespaces, which a vmm sandbox does not have on the host)"
                ));
                continue;
            }
            other => return Err(format!("config.json: unknown hook kind {other:?}").into()),
        }
        let mut hooks = Vec::new();
        for v in list {
            let h: Hook = serde_json::from_value(v.clone())
                .map_err(|e| Failure::from(format!("config.json: a {kind} hook: {e}")))?;
            if !h.path.starts_with('/') {
                return Err(
                    format!("config.json: {kind} hook path {:?} is not absolute", h.path).into(),
                );
            }
            hooks.push(h);
        }
        out.insert(kind.clone(), hooks);
    }
    Ok(out)
}

pub fn save(dir: &Path, hooks: &Hooks) -> Res<()> {
    let text = serde_json::to_vec(hooks).map_err(|e| format!("hooks: {e}"))?;
    super::state::write_atomic(&dir.join(FILE), &text)
}

pub fn load(dir: &Path) -> Hooks {
    std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// Runs the hooks of `kind` in order with `state` on stdin; stops at the first failure.
pub fn run(hooks: &Hooks, kind: &str, state: &serde_json::Value) -> Res<()> {
    for h in hooks.get(kind).into_iter().flatten() {
        run_one(h, state).map_err(|e| Failure::from(format!("{kind} hook {}: {e}", h.path)))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    let mut cmd = Command::new(&h.path);
    if let Some(a0) = h.args.first() {
        cmd.arg0(a0);
    }
    cmd.args(h.args.iter().skip(1));
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t));
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(st) => break st,
            None if deadline.is_some_and(|d| Instant::now() > d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", h.timeout.unwrap_or(0)));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let err = err.trim().replace('\n', "; ");
    Err(if err.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {err}")
    })
}

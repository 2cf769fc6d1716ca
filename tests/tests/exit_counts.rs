//! kvm only: syscalls and page faults that need no host I/O must be served
//! inside the guest, without returning from KVM_RUN; each write(1, ...) must
//! cost exactly one exit. Measured with `vmm run --exit-stats FILE`.
//!
//! Each comparison is attempted up to 3 times: a stray host signal can add
//! an exit to one run, but a per-iteration cost never goes away.

use vmm_tests::{kvm_or_skip, run_with_exit_stats, variants};

const ATTEMPTS: usize = 3;

/// Runs `prog a` and `prog b` under kvm and checks `exits(b) - exits(a) ==
/// want_delta`, retrying; returns a report of all attempts on failure.
fn check_delta(variant: &str, prog: &str, a: &str, b: &str, want_delta: i64) -> Result<(), String> {
    let mut attempts = Vec::new();
    for _ in 0..ATTEMPTS {
        let (out_a, ea) = run_with_exit_stats("kvm", variant, prog, &[a])?;
        let (out_b, eb) = run_with_exit_stats("kvm", variant, prog, &[b])?;
        for out in [&out_a, &out_b] {
            if out.code() != 0 {
                return Err(format!("{prog} failed under kvm:\n{out}"));
            }
        }
        let delta = eb as i64 - ea as i64;
        if delta == want_delta {
            return Ok(());
        }
        attempts.push(format!(
            "exits({prog} {a}) = {ea}, exits({prog} {b}) = {eb}, delta {delta}"
        ));
    }
    Err(format!(
        "[kvm/{variant}] expected exits({prog} {b}) - exits({prog} {a}) == {want_delta}:\n  {}",
        attempts.join("\n  ")
    ))
}

fn run_all(test: &str, f: impl Fn(&str) -> Result<(), String>) {
    if !kvm_or_skip(test) {
        return;
    }
    let failures: Vec<String> = variants().into_iter().filter_map(|v| f(v).err()).collect();
    assert!(failures.is_empty(), "{test}:\n{}", failures.join("\n\n"));
}

#[test]
fn no_exits_for_in_guest_work() {
    run_all("no_exits_for_in_guest_work", |v| {
        check_delta(v, "exits_loop", "0", "2000", 0)
    });
}

#[test]
fn one_exit_per_write() {
    run_all("one_exit_per_write", |v| {
        check_delta(v, "write_n", "0", "10", 10)
    });
}

#[test]
fn exit_stats_file_shape() {
    run_all("exit_stats_file_shape", |v| {
        let file = vmm_tests::temp_path("shape.json");
        let f = file.to_str().unwrap().to_string();
        let out = vmm_tests::run_vmm("kvm", v, "hello", &[] as &[&str], &["--exit-stats", &f]);
        let text = std::fs::read_to_string(&file);
        let _ = std::fs::remove_file(&file);
        let text = text.map_err(|e| format!("{f} not written: {e}\n{out}"))?;
        let j = serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| format!("{e}: {text:?}"))?;
        if j.get("platform").and_then(|p| p.as_str()) != Some("kvm") {
            return Err(format!("\"platform\" is not \"kvm\" in {text:?}"));
        }
        if !matches!(j.get("exits").and_then(|e| e.as_u64()), Some(n) if n > 0) {
            return Err(format!("\"exits\" missing or zero in {text:?}"));
        }
        // The CPU features ring 0 turned on (PCIDs only where the CPU has them).
        let cpu = j
            .get("cpu")
            .ok_or_else(|| format!("no \"cpu\" in {text:?}"))?;
        for f in ["xsave", "smep", "smap", "pcid"] {
            if cpu.get(f).and_then(|b| b.as_bool()).is_none() {
                return Err(format!("cpu.{f} missing in {text:?}"));
            }
        }
        Ok(())
    });
}

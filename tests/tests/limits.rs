//! The sandbox's limits (`--pids-limit`, the overlay's budget of `--memory`, app memory) end
//! in an errno or a signal for the process that reached them — never in the end of the
//! sandbox or an allocation failure of vmm. Sandbox-only: native runs have other limits.

use vmm_tests::{for_each_case, run_vmm, RunOutput};

fn expect_lines(out: &RunOutput, want: &[&str]) -> Result<(), String> {
    let got = out.stdout_str();
    let lines: Vec<&str> = got.lines().collect();
    if lines != want {
        return Err(format!("expected stdout:\n{}\n{out}", want.join("\n")));
    }
    if out.code() != 0 {
        return Err(format!("expected exit 0\n{out}"));
    }
    Ok(())
}

#[test]
fn pids_limit_makes_fork_fail_with_eagain() {
    for_each_case("pids_limit", |p, v| {
        let out = run_vmm(p, v, "limits", &["fork"], &["--pids-limit", "20"]);
        expect_lines(
            &out,
            &[
                "forked 19, then Resource temporarily unavailable",
                "reaped 19",
                "fork after reaping: ok, child status 7",
            ],
        )
    });
}

#[test]
fn overlay_files_count_against_memory() {
    for_each_case("overlay_budget", |p, v| {
        let dir = vmm_tests::temp_path("limits");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let out = run_vmm(p, v, "limits", &["overlay", &d], &["--memory", "64"]);
        let untouched = std::fs::read_dir(&dir).unwrap().next().is_none();
        let _ = std::fs::remove_dir_all(&dir);
        if !untouched {
            return Err(format!("the host directory must stay empty\n{out}"));
        }
        expect_lines(
            &out,
            &[
                "ftruncate 1 TiB (sparse): 0",
                "pwrite at 1 TiB: 1",
                "pwrite at 2^63-2: File too large",
                "ftruncate -1: Invalid argument",
                "write stopped: No space left on device",
                "wrote at most 64 MiB: 1, over 1 MiB: 1",
                "write to big2: No space left on device",
                "unlink big: 0",
                "write to big2 while big is open: No space left on device",
                "write 1 MiB to big2 after close: 1048576",
                "pread big2: 4",
                "write 1 GiB from a bad pointer: Bad address",
            ],
        )
    });
}

#[test]
fn touching_more_memory_than_the_sandbox_has_kills_only_that_process() {
    for_each_case("touch", |p, v| {
        let out = run_vmm(p, v, "limits", &["touch", "512"], &["--memory", "128"]);
        // Linux's OOM outcome for the process: it dies of a signal (SIGBUS here, as a
        // page that cannot be allocated on a fault); vmm reports 128 + N, not a failure.
        if out.stdout_str() != "mapped\n" || !(out.code() == 128 + 7 || out.code() == 128 + 9) {
            return Err(format!(
                "expected 'mapped' and death by SIGBUS/SIGKILL\n{out}"
            ));
        }
        Ok(())
    });
}

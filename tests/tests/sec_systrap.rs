//! The systrap stub against a hostile app: whatever the app writes into the pages it shares
//! with the Sentry, and wherever it jumps in the stub's code, vmm survives, the sandbox stays
//! isolated (no host mapping the Sentry did not make, no other process's memory, no host
//! syscall) and vmm exits with the app's status. Only on systrap (the other platforms have
//! no such pages); every variant.

use vmm_tests::{for_each_case, run_native, run_vmm, RunOutput};

fn expect(ok: bool, what: &str, out: &RunOutput) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}\n{out}"))
    }
}

/// vmm ended as the app did: no panic, no sandbox failure.
fn survived(out: &RunOutput) -> Result<(), String> {
    let err = out.stderr_str();
    expect(
        !err.contains("panicked") && !err.contains("systrap platform") && out.code() != 125,
        "vmm failed instead of the app",
        out,
    )
}

fn hostile(modes: &[&str]) {
    for_each_case("sec_systrap_hostile", |p, v| {
        if p != "systrap" {
            return Ok(());
        }
        let out = run_vmm(p, v, "sec_systrap_hostile", modes, &[]);
        survived(&out)?;
        let text = out.stdout_str();
        expect(
            !text.contains("MAPPED") && !text.contains("LEAK"),
            "the app got a host mapping the Sentry did not make",
            &out,
        )?;
        expect(
            out.code() == 0 && text.contains("parent ok"),
            "the parent must go on and exit 0",
            &out,
        )?;
        for m in modes {
            expect(
                text.contains(&format!("{m}: child ")),
                &format!("no report of child {m}"),
                &out,
            )?;
        }
        Ok(())
    });
}

#[test]
fn forged_queue_entries_map_nothing() {
    hostile(&["queued"]);
}

#[test]
fn huge_counts_and_garbage_in_the_control_page() {
    hostile(&["huge", "garbage"]);
}

#[test]
fn forged_frame_pointers() {
    hostile(&["ucontext", "fpregs"]);
}

#[test]
fn jumps_to_every_syscall_of_the_stub_code() {
    let modes: Vec<String> = (0..16).map(|i| format!("jump{i}")).collect();
    let modes: Vec<&str> = modes.iter().map(String::as_str).collect();
    hostile(&modes);
}

#[test]
fn stub_pages_cannot_be_changed_through_the_sentry() {
    hostile(&["stubmaps"]);
}

#[test]
fn int80_is_not_served_with_the_64_bit_table() {
    for_each_case("int80", |p, v| {
        if p != "systrap" {
            return Ok(());
        }
        let out = run_vmm(p, v, "sec_systrap_arch", &["int80"], &[]);
        survived(&out)?;
        expect(
            !out.stdout_str().contains("ESCAPED") && out.stdout_str().contains("int80: -38"),
            "int $0x80 must fail with ENOSYS",
            &out,
        )
    });
}

#[test]
fn vsyscall_page_reaches_the_sentry() {
    for_each_case("vsyscall", |p, v| {
        if p != "systrap" {
            return Ok(());
        }
        let native = run_native(v, "sec_systrap_arch", &["vsyscall"]);
        if native.code() != 0 {
            return Ok(()); // no vsyscall emulation on this host
        }
        let out = run_vmm(p, v, "sec_systrap_arch", &["vsyscall"], &[]);
        survived(&out)?;
        // gettimeofday and time as natively; getcpu reaches the Sentry too (which does not
        // serve it yet: ENOSYS, logged as an unknown syscall 309, not a 32-bit or host one).
        let lines: Vec<String> = out.stdout_str().lines().map(String::from).collect();
        let want: Vec<String> = native
            .stdout_str()
            .lines()
            .take(2)
            .map(String::from)
            .collect();
        expect(
            out.code() == 0 && lines.len() == 3 && lines[..2] == want[..],
            "vsyscall gettimeofday/time differ from the native run",
            &out,
        )?;
        expect(
            out.stderr_str().contains("unsupported syscall 309") || lines[2] == "getcpu: 0 ok",
            "vsyscall getcpu did not reach the Sentry",
            &out,
        )
    });
}

#[test]
fn host_map_count_exhaustion_is_the_process_error() {
    for_each_case("enomem", |p, v| {
        if p != "systrap" || v != "musl" {
            return Ok(());
        }
        // Every other page read-only: one host mapping each in the stub, past
        // vm.max_map_count (65530).
        let out = run_vmm(p, v, "sec_systrap_enomem", &["70000", "2", "protect"], &[]);
        survived(&out)?;
        expect(
            matches!(out.code(), 0 | 1 | 135 | 137 | 139),
            "the process must end by itself or of a signal",
            &out,
        )
    });
}

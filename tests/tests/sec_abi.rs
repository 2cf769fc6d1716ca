//! The x86 ABI's side doors into a kernel, on every platform: the legacy vsyscall page and the
//! 32-bit syscall entries (`int $0x80`, `syscall` and `sysenter` from 32-bit code). Each must
//! reach the Sentry (or become a signal to the app), never the host kernel, never the x86-64
//! syscall table, and never take the sandbox down.

use vmm_tests::{check_same, for_each_case, run_native, run_vmm, temp_path, RunOutput};

fn expect(cond: bool, what: &str, out: &RunOutput) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}\n{out}"))
    }
}

/// What `sec_abi_vsyscall` prints where every check passes.
const VSYSCALL_OK: &str =
    "time: ok\ngettimeofday: ok\ngetcpu: ok\nstack and callee-saved registers: ok\n";

/// The three vsyscalls give what they give natively (sane times, the CPU as getcpu(2) says).
/// The sandbox offers them even where the host kernel does not (booted with `vsyscall=none`,
/// as the kvm rig's kernel is: natively they are SIGSEGV there).
#[test]
fn vsyscall_results_match_native() {
    for_each_case("vsyscall_results_match_native", |p, v| {
        let native = run_native(v, "sec_abi_vsyscall", &[] as &[&str]);
        let sandboxed = run_vmm(p, v, "sec_abi_vsyscall", &[] as &[&str], &[]);
        if native.code() == 0 {
            check_same(&native, &sandboxed)?;
        } else if !(native.code() == 128 + libc::SIGSEGV && native.stdout.is_empty()) {
            return Err(format!("native run failed\n{native}"));
        }
        expect(
            sandboxed.code() == 0 && sandboxed.stdout_str() == VSYSCALL_OK,
            "a vsyscall check failed",
            &sandboxed,
        )
    });
}

/// The vsyscalls are served by the Sentry: `--strace` shows each one (the program makes no
/// other time or CPU query). Served by the host instead, they would give the same answers but
/// leave no trace.
#[test]
fn vsyscalls_reach_the_sentry() {
    for_each_case("vsyscalls_reach_the_sentry", |p, v| {
        let out = run_vmm(p, v, "sec_abi_vsyscall", &["only-vsyscalls"], &["--strace"]);
        expect(
            out.code() == 0
                && out.stdout_str() == "time sane, gettimeofday 0, getcpu answered, registers ok\n",
            "unexpected result",
            &out,
        )?;
        let err = out.stderr_str();
        for (what, found) in [
            ("time(NULL)", err.contains("] time(NULL) = ")),
            (
                "gettimeofday(NULL, NULL)",
                err.contains("] gettimeofday(NULL, NULL) = 0"),
            ),
            ("getcpu", err.contains("] getcpu(NULL, NULL, NULL) = 0")),
        ] {
            expect(found, &format!("--strace shows no {what}"), &out)?;
        }
        Ok(())
    });
}

const BACK: &str = "back in 64-bit mode (0x123456789abcdef0)";

fn enosys_lines(modes: &[&str]) -> String {
    modes
        .iter()
        .map(|m| format!("{m}: result -38 (-ENOSYS), directory absent\n{m}: {BACK}\n"))
        .collect()
}

/// `int $0x80` with eax = 39 (i386 mkdir; x86-64 getpid) from 64-bit and from 32-bit code:
/// -ENOSYS, no directory, and the app carries on in 64-bit mode after the far return.
#[test]
fn int80_is_enosys_and_returns_to_its_mode() {
    let dir = temp_path("int80");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap().to_string();
    for_each_case("int80_is_enosys_and_returns_to_its_mode", |p, v| {
        let out = run_vmm(p, v, "sec_abi_int80", &[&d, "int80-64", "int80-32"], &[]);
        expect(
            out.code() == 0 && out.stdout_str() == enosys_lines(&["int80-64", "int80-32"]),
            "expected -ENOSYS for both entries and a return to 64-bit mode",
            &out,
        )?;
        expect(
            out.stderr_str()
                .contains("unsupported 32-bit syscall 39 (i386 ABI)"),
            "the Sentry did not see a 32-bit syscall",
            &out,
        )?;
        expect(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "a directory appeared on the host",
            &out,
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Natively the host serves i386 mkdir (this is what the sandbox must not do), where the host
/// kernel has IA32 emulation.
#[test]
fn int80_native_is_i386_mkdir() {
    let dir = temp_path("int80-native");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap().to_string();
    for v in vmm_tests::variants() {
        let out = run_native(v, "sec_abi_int80", &[&d, "int80-64", "int80-32"]);
        if out.code() == 128 + libc::SIGSEGV && out.stdout.is_empty() {
            eprintln!("host without IA32 emulation: int $0x80 is SIGSEGV natively");
            continue;
        }
        let want: String = ["int80-64", "int80-32"]
            .iter()
            .map(|m| format!("{m}: result 0, directory created\n{m}: {BACK}\n"))
            .collect();
        assert!(
            out.code() == 0 && out.stdout_str() == want,
            "native run:\n{out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the CPU is AMD's (`syscall` from 32-bit code works, `sysenter` in long mode is
/// #UD) rather than Intel's (the other way round).
fn amd() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("AuthenticAMD"))
}

/// `syscall` and `sysenter` from 32-bit code. Where the CPU runs them they are 32-bit
/// syscalls, else it raises #UD (SIGILL). On kvm: AMD's `syscall` (CSTAR) is answered
/// -ENOSYS back in 32-bit code; `sysenter`, where it runs (Intel, or KVM emulating it, as in
/// the rig), meets a null SYSENTER_CS (#GP: SIGSEGV).
/// On the fallbacks the host kernel decides first: it sends a 64-bit process's `syscall` or
/// `sysenter` from 32-bit code to a vDSO landing pad the process does not have (SIGSEGV, as
/// natively). Never a directory, never a sandbox failure.
#[test]
fn syscall_and_sysenter_from_32_bit_code_are_safe() {
    let dir = temp_path("sys32");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap().to_string();
    let amd = amd();
    for_each_case("syscall_and_sysenter_from_32_bit_code_are_safe", |p, v| {
        for mode in ["syscall-32", "sysenter-32"] {
            let out = run_vmm(p, v, "sec_abi_int80", &[&d, mode], &[]);
            let answered = out.code() == 0 && out.stdout_str() == enosys_lines(&[mode]);
            let killed = |sig: i32| out.code() == 128 + sig && out.stdout.is_empty();
            let (ok, want) = match (p, mode, amd) {
                // A null SYSENTER_CS: #GP where the CPU (or KVM's emulation of it: the rig)
                // runs `sysenter`, else #UD.
                ("kvm", "sysenter-32", _) => (
                    killed(libc::SIGSEGV) || killed(libc::SIGILL),
                    "SIGSEGV or SIGILL",
                ),
                ("kvm", "syscall-32", true) => (answered, "-ENOSYS"),
                (_, "syscall-32", false) | (_, "sysenter-32", true) => {
                    (killed(libc::SIGILL), "SIGILL")
                }
                _ => (answered || killed(libc::SIGSEGV), "-ENOSYS or SIGSEGV"),
            };
            expect(ok, &format!("{mode}: expected {want}"), &out)?;
        }
        if std::fs::read_dir(&dir).unwrap().next().is_some() {
            return Err(format!("[{p}/{v}] a directory appeared on the host in {d}"));
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// The app's DF and AC flags never reach the kernel that serves its page faults and traps
/// (kvm: an exception entry keeps them; a fault taken with DF set made the guest kernel copy
/// backwards and triple-fault). Faults, handlers and frames match a native run.
#[test]
fn direction_and_alignment_flags_stay_the_apps() {
    for_each_case("direction_and_alignment_flags_stay_the_apps", |p, v| {
        vmm_tests::compare(p, v, "sec_abi_flags", &[])
    });
}

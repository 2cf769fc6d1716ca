//! Is the kvm platform usable on this host? A probe VM boots the real Sentry and runs the
//! probe program ([`crate::probe::probe_elf`]), which makes a ring-3 `syscall` (which must
//! reach the Sentry in ring 0), takes a demand page fault and exits with a known status. Some
//! hosts' /dev/kvm is a paravirtual hypervisor on which `syscall` never leaves ring 3: the
//! probe tells those apart.

use super::Config;
use crate::probe::{Verdict, PROBE_EXIT};
use crate::runner::End;

/// Runs inside the probe child process (`vmm __probe-kvm`): boots the probe VM.
pub fn run_probe_vm() -> Verdict {
    let prog = match crate::probe::program() {
        Ok(p) => p,
        Err(e) => return Verdict::unusable(e),
    };
    let cfg = Config {
        mem_size: 64 << 20,
        strace: false,
        strace_only: guest_sentry::kernel::SyscallSet::NONE,
        single_step: false,
        read_only: true,
        write_through: false,
        pids_limit: 1,
        hostname: Default::default(),
    };
    match super::run(&cfg, prog, std::path::Path::new("/")) {
        Ok((End::Exited(PROBE_EXIT), stats)) => Verdict {
            usable: true,
            reason: format!(
                "a probe VM ran a ring-3 program through syscalls and a page fault ({} VM exits)",
                stats.exits
            ),
        },
        Ok((end, _)) => Verdict::unusable(crate::probe::wrong_end(&end)),
        Err(e) => Verdict::unusable(e.to_string()),
    }
}

/// Checks this host: /dev/kvm present and openable, then the probe VM in a child process (so a
/// host that wedges the vCPU cannot hang the caller).
pub fn probe() -> Verdict {
    if !std::path::Path::new("/dev/kvm").exists() {
        return Verdict::unusable(
            "/dev/kvm does not exist (no hardware virtualization exposed to this host)".into(),
        );
    }
    match kvm_ioctls::Kvm::new() {
        Ok(kvm) if kvm.get_api_version() != 12 => {
            return Verdict::unusable(format!(
                "unexpected KVM API version {}",
                kvm.get_api_version()
            ))
        }
        Ok(_) => {}
        Err(e) => return Verdict::unusable(format!("cannot open /dev/kvm: {e}")),
    }
    crate::probe::run_child(crate::probe::subcommand(crate::runner::Platform::Kvm))
}

//! Which platforms work on this host. Each probe runs a tiny program that makes a ring-3
//! `syscall`, takes a demand page fault and exits with a known status, in a child process
//! (`vmm __probe-PLATFORM`), so that a host that wedges or kills it cannot hang or kill the
//! caller. The kvm probe (which first checks `/dev/kvm`) is [`crate::kvm::probe`]; the
//! fallbacks' probes are here, since ptrace or seccomp may be forbidden by the host's policy.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::runner::{End, Platform, Program};

/// The verdict for one platform (an entry of `vmm platforms --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub usable: bool,
    pub reason: String,
}

impl Verdict {
    pub fn unusable(reason: String) -> Verdict {
        Verdict {
            usable: false,
            reason,
        }
    }
}

/// The status the probe program exits with when all went well.
pub const PROBE_EXIT: i32 = 42;
/// The probe child gets this long (the rig runs nested under emulation).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The hidden subcommand that runs `platform`'s probe in the child.
pub fn subcommand(platform: Platform) -> &'static str {
    match platform {
        Platform::Kvm => "__probe-kvm",
        Platform::Systrap => "__probe-systrap",
        Platform::Ptrace => "__probe-ptrace",
    }
}

/// Checks whether `platform` works here.
pub fn probe(platform: Platform) -> Verdict {
    match platform {
        Platform::Kvm => crate::kvm::probe::probe(),
        Platform::Systrap | Platform::Ptrace => run_child(subcommand(platform)),
    }
}

/// Runs inside the probe child process (`vmm __probe-PLATFORM`): prints a reason and returns
/// 0 when usable, 1 when not.
pub fn child(platform: Platform) -> u8 {
    let verdict = match platform {
        Platform::Kvm => crate::kvm::probe::run_probe_vm(),
        Platform::Systrap | Platform::Ptrace => run_fallback(platform),
    };
    // The verdict is the child's answer on stdout (read by `run_child`).
    let _ = writeln!(std::io::stdout(), "{}", verdict.reason);
    if verdict.usable {
        0
    } else {
        1
    }
}

/// Runs the probe program on a fallback platform, in this process.
fn run_fallback(platform: Platform) -> Verdict {
    let prog = match program() {
        Ok(p) => p,
        Err(e) => return Verdict::unusable(e),
    };
    let kind = if platform == Platform::Systrap {
        crate::sandbox::Kind::Systrap
    } else {
        crate::sandbox::Kind::Ptrace
    };
    let config = guest_sentry::kernel::Config {
        read_only: true,
        ..Default::default()
    };
    match crate::sandbox::run(kind, 64 << 20, config, prog, std::path::Path::new("/")) {
        Ok((End::Exited(PROBE_EXIT), _)) => Verdict {
            usable: true,
            reason: "a probe program ran in a stub process through syscalls and a page fault"
                .into(),
        },
        Ok((end, _)) => Verdict::unusable(wrong_end(&end)),
        Err(e) => Verdict::unusable(e.to_string()),
    }
}

/// Why a probe run that ended as `end` (not with [`PROBE_EXIT`]) does not count.
pub fn wrong_end(end: &End) -> String {
    let status = |code: i32, signal: i32| {
        format!(
            "the probe program ended with status {code} signal {signal} instead of exiting {PROBE_EXIT}"
        )
    };
    match end {
        End::Exited(code) => status(*code, 0),
        End::Signaled(sig) => status(0, *sig),
        End::ExecFailed(f) => status(126, 0) + &format!(" (exec errno {})", f.errno),
        End::Panic(msg) | End::Killed(msg) => msg.clone(),
    }
}

/// A minimal static x86-64 ELF: `getpid() == 1`, touch a stack page 64 KiB down, `exit(42)`.
pub fn probe_elf() -> Vec<u8> {
    let code: &[u8] = &[
        0xb8, 0x27, 0, 0, 0, // mov eax, 39 (getpid)
        0x0f, 0x05, // syscall
        0x83, 0xf8, 0x01, // cmp eax, 1
        0x75, 0x17, // jne fail
        0x48, 0x81, 0xec, 0x00, 0x00, 0x01, 0x00, // sub rsp, 0x10000
        0xc6, 0x04, 0x24, 0x01, // mov byte [rsp], 1 (demand fault)
        0xbf, 0x2a, 0, 0, 0, // mov edi, 42
        0xb8, 0xe7, 0, 0, 0, // mov eax, 231 (exit_group)
        0x0f, 0x05, // syscall
        0xbf, 0x01, 0, 0, 0, // fail: mov edi, 1
        0xb8, 0xe7, 0, 0, 0, // mov eax, 231
        0x0f, 0x05, // syscall
    ];
    const BASE: u64 = 0x40_0000;
    let code_off = 64 + 56;
    let total = (code_off + code.len()) as u64;
    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + code_off as u64).to_le_bytes()); // e_entry
    e.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R X
    for v in [0u64, BASE, BASE, total, total, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes()); // offset, vaddr, paddr, filesz, memsz, align
    }
    e.extend_from_slice(code);
    e
}

/// The probe program, in a memfd.
pub fn program() -> Result<Program, String> {
    // SAFETY: static C string; fd checked.
    let fd = unsafe { libc::memfd_create(c"vmm-probe".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd we own.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&probe_elf())
        .map_err(|e| format!("writing the probe program: {e}"))?;
    Ok(Program {
        file,
        execfn: b"/probe".to_vec(),
        exe_path: b"/probe".to_vec(),
        cwd: b"/".to_vec(),
        argv: vec![b"probe".to_vec()],
        envp: vec![],
    })
}

/// Runs `vmm SUBCOMMAND` (a probe child) and reads its verdict: its exit status, and the
/// reason it printed (on stdout, else stderr).
pub fn run_child(subcommand: &str) -> Verdict {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return Verdict::unusable(format!("cannot find the vmm binary for the probe: {e}"))
        }
    };
    let mut child = match Command::new(exe)
        .arg(subcommand)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Verdict::unusable(format!("cannot start the probe: {e}")),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < PROBE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Verdict::unusable(format!(
                    "the probe VM did not finish within {} s",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
        }
    }
    match child.wait_with_output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let text = if text.is_empty() {
                String::from_utf8_lossy(&out.stderr).trim().to_string()
            } else {
                text
            };
            log::debug!("probe {subcommand}: {text}");
            Verdict {
                usable: out.status.success(),
                reason: text,
            }
        }
        Err(e) => Verdict::unusable(format!("probe: {e}")),
    }
}

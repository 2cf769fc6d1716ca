//! Is the kvm platform usable on this host? A probe VM boots the real Sentry and runs a tiny
//! program that makes a ring-3 `syscall` (which must reach the Sentry in ring 0), takes a
//! demand page fault and exits with a known status. Some hosts' /dev/kvm is a paravirtual
//! hypervisor on which `syscall` never leaves ring 3: the probe tells those apart.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Config, End, Program};

/// The verdict for one platform.
pub struct Verdict {
    pub usable: bool,
    pub reason: String,
}

const PROBE_EXIT: i32 = 42;
/// The probe child gets this long (the rig runs nested under emulation).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Runs inside the probe child process (`vmm __probe-kvm`): prints a reason and exits 0 when
/// usable, 1 when not.
pub fn child() -> i32 {
    let verdict = run_probe_vm();
    println!("{}", verdict.reason);
    if verdict.usable {
        0
    } else {
        1
    }
}

/// The probe program, in a memfd.
fn probe_program() -> Result<Program, String> {
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

fn run_probe_vm() -> Verdict {
    let no = |reason: String| Verdict {
        usable: false,
        reason,
    };
    let prog = match probe_program() {
        Ok(p) => p,
        Err(e) => return no(e),
    };
    let cfg = Config {
        mem_size: 64 << 20,
        strace: false,
        single_step: false,
        read_only: true,
        write_through: false,
        pids_limit: 1,
        hostname: Default::default(),
    };
    match super::run(&cfg, prog, std::path::Path::new("/")) {
        Ok((End::Exited { code: PROBE_EXIT, signal: 0, .. }, stats)) => Verdict {
            usable: true,
            reason: format!("a probe VM ran a ring-3 program through syscalls and a page fault ({} VM exits)", stats.exits),
        },
        Ok((End::Exited { code, signal, .. }, _)) => {
            no(format!("the probe program ended with status {code} signal {signal} instead of exiting {PROBE_EXIT}"))
        }
        Ok((End::Panic(msg), _)) => no(msg),
        Ok((End::Killed(why), _)) => no(why),
        Err(e) => no(e),
    }
}

/// Runs the probe program on a fallback platform (in the child `vmm __probe-systrap|ptrace`).
pub fn child_fallback(kind: crate::sandbox::Kind) -> i32 {
    let no = |reason: String| Verdict {
        usable: false,
        reason,
    };
    let verdict = match probe_program() {
        Err(e) => no(e),
        Ok(prog) => match crate::sandbox::run(
            kind,
            64 << 20,
            guest_sentry::kernel::Config {
                read_only: true,
                ..Default::default()
            },
            prog,
            std::path::Path::new("/"),
        ) {
            Ok(End::Exited { code: PROBE_EXIT, signal: 0, .. }) => Verdict {
                usable: true,
                reason: "a probe program ran in a stub process through syscalls and a page fault".into(),
            },
            Ok(End::Exited { code, signal, .. }) => {
                no(format!("the probe program ended with status {code} signal {signal} instead of exiting {PROBE_EXIT}"))
            }
            Ok(End::Panic(msg)) | Ok(End::Killed(msg)) | Err(msg) => no(msg),
        },
    };
    println!("{}", verdict.reason);
    if verdict.usable {
        0
    } else {
        1
    }
}

/// Checks whether a fallback platform works here (ptrace or seccomp may be forbidden by the
/// host's policy), by running the probe program in a child process.
pub fn probe_fallback(kind: crate::sandbox::Kind) -> Verdict {
    run_probe_child(match kind {
        crate::sandbox::Kind::Systrap => "__probe-systrap",
        crate::sandbox::Kind::Ptrace => "__probe-ptrace",
    })
}

/// Checks this host: /dev/kvm present and openable, then the probe VM in a child process (so a
/// host that wedges the vCPU cannot hang the caller).
pub fn probe() -> Verdict {
    let no = |reason: String| Verdict {
        usable: false,
        reason,
    };
    if !std::path::Path::new("/dev/kvm").exists() {
        return no(
            "/dev/kvm does not exist (no hardware virtualization exposed to this host)".into(),
        );
    }
    match kvm_ioctls::Kvm::new() {
        Ok(kvm) if kvm.get_api_version() != 12 => {
            return no(format!(
                "unexpected KVM API version {}",
                kvm.get_api_version()
            ))
        }
        Ok(_) => {}
        Err(e) => return no(format!("cannot open /dev/kvm: {e}")),
    }
    run_probe_child("__probe-kvm")
}

fn run_probe_child(subcommand: &str) -> Verdict {
    let no = |reason: String| Verdict {
        usable: false,
        reason,
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return no(format!("cannot find the vmm binary for the probe: {e}")),
    };
    let mut child = match Command::new(exe)
        .arg(subcommand)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return no(format!("cannot start the probe: {e}")),
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
                return no(format!(
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
            Verdict {
                usable: out.status.success(),
                reason: text,
            }
        }
        Err(e) => no(format!("probe: {e}")),
    }
}

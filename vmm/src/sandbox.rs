//! Running the Sentry in this process on a fallback platform (systrap or ptrace): the
//! memory file is a memfd mapped here, the app runs in a stub process, host operations are
//! direct calls into the host services.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use guest_sentry::kernel::{self, Config, Kernel, Spawn};
use guest_sentry::memfile::MemoryFile;

use crate::host::{DirectHost, HostServices};
use crate::runner::{End, ExecFailure, Program, Stats};

/// Why a fallback sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("memfd_create: {0}")]
    CreateMemory(std::io::Error),
    #[error("sizing the memory file: {0}")]
    SizeMemory(std::io::Error),
    #[error("mapping the memory file: {0}")]
    MapMemory(std::io::Error),
    #[error("opening the sandbox root: {0}")]
    Root(std::io::Error),
    #[error("getrandom failed")]
    Random,
    #[error("confining vmm: {0}")]
    Confine(#[from] crate::confine::ConfineError),
}

/// A shared mapping of a fresh memfd of `size` bytes.
struct Memory {
    fd: OwnedFd,
    base: *mut libc::c_void,
    size: usize,
}

impl Memory {
    fn new(size: u64) -> Result<Memory, SandboxError> {
        // SAFETY: static C string; the fd is checked.
        let fd = unsafe { libc::memfd_create(c"vmm-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(SandboxError::CreateMemory(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fd is a memfd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as i64) } < 0 {
            return Err(SandboxError::SizeMemory(std::io::Error::last_os_error()));
        }
        // SAFETY: a new shared mapping of the whole file; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(SandboxError::MapMemory(std::io::Error::last_os_error()));
        }
        Ok(Memory {
            fd,
            base,
            size: size as usize,
        })
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used (the Sentry is gone).
        unsafe { libc::munmap(self.base, self.size) };
    }
}

/// Which fallback platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Systrap,
    Ptrace,
}

/// Runs `prog` with the Sentry in this process on a fallback platform, until the sandbox
/// ends.
pub fn run(
    kind: Kind,
    mem_size: u64,
    config: Config,
    prog: Program,
    root: &std::path::Path,
) -> Result<(End, Stats), SandboxError> {
    let memory = Memory::new(mem_size)?;
    let root = crate::confine::enter_mount_namespace(root, config.write_through);
    let mut services = HostServices::new(&root, prog.file).map_err(SandboxError::Root)?;
    if config.write_through {
        services.allow_writes();
    }
    let host = DirectHost::new(services);
    // SAFETY: the mapping covers the whole file and outlives the Sentry (dropped after `k`).
    let mem = Rc::new(unsafe { MemoryFile::new(memory.base as u64, mem_size, 0) });
    let mut seed = [0u8; 32];
    // SAFETY: seed is a writable 32-byte buffer.
    if unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 32, 0) } != 32 {
        return Err(SandboxError::Random);
    }
    let write_through = config.write_through;
    let cpus = config.cpus;
    let mut k = Kernel::new(&host, mem, config, seed);
    let platform = match kind {
        Kind::Systrap => crate::confine::Platform::Systrap,
        Kind::Ptrace => crate::confine::Platform::Ptrace,
    };
    crate::confine::lock_down(platform, write_through).map_err(SandboxError::Confine)?;
    let spawn = Spawn {
        execfn: prog.execfn,
        exe_path: prog.exe_path,
        cwd: prog.cwd,
        argv: prog.argv,
        envp: prog.envp,
    };
    let fd = memory.fd.as_raw_fd();
    let result = match kind {
        Kind::Systrap => kernel::run(
            &mut fallback::systrap::SystrapPlatform::new(fd),
            &mut k,
            spawn,
            guest_sentry::syscalls::layer(),
        ),
        Kind::Ptrace => kernel::run(
            &mut fallback::ptrace::PtracePlatform::new(fd, cpus > 1),
            &mut k,
            spawn,
            guest_sentry::syscalls::layer(),
        ),
    };
    let end = match result {
        Ok(s) if s.signal != 0 => End::Signaled(s.signal),
        Ok(s) => End::Exited(s.code),
        Err(kernel::RunError::Exec(e)) => End::ExecFailed(ExecFailure::errno(e.0)),
        Err(kernel::RunError::Platform(e)) if e == guest_sentry::errno::ESRCH => End::Killed(format!(
            "{} platform: the app's stub process died (killed from outside, or by its seccomp filter \
             for a forbidden syscall from the stub's code)",
            format!("{kind:?}").to_lowercase()
        )),
        Err(kernel::RunError::Platform(e)) => {
            // The ptrace platform names the host request that failed.
            let detail = match kind {
                Kind::Ptrace => fallback::ptrace::last_failure(),
                Kind::Systrap => None,
            };
            End::Killed(format!(
                "{} platform: {}{}",
                format!("{kind:?}").to_lowercase(),
                std::io::Error::from_raw_os_error(e.0),
                detail.map(|d| format!(" (the last host request that failed: {d})")).unwrap_or_default()
            ))
        }
    };
    drop(k);
    drop(memory);
    let stats = match kind {
        Kind::Systrap => {
            let (trapped_syscalls, fast_syscalls) = fallback::systrap::syscall_counts();
            Stats::Systrap {
                trapped_syscalls,
                fast_syscalls,
            }
        }
        Kind::Ptrace => Stats::Ptrace,
    };
    Ok((end, stats))
}

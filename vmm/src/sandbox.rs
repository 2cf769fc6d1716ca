//! Running the Sentry in this process on a fallback platform (systrap or ptrace): the
//! memory file is a memfd mapped here, the app runs in a stub process, host operations are
//! direct calls into the host services.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use guest_sentry::kernel::{self, Config, Kernel, Spawn};
use guest_sentry::memfile::MemoryFile;

use crate::host::{DirectHost, HostServices};
use crate::kvm::{End, Program};

/// A shared mapping of a fresh memfd of `size` bytes.
struct Memory {
    fd: OwnedFd,
    base: *mut libc::c_void,
    size: usize,
}

impl Memory {
    fn new(size: u64) -> Result<Memory, String> {
        // SAFETY: static C string; the fd is checked.
        let fd = unsafe { libc::memfd_create(c"vmm-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fd is a memfd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as i64) } < 0 {
            return Err(format!(
                "sizing the memory file: {}",
                std::io::Error::last_os_error()
            ));
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
            return Err(format!(
                "mapping the memory file: {}",
                std::io::Error::last_os_error()
            ));
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

/// Runs `prog` with the Sentry in this process on a fallback platform.
pub fn run(
    kind: Kind,
    mem_size: u64,
    config: Config,
    prog: Program,
    root: &std::path::Path,
) -> Result<End, String> {
    let memory = Memory::new(mem_size)?;
    let root = crate::confine::enter_mount_namespace(root, config.write_through);
    let mut services = HostServices::new(&root, prog.file)
        .map_err(|e| format!("opening the sandbox root: {e}"))?;
    if config.write_through {
        services.allow_writes();
    }
    let host = DirectHost::new(services);
    // SAFETY: the mapping covers the whole file and outlives the Sentry (dropped after `k`).
    let mem = Rc::new(unsafe { MemoryFile::new(memory.base as u64, mem_size, 0) });
    let mut seed = [0u8; 32];
    // SAFETY: seed is a writable 32-byte buffer.
    if unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 32, 0) } != 32 {
        return Err("getrandom failed".into());
    }
    let write_through = config.write_through;
    let mut k = Kernel::new(&host, mem, config, seed);
    let platform = match kind {
        Kind::Systrap => crate::confine::Platform::Systrap,
        Kind::Ptrace => crate::confine::Platform::Ptrace,
    };
    crate::confine::lock_down(platform, write_through)
        .map_err(|e| format!("confining vmm: {e}"))?;
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
            &mut fallback::ptrace::PtracePlatform::new(fd),
            &mut k,
            spawn,
            guest_sentry::syscalls::layer(),
        ),
    };
    let end = match result {
        Ok(s) => End::Exited {
            code: s.code,
            signal: s.signal,
            exec_errno: 0,
        },
        Err(kernel::RunError::Exec(e)) => End::Exited {
            code: 126,
            signal: 0,
            exec_errno: e.0,
        },
        Err(kernel::RunError::Platform(e)) if e == guest_sentry::errno::ESRCH => End::Killed(format!(
            "{} platform: the app's stub process died (killed from outside, or by its seccomp filter \
             for a forbidden syscall from the stub's code)",
            format!("{kind:?}").to_lowercase()
        )),
        Err(kernel::RunError::Platform(e)) => End::Killed(format!(
            "{} platform: {}",
            format!("{kind:?}").to_lowercase(),
            std::io::Error::from_raw_os_error(e.0)
        )),
    };
    drop(k);
    drop(memory);
    Ok(end)
}

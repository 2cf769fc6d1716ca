//! The ptrace platform: each address space is a stub process; the app runs in it under
//! `PTRACE_SYSEMU`, so every syscall stops it before the host kernel acts, and faults arrive as
//! signal-delivery stops. Mappings are made by having the stub run `mmap`/`munmap` on the
//! memory file. Works anywhere ptrace works; each syscall costs two host context switches.

use std::io;
use std::rc::Rc;

use guest_sentry::errno::{Errno, EIO, ENOMEM};
use guest_sentry::platform::{Access, AddressSpace, Context, Event, Platform, UserRegs};

use crate::stub::{self, Stub, STUB_MEMFD};

fn eio(e: io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(EIO.0))
}

/// Pins this thread and the stub to the CPU we run on: every syscall is a handoff between the
/// two, and on one CPU it costs a context switch instead of a cross-CPU wake-up (about 3×
/// cheaper). Best effort: without it the platform still works.
fn pin_together(stub: libc::pid_t) {
    // SAFETY: plain syscalls on a cpu_set_t we own.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_setaffinity(0, size, &set) == 0 {
            libc::sched_setaffinity(stub, size, &set);
        }
    }
}

pub struct PtracePlatform {
    memfd: i32,
}

impl PtracePlatform {
    /// `memfd`: the sandbox's memory file (stays open in `vmm`; each stub gets a copy).
    pub fn new(memfd: i32) -> Self {
        PtracePlatform { memfd }
    }
}

pub struct PtraceAddressSpace {
    stub: Rc<Stub>,
}

fn prot(a: Access) -> u64 {
    (a.read as u64) | (a.write as u64) << 1 | (a.execute as u64) << 2
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(&mut self, addr: u64, offset: u64, len: u64, access: Access) -> Result<(), Errno> {
        if !access.any() {
            self.unmap(addr, len);
            return Ok(());
        }
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let r = self
            .stub
            .syscall(
                libc::SYS_mmap as u64,
                [addr, len, prot(access), flags, STUB_MEMFD as u64, offset],
            )
            .map_err(eio)?;
        if r as u64 != addr {
            return Err(ENOMEM);
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        // A failure leaves the stub unusable, which the next switch reports.
        let _ = self
            .stub
            .syscall(libc::SYS_munmap as u64, [addr, len, 0, 0, 0, 0]);
    }
}

pub struct PtraceContext;

impl Context for PtraceContext {
    type AddressSpace = PtraceAddressSpace;

    fn fpu_state(&mut self, space: &mut PtraceAddressSpace) -> Result<[u8; 512], Errno> {
        let mut fx = [0u8; 512];
        // SAFETY: the stub is our stopped tracee; user_fpregs_struct is 512 bytes (FXSAVE).
        if unsafe { libc::ptrace(libc::PTRACE_GETFPREGS, space.stub.pid, 0, fx.as_mut_ptr()) } < 0 {
            return Err(eio(io::Error::last_os_error()));
        }
        Ok(fx)
    }

    fn set_fpu_state(
        &mut self,
        space: &mut PtraceAddressSpace,
        fx: &[u8; 512],
    ) -> Result<(), Errno> {
        // SAFETY: as above; the kernel validates MXCSR.
        if unsafe { libc::ptrace(libc::PTRACE_SETFPREGS, space.stub.pid, 0, fx.as_ptr()) } < 0 {
            return Err(eio(io::Error::last_os_error()));
        }
        Ok(())
    }

    fn switch(
        &mut self,
        space: &mut PtraceAddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        let pid = space.stub.pid;
        regs.cs = 0x33;
        regs.ss = 0x2b;
        regs.ds = 0;
        regs.es = 0;
        regs.fs = 0;
        regs.gs = 0;
        stub::set_regs(pid, regs).map_err(eio)?;
        // SAFETY: pid is our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_SYSEMU, pid, 0, 0) } < 0 {
            return Err(eio(io::Error::last_os_error()));
        }
        let status = stub::wait(pid).map_err(eio)?;
        if !libc::WIFSTOPPED(status) {
            // The stub died (killed from outside).
            return Err(guest_sentry::errno::ESRCH);
        }
        *regs = stub::get_regs(pid).map_err(eio)?;
        let sig = libc::WSTOPSIG(status);
        Ok(match sig {
            s if s == libc::SIGTRAP | 0x80 => Event::Syscall,
            libc::SIGSEGV => {
                // SAFETY: siginfo_t is plain data; the kernel fills it.
                let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: pid is stopped in a signal-delivery stop.
                if unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si) } < 0 {
                    return Err(eio(io::Error::last_os_error()));
                }
                // SAFETY: for SIGSEGV the union holds the fault address.
                let addr = unsafe { si.si_addr() } as u64;
                // ptrace cannot tell the access kind: the memory manager decides from state.
                Event::Fault {
                    addr,
                    access: Access::NONE,
                }
            }
            libc::SIGBUS => Event::Exception {
                vector: 17,
                error_code: 0,
            },
            libc::SIGILL => Event::Exception {
                vector: 6,
                error_code: 0,
            },
            libc::SIGFPE => Event::Exception {
                vector: 0,
                error_code: 0,
            },
            libc::SIGTRAP => Event::Exception {
                vector: 3,
                error_code: 0,
            },
            // Anything else (a stop or signal from outside) is dropped; the Sentry decides.
            _ => Event::Interrupt,
        })
    }
}

impl Platform for PtracePlatform {
    type AddressSpace = PtraceAddressSpace;
    type Context = PtraceContext;

    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn new_address_space(&mut self) -> Result<PtraceAddressSpace, Errno> {
        let stub = Stub::spawn(self.memfd).map_err(eio)?;
        pin_together(stub.pid);
        Ok(PtraceAddressSpace {
            stub: Rc::new(stub),
        })
    }

    fn new_context(&mut self) -> Result<PtraceContext, Errno> {
        Ok(PtraceContext)
    }
}

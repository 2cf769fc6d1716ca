//! The stub process: a child of `vmm` whose address space holds nothing but one page of our
//! code (at [`STUB_ADDR`], above the app range) and the app's mappings of the memory file. It
//! keeps no file descriptor but the memory file, dies with `vmm` (`PR_SET_PDEATHSIG`,
//! `PTRACE_O_EXITKILL`), and starts stopped under ptrace, ready for its first instructions.
//!
//! The tracer makes the stub run host syscalls on the Sentry's behalf (mapping the memory file
//! at app addresses) by pointing it at the `syscall; int3` pair of the stub page.

use std::arch::global_asm;
use std::io;

use guest_sentry::abi::USER_TOP;
use guest_sentry::platform::UserRegs;

/// Where the stub page sits in every stub (just above the app range, below `TASK_SIZE`).
pub const STUB_ADDR: u64 = USER_TOP;
/// The fd number of the memory file inside the stub.
pub const STUB_MEMFD: i32 = 3;

global_asm!(
    r#"
    .section .text.vmm_stub, "ax"
    .balign 16
    .global vmm_stub_start
vmm_stub_start:
    // rdi = this page's address. Unmap everything below and above it (vmm's image, heap,
    // stacks, vdso), using no stack, then stop for the tracer.
    mov r12, rdi
    mov eax, 11
    xor edi, edi
    mov rsi, r12
    syscall
    mov eax, 11
    lea rdi, [r12 + 4096]
    mov rsi, 0x7ffffffff000
    sub rsi, rdi
    syscall
    int3
    .global vmm_stub_syscall
vmm_stub_syscall:
    syscall
    int3
    .global vmm_stub_end
vmm_stub_end:
    .text
"#
);

extern "C" {
    fn vmm_stub_start();
    fn vmm_stub_syscall();
    fn vmm_stub_end();
}

fn stub_code() -> (&'static [u8], u64) {
    let start = vmm_stub_start as *const () as usize;
    let end = vmm_stub_end as *const () as usize;
    let syscall = vmm_stub_syscall as *const () as usize;
    // SAFETY: the three symbols delimit one contiguous block of code in our text section.
    let code = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
    (code, (syscall - start) as u64)
}

pub(crate) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A stopped, traced stub process.
pub struct Stub {
    pub pid: libc::pid_t,
    syscall_ip: u64,
}

/// The signal that preempts a stub whose app has run [`TICK_MS`] of CPU time without a
/// syscall or fault (`ITIMER_VIRTUAL`: only the stub's own user time counts, so a sleeping or
/// parked stub is never woken by it). The platforms report it as [`Event::Interrupt`], which
/// lets the Sentry run its timers, deliver signals and switch tasks.
///
/// [`Event::Interrupt`]: guest_sentry::platform::Event::Interrupt
pub const TICK_SIGNAL: i32 = libc::SIGVTALRM;
pub const TICK_MS: i64 = 10;

/// Starts the preemption tick in this (stub) process.
///
/// # Safety
/// Only in a stub child.
pub(crate) unsafe fn start_ticks() {
    let every = libc::timeval {
        tv_sec: 0,
        tv_usec: TICK_MS * 1000,
    };
    let it = libc::itimerval {
        it_interval: every,
        it_value: every,
    };
    // SAFETY: a valid itimerval; no old value wanted.
    unsafe { libc::setitimer(libc::ITIMER_VIRTUAL, &it, std::ptr::null_mut()) };
}

/// Waits for `pid` to stop with anything but a preemption tick, which is dropped (the stub
/// goes on where it was): for stops the tracer caused itself.
pub fn wait_skipping_ticks(pid: libc::pid_t) -> io::Result<i32> {
    loop {
        let status = wait(pid)?;
        if libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == TICK_SIGNAL {
            // SAFETY: pid is our tracee, stopped.
            if unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
            continue;
        }
        return Ok(status);
    }
}

/// Waits for `pid` to stop; returns the raw wait status.
pub fn wait(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-parameter.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            return Ok(status);
        }
        if r < 0 && errno() != libc::EINTR {
            return Err(io::Error::last_os_error());
        }
    }
}

pub fn get_regs(pid: libc::pid_t) -> io::Result<UserRegs> {
    let mut regs = UserRegs::default();
    // SAFETY: UserRegs has the layout of `struct user_regs_struct`.
    if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut UserRegs) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(regs)
}

pub fn set_regs(pid: libc::pid_t, regs: &UserRegs) -> io::Result<()> {
    // SAFETY: UserRegs has the layout of `struct user_regs_struct`; the kernel validates it.
    if unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, regs as *const UserRegs) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Stub {
    /// Forks a stub holding `memfd` (as [`STUB_MEMFD`]) and nothing else, stopped and traced.
    pub fn spawn(memfd: i32) -> io::Result<Stub> {
        let (code, syscall_off) = stub_code();
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child only makes raw syscalls (async-signal-safe) and never returns into
        // Rust code that could touch state shared with the parent.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: in the fresh child; see `child`.
            unsafe { child(parent, memfd, code) }
        }
        let stub = Stub {
            pid,
            syscall_ip: STUB_ADDR + syscall_off,
        };
        let status = wait_skipping_ticks(pid)?;
        if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP {
            stub.kill();
            return Err(io::Error::other(format!(
                "stub did not start (wait status {status:#x})"
            )));
        }
        let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD;
        // SAFETY: pid is our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as libc::c_ulong) } < 0 {
            let e = io::Error::last_os_error();
            stub.kill();
            return Err(e);
        }
        Ok(stub)
    }

    /// Makes the stopped stub run syscall `nr` with `args`; returns its raw result.
    pub fn syscall(&self, nr: u64, args: [u64; 6]) -> io::Result<i64> {
        let mut r = get_regs(self.pid)?;
        r.rax = nr;
        r.orig_rax = u64::MAX; // not in a syscall: no restart processing
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        r.rip = self.syscall_ip;
        r.cs = 0x33; // the stub's code is 64-bit, whatever mode the app was in
        set_regs(self.pid, &r)?;
        // SAFETY: pid is our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_CONT, self.pid, 0, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let status = wait_skipping_ticks(self.pid)?;
        if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP {
            return Err(io::Error::other(format!(
                "stub syscall {nr}: unexpected wait status {status:#x}"
            )));
        }
        Ok(get_regs(self.pid)?.rax as i64)
    }

    pub fn kill(&self) {
        // SAFETY: our own child; reaping it leaves no zombie.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, libc::__WALL);
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.kill();
    }
}

extern "C" {
    /// glibc (2.35+): where this thread's rseq area sits relative to the thread pointer, and
    /// its size (0 when rseq is not registered).
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// Drops the rseq registration the child inherited from glibc: its area is about to be
/// unmapped, and the kernel would raise SIGSEGV when it next updates it.
///
/// # Safety
/// Only in the stub child (the thread's rseq area must never be used again).
pub(crate) unsafe fn unregister_rseq() {
    const RSEQ_FLAG_UNREGISTER: u64 = 1;
    const RSEQ_SIG: u64 = 0x5305_3053;
    // SAFETY: reading glibc's exported constants and the thread pointer has no side effects.
    unsafe {
        if __rseq_size == 0 {
            return;
        }
        let tp: u64;
        std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly));
        let area = tp.wrapping_add(__rseq_offset as u64);
        // glibc registers `struct rseq_area` (32 bytes); __rseq_size is the used part.
        for len in [32u64, __rseq_size as u64] {
            if libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0 {
                return;
            }
        }
    }
}

/// The forked child: tie its life to the parent, keep only the memory file, reset signal
/// state, install the vsyscall filter, ask to be traced, put the stub code at `STUB_ADDR`
/// and jump there.
///
/// # Safety
/// Only in the child right after `fork`.
unsafe fn child(parent: libc::pid_t, memfd: i32, code: &[u8]) -> ! {
    // SAFETY: raw syscalls only; any failure ends the child, which the parent sees.
    unsafe {
        child_prologue(parent, &[memfd]);
        // Default dispositions and an empty mask: the Sentry, not inherited state, decides.
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // The vsyscall page is emulated by the host without a syscall stop, but through
        // seccomp: trap it there (see `crate::ptrace`).
        let prog = crate::ptrace::vsyscall_filter();
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0u32,
                &fprog as *const libc::sock_fprog,
            ) != 0
        {
            libc::_exit(6);
        }
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
            libc::_exit(3);
        }
        // Traced from here: a tick is a stop the tracer drops, never a default action.
        start_ticks();
        child_map_code(code);
        let entry: extern "C" fn(u64) -> ! = std::mem::transmute(STUB_ADDR as usize);
        entry(STUB_ADDR)
    }
}

/// The common start of a stub child: die with the parent (and never outlive it unnoticed),
/// keep only `fds`, moved to 3, 4, ... (so `STUB_MEMFD` is the first), leave vmm's session and
/// drop the rseq registration inherited from glibc. Exits the child on failure.
///
/// # Safety
/// Only in a stub child right after `fork`.
pub(crate) unsafe fn child_prologue(parent: libc::pid_t, fds: &[i32]) {
    // SAFETY: raw syscalls in the fresh child.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
            libc::_exit(1);
        }
        // Move every kept fd out of the way first, so no dup2 below clobbers another one.
        let mut high = [0i32; 4];
        for (i, &fd) in fds.iter().enumerate() {
            high[i] = libc::fcntl(fd, libc::F_DUPFD, 16);
            if high[i] < 0 {
                libc::_exit(2);
            }
        }
        for (i, &fd) in high[..fds.len()].iter().enumerate() {
            if libc::dup2(fd, STUB_MEMFD + i as i32) < 0 {
                libc::_exit(2);
            }
        }
        let last = STUB_MEMFD as u32 + fds.len() as u32 - 1;
        libc::syscall(libc::SYS_close_range, 0u32, (STUB_MEMFD - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, last + 1, u32::MAX, 0u32);
        libc::setsid();
        unregister_rseq();
    }
}

/// Puts `code` at `STUB_ADDR`, read and execute only. Exits the child on failure.
///
/// # Safety
/// Only in a stub child (nothing else may live at `STUB_ADDR`).
pub(crate) unsafe fn child_map_code(code: &[u8]) {
    // SAFETY: a fresh private mapping at a fixed address nothing else uses.
    unsafe {
        let page = libc::mmap(
            STUB_ADDR as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        if page as u64 != STUB_ADDR || code.len() > 4096 {
            libc::_exit(4);
        }
        std::ptr::copy_nonoverlapping(code.as_ptr(), page as *mut u8, code.len());
        if libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC) != 0 {
            libc::_exit(5);
        }
    }
}

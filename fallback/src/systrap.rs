//! The systrap platform: each address space is a stub process whose seccomp filter traps
//! (`SECCOMP_RET_TRAP` → SIGSYS) every syscall not made from the stub's own code page. The
//! stub's signal handler (our code, in that page, on an alternate stack) publishes the event in
//! a page shared with the Sentry, wakes it (futex), and waits for the answer; the Sentry reads
//! and writes the app's registers directly in the signal frame, which lives in shared memory.
//! Faults (SIGSEGV, SIGBUS, ...) take the same path. The stub also runs the host syscalls the
//! Sentry needs in it (mmap of the memory file), on request, from the same handler.
//!
//! Patched syscall sites (see `guest_sentry::patch`) skip the signal: they jump to the stub's
//! fast entry, which saves the app's registers in the fast page, makes the same handoff, and
//! returns to the app by restoring them itself — no seccomp trap, signal frame or
//! `rt_sigreturn` (gVisor's systrap does the same).
//!
//! Layout of the stub's reserved range (above the app range, see `abi::USER_TOP`):
//! code page at `STUB_ADDR`, control page at `CTRL_ADDR`, alternate signal stack after it, then
//! the fast page (`FAST_ADDR`); all but the code are a second memfd that `vmm` maps too.

use std::arch::global_asm;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use guest_sentry::errno::{Errno, EIO, ENOMEM, ESRCH};
use guest_sentry::platform::{
    sigcontext_regs, Access, AddressSpace, Context, Event, Platform, UserRegs,
};

use crate::stub::{STUB_ADDR, STUB_MEMFD};

/// The control page (shared): see `Ctrl`.
pub const CTRL_ADDR: u64 = STUB_ADDR + 0x1000;
/// The alternate signal stack (shared), after the control page.
const ALTSTACK_ADDR: u64 = CTRL_ADDR + 0x1000;
const ALTSTACK_SIZE: u64 = 0x10000;
/// The fast page: the registers of an event that came through the fast entry, its FXSAVE
/// area, and the entry's own stack at the top.
const FAST_ADDR: u64 = ALTSTACK_ADDR + ALTSTACK_SIZE;
/// Size of the shared region (control page + stack + fast page).
const SHARED_SIZE: u64 = 0x1000 + ALTSTACK_SIZE + 0x1000;
/// End of the stub's range: everything from here to the top of the user range is unmapped.
const STUB_END: u64 = CTRL_ADDR + SHARED_SIZE;
/// Fast page offsets: the 18 registers in `sigcontext` order (r8 … rip, eflags) at 0, a flag
/// the Sentry sets when it changed the FXSAVE area, and the area itself (16-byte aligned).
const FAST_FX_DIRTY: usize = 144;
const FAST_FX: usize = 256;
/// The fd number of the control memfd inside the stub.
const STUB_CTRLFD: i32 = 4;
/// `sa_restorer` is valid (x86-64 signal frames need it).
const SA_RESTORER: u64 = 0x0400_0000;

/// `Ctrl::state` values. The side that stores one wakes the other; each waits while the value
/// it stored is still there.
const ST_RUNNING: u32 = 0;
/// Stub → Sentry: an event (signal) is in the control page.
const ST_EVENT: u32 = 1;
/// Sentry → stub: return to the app with the (possibly changed) signal frame.
const ST_RESUME: u32 = 2;
/// Sentry → stub: run the syscall in `req`.
const ST_SYSCALL: u32 = 3;
/// Stub → Sentry: `req_ret` holds the result.
const ST_SYSCALL_DONE: u32 = 4;
/// Sentry → stub: another task runs now; sleep at once instead of spinning (on a small host
/// the spinning stubs of waiting tasks would take CPU time from the one that runs).
const ST_PARK: u32 = 5;

/// The control page, as the stub's assembly sees it (offsets fixed below).
#[repr(C)]
struct Ctrl {
    state: AtomicU32, // 0
    signo: u32,       // 4
    si_code: i32,     // 8
    /// The event came through the fast entry: its registers are in the fast page, not in a
    /// signal frame.
    fast: u32, // 12
    si_addr: u64,     // 16
    si_syscall: u64,  // 24
    ucontext: u64,    // 32: stub address of the signal frame's ucontext
    fs_want: u64,     // 40
    fs_cur: u64,      // 48
    req: [u64; 7],    // 56: nr, args[6]
    req_ret: u64,     // 112
    gs_want: u64,     // 120
    gs_cur: u64,      // 128
    /// Set while the stub sleeps (or is about to) in FUTEX_WAIT: only then must it be woken.
    stub_sleeping: AtomicU32, // 136
    /// Likewise for the Sentry.
    sentry_sleeping: AtomicU32, // 140
    /// Queued mmap/munmap calls, run by the stub before it next returns to the app.
    queued: u32, // 144
    /// Set by the stub when a queued call failed.
    queue_failed: u32, // 148
    /// A preemption tick came while the stub itself ran (on a fast event): reported as an
    /// interrupt before the next fast return to the app.
    tick_pending: u32, // 152
    _pad2: u32,       // 156
    /// The CPU each side ran on when it last posted a state: a side that finds the other on
    /// its own CPU sleeps at once instead of spinning (spinning would only keep the other
    /// from running: co-located, a compute-bound program ran 6x slower).
    stub_cpu: u32, // 160
    sentry_cpu: u32,  // 164
    _pad3: [u64; 11], // 168
    queue: [[u64; 7]; QUEUE_LEN], // 256: nr, args[6] each
}

/// Syscalls served in this process, for `--exit-stats`: those that trapped (a seccomp signal)
/// and those that came through the fast entry of a patched site.
static TRAPPED_SYSCALLS: AtomicU64 = AtomicU64::new(0);
static FAST_SYSCALLS: AtomicU64 = AtomicU64::new(0);

/// (trapped, fast) syscalls served so far.
pub fn syscall_counts() -> (u64, u64) {
    (
        TRAPPED_SYSCALLS.load(Ordering::Relaxed),
        FAST_SYSCALLS.load(Ordering::Relaxed),
    )
}

/// How many address-space changes wait for the stub's next return to the app. Mapping and
/// unmapping are queued rather than run one round trip each: the app cannot run in between
/// (its stub is the one that runs them, first thing on the way back), so a fault costs one
/// round trip instead of two, and a fork's or exec's mappings ride along with the first resume.
const QUEUE_LEN: usize = 64;
const _: () = assert!(std::mem::size_of::<Ctrl>() <= 4096);

global_asm!(
    r#"
    .section .text.vmm_systrap, "ax"
    .balign 16
    .global vmm_systrap_start
vmm_systrap_start:
    // Entered once, from the child's set-up code, after the seccomp filter is installed.
    // Unmap everything but the stub range, then raise the first SIGSYS by hand: its frame is
    // where the Sentry writes the app's first registers.
    mov eax, 11
    xor edi, edi
    movabs rsi, {stub}
    syscall
    mov eax, 11
    movabs rdi, {stub_end}
    movabs rsi, 0x7ffffffff000 - {stub_end}
    syscall
    mov eax, 39
    syscall
    mov rdi, rax
    mov rsi, rax
    mov edx, 31
    mov eax, 234
    syscall
    ud2

    // sa_sigaction(signo, siginfo, ucontext), on the alternate stack, all signals blocked.
    .global vmm_systrap_handler
vmm_systrap_handler:
    // A tick that finds the stub's own code running (the fast path, which runs with signals
    // unblocked) is only noted: return through the restorer at once.
    cmp edi, {tick}
    jne 30f
    mov rax, [rdx + 40 + 16 * 8]    // uc_mcontext.gregs[REG_RIP]
    movabs rcx, {stub}
    sub rax, rcx
    cmp rax, 0x1000
    jae 30f
    movabs rax, {ctrl}
    mov dword ptr [rax + 152], 1
    ret
30: mov r13, rsp
    movabs r12, {ctrl}
    mov dword ptr [r12 + 12], 0     // not a fast event
    mov [r12 + 4], edi
    mov eax, [rsi + 8]
    mov [r12 + 8], eax
    mov rax, [rsi + 16]
    mov [r12 + 16], rax
    mov eax, [rsi + 24]
    mov [r12 + 24], rax
    mov [r12 + 32], rdx
    mov ebx, 1                      // post ST_EVENT
2:  // post: state = ebx (a full barrier), wake the Sentry only if it sleeps
    rdtscp                          // ecx = this CPU (Linux keeps it in TSC_AUX)
    and ecx, 0xfff
    mov [r12 + 160], ecx
    mov eax, ebx
    xchg [r12], eax
    cmp dword ptr [r12 + 140], 0
    je 3f
    mov eax, 202
    mov rdi, r12
    mov esi, 1                      // FUTEX_WAKE (shared)
    mov edx, 1
    syscall
3:  // wait while state == ebx: spin, then announce we sleep, re-check, sleep; at once when
    // the Sentry last ran on this CPU
    mov eax, [r12]
    cmp eax, ebx
    jne 5f
    rdtscp
    and ecx, 0xfff
    cmp ecx, [r12 + 164]
    je 11f
    mov ecx, 4000
4:  mov eax, [r12]
    cmp eax, ebx
    jne 5f
    pause
    dec ecx
    jnz 4b
11: mov eax, 1
    xchg [r12 + 136], eax
    mov eax, [r12]
    cmp eax, ebx
    jne 10f
    mov eax, 202
    mov rdi, r12
    xor esi, esi                    // FUTEX_WAIT (shared)
    mov edx, ebx
    xor r10d, r10d
    syscall
10: mov dword ptr [r12 + 136], 0
    jmp 3b
5:  cmp eax, 3
    je 6f
    cmp eax, 2
    je 7f
    mov ebx, eax                    // anything else: wait for it to change,
    cmp eax, 5                      // at once asleep for ST_PARK
    je 11b
    jmp 3b
6:  // ST_SYSCALL
    mov rax, [r12 + 56]
    mov rdi, [r12 + 64]
    mov rsi, [r12 + 72]
    mov rdx, [r12 + 80]
    mov r10, [r12 + 88]
    mov r8, [r12 + 96]
    mov r9, [r12 + 104]
    syscall
    mov [r12 + 112], rax
    mov ebx, 4                      // post ST_SYSCALL_DONE
    jmp 2b
7:  // ST_RESUME: run the queued mmap/munmap calls in order, apply FS/GS bases, then return
    // to the app through the frame.
    mov r14d, [r12 + 144]
    lea r15, [r12 + 256]
12: test r14d, r14d
    jz 13f
    mov rax, [r15]
    mov rdi, [r15 + 8]
    mov rsi, [r15 + 16]
    mov rdx, [r15 + 24]
    mov r10, [r15 + 32]
    mov r8, [r15 + 40]
    mov r9, [r15 + 48]
    syscall
    cmp rax, -4095
    jb 14f
    mov dword ptr [r12 + 148], 1    // a queued call failed
14: add r15, 56
    dec r14d
    jmp 12b
13: mov dword ptr [r12 + 144], 0
    mov rsi, [r12 + 40]
    cmp rsi, [r12 + 48]
    je 8f
    mov eax, 158
    mov edi, 0x1002                 // ARCH_SET_FS
    syscall
    mov rsi, [r12 + 40]
    mov [r12 + 48], rsi
8:  mov rsi, [r12 + 120]
    cmp rsi, [r12 + 128]
    je 9f
    mov eax, 158
    mov edi, 0x1001                 // ARCH_SET_GS
    syscall
    mov rsi, [r12 + 120]
    mov [r12 + 128], rsi
9:  cmp dword ptr [r12 + 12], 0
    jne 20f
    mov dword ptr [r12], 0          // ST_RUNNING
    lea rsp, [r13 + 8]
    .global vmm_systrap_restorer
vmm_systrap_restorer:
    mov eax, 15                     // rt_sigreturn
    syscall
    ud2

    // The fast entry: a patched syscall site jumped here (through its trampoline slot) with
    // the syscall number in rax and the return address in rcx; r11 is free (a syscall
    // clobbers both). Signals are not blocked here: a tick is only noted (see the handler).
    .global vmm_systrap_fast
vmm_systrap_fast:
    movabs r11, {fast}
    mov [r11], r8
    mov [r11 + 8], r9
    mov [r11 + 16], r10
    mov [r11 + 32], r12
    mov [r11 + 40], r13
    mov [r11 + 48], r14
    mov [r11 + 56], r15
    mov [r11 + 64], rdi
    mov [r11 + 72], rsi
    mov [r11 + 80], rbp
    mov [r11 + 88], rbx
    mov [r11 + 96], rdx
    mov [r11 + 104], rax
    mov [r11 + 112], rcx
    mov [r11 + 120], rsp
    mov [r11 + 128], rcx
    lea rsp, [r11 + 4096]
    pushfq
    pop rdx
    mov [r11 + 136], rdx
    mov [r11 + 24], rdx             // after a syscall r11 holds rflags
    fxsave64 [r11 + {fast_fx}]
    movabs r12, {ctrl}
    mov dword ptr [r12 + 4], 31     // SIGSYS
    mov dword ptr [r12 + 12], 1     // fast
    mov [r12 + 24], rax             // si_syscall
    mov ebx, 1                      // post ST_EVENT
    jmp 2b

20: // ST_RESUME of a fast event. A tick noted meanwhile is reported first, as an interrupt
    // at the registers the Sentry just set.
    cmp dword ptr [r12 + 152], 0
    je 21f
    mov dword ptr [r12 + 152], 0
    mov dword ptr [r12 + 4], {tick}
    mov ebx, 1
    jmp 2b
21: movabs r11, {fast}
    cmp dword ptr [r11 + {fast_fx_dirty}], 0
    je 22f
    mov dword ptr [r11 + {fast_fx_dirty}], 0
    fxrstor64 [r11 + {fast_fx}]
22: mov dword ptr [r12], 0          // ST_RUNNING
    lea rsp, [r11 + 4096]
    push qword ptr [r11 + 136]
    popfq
    mov r8, [r11]
    mov r9, [r11 + 8]
    mov r10, [r11 + 16]
    mov r12, [r11 + 32]
    mov r13, [r11 + 40]
    mov r14, [r11 + 48]
    mov r15, [r11 + 56]
    mov rdi, [r11 + 64]
    mov rsi, [r11 + 72]
    mov rbp, [r11 + 80]
    mov rbx, [r11 + 88]
    mov rdx, [r11 + 96]
    mov rax, [r11 + 104]
    mov rcx, [r11 + 112]
    mov rsp, [r11 + 120]
    mov r11, [r11 + 24]
    // rip from the fast page, addressed relative to this code (the page is at a fixed
    // distance from it): no register is left to hold it.
    jmp qword ptr [rip + vmm_systrap_start + ({fast} - {stub}) + 128]
    .global vmm_systrap_end
vmm_systrap_end:
    .text
"#,
    stub = const STUB_ADDR,
    ctrl = const CTRL_ADDR,
    fast = const FAST_ADDR,
    stub_end = const STUB_END,
    fast_fx = const FAST_FX,
    fast_fx_dirty = const FAST_FX_DIRTY,
    tick = const crate::stub::TICK_SIGNAL,
);

extern "C" {
    fn vmm_systrap_start();
    fn vmm_systrap_handler();
    fn vmm_systrap_restorer();
    fn vmm_systrap_fast();
    fn vmm_systrap_end();
}

struct Code {
    bytes: &'static [u8],
    handler: u64,
    restorer: u64,
    fast: u64,
}

fn code() -> Code {
    let start = vmm_systrap_start as *const () as usize;
    let end = vmm_systrap_end as *const () as usize;
    let off = |f: *const ()| STUB_ADDR + (f as usize - start) as u64;
    Code {
        // SAFETY: the symbols delimit one contiguous block of code in our text section.
        bytes: unsafe { std::slice::from_raw_parts(start as *const u8, end - start) },
        handler: off(vmm_systrap_handler as *const ()),
        restorer: off(vmm_systrap_restorer as *const ()),
        fast: off(vmm_systrap_fast as *const ()),
    }
}

/// The CPU this thread runs on (vDSO `getcpu`: no syscall).
fn this_cpu() -> u32 {
    // SAFETY: no preconditions; -1 (unknown) maps to a value no stub reports.
    unsafe { libc::sched_getcpu() as u32 }
}

fn errno() -> Errno {
    Errno(io::Error::last_os_error().raw_os_error().unwrap_or(EIO.0))
}

/// The stub process of one address space and our view of its shared region.
pub struct SystrapStub {
    pid: libc::pid_t,
    shared: *mut u8,
    _ctrl_fd: OwnedFd,
}

impl SystrapStub {
    fn ctrl(&self) -> &Ctrl {
        // SAFETY: the control page is mapped for the stub's lifetime; its fields are plain
        // integers, and the only one both sides write concurrently is the atomic `state`.
        unsafe { &*(self.shared as *const Ctrl) }
    }

    fn ctrl_mut(&self) -> *mut Ctrl {
        self.shared as *mut Ctrl
    }

    /// Stores `state` and wakes the stub if it sleeps. The SeqCst store and load pair with the
    /// stub's `xchg` on its flag and its re-check of the state, so no wake-up is lost.
    fn post(&self, state: u32) {
        // SAFETY: a plain store into the control page (the stub only reads it).
        unsafe { (*self.ctrl_mut()).sentry_cpu = this_cpu() };
        let c = self.ctrl();
        c.state.swap(state, Ordering::SeqCst);
        if c.stub_sleeping.load(Ordering::SeqCst) != 0 {
            // SAFETY: a futex wake on our shared mapping.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    &c.state as *const AtomicU32,
                    libc::FUTEX_WAKE,
                    1,
                )
            };
        }
    }

    /// Waits while the state is `posted`; returns the new state. Fails if the stub died.
    fn wait_change(&self, posted: u32) -> Result<u32, Errno> {
        let state = &self.ctrl().state;
        // Spinning pays only while the stub runs on another CPU.
        let spins = if self.ctrl().stub_cpu == this_cpu() {
            0
        } else {
            4000
        };
        for _ in 0..spins {
            let s = state.load(Ordering::Acquire);
            if s != posted {
                return Ok(s);
            }
            std::hint::spin_loop();
        }
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let sleeping = &self.ctrl().sentry_sleeping;
        loop {
            sleeping.swap(1, Ordering::SeqCst);
            let s = state.load(Ordering::SeqCst);
            if s != posted {
                sleeping.store(0, Ordering::SeqCst);
                return Ok(s);
            }
            // SAFETY: a futex wait on our shared mapping, with a timeout to notice a dead stub.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    state as *const AtomicU32,
                    libc::FUTEX_WAIT,
                    posted,
                    &timeout as *const libc::timespec,
                )
            };
            sleeping.store(0, Ordering::SeqCst);
            if state.load(Ordering::Acquire) == posted && !self.alive() {
                return Err(ESRCH);
            }
        }
    }

    fn alive(&self) -> bool {
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) == 0 }
    }

    /// Queues a call for the stub to run before it next returns to the app. The caller
    /// makes room first ([`Self::queue_full`], [`Self::flush`]).
    fn enqueue(&mut self, nr: i64, args: [u64; 6]) {
        let c = self.ctrl_mut();
        // SAFETY: the stub reads the queue only after ST_RESUME, which we have not posted
        // since it last emptied it; plain stores into our mapping of the control page.
        unsafe {
            let n = (*c).queued as usize;
            assert!(n < QUEUE_LEN, "systrap call queue overflow");
            (*c).queue[n][0] = nr as u64;
            (&mut (*c).queue)[n][1..].copy_from_slice(&args);
            (*c).queued = n as u32 + 1;
        }
    }

    fn queue_full(&self) -> bool {
        self.ctrl().queued as usize >= QUEUE_LEN
    }

    /// Runs the queued calls now, in order (the stub must be waiting in its handler).
    fn flush(&self) -> Result<(), Errno> {
        let c = self.ctrl_mut();
        // SAFETY: as in `queue`; the stub is waiting, so only we touch the queue.
        let calls: Vec<[u64; 7]> = unsafe {
            let n = (*c).queued as usize;
            (*c).queued = 0;
            (&(*c).queue)[..n].to_vec()
        };
        for call in calls {
            let mut args = [0u64; 6];
            args.copy_from_slice(&call[1..]);
            let r = self.syscall(call[0] as i64, args)?;
            if (-4095..0).contains(&r) {
                return Err(Errno(-r as i32));
            }
        }
        Ok(())
    }

    /// Whether a queued call failed in the stub (the address space no longer matches the
    /// Sentry's records: the task cannot go on).
    fn queue_failed(&self) -> bool {
        self.ctrl().queue_failed != 0
    }

    /// Runs a syscall in the stub (which must be waiting in its handler).
    fn syscall(&self, nr: i64, args: [u64; 6]) -> Result<i64, Errno> {
        // SAFETY: the stub only reads `req` after seeing ST_SYSCALL, which we store after.
        unsafe {
            let c = self.ctrl_mut();
            let req = &mut (*c).req;
            req[0] = nr as u64;
            req[1..].copy_from_slice(&args);
        }
        self.post(ST_SYSCALL);
        match self.wait_change(ST_SYSCALL)? {
            ST_SYSCALL_DONE => Ok(self.ctrl().req_ret as i64),
            _ => Err(EIO),
        }
    }

    /// The signal frame's FPU save area (its `fpregs`), in our mapping: at least the 512-byte
    /// FXSAVE part, and whether the kernel wrote it in XSAVE format (header after it).
    fn fpregs(&self) -> Result<(*mut u8, bool), Errno> {
        let uc = self.ucontext()?;
        // SAFETY: `uc` is a checked ucontext in the shared region; fpregs is at offset 224.
        let fp = unsafe { (uc.add(224) as *const u64).read_unaligned() };
        if fp < ALTSTACK_ADDR || fp + 576 > ALTSTACK_ADDR + ALTSTACK_SIZE {
            return Err(EIO);
        }
        // SAFETY: in range of the shared region, checked above.
        let p = unsafe { self.shared.add((fp - CTRL_ADDR) as usize) };
        // fpx_sw_bytes.magic1 at 464 says the XSAVE header follows the legacy area.
        // SAFETY: inside the checked 576 bytes.
        let xsave = unsafe { (p.add(464) as *const u32).read_unaligned() } == 0x4650_5853;
        Ok((p, xsave))
    }

    /// Whether the pending event came through the fast entry (registers in the fast page).
    fn fast(&self) -> bool {
        self.ctrl().fast != 0
    }

    /// The fast page, in our mapping.
    fn fast_page(&self) -> *mut u8 {
        // SAFETY: the fast page is the last page of the shared region.
        unsafe { self.shared.add((FAST_ADDR - CTRL_ADDR) as usize) }
    }

    /// Where the pending event's registers are, in `sigcontext` order: the signal frame's
    /// `gregs`, or the fast page.
    fn gregs(&self) -> Result<*mut u8, Errno> {
        if self.fast() {
            Ok(self.fast_page())
        } else {
            // SAFETY: `ucontext` checked the whole ucontext is in the shared region.
            Ok(unsafe { self.ucontext()?.add(GREGS) })
        }
    }

    /// The signal frame's ucontext, in our mapping.
    fn ucontext(&self) -> Result<*mut u8, Errno> {
        let uc = self.ctrl().ucontext;
        if uc < ALTSTACK_ADDR || uc + 512 > ALTSTACK_ADDR + ALTSTACK_SIZE {
            return Err(EIO);
        }
        // SAFETY: in range of the shared region, checked above.
        Ok(unsafe { self.shared.add((uc - CTRL_ADDR) as usize) })
    }
}

impl Drop for SystrapStub {
    fn drop(&mut self) {
        // SAFETY: our child; reap it so no zombie is left; then drop our mapping.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
            libc::munmap(self.shared.cast(), SHARED_SIZE as usize);
        }
    }
}

/// `ucontext_t` offsets (x86-64): `uc_mcontext.gregs` starts at 40, `uc_sigmask` at 296.
const GREGS: usize = 40;
const UC_SIGMASK: usize = 296;
/// gregs indices.
const G_R8: usize = 0;
const G_EFLAGS: usize = 17;
const G_ERR: usize = 19;
const G_TRAPNO: usize = 20;
/// The rflags bits the app may set (as Linux's sigreturn allows: CF PF AF ZF SF TF DF OF AC
/// NT... without NT), with IF and the always-one bit.
const USER_EFLAGS: u64 = 0x4_0dd5;

fn read_greg(gregs: *mut u8, i: usize) -> u64 {
    // SAFETY: `gregs` points at 18 or more registers inside the shared region (from `gregs`).
    unsafe { (gregs.add(8 * i) as *const u64).read_unaligned() }
}

fn write_greg(gregs: *mut u8, i: usize, v: u64) {
    // SAFETY: as in `read_greg`.
    unsafe { (gregs.add(8 * i) as *mut u64).write_unaligned(v) }
}

pub struct SystrapPlatform {
    memfd: i32,
}

impl SystrapPlatform {
    pub fn new(memfd: i32) -> Self {
        SystrapPlatform { memfd }
    }
}

pub struct SystrapAddressSpace {
    stub: SystrapStub,
    /// Whether the stub has reported its first (start-up) event yet.
    started: bool,
}

fn prot(a: Access) -> u64 {
    (a.read as u64) | (a.write as u64) << 1 | (a.execute as u64) << 2
}

impl SystrapAddressSpace {
    fn ensure_started(&mut self) -> Result<(), Errno> {
        if !self.started {
            match self.stub.wait_change(ST_RUNNING)? {
                ST_EVENT => self.started = true,
                _ => return Err(EIO),
            }
        }
        Ok(())
    }
}

impl SystrapAddressSpace {
    /// Queues `nr(args)` for the stub's next return to the app, first running the queue now
    /// if it is full.
    fn push(&mut self, nr: i64, args: [u64; 6]) -> Result<(), Errno> {
        if self.stub.queue_full() {
            self.ensure_started()?;
            self.stub.flush()?;
        }
        self.stub.enqueue(nr, args);
        Ok(())
    }
}

impl AddressSpace for SystrapAddressSpace {
    fn map_file(&mut self, addr: u64, offset: u64, len: u64, access: Access) -> Result<(), Errno> {
        if !access.any() {
            self.unmap(addr, len);
            return Ok(());
        }
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.push(
            libc::SYS_mmap,
            [addr, len, prot(access), flags, STUB_MEMFD as u64, offset],
        )
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        // A failure here (the stub died) surfaces at the next switch.
        let _ = self.push(libc::SYS_munmap, [addr, len, 0, 0, 0, 0]);
    }

    fn park(&mut self) {
        if self.started {
            self.stub.post(ST_PARK);
        }
    }

    fn syscall_entry(&self) -> Option<u64> {
        Some(code().fast)
    }
}

pub struct SystrapContext;

impl Context for SystrapContext {
    type AddressSpace = SystrapAddressSpace;

    fn fpu_state(&mut self, space: &mut SystrapAddressSpace) -> Result<[u8; 512], Errno> {
        space.ensure_started()?;
        let p = if space.stub.fast() {
            // SAFETY: the FXSAVE area lies inside the fast page.
            unsafe { space.stub.fast_page().add(FAST_FX) }
        } else {
            space.stub.fpregs()?.0
        };
        let mut fx = [0u8; 512];
        // SAFETY: 512 readable bytes (checked by `fpregs`).
        unsafe { core::ptr::copy_nonoverlapping(p, fx.as_mut_ptr(), 512) };
        Ok(fx)
    }

    fn set_fpu_state(
        &mut self,
        space: &mut SystrapAddressSpace,
        fx: &[u8; 512],
    ) -> Result<(), Errno> {
        space.ensure_started()?;
        if space.stub.fast() {
            let page = space.stub.fast_page();
            // SAFETY: the FXSAVE area and the flag lie inside the fast page; the stub loads
            // the area (FXRSTOR) on its way back when the flag is set.
            unsafe {
                core::ptr::copy_nonoverlapping(fx.as_ptr(), page.add(FAST_FX), 512);
                (page.add(FAST_FX_DIRTY) as *mut u32).write_volatile(1);
            }
            return Ok(());
        }
        let (p, xsave) = space.stub.fpregs()?;
        // SAFETY: as above; the stub's sigreturn loads this area. The software-reserved bytes
        // (464..512: the kernel's format marker) are kept, and with XSAVE format x87 and SSE
        // are marked present so they are loaded rather than reset.
        unsafe {
            core::ptr::copy_nonoverlapping(fx.as_ptr(), p, 464);
            if xsave {
                *p.add(512) |= 0b11;
            }
        }
        Ok(())
    }

    fn switch(
        &mut self,
        space: &mut SystrapAddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        space.ensure_started()?;
        let stub = &space.stub;
        let gregs = stub.gregs()?;
        // Registers into the frame. The kernel's sigreturn sanitizes eflags (and segments);
        // the fast return loads them with POPFQ, so keep to the bits the app may set.
        let mut r = *regs;
        for (i, slot) in sigcontext_regs(&mut r).into_iter().enumerate() {
            write_greg(gregs, G_R8 + i, *slot);
        }
        if stub.fast() {
            write_greg(gregs, G_EFLAGS, regs.eflags & USER_EFLAGS | 0x202);
        }
        // SAFETY: plain stores into the control page; the stub reads them after ST_RESUME.
        unsafe {
            (*stub.ctrl_mut()).fs_want = regs.fs_base;
            (*stub.ctrl_mut()).gs_want = regs.gs_base;
        }
        // The host signal mask the app runs with: nothing blocked (its own mask is the
        // Sentry's business), which also lets the preemption tick in after start-up.
        if !stub.fast() {
            let uc = stub.ucontext()?;
            // SAFETY: `uc` is inside the shared region (checked by `ucontext`); uc_sigmask is
            // at offset 296 of the x86-64 ucontext.
            unsafe { (uc.add(UC_SIGMASK) as *mut u64).write_unaligned(0) };
        }
        stub.post(ST_RESUME);
        // The stub stores RUNNING on its way back to the app, then EVENT at the next trap; a
        // fast round trip may skip RUNNING from our point of view.
        let mut s = stub.wait_change(ST_RESUME)?;
        if s == ST_RUNNING {
            s = stub.wait_change(ST_RUNNING)?;
        }
        if s != ST_EVENT {
            return Err(EIO);
        }
        if stub.queue_failed() {
            // The app's mappings no longer match the Sentry's records (mmap failed, e.g. at
            // the host's map count limit): it must not go on.
            return Err(ENOMEM);
        }
        let gregs = stub.gregs()?;
        let mut r = *regs;
        for (i, slot) in sigcontext_regs(&mut r).into_iter().enumerate() {
            *slot = read_greg(gregs, G_R8 + i);
        }
        *regs = r;
        let c = stub.ctrl();
        Ok(match c.signo as i32 {
            libc::SIGSYS => {
                regs.orig_rax = c.si_syscall;
                let counter = if stub.fast() {
                    &FAST_SYSCALLS
                } else {
                    &TRAPPED_SYSCALLS
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Event::Syscall
            }
            _ if stub.fast() => Event::Interrupt,
            libc::SIGSEGV => {
                let err = read_greg(gregs, G_ERR);
                let write = err & 2 != 0;
                let execute = err & 16 != 0;
                if read_greg(gregs, G_TRAPNO) == 14 {
                    Event::Fault {
                        addr: c.si_addr,
                        access: Access {
                            read: !write && !execute,
                            write,
                            execute,
                        },
                    }
                } else {
                    Event::Exception {
                        vector: read_greg(gregs, G_TRAPNO) as u8,
                        error_code: err,
                    }
                }
            }
            libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => Event::Exception {
                vector: read_greg(gregs, G_TRAPNO) as u8,
                error_code: read_greg(gregs, G_ERR),
            },
            _ => Event::Interrupt,
        })
    }
}

impl Platform for SystrapPlatform {
    type AddressSpace = SystrapAddressSpace;
    type Context = SystrapContext;

    fn name(&self) -> &'static str {
        "systrap"
    }

    fn new_address_space(&mut self) -> Result<SystrapAddressSpace, Errno> {
        Ok(SystrapAddressSpace {
            stub: spawn(self.memfd)?,
            started: false,
        })
    }

    fn new_context(&mut self) -> Result<SystrapContext, Errno> {
        Ok(SystrapContext)
    }
}

const FILTER_LEN: usize = 30;

/// The seccomp filter. Syscalls from anywhere but the stub's code page trap (SIGSYS: the app's
/// syscalls, served by the Sentry). Syscalls from the code page are the stub's own — but the
/// app could jump there, so only what the stub needs passes, with its arguments pinned:
/// `rt_sigreturn`, `futex`, `munmap`, `getpid`, `arch_prctl(ARCH_SET_FS|ARCH_SET_GS)`,
/// `mmap` of the memory file only, `tgkill(self, SIGSYS)`. Anything else from there kills the
/// stub. Built without allocating (it runs in the forked child, which knows its pid).
fn filter(pid: u32) -> [libc::sock_filter; FILTER_LEN] {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const TRAP: usize = 27;
    const ALLOW: usize = 28;
    const KILL: usize = 29;
    let lo = STUB_ADDR as u32;
    let hi = (STUB_ADDR >> 32) as u32;
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jge = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let arg = |i: u32| 16 + 8 * i; // low half of seccomp_data.args[i]
                                   // (code, k, jump-if-true target, jump-if-false target), targets as absolute indices.
    let prog: [(u16, u32, usize, usize); FILTER_LEN] = [
        (ld, 4, 0, 0),                     // 0: arch
        (jeq, AUDIT_ARCH_X86_64, 2, TRAP), // 1
        (ld, 12, 0, 0),                    // 2: instruction pointer, high half
        (jeq, hi, 4, TRAP),                // 3
        (ld, 8, 0, 0),                     // 4: low half
        (jge, lo + 4096, TRAP, 6),         // 5: past the code page
        (jge, lo, 7, TRAP),                // 6: inside it: the allowlist
        (ld, 0, 0, 0),                     // 7: syscall number
        (jeq, libc::SYS_rt_sigreturn as u32, ALLOW, 9),
        (jeq, libc::SYS_futex as u32, ALLOW, 10),
        (jeq, libc::SYS_munmap as u32, ALLOW, 11),
        (jeq, libc::SYS_getpid as u32, ALLOW, 12),
        (jeq, libc::SYS_arch_prctl as u32, 16, 13),
        (jeq, libc::SYS_mmap as u32, 19, 14),
        (jeq, libc::SYS_tgkill as u32, 23, KILL),
        (ret, libc::SECCOMP_RET_KILL_PROCESS, 0, 0), // 15: not reached
        (ld, arg(0), 0, 0),                          // 16: arch_prctl code
        (jeq, 0x1001, ALLOW, 18),
        (jeq, 0x1002, ALLOW, KILL),
        (ld, arg(4), 0, 0), // 19: mmap fd
        (jeq, STUB_MEMFD as u32, 21, KILL),
        (ld, arg(3), 0, 0), // 21: mmap flags
        (
            jeq,
            (libc::MAP_SHARED | libc::MAP_FIXED) as u32,
            ALLOW,
            KILL,
        ),
        (ld, arg(2), 0, 0), // 23: tgkill signal
        (jeq, libc::SIGSYS as u32, 25, KILL),
        (ld, arg(0), 0, 0), // 25: tgkill tgid
        (jeq, pid, ALLOW, KILL),
        (ret, libc::SECCOMP_RET_TRAP, 0, 0),         // 27
        (ret, libc::SECCOMP_RET_ALLOW, 0, 0),        // 28
        (ret, libc::SECCOMP_RET_KILL_PROCESS, 0, 0), // 29
    ];
    let mut out = [libc::sock_filter {
        code: 0,
        jt: 0,
        jf: 0,
        k: 0,
    }; FILTER_LEN];
    for (i, &(code, k, t, f)) in prog.iter().enumerate() {
        let jump = code == jeq || code == jge;
        let rel = |target: usize| if jump { (target - i - 1) as u8 } else { 0 };
        out[i] = libc::sock_filter {
            code,
            jt: rel(t),
            jf: rel(f),
            k,
        };
    }
    out
}

/// Forks a stub: keeps only the memory file and the control memfd, maps the code and shared
/// region, installs the handlers, the alternate stack and the seccomp filter, and starts.
fn spawn(memfd: i32) -> Result<SystrapStub, Errno> {
    let code = code();
    // SAFETY: static C string; fd checked.
    let cfd = unsafe { libc::memfd_create(c"vmm-systrap".as_ptr(), libc::MFD_CLOEXEC) };
    if cfd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh fd we own.
    let ctrl_fd = unsafe { OwnedFd::from_raw_fd(cfd) };
    // SAFETY: sizing and mapping our own memfd.
    let shared = unsafe {
        if libc::ftruncate(cfd, SHARED_SIZE as i64) < 0 {
            return Err(errno());
        }
        libc::mmap(
            std::ptr::null_mut(),
            SHARED_SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            cfd,
            0,
        )
    };
    if shared == libc::MAP_FAILED {
        return Err(errno());
    }
    // SAFETY: the control page starts zeroed; mark the FS/GS bases as unknown so the first
    // resume sets them.
    unsafe {
        let c = shared as *mut Ctrl;
        (*c).fs_cur = u64::MAX;
        (*c).gs_cur = u64::MAX;
        (*c).stub_cpu = u32::MAX;
        (*c).sentry_cpu = u32::MAX;
    }
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only makes raw syscalls, then jumps into the stub code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // SAFETY: our mapping.
        unsafe { libc::munmap(shared, SHARED_SIZE as usize) };
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: in the fresh child.
        unsafe { child(parent, memfd, ctrl_fd.as_raw_fd(), &code) }
    }
    Ok(SystrapStub {
        pid,
        shared: shared as *mut u8,
        _ctrl_fd: ctrl_fd,
    })
}

/// # Safety
/// Only in the child right after `fork`.
unsafe fn child(parent: libc::pid_t, memfd: i32, ctrlfd: i32, code: &Code) -> ! {
    // SAFETY: raw syscalls; any failure ends the child (the parent sees it die).
    unsafe {
        // The memory file becomes fd 3 (STUB_MEMFD), the control memfd fd 4 (STUB_CTRLFD).
        crate::stub::child_prologue(parent, &[memfd, ctrlfd]);
        crate::stub::child_map_code(code.bytes);
        let shared = libc::mmap(
            CTRL_ADDR as *mut libc::c_void,
            SHARED_SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
            STUB_CTRLFD,
            0,
        );
        if shared as u64 != CTRL_ADDR {
            libc::_exit(5);
        }
        let ss = libc::stack_t {
            ss_sp: ALTSTACK_ADDR as *mut libc::c_void,
            ss_flags: 0,
            ss_size: ALTSTACK_SIZE as usize,
        };
        if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
            libc::_exit(6);
        }
        // Every signal but the handled ones back to default; handlers run with all blocked.
        #[repr(C)]
        struct KSigaction {
            handler: u64,
            flags: u64,
            restorer: u64,
            mask: u64,
        }
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let handled = [
                libc::SIGSYS,
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGILL,
                libc::SIGFPE,
                libc::SIGTRAP,
                crate::stub::TICK_SIGNAL,
            ];
            let act = if handled.contains(&sig) {
                KSigaction {
                    handler: code.handler,
                    flags: (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | SA_RESTORER,
                    restorer: code.restorer,
                    mask: u64::MAX,
                }
            } else {
                KSigaction {
                    handler: 0,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                }
            };
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const KSigaction,
                0usize,
                8usize,
            );
        }
        // Only the preemption tick is blocked, until the Sentry first resumes the app (it
        // clears the mask in the frame): a tick must not find the stub before it has shed
        // vmm's address space.
        let tick_only: u64 = 1 << (crate::stub::TICK_SIGNAL - 1);
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &tick_only as *const u64,
            0usize,
            8usize,
        );
        crate::stub::start_ticks();
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            libc::_exit(7);
        }
        let prog = filter(libc::getpid() as u32);
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // From here on, only the stub page may make syscalls: jump there without another one.
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        ) != 0
        {
            libc::_exit(8);
        }
        let entry: extern "C" fn() -> ! = std::mem::transmute(STUB_ADDR as usize);
        entry()
    }
}

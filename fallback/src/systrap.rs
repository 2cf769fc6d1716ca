//! The systrap platform: each address space is a stub process whose seccomp filter traps
//! (`SECCOMP_RET_TRAP` → SIGSYS) every syscall not made from the stub's own code page. The
//! stub's signal handler (our code, in that page, on an alternate stack) publishes the event in
//! a page shared with the Sentry, wakes it (futex), and waits for the answer; the Sentry reads
//! and writes the app's registers directly in the signal frame, which lives in shared memory.
//! Faults (SIGSEGV, SIGBUS, ...) take the same path.
//!
//! Patched syscall sites (see `guest_sentry::patch`) skip the signal: they jump to the stub's
//! fast entry, which saves the app's registers in the fast page, makes the same handoff, and
//! returns to the app by restoring them itself — no seccomp trap, signal frame or
//! `rt_sigreturn` (gVisor's systrap does the same).
//!
//! # What the app can and cannot touch
//!
//! Everything the app thread can reach is hostile: the app may write every page mapped
//! writable in its process (the control page, the signal stack, the fast page) and may jump
//! into the stub's code page at any instruction with registers of its choice. So:
//!
//! - The Sentry reads each field of the control page once per event and checks it (the frame
//!   pointer, the FPU area pointer); nothing read there is used as an index or a count. The
//!   one count read from app-writable memory, the XSAVE size in a signal frame's fpstate, is
//!   believed only where the whole area it claims lies inside the signal stack.
//! - The app thread's seccomp filter lets through, from the code page, only `rt_sigreturn`,
//!   `futex` (wait/wake on the two words the handler waits on) and `arch_prctl(SET_FS|SET_GS)`:
//!   none of these can map, unmap or protect memory or reach the host.
//! - Address-space changes are the **mapper**'s: a second thread of the stub process (all
//!   signals blocked, no stack, code in the code page) that takes its orders from a ring the
//!   Sentry writes in the *orders* memfd, mapped read-only in the stub, and runs them with its
//!   own filter (mmap of the memory file, munmap, and `pwrite` of its progress). It reports how
//!   far it got by `pwrite`-ing an order's sequence number into the orders memfd's *done* page
//!   (also read-only in the stub): nothing the app can run can forge it. The handler returns
//!   to the app only once the mapper has done every order posted so far, so the app never runs
//!   with a mapping the Sentry has already dropped.
//! - A mapper `mmap` that fails (ENOMEM: the host's map count) unmaps the range instead (less
//!   access, never more) and is reported: the process gets SIGBUS at its next fault there. A
//!   failed `munmap` ends the stub (the process dies; nothing it held can leak).
//!
//! Layout of the stub's reserved range (above the app range, see `abi::USER_TOP`): code page
//! at `STUB_ADDR`, control page at `CTRL_ADDR`, alternate signal stack after it, then the fast
//! page (`FAST_ADDR`) — a memfd `vmm` maps too, writable in the stub — then the orders memfd:
//! its header, its ring and the done page (`ORDERS_ADDR`), read-only in the stub.
//!
//! # Extended (FPU/SSE/AVX) state of several contexts
//!
//! Contexts that take turns on one stub each keep their own XSAVE state ([`crate::xstate`]);
//! a switch by a context that is not the stub's current owner saves the live state into the
//! owner's buffer and loads its own. Where that state lives depends on the current event:
//!
//! - A trapped event (a signal): the kernel saved the whole state in the frame's fpstate
//!   (standard XSAVE format; its software-reserved bytes give the size, checked against the
//!   signal stack), and `rt_sigreturn` loads it: the Sentry copies it out and in there.
//! - A fast event: the fast entry keeps its cost down with `fxsave64` (legacy x87/SSE only);
//!   the YMM/ZMM/opmask state is still in the CPU, where the stub waiting in the handshake
//!   leaves it untouched. Only when the context changes does the Sentry ask for the rest
//!   (`ST_XSAVE`: the stub runs `xsave64` into the fast page and posts the event again: one
//!   more round trip), and a state it loads there is restored with `xrstor64` on the way back
//!   (`FAST_FX_DIRTY` = 2) instead of `fxrstor64` (1). The mask both use is the Sentry's,
//!   written once into the read-only orders header (the components of XCR0 that fit in the
//!   fast page, never AMX): an app that rewrote it could only make its own stub overrun its
//!   own pages. The size the Sentry copies is its own too (from CPUID), never the page's.
//!   An `xsave64` on every fast entry instead would make every patched syscall pay for the
//!   whole AVX-512 area (2.7 KB each way) to serve the rare thread switch.

use std::arch::global_asm;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use guest_sentry::errno::{Errno, EIO, ESRCH};
use guest_sentry::platform::{
    sigcontext_regs, Access, AddressSpace, Context, Event, Platform, UserRegs,
};

use crate::stub::{STUB_ADDR, STUB_MEMFD};
use crate::xstate::{self, Live, Owner, Saved, HEADER_END, LEGACY_MASK};

/// The control page (shared, writable by the app): see `Ctrl`.
pub const CTRL_ADDR: u64 = STUB_ADDR + 0x1000;
/// The alternate signal stack (shared), after the control page.
const ALTSTACK_ADDR: u64 = CTRL_ADDR + 0x1000;
const ALTSTACK_SIZE: u64 = 0x10000;
const ALTSTACK_END: u64 = ALTSTACK_ADDR + ALTSTACK_SIZE;
/// The fast page: the registers of an event that came through the fast entry, its FXSAVE
/// area, and the entry's own stack at the top.
const FAST_ADDR: u64 = ALTSTACK_END;
/// Size of the app-writable shared region (control page + stack + fast page).
const SHARED_SIZE: u64 = 0x1000 + ALTSTACK_SIZE + 0x1000;
/// The orders memfd, read-only in the stub: header page (the posted sequence number), ring
/// page (`QUEUE_LEN` orders), done page (written by the mapper with `pwrite` only).
pub const ORDERS_ADDR: u64 = CTRL_ADDR + SHARED_SIZE;
const ORDERS_SIZE: u64 = 0x3000;
const RING_OFF: u64 = 0x1000;
pub const DONE_OFF: u64 = 0x2000;
/// In the done page: the last order done, and the last order whose `mmap` failed.
const DONE_ADDR: u64 = ORDERS_ADDR + DONE_OFF;
pub const FAILED_OFF: u64 = DONE_OFF + 4;
/// End of the stub's range: everything from here to the top of the user range is unmapped.
const STUB_END: u64 = ORDERS_ADDR + ORDERS_SIZE;
const _: () = assert!(STUB_END <= 0x7fff_ffff_f000);
/// Fast page offsets: the 18 registers in `sigcontext` order (r8 … rip, eflags) at 0, a flag
/// the Sentry sets when it changed the FXSAVE/XSAVE area (1: load its legacy part with
/// `fxrstor64`, 2: all of it with `xrstor64`), and the area itself (64-byte aligned).
const FAST_FX_DIRTY: usize = 144;
const FAST_FX: usize = 256;
const _: () = assert!((FAST_ADDR as usize + FAST_FX).is_multiple_of(64));
/// The most the XSAVE area in the fast page may take: the entry's stack (a few words) keeps
/// the top 256 bytes.
const FAST_XSAVE_MAX: usize = 4096 - 256 - FAST_FX;
/// In the orders header (read-only in the stub): the XSAVE mask of the fast page's area.
const XMASK_OFF: u64 = 8;
/// The fd numbers inside the stub: the control memfd, the orders memfd.
const STUB_CTRLFD: i32 = 4;
pub const STUB_ORDERSFD: i32 = 5;
/// `sa_restorer` is valid (x86-64 signal frames need it).
const SA_RESTORER: u64 = 0x0400_0000;
/// The mapper thread: a thread of the stub process sharing everything.
pub const MAPPER_CLONE: u32 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u32;
/// Where the app thread's own filter (`sock_fprog` then the program) is put for the start code
/// to install: the bottom of the signal stack, used once before any app code runs.
const FPROG_ADDR: u64 = ALTSTACK_ADDR;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// `Ctrl::state` values. The side that stores one wakes the other; each waits while the value
/// it stored is still there.
const ST_RUNNING: u32 = 0;
/// Stub → Sentry: an event (signal) is in the control page.
const ST_EVENT: u32 = 1;
/// Sentry → stub: return to the app with the (possibly changed) signal frame, once the mapper
/// has run every order posted.
const ST_RESUME: u32 = 2;
/// Sentry → stub: another task runs now; sleep at once instead of spinning (on a small host
/// the spinning stubs of waiting tasks would take CPU time from the one that runs).
const ST_PARK: u32 = 5;
/// Sentry → stub, on a fast event only: save the whole extended state (still in the CPU) into
/// the fast page's area with `xsave64`, then post `ST_EVENT` again.
const ST_XSAVE: u32 = 6;

/// The control page, as the stub's assembly sees it (offsets fixed below). The app can write
/// all of it: the Sentry takes nothing here on trust.
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
    si_arch: u32,     // 56: AUDIT_ARCH_* of a trapped syscall
    _pad0: [u32; 15], // 60
    gs_want: u64,     // 120
    gs_cur: u64,      // 128
    /// Set while the stub sleeps (or is about to) in FUTEX_WAIT: only then must it be woken.
    stub_sleeping: AtomicU32, // 136
    /// Likewise for the Sentry.
    sentry_sleeping: AtomicU32, // 140
    _pad1: [u32; 2],  // 144
    /// A preemption tick came while the stub itself ran (on a fast event): reported as an
    /// interrupt before the next fast return to the app.
    tick_pending: u32, // 152
    _pad2: u32,       // 156
    /// The CPU each side ran on when it last posted a state: a side that finds the other on
    /// its own CPU sleeps at once instead of spinning (spinning would only keep the other
    /// from running: co-located, a compute-bound program ran 6x slower).
    stub_cpu: u32, // 160
    sentry_cpu: u32,  // 164
}
const _: () = assert!(std::mem::size_of::<Ctrl>() <= 4096);

/// One order in the ring (64 bytes): a syscall number, its arguments, and its sequence number
/// (what the mapper `pwrite`s into the done page once it and all before it are done).
#[repr(C)]
#[derive(Clone, Copy)]
struct Order {
    nr: u64,
    args: [u64; 6],
    seq: u32,
    _pad: u32,
}
const _: () = assert!(std::mem::size_of::<Order>() == 64);

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

/// How many address-space changes may wait for the mapper (a ring of one page of orders).
/// Mapping and unmapping are posted rather than run one round trip each: the app cannot run
/// before they are done (its handler waits for the mapper), so a fault costs one round trip,
/// and a fork's or exec's mappings ride along with the first resume.
const QUEUE_LEN: u32 = 64;
const _: () = assert!(QUEUE_LEN as u64 * 64 == 4096);

global_asm!(
    r#"
    .section .text.vmm_systrap, "ax"
    .balign 16
    .global vmm_systrap_start
vmm_systrap_start:
    // Entered once, from the child's set-up code, with the mapper's filter installed (it
    // allows what this start code needs) and every signal but the tick unblocked. Unmap
    // everything but the stub range, start the mapper thread (on no stack: it uses none),
    // install the app thread's own filter, then raise the first event by hand: its frame is
    // where the Sentry writes the app's first registers. The unmapping comes before the
    // mapper: it may run the Sentry's first orders at once, and a later unmap here would
    // undo them (the app then faulted on its first instruction, now and then).
    mov eax, 11
    xor edi, edi
    movabs rsi, {stub}
    syscall
    mov eax, 11
    movabs rdi, {stub_end}
    movabs rsi, 0x7ffffffff000 - {stub_end}
    syscall
    mov eax, 56                     // clone
    mov edi, {clone_flags}
    xor esi, esi
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    syscall
    test rax, rax
    jz 40f
    js 49f
    mov eax, 317                    // seccomp(SECCOMP_SET_MODE_FILTER, 0, fprog)
    mov edi, 1
    xor esi, esi
    movabs rdx, {fprog}
    syscall
    test rax, rax
    jnz 49f
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
    mov eax, [rsi + 28]
    mov [r12 + 56], eax             // si_arch
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
    movabs rdi, {ctrl}
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
    movabs rdi, {ctrl}
    xor esi, esi                    // FUTEX_WAIT (shared)
    mov edx, ebx
    xor r10d, r10d
    syscall
10: mov dword ptr [r12 + 136], 0
    jmp 3b
5:  cmp eax, 2
    je 7f
    cmp eax, {st_xsave}
    je 60f
    mov ebx, eax                    // anything else: wait for it to change,
    cmp eax, 5                      // at once asleep for ST_PARK
    je 11b
    jmp 3b
7:  // ST_RESUME: wait until the mapper has done every order the Sentry posted (both words
    // are read-only here: the app cannot shorten the wait), apply FS/GS bases, then return
    // to the app through the frame (or the fast page).
    movabs r14, {orders}
    movabs r15, {done}
    // No spinning here: the mapper needs a CPU, and on a small host this thread's would be
    // the one it gets.
15: mov edx, [r15]
    mov eax, edx
    sub eax, [r14]
    jns 13f
    mov eax, 202
    mov rdi, r15
    xor esi, esi                    // FUTEX_WAIT (shared) while done is unchanged
    xor r10d, r10d
    syscall
    jmp 15b
13: mov rsi, [r12 + 40]
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

    // The mapper thread: runs the Sentry's orders from the read-only ring, in order, and
    // reports each batch done by pwrite-ing the last order's sequence number (read from the
    // ring too) into the done page. It touches no writable memory and no stack.
40: mov eax, 14                     // rt_sigprocmask(SIG_SETMASK, all, NULL, 8)
    mov edi, 2
    lea rsi, [rip + 48f]
    xor edx, edx
    mov r10d, 8
    syscall
    movabs r14, {orders}
    xor r13d, r13d                  // r13d: the last order done
41: mov eax, [r14]                  // wait for orders past it
    cmp eax, r13d
    jne 42f
    mov eax, 202
    mov rdi, r14
    xor esi, esi                    // FUTEX_WAIT (shared) while nothing new is posted
    mov edx, r13d
    xor r10d, r10d
    syscall
    jmp 41b
42: mov r12d, [r14]
43: cmp r13d, r12d
    je 45f
    mov eax, r13d                   // the order with seq r13d + 1 is in slot r13d % QUEUE_LEN
    and eax, {qmask}
    shl eax, 6
    lea r15, [r14 + {ring_off} + rax]
    mov rax, [r15]
    mov rdi, [r15 + 8]
    mov rsi, [r15 + 16]
    mov rdx, [r15 + 24]
    mov r10, [r15 + 32]
    mov r8, [r15 + 40]
    mov r9, [r15 + 48]
    syscall
    cmp rax, -4095
    jae 46f
44: inc r13d
    jmp 43b
45: mov eax, r13d                   // report: pwrite(orders, &ring[done - 1].seq, 4, DONE)
    dec eax
    and eax, {qmask}
    shl eax, 6
    lea rsi, [r14 + {ring_off} + rax + 56]
    mov eax, 18
    mov edi, {ordersfd}
    mov edx, 4
    mov r10d, {done_off}
    syscall
    cmp rax, 4
    jne 49f
    mov eax, 202
    movabs rdi, {done}
    mov esi, 1                      // FUTEX_WAKE (shared) everyone waiting for it
    mov edx, 0x7fffffff
    syscall
    jmp 41b
46: // A call failed. A failed mmap may leave the old mapping in place: unmap the range
    // instead (less access, never more) and report it; if that fails too, or a munmap
    // failed, end the stub: nothing it still maps can be reached again.
    cmp qword ptr [r15], 9
    jne 49f
    mov eax, 11
    mov rdi, [r15 + 8]
    mov rsi, [r15 + 16]
    syscall
    test rax, rax
    jnz 49f
    lea rsi, [r15 + 56]
    mov eax, 18
    mov edi, {ordersfd}
    mov edx, 4
    mov r10d, {failed_off}
    syscall
    cmp rax, 4
    jne 49f
    jmp 44b
49: mov eax, 231                    // exit_group
    mov edi, 1
    syscall
    ud2
    .balign 8
48: .quad -1

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
    mov dword ptr [r12 + 56], {arch}
    mov ebx, 1                      // post ST_EVENT
    jmp 2b

60: // ST_XSAVE (asked on fast events): the app's extended state is still in the CPU. What
    // the Sentry left in the area to load is loaded first, as the return to the app would
    // (a legacy change, flag 1; or a whole state, flag 2, still pending where a tick was
    // reported before that return), then the whole state is saved over it, with the mask
    // from the read-only orders header; the event is posted again.
    movabs r11, {fast}
    movabs rcx, {orders}
    mov eax, [r11 + {fast_fx_dirty}]
    mov dword ptr [r11 + {fast_fx_dirty}], 0
    test eax, eax
    je 61f
    cmp eax, 1
    jne 62f
    fxrstor64 [r11 + {fast_fx}]
    jmp 61f
62: mov eax, [rcx + {xmask_off}]
    mov edx, [rcx + {xmask_off} + 4]
    xrstor64 [r11 + {fast_fx}]
61: mov eax, [rcx + {xmask_off}]
    mov edx, [rcx + {xmask_off} + 4]
    xsave64 [r11 + {fast_fx}]
    mov ebx, 1
    jmp 2b

20: // ST_RESUME of a fast event. A tick noted meanwhile is reported first, as an interrupt
    // at the registers the Sentry just set (the FPU area and its flag stay pending).
    cmp dword ptr [r12 + 152], 0
    je 21f
    mov dword ptr [r12 + 152], 0
    mov dword ptr [r12 + 4], {tick}
    mov ebx, 1
    jmp 2b
21: movabs r11, {fast}
    mov eax, [r11 + {fast_fx_dirty}]
    test eax, eax
    je 22f
    mov dword ptr [r11 + {fast_fx_dirty}], 0
    cmp eax, 1
    jne 23f
    fxrstor64 [r11 + {fast_fx}]
    jmp 22f
23: movabs rcx, {orders}             // a whole state the Sentry loaded (another context's)
    mov eax, [rcx + {xmask_off}]
    mov edx, [rcx + {xmask_off} + 4]
    xrstor64 [r11 + {fast_fx}]
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
    orders = const ORDERS_ADDR,
    done = const DONE_ADDR,
    stub_end = const STUB_END,
    fast_fx = const FAST_FX,
    fast_fx_dirty = const FAST_FX_DIRTY,
    xmask_off = const XMASK_OFF,
    st_xsave = const ST_XSAVE,
    fprog = const FPROG_ADDR,
    clone_flags = const MAPPER_CLONE,
    qmask = const QUEUE_LEN - 1,
    ring_off = const RING_OFF,
    done_off = const DONE_OFF,
    failed_off = const FAILED_OFF,
    ordersfd = const STUB_ORDERSFD,
    arch = const AUDIT_ARCH_X86_64,
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

/// What the stub published about one event, read once from the (app-writable) control page:
/// every later use works on this copy.
#[derive(Clone, Copy, Default)]
struct Published {
    signo: u32,
    fast: bool,
    si_addr: u64,
    si_syscall: u64,
    si_arch: u32,
    ucontext: u64,
}

/// The stub process of one address space and our view of its shared regions.
pub struct SystrapStub {
    pid: libc::pid_t,
    /// The app-writable region (control page, signal stack, fast page), in our mapping.
    shared: *mut u8,
    /// The orders memfd (header, ring, done page), in our mapping.
    orders: *mut u8,
    _ctrl_fd: OwnedFd,
    _orders_fd: OwnedFd,
    /// The last order posted, and the last one the mapper was woken for.
    seq: u32,
    woken: u32,
    /// The last failed `mmap` already reported.
    failed_seen: u32,
    /// The stub process is gone (reaped): its pid must not be signalled again.
    reaped: std::cell::Cell<bool>,
    /// The current event, as published.
    ev: Published,
    /// The XSAVE mask of the fast page's area (0: no XSAVE, legacy state only) and the bytes
    /// it takes there (the Sentry's own figures: the page's copy of the mask is not read).
    fast_mask: u64,
    fast_size: usize,
}

impl SystrapStub {
    fn ctrl(&self) -> &Ctrl {
        // SAFETY: the control page is mapped for the stub's lifetime; every field is read as a
        // plain integer (any bit pattern is valid) and the ones both sides write concurrently
        // are atomics.
        unsafe { &*(self.shared as *const Ctrl) }
    }

    fn ctrl_mut(&self) -> *mut Ctrl {
        self.shared as *mut Ctrl
    }

    /// An aligned u32 word of the orders memfd, in our mapping.
    fn orders_word(&self, off: u64) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off < ORDERS_SIZE);
        // SAFETY: inside our mapping of the orders memfd, 4-byte aligned; the stub only reads
        // it and the mapper changes it with pwrite, so it is accessed atomically.
        unsafe { &*(self.orders.add(off as usize) as *const AtomicU32) }
    }

    /// The last order the mapper reports done (only it writes this word, with `pwrite`).
    fn done(&self) -> u32 {
        self.orders_word(DONE_OFF).load(Ordering::Acquire)
    }

    /// Orders posted but not yet done.
    fn pending(&self) -> u32 {
        self.seq.wrapping_sub(self.done())
    }

    /// Stores `state` and wakes the stub if it sleeps. The SeqCst store and load pair with the
    /// stub's `xchg` on its flag and its re-check of the state, so no wake-up is lost.
    fn post(&mut self, state: u32) {
        self.wake_mapper();
        // SAFETY: a plain store into the control page.
        unsafe { std::ptr::addr_of_mut!((*self.ctrl_mut()).sentry_cpu).write_volatile(this_cpu()) };
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

    /// Wakes the mapper if orders were posted since it was last woken.
    fn wake_mapper(&mut self) {
        if self.woken == self.seq {
            return;
        }
        self.woken = self.seq;
        let word = self.orders_word(0);
        // SAFETY: a futex wake on our mapping of the orders header (shared: the key is the
        // memfd page, which the mapper waits on through its own mapping).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word as *const AtomicU32,
                libc::FUTEX_WAKE,
                1,
            )
        };
    }

    /// Waits while the state is `posted`; returns the new state. Fails if the stub died.
    fn wait_change(&mut self, posted: u32) -> Result<u32, Errno> {
        if self.reaped.get() {
            return Err(ESRCH);
        }
        let state = &self.ctrl().state;
        // Spinning pays only while the stub runs on another CPU.
        // SAFETY: a plain read of the control page.
        let stub_cpu = unsafe { std::ptr::addr_of!((*self.ctrl_mut()).stub_cpu).read_volatile() };
        let spins = if stub_cpu == this_cpu() { 0 } else { 4000 };
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

    /// Whether the stub process still runs (it is reaped once it is found dead).
    fn alive(&self) -> bool {
        if self.reaped.get() {
            return false;
        }
        let mut status = 0;
        // SAFETY: our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r == 0 {
            return true;
        }
        self.reaped.set(true);
        false
    }

    /// Kills the stub and reaps it: once this returns, nothing it mapped can be reached.
    fn kill(&mut self) {
        if self.reaped.get() {
            return;
        }
        // SAFETY: our child, not yet reaped (so the pid is still ours).
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
        self.reaped.set(true);
    }

    /// Posts `nr(args)` for the mapper, first waiting for room in the ring.
    fn enqueue(&mut self, nr: i64, args: [u64; 6]) -> Result<(), Errno> {
        if self.pending() >= QUEUE_LEN {
            self.flush()?;
        }
        let seq = self.seq.wrapping_add(1);
        let slot = (self.seq % QUEUE_LEN) as usize;
        let order = Order {
            nr: nr as u64,
            args,
            seq,
            _pad: 0,
        };
        // SAFETY: the slot lies in the ring page of our mapping; the mapper reads it only after
        // the header says `seq`, stored below, and has finished with its previous order (the
        // ring has room: at most QUEUE_LEN orders are pending).
        unsafe {
            (self.orders.add(RING_OFF as usize) as *mut Order)
                .add(slot)
                .write_volatile(order)
        };
        self.seq = seq;
        self.orders_word(0).store(seq, Ordering::Release);
        Ok(())
    }

    /// Waits until the mapper has done every order posted.
    fn flush(&mut self) -> Result<(), Errno> {
        self.wake_mapper();
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let mut spins = 4000;
        loop {
            let done = self.done();
            if self.seq.wrapping_sub(done) == 0 {
                return Ok(());
            }
            if spins > 0 {
                spins -= 1;
                std::hint::spin_loop();
                continue;
            }
            let word = self.orders_word(DONE_OFF);
            // SAFETY: a futex wait on our mapping of the done page (the mapper wakes it after
            // each pwrite), with a timeout to notice a dead stub.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word as *const AtomicU32,
                    libc::FUTEX_WAIT,
                    done,
                    &timeout as *const libc::timespec,
                )
            };
            if self.done() == done && !self.alive() {
                return Err(ESRCH);
            }
        }
    }

    /// Whether the mapper reported a failed `mmap` since we last asked (its range is then
    /// unmapped: the app faults there).
    fn take_failure(&mut self) -> bool {
        let f = self.orders_word(FAILED_OFF).load(Ordering::Acquire);
        if f == self.failed_seen {
            return false;
        }
        self.failed_seen = f;
        true
    }

    /// Reads the event the stub published, once.
    fn read_event(&mut self) {
        let c = self.ctrl_mut();
        // SAFETY: plain reads of the control page; any value is acceptable (checked at use).
        self.ev = unsafe {
            Published {
                signo: std::ptr::addr_of!((*c).signo).read_volatile(),
                fast: std::ptr::addr_of!((*c).fast).read_volatile() != 0,
                si_addr: std::ptr::addr_of!((*c).si_addr).read_volatile(),
                si_syscall: std::ptr::addr_of!((*c).si_syscall).read_volatile(),
                si_arch: std::ptr::addr_of!((*c).si_arch).read_volatile(),
                ucontext: std::ptr::addr_of!((*c).ucontext).read_volatile(),
            }
        };
    }

    /// `[addr, addr + len)` of the signal stack, in our mapping, or EIO if it is not inside.
    fn in_stack(&self, addr: u64, len: u64) -> Result<*mut u8, Errno> {
        if addr < ALTSTACK_ADDR || addr > ALTSTACK_END - len {
            return Err(EIO);
        }
        // SAFETY: in range of the shared region, checked above.
        Ok(unsafe { self.shared.add((addr - CTRL_ADDR) as usize) })
    }

    /// The signal frame's fpstate, in our mapping: its address, the bytes of it the kernel's
    /// XSAVE image takes (512 where it is in FXSAVE format, or its size words do not fit the
    /// signal stack), and the components `rt_sigreturn` may load from it.
    fn frame_xstate(&self) -> Result<(*mut u8, usize, u64), Errno> {
        let uc = self.ucontext()?;
        // SAFETY: `uc` is a checked ucontext in the shared region; fpregs is at offset 224.
        let fp = unsafe { (uc.add(224) as *const u64).read_unaligned() };
        let p = self.in_stack(fp, HEADER_END as u64)?;
        // struct _fpx_sw_bytes at 464: magic1, extended_size, xfeatures, xstate_size.
        // SAFETY: inside the checked 576 bytes.
        let (magic, feats, size) = unsafe {
            (
                (p.add(464) as *const u32).read_unaligned(),
                (p.add(472) as *const u64).read_unaligned(),
                (p.add(480) as *const u32).read_unaligned() as usize,
            )
        };
        if magic != 0x4650_5853 || !(HEADER_END..=1 << 16).contains(&size) {
            return Ok((p, 512, LEGACY_MASK));
        }
        match self.in_stack(fp, size as u64) {
            Ok(p) => Ok((p, size, feats & xstate::layout().xcr0)),
            Err(_) => Ok((p, 512, LEGACY_MASK)),
        }
    }

    /// The fast page, in our mapping.
    fn fast_page(&self) -> *mut u8 {
        // SAFETY: the fast page is the last page of the shared region.
        unsafe { self.shared.add((FAST_ADDR - CTRL_ADDR) as usize) }
    }

    /// Where the pending event's registers are, in `sigcontext` order: the signal frame's
    /// `gregs`, or the fast page.
    fn gregs(&self) -> Result<*mut u8, Errno> {
        if self.ev.fast {
            Ok(self.fast_page())
        } else {
            // SAFETY: `ucontext` checked the whole ucontext is in the shared region.
            Ok(unsafe { self.ucontext()?.add(GREGS) })
        }
    }

    /// The signal frame's ucontext, in our mapping.
    fn ucontext(&self) -> Result<*mut u8, Errno> {
        self.in_stack(self.ev.ucontext, 512)
    }
}

/// Copies `len` bytes out of the shared region.
///
/// # Safety
/// `[p, p + len)` lies inside our mapping of the shared region.
unsafe fn read_shared(p: *const u8, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    // SAFETY: the caller vouches for the source; the stub's threads do not write it meanwhile
    // (the app thread waits in the handshake), and any bytes are acceptable.
    unsafe { std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), len) };
    v
}

/// Loads the image `img` into the XSAVE area of `len` bytes at `p` (in the shared region),
/// keeping the area's own software-reserved bytes (see [`xstate::copy_image`]).
///
/// # Safety
/// As for [`read_shared`].
unsafe fn load_shared(p: *mut u8, len: usize, mask: u64, img: &[u8]) {
    // SAFETY: the caller's.
    let mut area = unsafe { read_shared(p, len) };
    xstate::copy_image(&mut area, mask, img);
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(area.as_ptr(), p, len) };
}

/// The stub's live extended state at its current event (see the module doc).
impl Live for SystrapStub {
    fn save_live(&mut self) -> Result<Vec<u8>, Errno> {
        if self.ev.fast {
            if self.fast_mask != 0 {
                self.post(ST_XSAVE);
                if self.wait_change(ST_XSAVE)? != ST_EVENT {
                    return Err(EIO);
                }
            }
            // SAFETY: the area (fast_size bytes, checked at spawn) lies inside the fast page.
            return Ok(unsafe { read_shared(self.fast_page().add(FAST_FX), self.fast_size) });
        }
        let (p, len, _) = self.frame_xstate()?;
        // SAFETY: `frame_xstate` checked `len` bytes at `p` are in the signal stack.
        Ok(unsafe { read_shared(p, len) })
    }

    fn load_live(&mut self, img: &[u8], _fresh: bool) -> Result<(), Errno> {
        if self.ev.fast {
            let page = self.fast_page();
            // SAFETY: as in `save_live`; the stub restores the area on its way back to the
            // app: all of it (XRSTOR, flag 2) where it has XSAVE, else its legacy part.
            unsafe {
                load_shared(page.add(FAST_FX), self.fast_size, self.fast_mask, img);
                let how = if self.fast_mask != 0 { 2 } else { 1 };
                (page.add(FAST_FX_DIRTY) as *mut u32).write_volatile(how);
            }
            return Ok(());
        }
        let (p, len, mask) = self.frame_xstate()?;
        // SAFETY: as in `save_live`; the stub's `rt_sigreturn` loads the frame's state.
        unsafe { load_shared(p, len, mask, img) };
        Ok(())
    }
}

/// The fast page's XSAVE mask and area size: the components of XCR0 that fit (all of
/// AVX-512 does: 2.7 KB), never AMX (see [`xstate::AMX_MASK`]).
fn fast_xsave() -> (u64, usize) {
    let l = xstate::layout();
    if l.xcr0 == 0 {
        return (0, 512);
    }
    let mask = l.xcr0 & !xstate::AMX_MASK & l.within(FAST_XSAVE_MAX);
    let size = l.size(mask);
    assert!(size <= FAST_XSAVE_MAX);
    (mask, size)
}

impl Drop for SystrapStub {
    fn drop(&mut self) {
        self.kill();
        // SAFETY: our mappings, no longer used.
        unsafe {
            libc::munmap(self.shared.cast(), SHARED_SIZE as usize);
            libc::munmap(self.orders.cast(), ORDERS_SIZE as usize);
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
    // SAFETY: `gregs` points at 23 or more registers inside the shared region (from `gregs`).
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
    /// Whose extended state is live in the stub.
    fpu_owner: Owner,
    /// Whether the stub has reported its first (start-up) event yet.
    started: bool,
    /// The stub is beyond use (it died, or the app broke its frame or handoff): it has been
    /// killed; the switch that found it reported a fault, every later one fails.
    broken: bool,
    /// The last `start` could not hand the app over: `finish` breaks the stub.
    start_failed: bool,
}

fn prot(a: Access) -> u64 {
    (a.read as u64) | (a.write as u64) << 1 | (a.execute as u64) << 2
}

/// What a broken stub reports once: a SIGSEGV, which ends the process as the same attempt ends
/// it natively (the stub range is unmapped there). If the process has a handler, the next
/// switch fails, and the Sentry kills the process.
const BROKEN: Event = Event::Exception {
    vector: 13,
    error_code: 0,
};

impl SystrapAddressSpace {
    fn ensure_started(&mut self) -> Result<(), Errno> {
        if !self.started {
            match self.stub.wait_change(ST_RUNNING)? {
                ST_EVENT => {
                    self.stub.read_event();
                    self.started = true
                }
                _ => return Err(EIO),
            }
        }
        Ok(())
    }

    /// The app broke its stub (or the stub died): kill it, so nothing it still maps can be
    /// reached, and report the process's fatal fault from now on.
    fn break_stub(&mut self) -> Event {
        self.stub.kill();
        self.broken = true;
        BROKEN
    }
}

impl AddressSpace for SystrapAddressSpace {
    fn map_file(&mut self, addr: u64, offset: u64, len: u64, access: Access) -> Result<(), Errno> {
        if !access.any() {
            self.unmap(addr, len);
            return Ok(());
        }
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.stub.enqueue(
            libc::SYS_mmap,
            [addr, len, prot(access), flags, STUB_MEMFD as u64, offset],
        )
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        // A failure here (the stub died, so nothing is mapped any more) surfaces at the next
        // switch.
        let _ = self.stub.enqueue(libc::SYS_munmap, [addr, len, 0, 0, 0, 0]);
    }

    fn park(&mut self) {
        if self.started && !self.broken {
            self.stub.post(ST_PARK);
        }
    }

    fn syscall_entry(&self) -> Option<u64> {
        Some(code().fast)
    }

    const PATCHES_SITES: bool = true;

    fn event_ready(&self) -> bool {
        self.broken
            || self.start_failed
            || self.stub.reaped.get()
            || self.stub.ctrl().state.load(Ordering::Acquire) == ST_EVENT
    }

    fn kick(&self) {
        if !self.stub.reaped.get() {
            // A tick now: the app thread's handler reports it as an interrupt (the mapper
            // thread blocks every signal, so the process-directed signal reaches the app's).
            // SAFETY: our child, not yet reaped (so the pid is still ours).
            unsafe { libc::kill(self.stub.pid, crate::stub::TICK_SIGNAL) };
        }
    }

    fn wait_any(spaces: &[&Self], timeout_ns: u64) -> Option<usize> {
        let ready = || spaces.iter().position(|s| s.event_ready());
        // Spin a little first (a syscall's round trip is a few microseconds), unless a stub
        // runs on this CPU: spinning would only keep it from running.
        let cpu = this_cpu();
        let near = spaces.iter().any(|s| {
            // SAFETY: a plain read of the control page.
            unsafe { std::ptr::addr_of!((*s.stub.ctrl_mut()).stub_cpu).read_volatile() == cpu }
        });
        for _ in 0..if near { 0 } else { 4000 } {
            if let Some(i) = ready() {
                return Some(i);
            }
            std::hint::spin_loop();
        }
        let deadline = now_ns().saturating_add(timeout_ns);
        loop {
            // Announce that we sleep before the last look (pairs with the stub's xchg of the
            // state and its read of the flag: no wake-up is lost), then sleep on every
            // state word at once.
            for s in spaces {
                s.stub.ctrl().sentry_sleeping.swap(1, Ordering::SeqCst);
            }
            let found = ready();
            if found.is_none() {
                let waiters: Vec<FutexWaitv> = spaces
                    .iter()
                    .take(FUTEX_WAITV_MAX)
                    .map(|s| {
                        let state = &s.stub.ctrl().state;
                        FutexWaitv {
                            val: state.load(Ordering::SeqCst) as u64,
                            uaddr: state as *const AtomicU32 as u64,
                            flags: FUTEX2_SIZE_U32,
                            reserved: 0,
                        }
                    })
                    .collect();
                // Wake at the deadline, or every 50 ms to notice a stub that died.
                let until = deadline.min(now_ns().saturating_add(50_000_000));
                let ts = libc::timespec {
                    tv_sec: (until / 1_000_000_000) as libc::time_t,
                    tv_nsec: (until % 1_000_000_000) as libc::c_long,
                };
                // SAFETY: `waiters` is a valid array of futex_waitv for the call; each
                // address is a state word of a control page mapped while its stub lives
                // (every space is borrowed for the call); the timeout is a valid absolute
                // CLOCK_MONOTONIC time.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex_waitv,
                        waiters.as_ptr(),
                        waiters.len() as libc::c_uint,
                        0,
                        &ts as *const libc::timespec,
                        libc::CLOCK_MONOTONIC,
                    )
                };
            }
            for s in spaces {
                s.stub.ctrl().sentry_sleeping.store(0, Ordering::SeqCst);
            }
            if let Some(i) = found.or_else(ready) {
                return Some(i);
            }
            // A stub that died never posts: its `finish` reports it.
            if let Some(i) = spaces.iter().position(|s| !s.stub.alive()) {
                return Some(i);
            }
            if now_ns() >= deadline {
                return None;
            }
        }
    }
}

/// `struct futex_waitv` (Linux 5.16).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

const FUTEX2_SIZE_U32: u32 = 2;
/// The most words one futex_waitv waits on.
const FUTEX_WAITV_MAX: usize = 128;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub struct SystrapContext {
    /// Its extended state while another context's is live in the stub.
    fpu: Saved,
}

impl Context for SystrapContext {
    type AddressSpace = SystrapAddressSpace;

    fn fpu_state(&mut self, space: &mut SystrapAddressSpace) -> Result<Vec<u8>, Errno> {
        let mask = fast_xsave().0;
        if space.broken {
            return Ok(xstate::export(&xstate::initial_legacy(), mask));
        }
        if !self.fpu.owns(&space.fpu_owner) {
            return Ok(xstate::export(&self.fpu.image(), mask));
        }
        space.ensure_started()?;
        let live = space.stub.save_live()?;
        Ok(xstate::export(&live, mask))
    }

    fn set_fpu_state(&mut self, space: &mut SystrapAddressSpace, img: &[u8]) -> Result<(), Errno> {
        xstate::check_len(img, fast_xsave().0)?;
        if space.broken {
            return Ok(());
        }
        if !self.fpu.owns(&space.fpu_owner) {
            // Another context's state is live (the Sentry sets a new thread's from its
            // parent's): change only this one's saved copy.
            self.fpu.set_image(img);
            return Ok(());
        }
        space.ensure_started()?;
        // Into the fast page (the stub's XRSTOR on its way back) or the signal frame its
        // rt_sigreturn loads.
        space.stub.load_live(img, false)
    }

    fn xstate_layout(&self) -> (u64, usize) {
        xstate::layout_for(fast_xsave().0)
    }

    fn switch(
        &mut self,
        space: &mut SystrapAddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        self.start(space, regs)?;
        self.finish(space, regs)
    }

    fn start(&mut self, space: &mut SystrapAddressSpace, regs: &UserRegs) -> Result<(), Errno> {
        if space.broken {
            // The fault reported already did not end the process (it has a handler): the
            // Sentry kills it now ("lost its platform context").
            return Err(ESRCH);
        }
        // A stub that never started is the platform's failure, not the app's.
        space.ensure_started()?;
        // The stub died or the app broke the handoff: that process's end (reported by
        // `finish`), not the sandbox's.
        space.start_failed = resume_start(space, &self.fpu, regs).is_err();
        Ok(())
    }

    fn finish(
        &mut self,
        space: &mut SystrapAddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        if std::mem::take(&mut space.start_failed) {
            return Ok(space.break_stub());
        }
        match resume_finish(space, regs) {
            Ok(ev) => Ok(ev),
            Err(_) => Ok(space.break_stub()),
        }
    }
}

/// Resumes the app with `regs` (and the extended state of `fpu`'s context); its next event
/// is [`resume_finish`]'s.
fn resume_start(
    space: &mut SystrapAddressSpace,
    fpu: &Saved,
    regs: &UserRegs,
) -> Result<(), Errno> {
    fpu.take_over(&mut space.fpu_owner, &mut space.stub)?;
    let stub = &mut space.stub;
    let gregs = stub.gregs()?;
    // Registers into the frame. The kernel's sigreturn sanitizes eflags (and segments);
    // the fast return loads them with POPFQ, so keep to the bits the app may set.
    let mut r = *regs;
    for (i, slot) in sigcontext_regs(&mut r).into_iter().enumerate() {
        write_greg(gregs, G_R8 + i, *slot);
    }
    if stub.ev.fast {
        write_greg(gregs, G_EFLAGS, regs.eflags & USER_EFLAGS | 0x202);
    }
    // SAFETY: plain stores into the control page; the stub reads them after ST_RESUME.
    unsafe {
        std::ptr::addr_of_mut!((*stub.ctrl_mut()).fs_want).write_volatile(regs.fs_base);
        std::ptr::addr_of_mut!((*stub.ctrl_mut()).gs_want).write_volatile(regs.gs_base);
    }
    // The host signal mask the app runs with: nothing blocked (its own mask is the
    // Sentry's business), which also lets the preemption tick in after start-up.
    if !stub.ev.fast {
        let uc = stub.ucontext()?;
        // SAFETY: `uc` is inside the shared region (checked by `ucontext`); uc_sigmask is
        // at offset 296 of the x86-64 ucontext.
        unsafe { (uc.add(UC_SIGMASK) as *mut u64).write_unaligned(0) };
    }
    stub.post(ST_RESUME);
    Ok(())
}

/// Waits for the event of the app [`resume_start`] resumed and returns it, with `regs`
/// updated.
fn resume_finish(space: &mut SystrapAddressSpace, regs: &mut UserRegs) -> Result<Event, Errno> {
    let stub = &mut space.stub;
    // The stub stores RUNNING on its way back to the app, then EVENT at the next trap; a
    // fast round trip may skip RUNNING from our point of view.
    let mut s = stub.ctrl().state.load(Ordering::Acquire);
    if s == ST_RESUME {
        s = stub.wait_change(ST_RESUME)?;
    }
    if s == ST_RUNNING {
        s = stub.wait_change(ST_RUNNING)?;
    }
    if s != ST_EVENT {
        return Err(EIO);
    }
    stub.read_event();
    let ev = stub.ev;
    let gregs = stub.gregs()?;
    let mut r = *regs;
    for (i, slot) in sigcontext_regs(&mut r).into_iter().enumerate() {
        *slot = read_greg(gregs, G_R8 + i);
    }
    *regs = r;
    Ok(match ev.signo as i32 {
        libc::SIGSYS => {
            regs.orig_rax = ev.si_syscall;
            let counter = if ev.fast {
                &FAST_SYSCALLS
            } else {
                &TRAPPED_SYSCALLS
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if !ev.fast && ev.si_arch != AUDIT_ARCH_X86_64 {
                // int 0x80, or a syscall from 32-bit code: never the 64-bit table.
                Event::Syscall32
            } else {
                Event::Syscall
            }
        }
        _ if ev.fast => Event::Interrupt,
        libc::SIGSEGV => {
            let err = read_greg(gregs, G_ERR);
            let write = err & 2 != 0;
            let execute = err & 16 != 0;
            let trapno = read_greg(gregs, G_TRAPNO);
            if trapno == 14 && stub.take_failure() {
                // A mapping the mapper could not make (the host's map count or memory):
                // as a fault Linux cannot serve, SIGBUS.
                Event::Exception {
                    vector: 17,
                    error_code: err,
                }
            } else if trapno == 14 {
                Event::Fault {
                    addr: ev.si_addr,
                    access: Access {
                        read: !write && !execute,
                        write,
                        execute,
                    },
                }
            } else {
                Event::Exception {
                    vector: trapno as u8,
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

impl Platform for SystrapPlatform {
    type AddressSpace = SystrapAddressSpace;
    type Context = SystrapContext;
    const PARALLEL: bool = true;

    fn name(&self) -> &'static str {
        "systrap"
    }

    fn new_address_space(&mut self) -> Result<SystrapAddressSpace, Errno> {
        Ok(SystrapAddressSpace {
            stub: spawn(self.memfd)?,
            fpu_owner: Owner::default(),
            started: false,
            broken: false,
            start_failed: false,
        })
    }

    fn new_context(&mut self) -> Result<SystrapContext, Errno> {
        Ok(SystrapContext {
            fpu: Saved::default(),
        })
    }
}

/// A seccomp rule for syscalls from the code page: the syscall number, and for each checked
/// argument word (its offset in `seccomp_data`) the values it may have.
struct Rule {
    nr: i64,
    args: &'static [(u32, &'static [u32])],
}

/// Offsets in `seccomp_data` of the low and high halves of argument `i`.
const fn lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn hi(i: u32) -> u32 {
    20 + 8 * i
}

const SECCOMP_SET_MODE_FILTER: u32 = 1;
const PROT_ANY: &[u32] = &[1, 2, 3, 4, 5, 6, 7];

/// The mapper's filter, installed before the stub code starts (so both threads have it; the
/// app thread adds its own, stricter one): from the code page, what the start code and the
/// mapper need; from anywhere else, a trap.
const MAPPER_RULES: &[Rule] = &[
    Rule {
        nr: libc::SYS_rt_sigreturn,
        args: &[],
    },
    Rule {
        nr: libc::SYS_futex,
        args: &[],
    },
    Rule {
        nr: libc::SYS_arch_prctl,
        args: &[(lo(0), &[0x1001, 0x1002])],
    },
    Rule {
        nr: libc::SYS_mmap,
        args: &[
            (lo(2), PROT_ANY),
            (hi(2), &[0]),
            (lo(3), &[(libc::MAP_SHARED | libc::MAP_FIXED) as u32]),
            (hi(3), &[0]),
            (lo(4), &[STUB_MEMFD as u32]),
        ],
    },
    Rule {
        nr: libc::SYS_munmap,
        args: &[],
    },
    Rule {
        nr: libc::SYS_pwrite64,
        args: &[
            (lo(0), &[STUB_ORDERSFD as u32]),
            (lo(2), &[4]),
            (hi(2), &[0]),
            (lo(3), &[DONE_OFF as u32, FAILED_OFF as u32]),
            (hi(3), &[0]),
        ],
    },
    Rule {
        nr: libc::SYS_clone,
        args: &[(lo(0), &[MAPPER_CLONE]), (hi(0), &[0])],
    },
    Rule {
        nr: libc::SYS_rt_sigprocmask,
        args: &[],
    },
    Rule {
        nr: libc::SYS_seccomp,
        args: &[(lo(0), &[SECCOMP_SET_MODE_FILTER])],
    },
    Rule {
        nr: libc::SYS_exit_group,
        args: &[],
    },
];

/// The app thread's filter: from the code page only what its handler needs, none of which
/// maps memory or reaches the host whatever the arguments: `rt_sigreturn`, `futex` wait and
/// wake on the control page's state word and the done word, `arch_prctl(SET_FS|SET_GS)`.
const APP_RULES: &[Rule] = &[
    Rule {
        nr: libc::SYS_rt_sigreturn,
        args: &[],
    },
    Rule {
        nr: libc::SYS_futex,
        args: &[
            (lo(0), &[CTRL_ADDR as u32, DONE_ADDR as u32]),
            (hi(0), &[(CTRL_ADDR >> 32) as u32]),
            (lo(1), &[libc::FUTEX_WAIT as u32, libc::FUTEX_WAKE as u32]),
        ],
    },
    Rule {
        nr: libc::SYS_arch_prctl,
        args: &[(lo(0), &[0x1001, 0x1002])],
    },
];
const _: () = assert!(CTRL_ADDR >> 32 == DONE_ADDR >> 32);

/// Builds a filter: syscalls of another architecture, and those from anywhere but the code
/// page, trap (SIGSYS: served by the Sentry); from the code page, `rules` decide, and anything
/// they do not allow kills the stub.
fn filter(rules: &[Rule]) -> Vec<libc::sock_filter> {
    #[derive(Clone, Copy)]
    enum T {
        Next,
        Trap,
        Kill,
        /// The first instruction of rule `i`'s checks.
        Rule(usize),
        /// The next argument word of the current rule (or ALLOW after the last).
        Arg,
    }
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jge = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let lo_ip = STUB_ADDR as u32;
    let hi_ip = (STUB_ADDR >> 32) as u32;
    // (code, k, jt, jf, rule it belongs to, argument-check index within it)
    let mut prog: Vec<(u16, u32, T, T, usize, usize)> = vec![
        (ld, 4, T::Next, T::Next, 0, 0), // arch
        (jeq, AUDIT_ARCH_X86_64, T::Next, T::Trap, 0, 0),
        (ld, 12, T::Next, T::Next, 0, 0), // instruction pointer, high half
        (jeq, hi_ip, T::Next, T::Trap, 0, 0),
        (ld, 8, T::Next, T::Next, 0, 0), // low half
        (jge, lo_ip + 4096, T::Trap, T::Next, 0, 0),
        (jge, lo_ip, T::Next, T::Trap, 0, 0),
        (ld, 0, T::Next, T::Next, 0, 0), // syscall number
    ];
    for (i, r) in rules.iter().enumerate() {
        prog.push((jeq, r.nr as u32, T::Rule(i), T::Next, 0, 0));
    }
    prog.push((ret, libc::SECCOMP_RET_KILL_PROCESS, T::Next, T::Next, 0, 0));
    let mut rule_start = vec![0usize; rules.len()];
    // Where each rule's argument check `j` starts, to resolve `T::Arg`.
    let mut arg_start: Vec<Vec<usize>> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        rule_start[i] = prog.len();
        let mut starts = Vec::new();
        for (j, &(off, values)) in r.args.iter().enumerate() {
            starts.push(prog.len());
            prog.push((ld, off, T::Next, T::Next, i, j));
            for (n, &v) in values.iter().enumerate() {
                let miss = if n + 1 == values.len() {
                    T::Kill
                } else {
                    T::Next
                };
                prog.push((jeq, v, T::Arg, miss, i, j));
            }
        }
        starts.push(prog.len());
        arg_start.push(starts);
        prog.push((
            ret,
            libc::SECCOMP_RET_ALLOW,
            T::Next,
            T::Next,
            i,
            r.args.len(),
        ));
    }
    let trap = prog.len();
    prog.push((ret, libc::SECCOMP_RET_TRAP, T::Next, T::Next, 0, 0));
    let kill = prog.len();
    prog.push((ret, libc::SECCOMP_RET_KILL_PROCESS, T::Next, T::Next, 0, 0));
    let n = prog.len();
    prog.iter()
        .enumerate()
        .map(|(at, &(code, k, jt, jf, rule, arg))| {
            let target = |t: T| -> u8 {
                let abs = match t {
                    T::Next => at + 1,
                    T::Trap => trap,
                    T::Kill => kill,
                    T::Rule(i) => rule_start[i],
                    T::Arg => arg_start[rule][arg + 1],
                };
                assert!(
                    abs > at && abs < n && abs - at - 1 <= 255,
                    "seccomp jump out of range"
                );
                (abs - at - 1) as u8
            };
            let jump = code == jeq || code == jge;
            libc::sock_filter {
                code,
                jt: if jump { target(jt) } else { 0 },
                jf: if jump { target(jf) } else { 0 },
                k,
            }
        })
        .collect()
}

/// A memfd of `size` bytes mapped read-write here.
fn shared_memfd(name: &std::ffi::CStr, size: u64) -> Result<(OwnedFd, *mut u8), Errno> {
    // SAFETY: static C string; fd checked.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh fd we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sizing and mapping our own memfd.
    let p = unsafe {
        if libc::ftruncate(fd, size as i64) < 0 {
            return Err(errno());
        }
        libc::mmap(
            std::ptr::null_mut(),
            size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok((owned, p as *mut u8))
}

/// Forks a stub: keeps only the memory file and the two memfds, maps the code and the shared
/// regions, installs the handlers, the alternate stack and the mapper's filter, and starts.
fn spawn(memfd: i32) -> Result<SystrapStub, Errno> {
    let code = code();
    let mapper_filter = filter(MAPPER_RULES);
    let app_filter = filter(APP_RULES);
    let (fast_mask, fast_size) = fast_xsave();
    let (ctrl_fd, shared) = shared_memfd(c"vmm-systrap", SHARED_SIZE)?;
    let (orders_fd, orders) = match shared_memfd(c"vmm-systrap-orders", ORDERS_SIZE) {
        Ok(x) => x,
        Err(e) => {
            // SAFETY: our mapping.
            unsafe { libc::munmap(shared.cast(), SHARED_SIZE as usize) };
            return Err(e);
        }
    };
    let mut stub = SystrapStub {
        pid: 0,
        shared,
        orders,
        _ctrl_fd: ctrl_fd,
        _orders_fd: orders_fd,
        seq: 0,
        woken: 0,
        failed_seen: 0,
        reaped: std::cell::Cell::new(true),
        ev: Published::default(),
        fast_mask,
        fast_size,
    };
    // SAFETY: the control page starts zeroed; mark the FS/GS bases as unknown so the first
    // resume sets them. The app thread's filter goes at the bottom of the signal stack, where
    // the start code installs it from (the stub's view of it is at FPROG_ADDR). The orders
    // header is our fresh mapping too (XMASK_OFF is inside its first page).
    unsafe {
        let c = shared as *mut Ctrl;
        (*c).fs_cur = u64::MAX;
        (*c).gs_cur = u64::MAX;
        (*c).stub_cpu = u32::MAX;
        (*c).sentry_cpu = u32::MAX;
        // The fast page's XSAVE mask, where the stub reads it (read-only there).
        (orders.add(XMASK_OFF as usize) as *mut u64).write(fast_mask);
        let at = shared.add((FPROG_ADDR - CTRL_ADDR) as usize);
        let fprog = libc::sock_fprog {
            len: app_filter.len() as u16,
            filter: (FPROG_ADDR + 16) as *mut libc::sock_filter,
        };
        (at as *mut libc::sock_fprog).write_unaligned(fprog);
        std::ptr::copy_nonoverlapping(
            app_filter.as_ptr(),
            at.add(16) as *mut libc::sock_filter,
            app_filter.len(),
        );
    }
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only makes raw syscalls, then jumps into the stub code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        let fds = [
            memfd,
            stub._ctrl_fd.as_raw_fd(),
            stub._orders_fd.as_raw_fd(),
        ];
        // SAFETY: in the fresh child.
        unsafe { child(parent, &fds, &code, &mapper_filter) }
    }
    stub.pid = pid;
    stub.reaped.set(false);
    Ok(stub)
}

/// # Safety
/// Only in the child right after `fork`.
unsafe fn child(
    parent: libc::pid_t,
    fds: &[i32; 3],
    code: &Code,
    mapper_filter: &[libc::sock_filter],
) -> ! {
    // SAFETY: raw syscalls; any failure ends the child (the parent sees it die).
    unsafe {
        // The memory file becomes fd 3 (STUB_MEMFD), the control memfd fd 4 (STUB_CTRLFD),
        // the orders memfd fd 5 (STUB_ORDERSFD).
        crate::stub::child_prologue(parent, fds);
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
        // Read-only here, for good: the app thread's filter allows no mprotect or mmap, the
        // mapper's maps only the memory file.
        let orders = libc::mmap(
            ORDERS_ADDR as *mut libc::c_void,
            ORDERS_SIZE as usize,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
            STUB_ORDERSFD,
            0,
        );
        if orders as u64 != ORDERS_ADDR {
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
        // vmm's address space. The mapper blocks everything itself.
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
        let fprog = libc::sock_fprog {
            len: mapper_filter.len() as u16,
            filter: mapper_filter.as_ptr() as *mut libc::sock_filter,
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

#[cfg(test)]
mod tests {
    use super::*;

    global_asm!(
        r#"
    .section .text.systrap_test, "ax"
    .balign 16
systrap_test_code:
    vmovq xmm3, rdi
    vpbroadcastq ymm3, xmm3
    lea rcx, [rip + 1f]
    mov eax, 39
    jmp qword ptr [rip + 2f]
1:  ud2
    .balign 8
2:  .quad 0
systrap_test_end:
    .text
"#
    );

    extern "C" {
        fn systrap_test_code();
        fn systrap_test_end();
    }

    /// A whole state loaded into the fast page and still pending (as when a tick is reported
    /// before the return to the app) is what `ST_XSAVE` saves, not the older one in the CPU.
    #[test]
    fn xsave_applies_a_pending_whole_state() {
        if !std::arch::is_x86_feature_detected!("avx2") || fast_xsave().0 & 4 == 0 {
            return;
        }
        const CODE: u64 = 0x10_0000;
        let start = systrap_test_code as *const () as usize;
        let len = systrap_test_end as *const () as usize - start;
        let (fd, map) = shared_memfd(c"systrap-test", 4096).unwrap();
        let mut plat = SystrapPlatform::new(fd.as_raw_fd());
        let mut space = plat.new_address_space().unwrap();
        // SAFETY: the test code lies between the two symbols; the memfd page is ours.
        unsafe {
            std::ptr::copy_nonoverlapping(start as *const u8, map, len);
            (map.add(len - 8) as *mut u64).write_unaligned(space.syscall_entry().unwrap());
        }
        space.map_file(CODE, 0, 4096, Access::RX).unwrap();
        let mut ctx = plat.new_context().unwrap();
        let mut regs = UserRegs {
            rip: CODE,
            rdi: 0x1234_5678,
            eflags: 0x202,
            ..Default::default()
        };
        assert_eq!(ctx.switch(&mut space, &mut regs), Ok(Event::Syscall));
        assert!(space.stub.ev.fast);
        let (avx, _) = xstate::layout().component(2);
        let ymm3_hi = |img: &[u8]| u64::from_le_bytes(img[avx + 48..avx + 56].try_into().unwrap());
        let mut img = space.stub.save_live().unwrap();
        assert_eq!(ymm3_hi(&img), 0x1234_5678);
        img[avx + 48..avx + 56].copy_from_slice(&0x9abc_def0u64.to_le_bytes());
        space.stub.load_live(&img, false).unwrap();
        let again = space.stub.save_live().unwrap();
        assert_eq!(ymm3_hi(&again), 0x9abc_def0);
        // SAFETY: our mapping, no longer used.
        unsafe { libc::munmap(map.cast(), 4096) };
    }
}

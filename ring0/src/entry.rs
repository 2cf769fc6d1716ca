//! Entry and exit code: the only place the CPU moves between ring 3 and ring 0.
//!
//! `ring0_enter_user` saves the Sentry's callee-saved registers and stack pointer in the
//! per-CPU area and enters ring 3 (`sysretq`, or `iretq` into 64-bit or 32-bit code).
//! `ring0_syscall_entry` (LSTAR), `ring0_syscall32_entry` (CSTAR), the exception stubs and the
//! `int $0x80` gate store the app's registers into the `UserRegs` named by the per-CPU area,
//! then `ring0_return_to_kernel` restores the Sentry's stack and "returns" from
//! `ring0_enter_user` with the event code in `rax`.
//!
//! Per-CPU offsets (GS-relative, see `PerCpu`): 0x08 kernel rsp, 0x10 `*mut UserRegs`,
//! 0x18 scratch, 0x20 vector/event, 0x28 error code, 0x30 cr2.
//! `UserRegs` offsets follow `struct user_regs_struct`: r15 0, r14 8, r13 16, r12 24, rbp 32,
//! rbx 40, r11 48, r10 56, r9 64, r8 72, rax 80, rcx 88, rdx 96, rsi 104, rdi 112,
//! orig_rax 120, rip 128, cs 136, eflags 144, rsp 152, ss 160.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.ring0, "ax"

    // u64 ring0_enter_user(UserRegs *regs /* rdi */, bool iret /* sil */)
    .global ring0_enter_user
ring0_enter_user:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov gs:[0x08], rsp
    mov gs:[0x10], rdi
    test sil, sil
    jnz 2f

    // sysretq: rip from rcx, eflags from r11.
    mov rcx, [rdi + 128]
    mov r11, [rdi + 144]
    mov r15, [rdi + 0]
    mov r14, [rdi + 8]
    mov r13, [rdi + 16]
    mov r12, [rdi + 24]
    mov rbp, [rdi + 32]
    mov rbx, [rdi + 40]
    mov r10, [rdi + 56]
    mov r9,  [rdi + 64]
    mov r8,  [rdi + 72]
    mov rax, [rdi + 80]
    mov rdx, [rdi + 96]
    mov rsi, [rdi + 104]
    mov rsp, [rdi + 152]
    mov rdi, [rdi + 112]
    swapgs
    sysretq

2:  // iretq: every register restored, into 64-bit or 32-bit code (cs, ss checked by the caller).
    push qword ptr [rdi + 160]
    push qword ptr [rdi + 152]
    push qword ptr [rdi + 144]
    push qword ptr [rdi + 136]
    push qword ptr [rdi + 128]
    mov r15, [rdi + 0]
    mov r14, [rdi + 8]
    mov r13, [rdi + 16]
    mov r12, [rdi + 24]
    mov rbp, [rdi + 32]
    mov rbx, [rdi + 40]
    mov r11, [rdi + 48]
    mov r10, [rdi + 56]
    mov r9,  [rdi + 64]
    mov r8,  [rdi + 72]
    mov rax, [rdi + 80]
    mov rcx, [rdi + 88]
    mov rdx, [rdi + 96]
    mov rsi, [rdi + 104]
    mov rdi, [rdi + 112]
    swapgs
    iretq

    // CSTAR: `syscall` from 32-bit code (AMD; Intel CPUs raise #UD there). As below, but the
    // event is SYSCALL32_EVENT and the app goes back to 32-bit code.
    .global ring0_syscall32_entry
ring0_syscall32_entry:
    swapgs
    mov gs:[0x18], rsp
    mov rsp, gs:[0x10]
    mov qword ptr [rsp + 136], 0x23
    mov qword ptr gs:[0x20], 0x101
    jmp 3f

    // LSTAR. rcx = user rip, r11 = user eflags, rsp = user rsp. IF is masked by SFMASK.
    .global ring0_syscall_entry
ring0_syscall_entry:
    swapgs
    mov gs:[0x18], rsp
    mov rsp, gs:[0x10]
    mov qword ptr [rsp + 136], 0x33
    mov qword ptr gs:[0x20], 0x100
3:  mov [rsp + 0], r15
    mov [rsp + 8], r14
    mov [rsp + 16], r13
    mov [rsp + 24], r12
    mov [rsp + 32], rbp
    mov [rsp + 40], rbx
    mov [rsp + 48], r11
    mov [rsp + 56], r10
    mov [rsp + 64], r9
    mov [rsp + 72], r8
    mov [rsp + 80], rax
    mov [rsp + 88], rcx
    mov [rsp + 96], rdx
    mov [rsp + 104], rsi
    mov [rsp + 112], rdi
    mov [rsp + 120], rax
    mov [rsp + 128], rcx
    mov [rsp + 144], r11
    mov rcx, gs:[0x18]
    mov [rsp + 152], rcx
    mov qword ptr [rsp + 160], 0x2b
    // (falls through)

ring0_return_to_kernel:
    mov rsp, gs:[0x08]
    mov rax, gs:[0x20]
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

    // Stack: vector, error code, rip, cs, rflags, rsp, ss.
ring0_exception_common:
    // An interrupt gate clears IF and TF but keeps the app's DF and AC: the Sentry's code
    // assumes DF clear (a memcpy would run backwards: a frame with DF set triple-faulted the
    // guest) and must not run with SMAP overridden (AC set). SFMASK does this for `syscall`.
    cld
    pushfq
    and dword ptr [rsp], ~0x40000
    popfq
    test byte ptr [rsp + 24], 3
    jz ring0_kernel_exception
    swapgs
    mov gs:[0x18], rax
    mov rax, gs:[0x10]
    mov [rax + 0], r15
    mov [rax + 8], r14
    mov [rax + 16], r13
    mov [rax + 24], r12
    mov [rax + 32], rbp
    mov [rax + 40], rbx
    mov [rax + 48], r11
    mov [rax + 56], r10
    mov [rax + 64], r9
    mov [rax + 72], r8
    mov [rax + 88], rcx
    mov [rax + 96], rdx
    mov [rax + 104], rsi
    mov [rax + 112], rdi
    mov rcx, gs:[0x18]
    mov [rax + 80], rcx
    mov qword ptr [rax + 120], -1
    pop rcx
    mov gs:[0x20], rcx
    pop rcx
    mov gs:[0x28], rcx
    pop rcx
    mov [rax + 128], rcx
    pop rcx
    mov [rax + 136], rcx
    pop rcx
    mov [rax + 144], rcx
    pop rcx
    mov [rax + 152], rcx
    pop rcx
    mov [rax + 160], rcx
    mov rcx, cr2
    mov gs:[0x30], rcx
    jmp ring0_return_to_kernel

    // An exception in ring 0 is a Sentry bug: hand a full frame to the Sentry's handler.
ring0_kernel_exception:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    mov rsi, cr2
    and rsp, -16
    call ring0_kernel_trap
    ud2

    .macro VEC_NOERR n
ring0_vec_\n:
    push 0
    push \n
    jmp ring0_exception_common
    .endm
    .macro VEC_ERR n
ring0_vec_\n:
    push \n
    jmp ring0_exception_common
    .endm

    VEC_NOERR 0
    VEC_NOERR 1
    VEC_NOERR 2
    VEC_NOERR 3
    VEC_NOERR 4
    VEC_NOERR 5
    VEC_NOERR 6
    VEC_NOERR 7
    VEC_ERR 8
    VEC_NOERR 9
    VEC_ERR 10
    VEC_ERR 11
    VEC_ERR 12
    VEC_ERR 13
    VEC_ERR 14
    VEC_NOERR 15
    VEC_NOERR 16
    VEC_ERR 17
    VEC_NOERR 18
    VEC_NOERR 19
    VEC_NOERR 20
    VEC_ERR 21
    VEC_NOERR 22
    VEC_NOERR 23
    VEC_NOERR 24
    VEC_NOERR 25
    VEC_NOERR 26
    VEC_NOERR 27
    VEC_NOERR 28
    VEC_ERR 29
    VEC_ERR 30
    VEC_NOERR 31
    VEC_NOERR 32
    // `int $0x80`, the i386 syscall gate (DPL 3).
    VEC_NOERR 128

    .section .rodata.ring0, "a"
    .balign 8
    .global ring0_vectors
ring0_vectors:
    .quad ring0_vec_0, ring0_vec_1, ring0_vec_2, ring0_vec_3
    .quad ring0_vec_4, ring0_vec_5, ring0_vec_6, ring0_vec_7
    .quad ring0_vec_8, ring0_vec_9, ring0_vec_10, ring0_vec_11
    .quad ring0_vec_12, ring0_vec_13, ring0_vec_14, ring0_vec_15
    .quad ring0_vec_16, ring0_vec_17, ring0_vec_18, ring0_vec_19
    .quad ring0_vec_20, ring0_vec_21, ring0_vec_22, ring0_vec_23
    .quad ring0_vec_24, ring0_vec_25, ring0_vec_26, ring0_vec_27
    .quad ring0_vec_28, ring0_vec_29, ring0_vec_30, ring0_vec_31
    .quad ring0_vec_32, ring0_vec_128
    .text
"#
);

/// The registers at a ring-0 exception, as pushed by `ring0_kernel_exception`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KernelTrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

extern "C" {
    fn ring0_enter_user(regs: *mut crate::UserRegs, iret: bool) -> u64;
    fn ring0_syscall_entry();
    fn ring0_syscall32_entry();
    static ring0_vectors: [u64; 34];
}

// The Sentry's handler for exceptions taken in ring 0 (a Sentry bug: it must report and stop)
// is defined by the kernel binary with this signature:
// `#[no_mangle] extern "C" fn ring0_kernel_trap(frame: &KernelTrapFrame, cr2: u64) -> !`.

/// Address of the `syscall` entry point (LSTAR).
pub fn syscall_entry_address() -> u64 {
    ring0_syscall_entry as *const () as u64
}

/// Address of the 32-bit `syscall` entry point (CSTAR).
pub fn syscall32_entry_address() -> u64 {
    ring0_syscall32_entry as *const () as u64
}

/// # Safety
/// See `switch_to_user`.
#[inline(always)]
pub(crate) unsafe fn enter_user(regs: &mut crate::UserRegs, iret: bool) -> u64 {
    // SAFETY: per the caller; the asm returns here with callee-saved registers restored.
    unsafe { ring0_enter_user(regs, iret) }
}

pub(crate) fn fill_idt(idt: &mut [[u64; 2]; 256]) {
    // The 32 exceptions, the kick interrupt (DPL 0: `int 32` from the app is a #GP) and the
    // i386 syscall gate `int $0x80`. Every other vector is absent: `int n` is a #GP.
    // SAFETY: ring0_vectors is a constant table of 34 stub addresses.
    let handlers = unsafe { core::ptr::addr_of!(ring0_vectors).read() };
    let vectors = (0..33).chain([crate::VECTOR_INT80 as usize]);
    for (vector, handler) in vectors.zip(handlers) {
        let slot = &mut idt[vector];
        // Breakpoint and overflow may be raised by the app with int3/into, and `int $0x80`
        // is how i386 code makes syscalls (DPL 3).
        let dpl: u64 = if vector == 3 || vector == 4 || vector == crate::VECTOR_INT80 as usize {
            3
        } else {
            0
        };
        // Double fault, NMI and machine check run on their own stack (IST1).
        let ist: u64 = if vector == 8 || vector == 2 || vector == 18 {
            1
        } else {
            0
        };
        let type_attr: u64 = 0x80 | (dpl << 5) | 0xe; // present, 64-bit interrupt gate
        slot[0] = (handler & 0xffff)
            | ((crate::selectors::KERNEL_CS as u64) << 16)
            | (ist << 32)
            | (type_attr << 40)
            | (((handler >> 16) & 0xffff) << 48);
        slot[1] = handler >> 32;
    }
}

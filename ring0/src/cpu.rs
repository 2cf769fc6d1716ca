//! CPU set-up and the switch to user mode (guest kernel only).
use core::arch::asm;
use core::mem::size_of;

use crate::{entry, selectors, Return, Trap, UserRegs};

/// Per-CPU data, reached through `GS` while in ring 0. The entry code uses fixed offsets
/// (see `entry.rs`); keep the first fields in sync with them.
#[repr(C, align(64))]
pub struct PerCpu {
    /// 0x00: address of this structure.
    self_ptr: u64,
    /// 0x08: kernel `rsp` saved by `switch_to_user`.
    kernel_rsp: u64,
    /// 0x10: `*mut UserRegs` the entry code stores the app's registers into.
    user_regs: u64,
    /// 0x18: scratch for the app's `rsp`/`rax` during entry.
    scratch: u64,
    /// 0x20: vector of the last trap, or `SYSCALL_EVENT`.
    vector: u64,
    /// 0x28: the last exception's error code.
    error_code: u64,
    /// 0x30: `cr2` at the last exception.
    cr2: u64,
    /// The `FS` base currently loaded, to skip redundant MSR writes.
    loaded_fs_base: u64,
    /// The app `GS` base currently parked in `KERNEL_GS_BASE`.
    loaded_gs_base: u64,
    tss: Tss,
    gdt: [u64; 10],
}

pub(crate) const SYSCALL_EVENT: u64 = 0x100;
/// `syscall` from 32-bit code (CSTAR).
pub(crate) const SYSCALL32_EVENT: u64 = 0x101;

#[repr(C, packed(4))]
#[derive(Clone, Copy)]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

const ENTRY_STACK_SIZE: usize = 4096;
const IST_STACK_SIZE: usize = 16384;

#[repr(C, align(16))]
struct Stack<const N: usize>([u8; N]);

// One CPU for now: SMP will make these arrays indexed by CPU.
static mut PERCPU: PerCpu = PerCpu {
    self_ptr: 0,
    kernel_rsp: 0,
    user_regs: 0,
    scratch: 0,
    vector: 0,
    error_code: 0,
    cr2: 0,
    loaded_fs_base: 0,
    loaded_gs_base: 0,
    tss: Tss {
        _reserved0: 0,
        rsp: [0; 3],
        _reserved1: 0,
        ist: [0; 7],
        _reserved2: 0,
        _reserved3: 0,
        iomap_base: size_of::<Tss>() as u16, // no I/O bitmap: every port is denied to ring 3
    },
    gdt: [0; 10],
};
static mut ENTRY_STACK: Stack<ENTRY_STACK_SIZE> = Stack([0; ENTRY_STACK_SIZE]);
static mut DOUBLE_FAULT_STACK: Stack<IST_STACK_SIZE> = Stack([0; IST_STACK_SIZE]);

#[repr(C, align(16))]
struct Idt([[u64; 2]; 256]);
static mut IDT: Idt = Idt([[0; 2]; 256]);

/// Model-specific registers used here.
pub mod msr {
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
}

/// Reads an MSR.
///
/// # Safety
/// `msr` must exist on this CPU.
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists; rdmsr has no memory effects.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    ((hi as u64) << 32) | lo as u64
}

/// Writes an MSR.
///
/// # Safety
/// `msr` must exist and `value` must be valid for it; the effect on the CPU is the caller's.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the write is valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack))
    };
}

/// `cpuid` leaf/subleaf → (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads a counter (CR4.TSD is clear, and we are in ring 0 anyway).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `out dx, eax`: the hypercall instruction.
///
/// # Safety
/// Port I/O goes to the VMM, which acts on it; the caller must have prepared whatever the
/// port's protocol expects (and any memory it names must stay valid until this returns).
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: per the caller; `out` may make the VMM read and write guest memory, so it is not
    // marked `nomem`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags))
    };
}

/// Halts forever with interrupts off (used after a fatal error was reported).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Invalidates the TLB entry for `va` in the current address space.
pub fn invlpg(va: u64) {
    // SAFETY: invlpg only drops a TLB entry.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Loads `root` tagged with `pcid` into CR3 — keeping that PCID's TLB entries unless `flush`
/// — if it is not already there (or if `flush`). Only with PCIDs enabled (`features().pcid`).
///
/// # Safety
/// As [`set_cr3`]; `pcid` (1..4096) must tag only this root's translations, or be flushed.
pub unsafe fn set_cr3_pcid(root: u64, pcid: u16, flush: bool) {
    const NO_FLUSH: u64 = 1 << 63;
    let cur: u64;
    // SAFETY: as in `set_cr3`.
    unsafe {
        asm!("mov {}, cr3", out(reg) cur, options(nomem, nostack, preserves_flags));
        if flush || cur != root | pcid as u64 {
            let v = root | pcid as u64 | if flush { 0 } else { NO_FLUSH };
            asm!("mov cr3, {}", in(reg) v, options(nostack, preserves_flags));
        }
    }
}

/// The page-table root CR3 holds now (without its PCID).
pub fn current_root() -> u64 {
    let cur: u64;
    // SAFETY: reading cr3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) cur, options(nomem, nostack, preserves_flags)) };
    cur & !0xfff
}

/// Loads `root` (a page-table root's physical address) into CR3 if it is not already there.
///
/// # Safety
/// `root` must map the kernel (upper half) exactly as the current root does.
pub unsafe fn set_cr3(root: u64) {
    let cur: u64;
    // SAFETY: reading cr3 has no side effects; writing it is covered by the caller's contract.
    unsafe {
        asm!("mov {}, cr3", out(reg) cur, options(nomem, nostack, preserves_flags));
        if cur & !0xfff != root {
            asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags));
        }
    }
}

/// Features `init` found and enabled.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuFeatures {
    pub xsave: bool,
    /// XCR0 value when `xsave` (the state components saved per context).
    pub xcr0: u64,
    /// Bytes an XSAVE area needs for `xcr0`.
    pub xsave_size: u32,
    pub smep: bool,
    pub smap: bool,
    /// Process-context identifiers (CR4.PCIDE): TLB entries are tagged per address space, so
    /// switching between them need not flush.
    pub pcid: bool,
    /// The MXCSR bits the CPU supports (loading any other faults).
    pub mxcsr_mask: u32,
}

static mut FEATURES: CpuFeatures = CpuFeatures {
    xsave: false,
    xcr0: 0,
    xsave_size: 512,
    smep: false,
    smap: false,
    pcid: false,
    mxcsr_mask: 0xffbf,
};

/// What [`init`] enabled.
pub fn features() -> CpuFeatures {
    // SAFETY: written once by `init` before any reader runs; single CPU.
    unsafe { core::ptr::addr_of!(FEATURES).read() }
}

fn gdt_entry(access: u8, flags: u8) -> u64 {
    // base 0, limit 0xfffff (ignored in 64-bit mode except for data limits)
    0x0000_0000_0000_ffffu64 | (0xfu64 << 48) | ((access as u64) << 40) | ((flags as u64) << 52)
}

/// Sets up this CPU: GDT, TSS, IDT, syscall MSRs, control-register features, per-CPU area.
///
/// # Safety
/// Call once, early, in ring 0 with interrupts disabled, with the kernel mapped as the link
/// script says.
pub unsafe fn init() -> CpuFeatures {
    // SAFETY: single CPU, called once before anything else uses these statics.
    unsafe {
        let pc = &mut *core::ptr::addr_of_mut!(PERCPU);
        pc.self_ptr = pc as *mut PerCpu as u64;
        pc.tss.rsp[0] = core::ptr::addr_of!(ENTRY_STACK) as u64 + ENTRY_STACK_SIZE as u64;
        pc.tss.ist[0] = core::ptr::addr_of!(DOUBLE_FAULT_STACK) as u64 + IST_STACK_SIZE as u64;

        // GDT, Linux layout. Access bytes: P | DPL | S | type.
        pc.gdt[0] = 0;
        pc.gdt[1] = gdt_entry(0x9b, 0xc); // 0x08 kernel 32-bit code
        pc.gdt[2] = gdt_entry(0x9b, 0xa); // 0x10 kernel 64-bit code (L)
        pc.gdt[3] = gdt_entry(0x93, 0xc); // 0x18 kernel data
        pc.gdt[4] = gdt_entry(0xfb, 0xc); // 0x23 user 32-bit code
        pc.gdt[5] = gdt_entry(0xf3, 0xc); // 0x2b user data
        pc.gdt[6] = gdt_entry(0xfb, 0xa); // 0x33 user 64-bit code (L)
        pc.gdt[7] = 0;
        let tss_base = core::ptr::addr_of!(pc.tss) as u64;
        let tss_limit = (size_of::<Tss>() - 1) as u64;
        pc.gdt[8] = (tss_limit & 0xffff)
            | ((tss_base & 0xff_ffff) << 16)
            | (0x89u64 << 40) // present, available 64-bit TSS
            | (((tss_limit >> 16) & 0xf) << 48)
            | (((tss_base >> 24) & 0xff) << 56);
        pc.gdt[9] = tss_base >> 32;

        #[repr(C, packed)]
        struct Pointer {
            limit: u16,
            base: u64,
        }
        let gdtr = Pointer {
            limit: (size_of::<[u64; 10]>() - 1) as u16,
            base: pc.gdt.as_ptr() as u64,
        };
        asm!("lgdt [{}]", in(reg) &gdtr, options(readonly, nostack, preserves_flags));
        // Reload CS through a far return, then the data segments and TR.
        asm!(
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "xor {tmp:e}, {tmp:e}",
            "mov fs, {tmp:x}",
            "mov gs, {tmp:x}",
            "ltr {tss:x}",
            cs = in(reg) selectors::KERNEL_CS as u64,
            ds = in(reg) selectors::KERNEL_DS as u64,
            tss = in(reg) selectors::TSS as u64,
            tmp = out(reg) _,
        );
        // GS base = per-CPU area while in ring 0; KERNEL_GS_BASE holds the app's (0 now).
        wrmsr(msr::GS_BASE, pc.self_ptr);
        wrmsr(msr::KERNEL_GS_BASE, 0);
        wrmsr(msr::FS_BASE, 0);

        entry::fill_idt(&mut *core::ptr::addr_of_mut!(IDT.0));
        let idtr = Pointer {
            limit: (size_of::<Idt>() - 1) as u16,
            base: core::ptr::addr_of!(IDT) as u64,
        };
        asm!("lidt [{}]", in(reg) &idtr, options(readonly, nostack, preserves_flags));

        // syscall/sysret: STAR[47:32] = kernel CS (SS = +8), STAR[63:48] = USER32_CS
        // (sysretq uses +16 = USER_CS and +8 = USER_DS). SFMASK clears IF, TF, DF, AC, NT.
        wrmsr(
            msr::STAR,
            ((selectors::USER32_CS as u64) << 48) | ((selectors::KERNEL_CS as u64) << 32),
        );
        wrmsr(msr::LSTAR, entry::syscall_entry_address());
        // `syscall` from 32-bit code goes to CSTAR on AMD CPUs (Intel's raise #UD): left at
        // its reset value 0 it would jump to address 0 — an app page — in ring 0.
        wrmsr(msr::CSTAR, entry::syscall32_entry_address());
        // `sysenter` (Intel, 32-bit code; AMD raises #UD in long mode) with a null
        // SYSENTER_CS raises #GP: the app gets SIGSEGV, the Sentry never runs from it.
        wrmsr(msr::SYSENTER_CS, 0);
        wrmsr(msr::SYSENTER_ESP, 0);
        wrmsr(msr::SYSENTER_EIP, 0);
        wrmsr(msr::SFMASK, 0x4_7700);
        let efer = rdmsr(msr::EFER);
        wrmsr(msr::EFER, efer | 1 /* SCE */ | (1 << 11) /* NXE */);

        // Control registers.
        let mut cr0: u64;
        asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 |= (1 << 16) | (1 << 5) | (1 << 1); // WP, NE, MP
        cr0 &= !((1 << 2) | (1 << 3)); // clear EM, TS
        asm!("mov cr0, {}", in(reg) cr0, options(nostack));

        let (_, _, ecx1, _) = cpuid(1, 0);
        let (_, ebx7, _, _) = cpuid(7, 0);
        let mut f = CpuFeatures {
            xsave: ecx1 & (1 << 26) != 0,
            smep: ebx7 & (1 << 7) != 0,
            smap: ebx7 & (1 << 20) != 0,
            xcr0: 0,
            xsave_size: 512,
            pcid: ecx1 & (1 << 17) != 0,
            mxcsr_mask: 0xffbf,
        };
        let mut cr4: u64;
        asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        cr4 |= (1 << 5) | (1 << 7) | (1 << 9) | (1 << 10); // PAE, PGE, OSFXSR, OSXMMEXCPT
        if f.xsave {
            cr4 |= 1 << 18;
        }
        if f.smep {
            cr4 |= 1 << 20;
        }
        if f.smap {
            cr4 |= 1 << 21;
        }
        if f.pcid {
            // CR3's PCID bits are 0 here (the boot root), as enabling PCIDE requires.
            cr4 |= 1 << 17;
        }
        asm!("mov cr4, {}", in(reg) cr4, options(nostack));
        if f.xsave {
            // Enable every user state component the CPU offers among x87, SSE, AVX, AVX-512.
            let (lo, _, _, hi) = cpuid(0xd, 0);
            let supported = ((hi as u64) << 32 | lo as u64) & 0xe7;
            asm!("xsetbv", in("ecx") 0u32, in("eax") supported as u32, in("edx") (supported >> 32) as u32,
                 options(nomem, nostack));
            // CPUID exits to the hypervisor, which must keep the guest's XCR0 across exits.
            // One that does not (QEMU's emulated SVM passes a nested guest's XSETBV straight
            // through, so L1 KVM reloads its own idea of our XCR0, x87 only, at the next
            // entry) would leave XSAVE with `supported` saving x87 alone: every switch of
            // threads would lose the app's SSE registers. Such a CPU gets FXSAVE instead, and
            // CR4.OSXSAVE off: apps then see no XSAVE (CPUID's OSXSAVE follows CR4), so
            // glibc's lazy-binding trampoline saves their registers with FXSAVE too rather
            // than with an XSAVE that would keep x87 alone; AVX is off, as it was in effect.
            let (_, size, _, _) = cpuid(0xd, 0);
            let (lo, hi): (u32, u32);
            asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack));
            if ((hi as u64) << 32 | lo as u64) == supported {
                f.xcr0 = supported;
                f.xsave_size = size;
            } else {
                f.xsave = false;
                cr4 &= !(1 << 18);
                asm!("mov cr4, {}", in(reg) cr4, options(nostack));
            }
        }
        // FXSAVE stores the mask at byte 28 (0 there means the classic 0xffbf).
        let fx = fxsave_now();
        let mask = u32::from_le_bytes([fx[28], fx[29], fx[30], fx[31]]);
        if mask != 0 {
            f.mxcsr_mask = mask;
        }
        core::ptr::addr_of_mut!(FEATURES).write(f);
        f
    }
}

/// The trap flag (0x100) when in instruction-counting mode, else 0: or'ed into app eflags.
static mut TRACE_FLAG: u64 = 0;

/// Instruction-counting mode for a VMM that single-steps the guest: the trap flag is no
/// longer cleared on syscall entry and is set in app code, so every instruction — app and
/// Sentry — traps to the VMM (which intercepts the #DB; the guest never sees it).
///
/// # Safety
/// Only when the VMM intercepts debug exceptions; otherwise the app would take #DB everywhere.
pub unsafe fn set_trace_mode(on: bool) {
    // SAFETY: per the caller; single CPU.
    unsafe {
        TRACE_FLAG = if on { 0x100 } else { 0 };
        wrmsr(msr::SFMASK, if on { 0x4_7600 } else { 0x4_7700 });
    }
}

/// Runs the app with `regs` until it traps back into ring 0; `regs` then holds its state.
///
/// Sanitizes what the app must not control: `cs` is the 32-bit user code selector if it was
/// (the app runs 32-bit code: entered with `iretq`), else the 64-bit one; `ss` is the user
/// data selector; `eflags` has IF set and IOPL/NT/VM/AC-override bits cleared; `rip`/`rsp`
/// must be canonical lower-half, and `rip` below 4 GiB in 32-bit code (else `iretq` would
/// fault in ring 0; such a `rip` or `rsp` is delivered as a #GP, as Linux's iret fixup does).
///
/// # Safety
/// The current CR3 must be an address space whose upper half is the kernel's; `init` must have
/// run. The Sentry's own state is preserved (callee-saved registers are saved by the entry
/// code; the Sentry never uses FPU/SSE registers).
#[inline(always)] // into the Sentry's syscall fast path (another crate): no call, no Trap in memory
pub unsafe fn switch_to_user(regs: &mut UserRegs, mut how: Return) -> Trap {
    let compat = regs.cs == selectors::USER32_CS as u64;
    regs.cs = if compat {
        selectors::USER32_CS
    } else {
        selectors::USER_CS
    } as u64;
    regs.ss = selectors::USER_DS as u64;
    // Keep CF PF AF ZF SF TF DF OF (0xcd5) and ID/AC; force IF and the reserved bit 1 (and TF
    // when counting instructions).
    // SAFETY: TRACE_FLAG is only written by set_trace_mode at boot.
    regs.eflags = (regs.eflags & 0x24_0dd5) | 0x202 | unsafe { TRACE_FLAG };
    const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;
    // A non-canonical rsp would make `iretq` itself fault — in ring 0, after `swapgs`, where
    // nothing can recover (the fuzzer's rt_sigreturn of a garbage frame triple-faulted the
    // guest). Linux's iret fixup gives the app SIGSEGV for it: so does this #GP. (A user rsp
    // in the upper half is refused too: the app could only fault on its first push.)
    // (Both below 2^47 exactly when their OR is.)
    if (regs.rip | regs.rsp) >= LOWER_HALF_END || (compat && regs.rip > u32::MAX as u64) {
        // Deliver what the hardware would: a #GP at the faulting instruction fetch.
        return Trap::Exception {
            vector: 13,
            error_code: 0,
            cr2: 0,
        };
    }
    // (rsp is canonical: checked above.)
    if how == Return::Sysret && (compat || regs.rcx != regs.rip || regs.r11 != regs.eflags) {
        how = Return::Iret;
    }
    // SAFETY: single CPU; the per-CPU area is only touched here and by the entry code.
    let pc = unsafe { &mut *core::ptr::addr_of_mut!(PERCPU) };
    if pc.loaded_fs_base != regs.fs_base {
        // SAFETY: FS_BASE exists; a non-canonical value would #GP, so it is checked by callers
        // (arch_prctl) — and masked here as a last line of defence.
        unsafe { wrmsr(msr::FS_BASE, regs.fs_base & 0x0000_7fff_ffff_ffff) };
        pc.loaded_fs_base = regs.fs_base;
    }
    if pc.loaded_gs_base != regs.gs_base {
        // SAFETY: the app's GS base waits in KERNEL_GS_BASE until swapgs on the way out.
        unsafe { wrmsr(msr::KERNEL_GS_BASE, regs.gs_base & 0x0000_7fff_ffff_ffff) };
        pc.loaded_gs_base = regs.gs_base;
    }
    // SAFETY: per this function's contract; the entry code stores the app state into `regs`
    // and returns here with the Sentry's stack and callee-saved registers intact.
    let vector = unsafe { entry::enter_user(regs, how == Return::Iret) };
    if vector == SYSCALL_EVENT {
        Trap::Syscall
    } else if vector == SYSCALL32_EVENT || vector == crate::VECTOR_INT80 as u64 {
        // The i386 number is eax (the upper half is not the app's in 32-bit code).
        regs.orig_rax = regs.rax & 0xffff_ffff;
        Trap::Syscall32
    } else {
        Trap::Exception {
            vector: vector as u8,
            error_code: pc.error_code,
            cr2: pc.cr2,
        }
    }
}

/// An FXSAVE image, aligned as FXSAVE/FXRSTOR require.
#[repr(C, align(16))]
struct Fx([u8; 512]);

/// The CPU's live x87/SSE state in FXSAVE layout.
pub fn fxsave_now() -> [u8; 512] {
    let mut fx = Fx([0; 512]);
    // SAFETY: a 16-byte aligned 512-byte buffer; FXSAVE only reads CPU state.
    unsafe { asm!("fxsave64 [{}]", in(reg) fx.0.as_mut_ptr(), options(nostack)) };
    fx.0
}

/// The app's x87/SSE/AVX state while another context runs on the CPU.
#[repr(C, align(64))]
pub struct FpuState {
    area: [u8; 4096],
}

impl Default for FpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl FpuState {
    /// The state a new process starts with: as after `fninit`, MXCSR = 0x1f80 (all exceptions
    /// masked), every vector register zero.
    pub const fn new() -> Self {
        let mut area = [0u8; 4096];
        // Legacy FXSAVE region: FCW = 0x037f, MXCSR = 0x1f80, MXCSR_MASK left 0.
        area[0] = 0x7f;
        area[1] = 0x03;
        area[24] = 0x80;
        area[25] = 0x1f;
        FpuState { area }
    }

    /// The state saved here as a standard-format image: the whole XSAVE area (`xsave_size`
    /// bytes), or the 512-byte FXSAVE area without XSAVE.
    pub fn image(&self) -> &[u8] {
        let f = features();
        let n = if f.xsave { f.xsave_size as usize } else { 512 };
        &self.area[..n]
    }

    /// Replaces the state saved here with `img` (512 bytes: the legacy area, every other
    /// component in its init state; or a standard-format image of at most `xsave_size`).
    /// Whatever the bytes, [`FpuState::restore`] of the result cannot fault: MXCSR is masked
    /// to the CPU's bits, `XSTATE_BV` to XCR0, and the header's reserved bytes are zeroed.
    pub fn set_image(&mut self, img: &[u8]) {
        let f = features();
        *self = FpuState::new();
        let n = img.len().min(self.image().len());
        if n < 576 || !f.xsave {
            let n = n.min(464);
            self.area[..n].copy_from_slice(&img[..n]);
            if f.xsave {
                self.area[512] = 0b11; // XSTATE_BV: x87 and SSE as given
            }
        } else {
            self.area[..n].copy_from_slice(&img[..n]);
            let bv = u64::from_le_bytes(self.area[512..520].try_into().unwrap()) & f.xcr0;
            self.area[512..520].copy_from_slice(&bv.to_le_bytes());
            self.area[520..576].fill(0);
        }
        let mxcsr = u32::from_le_bytes(self.area[24..28].try_into().unwrap()) & f.mxcsr_mask;
        self.area[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    }

    /// Saves the CPU's current app state here.
    pub fn save(&mut self) {
        let f = features();
        // SAFETY: the area is 64-byte aligned and large enough (xsave_size <= 4096 is checked
        // by `restore`'s twin logic in `init`: CPUs with larger areas only get x87|SSE|AVX).
        unsafe {
            if f.xsave {
                asm!("xsave64 [{}]", in(reg) self.area.as_mut_ptr(), in("eax") f.xcr0 as u32,
                     in("edx") (f.xcr0 >> 32) as u32, options(nostack));
            } else {
                asm!("fxsave64 [{}]", in(reg) self.area.as_mut_ptr(), options(nostack));
            }
        }
    }

    /// Loads this state into the CPU.
    pub fn restore(&self) {
        let f = features();
        // SAFETY: the area holds a state produced by `save` or `new` (the XSAVE header bytes
        // 512..576 are zero in `new`, which XRSTOR accepts as "initial state").
        unsafe {
            if f.xsave {
                asm!("xrstor64 [{}]", in(reg) self.area.as_ptr(), in("eax") f.xcr0 as u32,
                     in("edx") (f.xcr0 >> 32) as u32, options(nostack));
            } else {
                asm!("fxrstor64 [{}]", in(reg) self.area.as_ptr(), options(nostack));
            }
        }
    }
}

//! The kvm platform: app address spaces are page-table roots whose upper half is the kernel's
//! (shared page tables: entering the Sentry never switches CR3), and a context is a ring-3
//! register set entered with `ring0::switch_to_user`.

use alloc::boxed::Box;
use alloc::rc::Rc;

use alloc::vec::Vec;
use guest_sentry::abi::DIRECT_MAP_BASE;
use guest_sentry::errno::{Errno, EINVAL, ENOMEM};
use guest_sentry::memfile::{MemoryFile, PAGE_SIZE};
use guest_sentry::platform::{Access, AddressSpace, Context, Event, Platform, UserRegs};
use guest_sentry::xsave;
use pagetables::{FrameAllocator, PageSize, PageTables, PhysMem};

/// The injected "Sentry wanted" interrupt: the VMM and ring 0 agree on its vector.
const KICK: u8 = ring0::VECTOR_KICK;
const _: () = assert!(KICK as u32 == guest_sentry::abi::KICK_VECTOR);

/// Page tables are reached through the direct map of the memory file.
struct DirectMap {
    size: u64,
}

// SAFETY: every physical address below `size` is mapped read-write at DIRECT_MAP_BASE + pa;
// larger ones panic rather than return a wild pointer.
unsafe impl PhysMem for DirectMap {
    fn table_ptr(&self, pa: u64) -> *mut [u64; 512] {
        assert!(
            pa < self.size && pa.is_multiple_of(PAGE_SIZE),
            "page-table frame {pa:#x} outside guest memory"
        );
        (DIRECT_MAP_BASE + pa) as *mut [u64; 512]
    }
}

/// Page-table frames come from the memory file's allocator (zeroed).
struct Frames<'a>(&'a MemoryFile);

impl FrameAllocator for Frames<'_> {
    fn alloc_frame(&mut self) -> Option<u64> {
        self.0.alloc_page().ok()
    }
    fn free_frame(&mut self, pa: u64) {
        self.0.free_page(pa)
    }
}

pub struct KvmPlatform {
    mem: Rc<MemoryFile>,
    kernel: PageTables,
}

impl KvmPlatform {
    pub fn new(mem: Rc<MemoryFile>, kernel_root: u64) -> Self {
        KvmPlatform {
            mem,
            kernel: PageTables::from_root(kernel_root),
        }
    }
}

pub struct KvmAddressSpace {
    pt: Option<PageTables>,
    mem: Rc<MemoryFile>,
    /// The kernel's own root, loaded before this one's tables are freed.
    kernel_root: u64,
    /// This space's PCID (0: none, every load flushes).
    pcid: u16,
    /// The TLB may hold translations of this PCID that no longer match the tables (a fresh
    /// or recycled PCID, or entries changed while another space was loaded, where `invlpg`
    /// could not reach them): the next load flushes them.
    stale: bool,
}

/// PCIDs in use (bit n = PCID n; 0 is the kernel's and never handed out).
static mut PCIDS: [u64; 64] = {
    let mut ids = [0; 64];
    ids[0] = 1;
    ids
};

/// A free PCID, or 0 when the CPU has none or all 4095 are taken (that space then flushes
/// on every load, as without PCIDs).
fn alloc_pcid() -> u16 {
    if !ring0::features().pcid {
        return 0;
    }
    // SAFETY: single CPU, no interrupts in ring 0: nothing else touches PCIDS meanwhile.
    let ids = unsafe { &mut *core::ptr::addr_of_mut!(PCIDS) };
    for (w, bits) in ids.iter_mut().enumerate() {
        if *bits != u64::MAX {
            let b = (!*bits).trailing_zeros();
            *bits |= 1 << b;
            return (w * 64 + b as usize) as u16;
        }
    }
    0
}

fn free_pcid(pcid: u16) {
    if pcid != 0 {
        // SAFETY: as in `alloc_pcid`.
        let ids = unsafe { &mut *core::ptr::addr_of_mut!(PCIDS) };
        ids[pcid as usize / 64] &= !(1 << (pcid % 64));
    }
}

impl KvmAddressSpace {
    /// Whether this space is the one loaded in CR3 (where `invlpg` reaches its translations).
    fn loaded(&self) -> bool {
        ring0::current_root() == self.pt.as_ref().expect("live address space").root()
    }

    fn pm(&self) -> DirectMap {
        DirectMap {
            size: self.mem.size(),
        }
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map_file(&mut self, addr: u64, offset: u64, len: u64, access: Access) -> Result<(), Errno> {
        if !access.any() {
            self.unmap(addr, len);
            return Ok(());
        }
        let flags = pagetables::Flags {
            writable: access.write,
            user: true,
            executable: access.execute,
            global: false,
        };
        let pm = self.pm();
        let mem = self.mem.clone();
        let loaded = self.loaded();
        let pt = self.pt.as_mut().expect("live address space");
        for i in (0..len).step_by(PAGE_SIZE as usize) {
            let old = pt
                .remap(
                    &pm,
                    &mut Frames(&mem),
                    addr + i,
                    offset + i,
                    PageSize::Size4K,
                    flags,
                )
                .map_err(|_| ENOMEM)?;
            // A translation changed: out of the TLB now if loaded, else at the next load.
            if old.is_some() {
                if loaded {
                    ring0::invlpg(addr + i);
                } else {
                    self.stale = true;
                }
            }
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        let pm = self.pm();
        let mem = self.mem.clone();
        let loaded = self.loaded();
        let pt = self.pt.as_mut().expect("live address space");
        let mut present = alloc::vec::Vec::new();
        pt.walk(&pm, addr, addr + len, |m| present.push(m.va));
        for va in present {
            if pt.unmap(&pm, &mut Frames(&mem), va).is_ok() {
                if loaded {
                    ring0::invlpg(va);
                } else {
                    self.stale = true;
                }
            }
        }
    }
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        if let Some(pt) = self.pt.take() {
            // Never free the root the CPU runs on: its frames could be reused while the
            // Sentry still reaches itself through them.
            // SAFETY: the kernel root maps the kernel exactly as every app root does.
            unsafe { ring0::set_cr3(self.kernel_root) };
            let pm = self.pm();
            pt.destroy_lower(&pm, &mut Frames(&self.mem));
            // Its translations may linger in the TLB: the next owner starts stale.
            free_pcid(self.pcid);
        }
    }
}

/// The panic message `vmm platforms` recognises.
pub const SYSCALL_BROKEN: &str = "ring-3 syscall did not reach ring 0 (the CPU raised a user page fault at the syscall entry): this host's KVM cannot run a standard guest";

/// The app FPU state currently loaded in the CPU (the Sentry itself never uses it).
static mut FPU_OWNER: *mut ring0::FpuState = core::ptr::null_mut();

pub struct KvmContext {
    fpu: Box<ring0::FpuState>,
    after_syscall: bool,
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        // SAFETY: single CPU; forget ownership so no later switch saves into freed memory.
        unsafe {
            if core::ptr::eq(FPU_OWNER, &*self.fpu) {
                FPU_OWNER = core::ptr::null_mut();
            }
        }
    }
}

impl KvmContext {
    /// Makes this context's saved state the CPU's (the previous owner's saved first).
    ///
    /// # Safety
    /// Single CPU; FPU_OWNER is null or a live context's state (cleared on drop).
    #[inline(always)]
    unsafe fn own_fpu(&mut self) {
        let mine = &mut *self.fpu as *mut ring0::FpuState;
        // SAFETY: per the contract.
        unsafe {
            if FPU_OWNER != mine {
                if let Some(prev) = FPU_OWNER.as_mut() {
                    prev.save();
                }
                // Whoever ran last (or nobody: the vCPU's init state), this context's own
                // state is what the CPU must hold now; a new context's is the init state.
                self.fpu.restore();
                FPU_OWNER = mine;
            }
        }
    }
}

impl Context for KvmContext {
    type AddressSpace = KvmAddressSpace;

    fn fpu_state(&mut self, _space: &mut KvmAddressSpace) -> Result<Vec<u8>, Errno> {
        let mine = &mut *self.fpu as *mut ring0::FpuState;
        // SAFETY: single CPU; if this context owns the CPU's FPU, the CPU has the live copy
        // (saved here, and it stays loaded).
        if unsafe { FPU_OWNER == mine } {
            self.fpu.save();
        }
        let mut img = self.fpu.image().to_vec();
        xsave::normalize(&mut img);
        Ok(img)
    }

    fn set_fpu_state(&mut self, _space: &mut KvmAddressSpace, img: &[u8]) -> Result<(), Errno> {
        let (_, size) = self.xstate_layout();
        if img.len() != xsave::LEGACY_SIZE && img.len() != size {
            return Err(EINVAL);
        }
        // SAFETY: single CPU. This context becomes the FPU's owner with the new state loaded
        // (`set_image` makes any bytes loadable).
        unsafe {
            self.own_fpu();
            self.fpu.set_image(img);
            self.fpu.restore();
        }
        Ok(())
    }

    fn xstate_layout(&self) -> (u64, usize) {
        let f = ring0::features();
        if f.xsave {
            (f.xcr0, f.xsave_size as usize)
        } else {
            (0, xsave::LEGACY_SIZE)
        }
    }

    #[inline(always)] // into the scheduler's fast path: no call, no frame, no Event in memory
    fn switch(&mut self, space: &mut KvmAddressSpace, regs: &mut UserRegs) -> Result<Event, Errno> {
        let root = space.pt.as_ref().expect("live address space").root();
        // SAFETY: every app root shares the kernel's upper half (new_sharing_upper); a PCID
        // tags only its own space's translations, flushed whenever they may be stale.
        unsafe {
            if space.pcid == 0 {
                ring0::set_cr3(root);
            } else {
                ring0::set_cr3_pcid(root, space.pcid, space.stale);
                space.stale = false;
            }
        }
        // SAFETY: single CPU; FPU_OWNER is null or a live context's state (cleared on drop).
        unsafe { self.own_fpu() };
        let how = if self.after_syscall {
            ring0::Return::Sysret
        } else {
            ring0::Return::Iret
        };
        // SAFETY: CR3 holds an app root with the kernel upper half; ring0::init ran at boot.
        let trap = unsafe { ring0::switch_to_user(regs, how) };
        Ok(match trap {
            ring0::Trap::Syscall => {
                self.after_syscall = true;
                Event::Syscall
            }
            ring0::Trap::Syscall32 => {
                // Back with `iretq`, into the mode the app was in (`regs.cs`).
                self.after_syscall = false;
                Event::Syscall32
            }
            ring0::Trap::Exception {
                vector: ring0::VECTOR_PAGE_FAULT,
                error_code,
                cr2,
            } => {
                self.after_syscall = false;
                if cr2 == ring0::syscall_entry_address() && error_code & 4 != 0 {
                    // The CPU jumped to LSTAR but stayed in ring 3: `syscall` is broken on this
                    // (para)virtual CPU. No app can run here; say so instead of killing the app.
                    panic!("{}", SYSCALL_BROKEN);
                }
                let write = error_code & 2 != 0;
                let execute = error_code & 16 != 0;
                Event::Fault {
                    addr: cr2,
                    access: Access {
                        read: !write && !execute,
                        write,
                        execute,
                    },
                }
            }
            ring0::Trap::Exception { vector: KICK, .. } => {
                self.after_syscall = false;
                Event::Interrupt
            }
            ring0::Trap::Exception {
                vector, error_code, ..
            } => {
                self.after_syscall = false;
                Event::Exception { vector, error_code }
            }
        })
    }
}

impl Platform for KvmPlatform {
    type AddressSpace = KvmAddressSpace;
    type Context = KvmContext;

    fn name(&self) -> &'static str {
        "kvm"
    }

    fn new_address_space(&mut self) -> Result<KvmAddressSpace, Errno> {
        let pm = DirectMap {
            size: self.mem.size(),
        };
        let pt = PageTables::new_sharing_upper(&self.kernel, &pm, &mut Frames(&self.mem))
            .map_err(|_| ENOMEM)?;
        Ok(KvmAddressSpace {
            pt: Some(pt),
            mem: self.mem.clone(),
            kernel_root: self.kernel.root(),
            pcid: alloc_pcid(),
            stale: true,
        })
    }

    const PREEMPT_ON_REQUEST: bool = true;

    fn preempt_after(&mut self, ns: u64) {
        crate::hypercall::preempt_after(ns);
    }

    fn new_context(&mut self) -> Result<KvmContext, Errno> {
        Ok(KvmContext {
            fpu: Box::new(ring0::FpuState::new()),
            after_syscall: false,
        })
    }
}

//! The app's extended register state (x87, SSE, AVX, AVX-512, ... : everything XSAVE covers)
//! per [`Context`], for address spaces whose stub several contexts take turns on (the threads
//! of one process, M:1 on one stub thread).
//!
//! As on kvm (`KvmContext` and its `FPU_OWNER`), the state is switched lazily: the address
//! space remembers which context's state is live in its stub ([`Owner`], a weak reference to
//! that context's [`Saved`] buffer, so a dropped context leaves no dangling owner), and a
//! switch by any other context first saves the live state into the owner's buffer, then loads
//! its own (or, for a context that never ran, the initial state: nothing of another thread's,
//! or of `vmm`'s own registers inherited by the stub, leaks into it).
//!
//! Images are in the standard (non-compacted) XSAVE format, as signal frames and
//! `PTRACE_GETREGSET(NT_X86_XSTATE)` have them: the 512-byte FXSAVE area, the 64-byte header
//! (`XSTATE_BV` at 512), then each component at the offset CPUID leaf 0xD gives it. An image
//! may be shorter than another (512 bytes: legacy only); [`copy_image`] converts, keeping only
//! the components both sides hold and the destination may load (the rest start in their init
//! state).
//!
//! [`Context`]: guest_sentry::platform::Context

use std::sync::{Arc, Mutex, OnceLock, Weak};

use guest_sentry::errno::{Errno, EINVAL};
use guest_sentry::platform::FXSAVE_SIZE;
pub(crate) use guest_sentry::xsave::{initial_legacy, normalize, HEADER, HEADER_END, LEGACY_MASK};
use guest_sentry::xsave::{rd_u64, LEGACY_HW};

/// The AMX components (TILECFG, TILEDATA): never granted to a sandboxed app (the host's
/// `ARCH_REQ_XCOMP_PERM` is not reachable from it), and too big for the fast page.
pub(crate) const AMX_MASK: u64 = 0b11 << 17;

/// This host's XSAVE layout.
pub(crate) struct Layout {
    /// XCR0: the user state components the kernel enabled (0: no XSAVE, legacy images only).
    pub(crate) xcr0: u64,
    /// Standard-format (offset, size) of each component `i >= 2` enabled in XCR0.
    comp: [(u32, u32); 64],
}

impl Layout {
    fn probe() -> Layout {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        let mut l = Layout {
            xcr0: 0,
            comp: [(0, 0); 64],
        };
        let leaf1 = __cpuid(1);
        const OSXSAVE: u32 = 1 << 27;
        if leaf1.ecx & OSXSAVE == 0 {
            return l;
        }
        let (lo, hi): (u32, u32);
        // SAFETY: XGETBV(0) is valid once the OS enabled XSAVE (CPUID.1:ECX.OSXSAVE, above).
        unsafe {
            std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi,
                options(nomem, nostack, preserves_flags))
        };
        l.xcr0 = (hi as u64) << 32 | lo as u64;
        for i in 2..63 {
            if l.xcr0 & (1 << i) != 0 {
                let c = __cpuid_count(0xd, i);
                l.comp[i as usize] = (c.ebx, c.eax);
            }
        }
        l
    }

    /// The components (of XCR0) whose area lies inside the first `len` bytes of an image.
    pub(crate) fn within(&self, len: usize) -> u64 {
        if len < FXSAVE_SIZE {
            return 0;
        }
        if len < HEADER_END {
            return LEGACY_MASK;
        }
        let mut m = LEGACY_MASK;
        for (i, &(off, size)) in self.comp.iter().enumerate().skip(2) {
            if self.xcr0 & (1 << i) != 0 && off as usize + size as usize <= len {
                m |= 1 << i;
            }
        }
        m
    }

    /// Standard-format offset and size of component `i` (2..63; 0 where XCR0 lacks it).
    #[cfg(test)]
    pub(crate) fn component(&self, i: usize) -> (usize, usize) {
        (self.comp[i].0 as usize, self.comp[i].1 as usize)
    }

    /// The bytes an image of the components in `mask` needs (at least the legacy area).
    pub(crate) fn size(&self, mask: u64) -> usize {
        let mut end = if mask & !LEGACY_MASK != 0 {
            HEADER_END
        } else {
            FXSAVE_SIZE
        };
        for (i, &(off, size)) in self.comp.iter().enumerate().skip(2) {
            if mask & (1 << i) != 0 {
                end = end.max(off as usize + size as usize);
            }
        }
        end
    }
}

pub(crate) fn layout() -> &'static Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    L.get_or_init(Layout::probe)
}

/// Copies the state in `src` into the image `dst` (both at least 512 bytes): the legacy area
/// (but its software-reserved bytes) always; with a header in `dst`, a fresh header whose
/// `XSTATE_BV` keeps the components `src` holds that `dst` has room for and `dst_mask` allows,
/// and those components' bytes. A component not carried over is restored to its init state.
pub(crate) fn copy_image(dst: &mut [u8], dst_mask: u64, src: &[u8]) {
    dst[..LEGACY_HW].copy_from_slice(&src[..LEGACY_HW]);
    if dst.len() < HEADER_END {
        return;
    }
    let l = layout();
    let src_bv = if src.len() >= HEADER_END {
        rd_u64(src, HEADER) | LEGACY_MASK
    } else {
        LEGACY_MASK
    };
    let bv = src_bv & l.within(src.len()) & l.within(dst.len()) & (dst_mask | LEGACY_MASK);
    // XSTATE_BV, XCOMP_BV 0 (standard format), the reserved rest zero: what XRSTOR accepts.
    dst[HEADER..HEADER_END].fill(0);
    dst[HEADER..HEADER + 8].copy_from_slice(&bv.to_le_bytes());
    let n = dst.len().min(src.len());
    if n > HEADER_END {
        dst[HEADER_END..n].copy_from_slice(&src[HEADER_END..n]);
    }
}

/// The images a platform hands the Sentry for the components in `mask` (0: legacy only):
/// their XCR0 bits and size ([`guest_sentry::platform::Context::xstate_layout`]).
pub(crate) fn layout_for(mask: u64) -> (u64, usize) {
    if mask == 0 {
        (0, FXSAVE_SIZE)
    } else {
        (mask, layout().size(mask))
    }
}

/// `src` as the Sentry sees images under `mask`: [`layout_for`]'s size, normalized, the
/// software-reserved bytes zero.
pub(crate) fn export(src: &[u8], mask: u64) -> Vec<u8> {
    let (_, size) = layout_for(mask);
    let mut v = vec![0u8; size];
    copy_image(&mut v, mask, src);
    normalize(&mut v);
    v
}

/// Whether `img` is an image the Sentry may hand a platform under `mask`: legacy only, or
/// whole.
pub(crate) fn check_len(img: &[u8], mask: u64) -> Result<(), Errno> {
    if img.len() == FXSAVE_SIZE || img.len() == layout_for(mask).1 {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// How a platform reaches the state live in an address space's stub (at its current event).
pub(crate) trait Live {
    /// The live state, as a standard-format image (at least the 512-byte legacy area).
    fn save_live(&mut self) -> Result<Vec<u8>, Errno>;
    /// Makes `img` (at least 512 bytes) the live state: what the app resumes with. `fresh`:
    /// no context ran in this address space yet (the live state is the stub's start state);
    /// a platform may then load a legacy-only image into the legacy part alone.
    fn load_live(&mut self, img: &[u8], fresh: bool) -> Result<(), Errno>;
}

/// A context's saved image: `None` while its state is live in a stub (or before it ever ran:
/// it then starts from the initial state).
type Slot = Mutex<Option<Vec<u8>>>;

/// One context's extended state, when it is not the one live in its address space.
#[derive(Default)]
pub(crate) struct Saved(Arc<Slot>);

/// Which context's state is live in an address space's stub (none: nobody's, e.g. its owner
/// was dropped, or no context ran yet), and whether any context ever ran there.
#[derive(Default)]
pub(crate) struct Owner(Weak<Slot>, bool);

impl Saved {
    /// Whether this context's state is the one live in `owner`'s address space.
    pub(crate) fn owns(&self, owner: &Owner) -> bool {
        // A live Weak keeps its allocation, so no other context can have this address.
        std::ptr::eq(Weak::as_ptr(&owner.0), Arc::as_ptr(&self.0))
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes this context's state the live one: the owner's (if any, still alive) is saved
    /// into its buffer, this one's (or the initial state) loaded. Nothing when it already is.
    pub(crate) fn take_over(&self, owner: &mut Owner, live: &mut impl Live) -> Result<(), Errno> {
        if self.owns(owner) {
            return Ok(());
        }
        if let Some(prev) = owner.0.upgrade() {
            let mut img = live.save_live()?;
            normalize(&mut img);
            *prev.lock().unwrap_or_else(|e| e.into_inner()) = Some(img);
        }
        // Nobody's state is live until ours is loaded.
        owner.0 = Weak::new();
        let mine = self.slot().take();
        let init = initial_legacy();
        live.load_live(mine.as_deref().unwrap_or(&init), !owner.1)?;
        owner.0 = Arc::downgrade(&self.0);
        owner.1 = true;
        Ok(())
    }

    /// The saved state (for a context that does not own its address space's stub): the
    /// initial state for one that never ran.
    pub(crate) fn image(&self) -> Vec<u8> {
        match &*self.slot() {
            Some(img) => img.clone(),
            None => initial_legacy().to_vec(),
        }
    }

    /// Replaces the saved state (of a context that does not own its address space's stub):
    /// what it resumes with.
    pub(crate) fn set_image(&self, img: &[u8]) {
        let mut img = img.to_vec();
        normalize(&mut img);
        *self.slot() = Some(img);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_only_what_fits() {
        let l = layout();
        let full = l.size(l.xcr0 & !AMX_MASK);
        let mut src = vec![0xaau8; full];
        src[HEADER..HEADER_END].fill(0);
        src[HEADER..HEADER + 8].copy_from_slice(&(l.xcr0 & !AMX_MASK).to_le_bytes());
        // Into a legacy-only image: just the legacy bytes.
        let mut small = vec![0u8; FXSAVE_SIZE];
        copy_image(&mut small, u64::MAX, &src);
        assert!(small[..LEGACY_HW].iter().all(|&b| b == 0xaa));
        assert!(small[LEGACY_HW..].iter().all(|&b| b == 0));
        // From a legacy-only image: x87 and SSE present, everything else init.
        let mut big = vec![0x55u8; full];
        copy_image(&mut big, u64::MAX, &initial_legacy());
        if full >= HEADER_END {
            assert_eq!(rd_u64(&big, HEADER), LEGACY_MASK);
            assert!(big[HEADER + 8..HEADER_END].iter().all(|&b| b == 0));
        }
        // Same size: everything, under the mask.
        let mut same = vec![0u8; full];
        copy_image(&mut same, LEGACY_MASK, &src);
        if full >= HEADER_END {
            assert_eq!(rd_u64(&same, HEADER), LEGACY_MASK);
        }
    }
}

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

use guest_sentry::errno::Errno;
use guest_sentry::platform::FXSAVE_SIZE;

/// Where the XSAVE header starts and ends in a standard-format image.
pub(crate) const HEADER: usize = 512;
pub(crate) const HEADER_END: usize = 576;
/// x87 and SSE: the components the legacy area holds.
pub(crate) const LEGACY_MASK: u64 = 0b11;
/// The AMX components (TILECFG, TILEDATA): never granted to a sandboxed app (the host's
/// `ARCH_REQ_XCOMP_PERM` is not reachable from it), and too big for the fast page.
pub(crate) const AMX_MASK: u64 = 0b11 << 17;
/// Bytes 464..512 of the legacy area are software-reserved (a signal frame's format marker):
/// never copied between images.
const LEGACY_HW: usize = 464;

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

fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The initial x87/SSE state (as after `execve`): FCW 0x37f, MXCSR 0x1f80, all else zero.
pub(crate) fn initial_legacy() -> [u8; FXSAVE_SIZE] {
    let mut fx = [0u8; FXSAVE_SIZE];
    fx[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
    fx[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    fx
}

/// Makes an image's legacy area say what a restore of it would load: XSAVE may leave the x87
/// or XMM bytes unwritten (stale) for a component in its init state (`XSTATE_BV` bit clear);
/// they are set to that init state and the bits set, so the legacy area can be read or
/// modified on its own. MXCSR is always written.
pub(crate) fn normalize(img: &mut [u8]) {
    if img.len() < HEADER_END {
        return;
    }
    let bv = rd_u64(img, HEADER);
    if bv & 1 == 0 {
        // x87 init: FCW 0x37f, FSW/FTW/FOP/FIP/FDP 0, ST0-7 zero.
        let mxcsr: [u8; 8] = img[24..32].try_into().unwrap();
        img[0..160].fill(0);
        img[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        img[24..32].copy_from_slice(&mxcsr);
    }
    if bv & 2 == 0 {
        img[160..416].fill(0); // XMM0-15
    }
    img[HEADER..HEADER + 8].copy_from_slice(&(bv | LEGACY_MASK).to_le_bytes());
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

    /// The legacy (FXSAVE) part of the saved state (for a context that does not own its
    /// address space's stub).
    pub(crate) fn legacy(&self) -> [u8; FXSAVE_SIZE] {
        match &*self.slot() {
            Some(img) => img[..FXSAVE_SIZE].try_into().unwrap(),
            None => initial_legacy(),
        }
    }

    /// Replaces the legacy part of the saved state (the rest is kept, or initial).
    pub(crate) fn set_legacy(&self, fx: &[u8; FXSAVE_SIZE]) {
        let mut slot = self.slot();
        let img = slot.get_or_insert_with(|| initial_legacy().to_vec());
        img[..LEGACY_HW].copy_from_slice(&fx[..LEGACY_HW]);
        if img.len() >= HEADER_END {
            // Saved images are normalized: x87 and SSE are marked present already.
            img[HEADER] |= LEGACY_MASK as u8;
        }
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

    #[test]
    fn normalize_fills_init_components() {
        if layout().xcr0 == 0 {
            return;
        }
        let mut img = vec![0xffu8; HEADER_END];
        img[HEADER..HEADER_END].fill(0);
        img[24..32].copy_from_slice(&0x1f80u64.to_le_bytes());
        normalize(&mut img);
        assert_eq!(&img[..416], &initial_legacy()[..416]);
        assert_eq!(rd_u64(&img, HEADER), LEGACY_MASK);
    }
}

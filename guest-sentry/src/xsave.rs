//! The app's x87/SSE/AVX/... register state as an XSAVE standard-format image — the layout
//! signal frames, `PTRACE_GETREGSET(NT_X86_XSTATE)` and every platform's saved contexts share:
//! the 512-byte FXSAVE area, the 64-byte header (`XSTATE_BV` at 512), then each enabled
//! component at the offset CPUID leaf 0xD gives it. Pure byte logic, for the Sentry and every
//! platform.

/// Size of the FXSAVE (legacy) area.
pub const LEGACY_SIZE: usize = 512;
/// Where the XSAVE header starts and ends.
pub const HEADER: usize = 512;
pub const HEADER_END: usize = 576;
/// x87 and SSE: the components the legacy area holds.
pub const LEGACY_MASK: u64 = 0b11;
/// Bytes 464..512 of the legacy area are software-reserved (a signal frame's `_fpx_sw_bytes`).
pub const LEGACY_HW: usize = 464;

/// `_fpx_sw_bytes.magic1` / the word after the image: a signal frame's state is XSAVE format.
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// The initial x87/SSE state (as after `execve`, and as a signal handler starts): FCW 0x37f,
/// MXCSR 0x1f80, all else zero.
pub fn initial_legacy() -> [u8; LEGACY_SIZE] {
    let mut fx = [0u8; LEGACY_SIZE];
    fx[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
    fx[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    fx
}

pub fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Makes an image's legacy area say what a restore of it would load: XSAVE may leave the x87
/// or XMM bytes unwritten (stale) for a component in its init state (`XSTATE_BV` bit clear);
/// they are set to that init state and the bits set (as Linux does in signal frames), so the
/// legacy area can be read or changed on its own. MXCSR is always written.
pub fn normalize(img: &mut [u8]) {
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

/// Why an image from the app (a signal frame at `rt_sigreturn`) cannot be loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct BadImage;

/// Makes an image the app supplied safe to load on a CPU whose XCR0 is `features` (0: no
/// XSAVE) and whose MXCSR mask is `mxcsr_mask`, as Linux's `rt_sigreturn` does: MXCSR bits
/// the CPU lacks cleared, `XSTATE_BV` limited to `allowed & features` (a component not kept
/// is loaded in its init state). A header whose reserved bytes (`XCOMP_BV` and the rest) are
/// not zero is refused: the restore would fault, and Linux kills with SIGSEGV for it.
pub fn sanitize(
    img: &mut [u8],
    features: u64,
    allowed: u64,
    mxcsr_mask: u32,
) -> Result<(), BadImage> {
    if img.len() < LEGACY_SIZE {
        return Err(BadImage);
    }
    let mxcsr = rd_u32(img, 24) & mxcsr_mask;
    img[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    if img.len() >= HEADER_END {
        if features == 0 {
            return Err(BadImage);
        }
        if img[HEADER + 8..HEADER_END].iter().any(|&b| b != 0) {
            return Err(BadImage);
        }
        let bv = rd_u64(img, HEADER) & features & (allowed | LEGACY_MASK);
        img[HEADER..HEADER + 8].copy_from_slice(&bv.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_fills_init_components() {
        let mut img = [0xffu8; HEADER_END];
        img[HEADER..HEADER_END].fill(0);
        img[24..32].copy_from_slice(&0x1f80u64.to_le_bytes());
        normalize(&mut img);
        assert_eq!(&img[..416], &initial_legacy()[..416]);
        assert_eq!(rd_u64(&img, HEADER), LEGACY_MASK);
    }

    #[test]
    fn sanitize_limits_and_refuses() {
        let mut img = [0u8; 1024];
        img[24..28].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        img[HEADER..HEADER + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(sanitize(&mut img, 0b111, u64::MAX, 0xffbf), Ok(()));
        assert_eq!(rd_u32(&img, 24), 0xffbf);
        assert_eq!(rd_u64(&img, HEADER), 0b111);
        // The frame's xfeatures narrow it further; legacy stays.
        assert_eq!(sanitize(&mut img, 0b111, 0, 0xffbf), Ok(()));
        assert_eq!(rd_u64(&img, HEADER), 0b11);
        img[HEADER + 8] = 1; // XCOMP_BV: compacted format
        assert_eq!(sanitize(&mut img, 0b111, u64::MAX, 0xffbf), Err(BadImage));
        // An XSAVE image for a CPU without XSAVE.
        let mut img = [0u8; HEADER_END];
        assert_eq!(sanitize(&mut img, 0, u64::MAX, 0xffbf), Err(BadImage));
        let mut legacy = [0u8; LEGACY_SIZE];
        assert_eq!(sanitize(&mut legacy, 0, u64::MAX, 0xffbf), Ok(()));
    }
}

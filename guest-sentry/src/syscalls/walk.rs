//! Path resolution that the host cannot do for the sandbox: symlinks made in the overlay,
//! host symlinks whose targets live in the overlay, and host symlinks into the Sentry's own
//! trees (`/proc`, `/dev`, `/sys`: `/etc/mtab -> ../proc/self/mounts`). A plain path over the
//! host tree is still resolved by the host in one call (`openat2(RESOLVE_IN_ROOT)`); only
//! these cases are walked here, component by component, with Linux's limit of 40 symlinks.
//!
//! The host refuses (EACCES) anything that resolves onto a filesystem the sandbox must not
//! see from the host — procfs, sysfs, devices (`vmm/src/host.rs`) — so a symlink that leads
//! there is never followed by the host: the caller walks the path here instead (see
//! [`retry_walked`]) and lands in the Sentry's own tree, or gets the refusal.

use alloc::vec::Vec;

use crate::abi::{OPEN_NO_SYMLINKS, OPEN_PATH};
use crate::errno::{Errno, EACCES, ELOOP, ENAMETOOLONG, ENOENT};
use crate::kernel::Kernel;
use crate::overlay::in_shm;

use super::flags::{S_IFLNK, S_IFMT};

/// Linux's limit on symlinks followed in one resolution (`MAXSYMLINKS`).
pub const MAX_LINKS: u32 = 40;
const PATH_MAX: usize = 4096;

/// The trees the Sentry serves itself: nothing under them is ever the host's.
pub fn sentry_owned(np: &[u8]) -> bool {
    [&b"/proc"[..], b"/dev", b"/sys"]
        .iter()
        .any(|top| crate::overlay::under(np, top))
}

/// The Sentry's own trees whose links its own nodes define (`/proc/self`, `/dev/fd`): all
/// but `/dev/shm`, a directory of the overlay with the overlay's symlinks.
fn own_tree(np: &[u8]) -> bool {
    sentry_owned(np) && !in_shm(np)
}

/// The path to look up for the normalized absolute `np`: `np` itself when the host resolves
/// it as the sandbox would, else `np` walked here (`follow`: also a final symlink).
pub fn resolve(k: &Kernel, np: &[u8], follow: bool) -> Result<Vec<u8>, Errno> {
    if (k.overlay.is_empty() && !in_shm(np)) || own_tree(np) {
        return Ok(np.to_vec());
    }
    // An overlay symlink on the way (the host knows nothing of it).
    let mut end = 1;
    while let Some(i) = np[end..].iter().position(|&b| b == b'/') {
        if super::ovl::is_link(k, &np[..end + i]) {
            return walk(k, np, follow, &no_own_links);
        }
        end += i + 1;
    }
    if follow && (super::ovl::is_link(k, np) || host_link_to_overlay(k, np)) {
        return walk(k, np, follow, &no_own_links);
    }
    Ok(np.to_vec())
}

/// Runs `op` on `np`; where the host refused it or found nothing, and a walk here resolves
/// the path differently (through the overlay or into the Sentry's own trees), runs it again
/// on that path.
pub fn retry_walked<T>(
    k: &mut Kernel,
    np: &[u8],
    follow: bool,
    mut op: impl FnMut(&mut Kernel, &[u8]) -> Result<T, Errno>,
) -> Result<T, Errno> {
    match op(k, np) {
        Err(e) if e == EACCES || (e == ENOENT && (!k.overlay.is_empty() || via_link(k, np))) => {
            match walk(k, np, follow, &no_own_links) {
                Ok(w) if w != np => op(k, &w),
                Ok(_) => Err(e),
                Err(we) if e == ENOENT => Err(we),
                Err(_) => Err(e),
            }
        }
        r => r,
    }
}

/// Whether the host's resolution of `np` goes through a symlink (its target may be one of the
/// Sentry's trees, which the host does not have: the Sentry must walk it).
fn via_link(k: &Kernel, np: &[u8]) -> bool {
    match k.host.open(np, OPEN_PATH | OPEN_NO_SYMLINKS) {
        Ok(h) => {
            k.host.close(h);
            false
        }
        Err(e) => e == ELOOP,
    }
}

/// Whether `np` is a host symlink (not hidden by the overlay) — the overlay may hold what it
/// points at.
fn host_link_to_overlay(k: &Kernel, np: &[u8]) -> bool {
    matches!(super::ovl::find(k, np), super::ovl::Found::Host)
        && k.host
            .stat(np, true)
            .is_ok_and(|st| st.mode & S_IFMT == S_IFLNK)
}

/// The target of the symlink at the symlink-free path `p`, if it is one: overlay first, then
/// the host.
fn link_at(k: &Kernel, p: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    match super::ovl::find(k, p) {
        super::ovl::Found::Gone => return Err(ENOENT),
        super::ovl::Found::Upper(_) => return Ok(k.overlay.link(p).map(<[u8]>::to_vec)),
        super::ovl::Found::Host => {}
    }
    let st = k.host.stat(p, true)?;
    if st.mode & S_IFMT != S_IFLNK {
        return Ok(None);
    }
    let mut buf = alloc::vec![0u8; PATH_MAX];
    let n = k.host.readlink(p, &mut buf)? as usize;
    buf.truncate(n);
    Ok(Some(buf))
}

/// For [`walk`] where the Sentry's own links do not matter.
pub fn no_own_links(_: &[u8]) -> Option<Vec<u8>> {
    None
}

/// Resolves `path` (absolute) component by component: `.` and `..` (physically: never above
/// `/`, and after the links before them are followed), symlinks in the overlay and on the
/// host (at most [`MAX_LINKS`], then ELOOP), the last one only if `follow`. In the Sentry's
/// own trees, `own` says which paths are links (`/proc/self/root`, `/dev/fd`): they are
/// followed on the way to a later component; a last one is left to the caller's lookup. The
/// result is absolute and normalized; it names something that need not exist (the caller's
/// lookup reports that).
pub fn walk(
    k: &Kernel,
    path: &[u8],
    follow: bool,
    own: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, Errno> {
    // Components still to resolve, last first (so a link's target is pushed in front).
    let mut todo: Vec<Vec<u8>> = components(path).map(<[u8]>::to_vec).rev().collect();
    let mut done: Vec<u8> = Vec::new();
    let mut links = 0u32;
    while let Some(c) = todo.pop() {
        if c == b".." {
            let cut = done.iter().rposition(|&b| b == b'/').unwrap_or(0);
            done.truncate(cut);
            continue;
        }
        let parent_len = done.len();
        done.push(b'/');
        done.extend_from_slice(&c);
        if done.len() > PATH_MAX {
            return Err(ENAMETOOLONG);
        }
        if todo.is_empty() && (!follow || own_tree(&done)) {
            break;
        }
        let found = if own_tree(&done) {
            Ok(own(&done))
        } else {
            link_at(k, &done)
        };
        let target = match found {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            // Nothing there: the rest cannot resolve; the caller's lookup says why.
            Err(_) => {
                while let Some(rest) = todo.pop() {
                    done.push(b'/');
                    done.extend_from_slice(&rest);
                }
                break;
            }
        };
        links += 1;
        if links > MAX_LINKS {
            return Err(ELOOP);
        }
        if target.is_empty() {
            return Err(ENOENT);
        }
        done.truncate(if target[0] == b'/' { 0 } else { parent_len });
        todo.extend(components(&target).map(<[u8]>::to_vec).rev());
    }
    if done.is_empty() {
        done.push(b'/');
    }
    Ok(done)
}

/// Whether `path` has a `..` component (lexical folding would then be wrong wherever a
/// symlink comes before it).
pub fn has_dotdot(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|c| c == b"..")
}

fn components(p: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

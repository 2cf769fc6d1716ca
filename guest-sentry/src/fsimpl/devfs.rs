//! The sandbox's `/dev` and `/sys`, which are the Sentry's own: nothing under them is ever
//! the host's (a host device opened by path would reach its driver). `/dev` holds the
//! devices the Sentry serves ([`crate::file::Dev`], `tty`) and the links Linux has there
//! (`fd`, `stdin`, `stdout`, `stderr`); `/sys` is an empty directory for now. `/dev/shm` is a
//! directory of the overlay, the Sentry's tmpfs ([`crate::overlay::SHM_DIR`]): lookups under
//! it are the overlay's. `ptmx` and `pts/` are the pseudo-terminals ([`crate::tty`]), served
//! before this is asked. Not yet: `full`.

use alloc::vec::Vec;

use super::procfs::Node;
use crate::errno::{Errno, ENOENT};

use super::procfs::{DT_DIR, DT_LNK};

const DT_CHR: u8 = 2;

/// The links in `/dev` and their targets.
const LINKS: [(&[u8], &[u8]); 4] = [
    (b"fd", b"/proc/self/fd"),
    (b"stdin", b"/proc/self/fd/0"),
    (b"stdout", b"/proc/self/fd/1"),
    (b"stderr", b"/proc/self/fd/2"),
];

/// What `np` (absolute, normalized) is in `/dev` or `/sys`, other than a device: `None`
/// outside them (or for a device, which the caller serves), ENOENT for anything else there.
pub fn lookup(np: &[u8]) -> Option<Result<Node, Errno>> {
    if np == b"/sys" {
        return Some(Ok(Node::Dir(Vec::new())));
    }
    if np.starts_with(b"/sys/") {
        return Some(Err(ENOENT));
    }
    if np == b"/dev" {
        let mut entries: Vec<(Vec<u8>, u8)> = [&b"null"[..], b"zero", b"random", b"urandom"]
            .iter()
            .chain(&[&b"tty"[..], b"ptmx"])
            .map(|n| (n.to_vec(), DT_CHR))
            .collect();
        entries.push((b"pts".to_vec(), DT_DIR));
        entries.extend(LINKS.iter().map(|(n, _)| (n.to_vec(), DT_LNK)));
        entries.push((b"shm".to_vec(), DT_DIR));
        return Some(Ok(Node::Dir(entries)));
    }
    if crate::overlay::in_shm(np) {
        return None;
    }
    let name = np.strip_prefix(b"/dev/")?;
    if crate::file::Dev::at(np).is_some() || name == b"tty" {
        return None;
    }
    if let Some(i) = name.iter().position(|&b| b == b'/') {
        // A path on through a device is not one (ENOTDIR, as Linux says for /dev/null/x).
        let first = &np[..5 + i];
        if crate::file::Dev::at(first).is_some() || first == b"/dev/tty" || first == b"/dev/ptmx" {
            return Some(Err(crate::errno::ENOTDIR));
        }
    }
    Some(
        LINKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| Node::Link(t.to_vec()))
            .ok_or(ENOENT),
    )
}

/// `np` with a leading `/dev/fd`, `/dev/stdin`, … link followed (they lead into `/proc`),
/// when it is followed: the last component of `np` only if `follow`.
pub fn follow_link(np: &[u8], follow: bool) -> Option<Vec<u8>> {
    let name = np.strip_prefix(b"/dev/")?;
    let (first, rest) = match name.iter().position(|&b| b == b'/') {
        Some(i) => (&name[..i], &name[i..]),
        None if follow => (name, &b""[..]),
        None => return None,
    };
    let (_, target) = LINKS.iter().find(|(n, _)| *n == first)?;
    Some([*target, rest].concat())
}

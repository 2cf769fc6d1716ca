//! Extended attributes (`{,l,f}{set,get,list,remove}xattr`) of the overlay's files,
//! directories and symlinks, as tmpfs keeps them: the `user.` namespace (regular files and
//! directories only: on anything else writes are EPERM and reads ENODATA, Linux's
//! `xattr_permission`), and `trusted.` and `security.` (the sandbox's root may). A host
//! entry has none until one is set, which copies it up. `system.` (POSIX ACLs) is not kept
//! (EOPNOTSUPP), nor are attributes written through to the host (`--rw`).

use alloc::vec::Vec;

use super::flags::{S_IFDIR, S_IFMT, S_IFREG};
use super::io::file;
use super::ovl;
use crate::errno::{Errno, SysResult, E2BIG, EINVAL, ENODATA, EOPNOTSUPP, EPERM, ERANGE};
use crate::file::File;
use crate::kernel::{Kernel, Task};
use crate::overlay::FileData;
use crate::platform::Platform;

const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: u64 = 65536;

/// What a call acts on: an overlay inode a descriptor holds, or a path.
enum Target {
    Inode(alloc::rc::Rc<FileData>),
    Path(Vec<u8>),
    /// A pipe, socket or other file that is no file of the overlay: it has none.
    Other,
}

/// The path (`follow`: through a final symlink) or descriptor argument.
fn target<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    arg: u64,
    by_fd: bool,
    follow: bool,
) -> Result<Target, Errno> {
    if !by_fd {
        return ovl::final_path(k, t, super::io::AT_FDCWD as u64, arg, follow).map(Target::Path);
    }
    let of = file(t, arg)?;
    match &of.file {
        File::Mem { data, .. } => Ok(Target::Inode(data.clone())),
        File::Host(h) => Ok(Target::Path(h.path.clone())),
        File::Synthetic {
            at: Some((p, _)), ..
        } => Ok(Target::Path(p.clone())),
        _ => Ok(Target::Other),
    }
}

/// The attribute name at `addr`: 1..=255 bytes (ERANGE) in a namespace kept here
/// (EOPNOTSUPP otherwise).
fn name<P: Platform>(t: &mut Task<P>, addr: u64) -> Result<Vec<u8>, Errno> {
    let n = t.mm.lock().read_cstr(addr, XATTR_NAME_MAX + 1)?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return Err(ERANGE);
    }
    if !(n.starts_with(b"user.") || n.starts_with(b"trusted.") || n.starts_with(b"security.")) {
        return Err(EOPNOTSUPP);
    }
    Ok(n)
}

/// Linux's `xattr_permission` for `user.` names: only regular files and directories carry
/// them; a write elsewhere is EPERM, a read ENODATA.
fn user_allowed(name: &[u8], file_type: u32, write: bool) -> Result<(), Errno> {
    if name.starts_with(b"user.") && !matches!(file_type, S_IFREG | S_IFDIR) {
        return Err(if write { EPERM } else { ENODATA });
    }
    Ok(())
}

/// The file type of a target.
fn type_of(k: &Kernel, target: &Target) -> Result<u32, Errno> {
    match target {
        Target::Inode(_) => Ok(S_IFREG),
        Target::Path(np) => kind_of(k, np),
        Target::Other => Ok(0),
    }
}

/// The file type of a path target (user attributes live on files and directories only).
fn kind_of(k: &Kernel, np: &[u8]) -> Result<u32, Errno> {
    Ok(ovl::stat(k, np, true)?.mode & S_IFMT)
}

fn now(k: &Kernel) -> i64 {
    k.host.now(crate::host::Clock::Realtime) as i64
}

/// Runs `f` on the target's attributes (None: a host entry, which has none) — read only.
fn read<R>(
    k: &Kernel,
    target: &Target,
    f: impl FnOnce(Option<&crate::overlay::Xattrs>) -> R,
) -> Result<R, Errno> {
    match target {
        Target::Inode(d) => Ok(f(Some(&d.xattrs()))),
        Target::Other => Ok(f(None)),
        Target::Path(np) => {
            kind_of(k, np)?;
            // A file's attributes are its data's; a directory's or symlink's its node's.
            match k.overlay.get(np) {
                Some(n) => match &n.kind {
                    crate::overlay::Kind::File(d) => Ok(f(Some(&d.xattrs()))),
                    _ => Ok(f(Some(n.xattrs_ref()))),
                },
                None => Ok(f(None)),
            }
        }
    }
}

/// `setxattr`, `lsetxattr`, `fsetxattr`.
pub fn set<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    by_fd: bool,
    follow: bool,
) -> SysResult {
    let [arg, name_addr, value, size, flags, _] = a;
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(EINVAL);
    }
    let name = name(t, name_addr)?;
    if size > XATTR_SIZE_MAX {
        return Err(E2BIG);
    }
    let mut val = alloc::vec![0u8; size as usize];
    t.mm.lock().copy_in(value, &mut val)?;
    let target = target(k, t, arg, by_fd, follow)?;
    user_allowed(&name, type_of(k, &target)?, true)?;
    let apply = |x: &mut crate::overlay::Xattrs| -> (Result<(), Errno>, bool) {
        let exists = x.contains_key(&name);
        if flags & XATTR_CREATE != 0 && exists {
            return (Err(crate::errno::EEXIST), false);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return (Err(ENODATA), false);
        }
        x.insert(name.clone(), val.clone());
        (Ok(()), true)
    };
    let now = now(k);
    match target {
        Target::Inode(d) => d.with_xattrs(now, apply).map(|()| 0),
        Target::Other => Err(EPERM),
        Target::Path(np) => {
            if ovl::through(k, &np)? {
                return Err(EOPNOTSUPP);
            }
            let st = ovl::stat(k, &np, true)?;
            ovl::writable(k, &np)?;
            ovl::upper_for_metadata(k, &np, &st)?;
            let n = k.overlay.get_mut(&np).ok_or(crate::errno::ENOENT)?;
            n.with_xattrs(now, apply).map(|()| 0)
        }
    }
}

/// `getxattr`, `lgetxattr`, `fgetxattr`: the value's length with `size` 0, ERANGE when it
/// does not fit.
pub fn get<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    by_fd: bool,
    follow: bool,
) -> SysResult {
    let [arg, name_addr, value, size, ..] = a;
    let target = target(k, t, arg, by_fd, follow)?;
    let name = name(t, name_addr)?;
    user_allowed(&name, type_of(k, &target)?, false)?;
    let val = read(k, &target, |x| x.and_then(|x| x.get(&name).cloned()))?.ok_or(ENODATA)?;
    copy_sized(t, value, size, &val)
}

/// The xattr calls' answer: `bytes` to the app's buffer of `size` bytes at `addr` (ERANGE if
/// they do not fit), or only their length when `size` is 0.
fn copy_sized<P: Platform>(t: &mut Task<P>, addr: u64, size: u64, bytes: &[u8]) -> SysResult {
    if size == 0 {
        return Ok(bytes.len() as u64);
    }
    if (size as usize) < bytes.len() {
        return Err(ERANGE);
    }
    t.mm.lock().copy_out(addr, bytes)?;
    Ok(bytes.len() as u64)
}

/// `listxattr`, `llistxattr`, `flistxattr`: the names, each NUL-terminated.
pub fn list<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    by_fd: bool,
    follow: bool,
) -> SysResult {
    let [arg, list, size, ..] = a;
    let target = target(k, t, arg, by_fd, follow)?;
    let names = read(k, &target, |x| {
        let mut out = Vec::new();
        for n in x.into_iter().flat_map(|x| x.keys()) {
            out.extend_from_slice(n);
            out.push(0);
        }
        out
    })?;
    copy_sized(t, list, size, &names)
}

/// `removexattr`, `lremovexattr`, `fremovexattr`.
pub fn remove<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    by_fd: bool,
    follow: bool,
) -> SysResult {
    let [arg, name_addr, ..] = a;
    let name = name(t, name_addr)?;
    let target = target(k, t, arg, by_fd, follow)?;
    user_allowed(&name, type_of(k, &target)?, true)?;
    let now = now(k);
    let apply = |x: &mut crate::overlay::Xattrs| match x.remove(&name) {
        Some(_) => (Ok(0), true),
        None => (Err(ENODATA), false),
    };
    match target {
        Target::Inode(d) => d.with_xattrs(now, apply),
        Target::Other => Err(ENODATA),
        Target::Path(np) => {
            kind_of(k, &np)?;
            if ovl::through(k, &np)? {
                return Err(EOPNOTSUPP);
            }
            match k.overlay.get_mut(&np) {
                Some(n) => n.with_xattrs(now, apply),
                // A host entry has none.
                None => Err(ENODATA),
            }
        }
    }
}

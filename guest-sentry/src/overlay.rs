//! The in-memory overlay over the sandbox root: every write lands here and dies with the
//! sandbox; the host tree is never modified. Entries are keyed by normalized absolute path. A
//! whiteout hides a host entry that was removed or renamed away.
//!
//! File data counts against a budget (the sandbox's memory size, `--memory`) for as long as it
//! exists — open after unlink included: growing past it is ENOSPC, as a full tmpfs says, and
//! never an allocation failure of the Sentry.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, Ref, RefCell};

use crate::errno::{Errno, EFBIG, ENOSPC};
use crate::memfile::MemoryFile;

/// The bytes of an overlay file.
pub struct FileData {
    bytes: RefCell<Vec<u8>>,
    budget: Rc<Budget>,
}

/// What the overlay's files may still hold, shared by all of them.
struct Budget {
    /// Bytes left under the overlay's own limit.
    left: Cell<u64>,
    /// Bytes held by all files.
    held: Cell<u64>,
    /// Where the data counts against the sandbox's memory: frames of the memory file held
    /// back for it (a page per 4 KiB held), so that app memory and overlay data together
    /// stay within `--memory`.
    mem: Option<Rc<MemoryFile>>,
}

impl Budget {
    fn pages(bytes: u64) -> u64 {
        bytes.div_ceil(4096)
    }

    /// Takes `n` more bytes, or ENOSPC.
    fn take(&self, n: u64) -> Result<(), Errno> {
        if n > self.left.get() {
            return Err(ENOSPC);
        }
        let (held, now) = (self.held.get(), self.held.get() + n);
        if let Some(mem) = &self.mem {
            if !mem.reserve(Self::pages(now) - Self::pages(held)) {
                return Err(ENOSPC);
            }
        }
        self.held.set(now);
        self.left.set(self.left.get() - n);
        Ok(())
    }

    /// Gives back `n` bytes.
    fn give(&self, n: u64) {
        let (held, now) = (self.held.get(), self.held.get().saturating_sub(n));
        if let Some(mem) = &self.mem {
            mem.unreserve(Self::pages(held) - Self::pages(now));
        }
        self.held.set(now);
        self.left.set(self.left.get() + n);
    }
}

/// Linux's largest file size (`MAX_LFS_FILESIZE`): offsets beyond it are EFBIG.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

impl FileData {
    pub fn borrow(&self) -> Ref<'_, Vec<u8>> {
        self.bytes.borrow()
    }

    pub fn len(&self) -> u64 {
        self.bytes.borrow().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.borrow().is_empty()
    }

    /// Truncates or extends (with zeros) to `len` bytes.
    pub fn set_len(&self, len: u64) -> Result<(), Errno> {
        if len > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let mut b = self.bytes.borrow_mut();
        let cur = b.len() as u64;
        if len <= cur {
            b.truncate(len as usize);
            b.shrink_to(len as usize);
            self.budget.give(cur - len);
            return Ok(());
        }
        let more = len - cur;
        self.budget.take(more)?;
        // Amortized growth (a file written in small pieces is not copied at every write),
        // exact when doubling does not fit.
        if b.try_reserve(more as usize)
            .or_else(|_| b.try_reserve_exact(more as usize))
            .is_err()
        {
            self.budget.give(more);
            return Err(ENOSPC);
        }
        b.resize(len as usize, 0);
        Ok(())
    }

    /// Writes `src` at `pos`, extending the file as needed.
    pub fn write_at(&self, pos: u64, src: &[u8]) -> Result<(), Errno> {
        let end = pos.checked_add(src.len() as u64).ok_or(EFBIG)?;
        if end > self.len() {
            self.set_len(end)?;
        }
        self.bytes.borrow_mut()[pos as usize..end as usize].copy_from_slice(src);
        Ok(())
    }
}

impl Drop for FileData {
    fn drop(&mut self) {
        let len = self.bytes.get_mut().len() as u64;
        self.budget.give(len);
    }
}

pub enum Kind {
    File(Rc<FileData>),
    Dir,
    /// A symlink made in the sandbox: its target.
    Symlink(Vec<u8>),
    Whiteout,
}

pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub mtime_ns: i64,
    pub ino: u64,
}

pub struct Overlay {
    /// Off with `--ro`: writes fail with EROFS.
    pub enabled: bool,
    nodes: BTreeMap<Vec<u8>, Node>,
    next_ino: u64,
    budget: Rc<Budget>,
}

impl Overlay {
    /// `limit`: the most bytes of file data it holds at once; `mem`: the memory file they
    /// also count against, where they are not already part of it.
    pub fn new(enabled: bool, limit: u64, mem: Option<Rc<MemoryFile>>) -> Self {
        Overlay {
            enabled,
            nodes: BTreeMap::new(),
            next_ino: 0x7000_0000,
            budget: Rc::new(Budget {
                left: Cell::new(limit),
                held: Cell::new(0),
                mem,
            }),
        }
    }

    /// A new file holding `len` zero bytes, charged to the budget (ENOSPC past it).
    pub fn new_file(&self, len: u64) -> Result<Rc<FileData>, Errno> {
        let f = Rc::new(FileData {
            bytes: RefCell::new(Vec::new()),
            budget: self.budget.clone(),
        });
        f.set_len(len)?;
        Ok(f)
    }

    /// Whether the sandbox has written nothing yet (every path is the host's).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The entry at `path`, whiteouts included.
    pub fn get(&self, path: &[u8]) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The target of the symlink made in the overlay at `path`, if that is one.
    pub fn link(&self, path: &[u8]) -> Option<&[u8]> {
        match &self.nodes.get(path)?.kind {
            Kind::Symlink(target) => Some(target),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, path: &[u8]) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    /// Whether `path` or one of its ancestors is whited out (or an ancestor is a file).
    pub fn hidden(&self, path: &[u8]) -> bool {
        let mut p = path;
        loop {
            if let Some(n) = self.nodes.get(p) {
                match n.kind {
                    Kind::Whiteout => return true,
                    Kind::File(_) if p.len() != path.len() => return true,
                    _ => {}
                }
            }
            match p.iter().rposition(|&b| b == b'/') {
                Some(0) | None => return false,
                Some(i) => p = &p[..i],
            }
        }
    }

    pub fn insert(&mut self, path: Vec<u8>, kind: Kind, mode: u32, mtime_ns: i64) {
        self.next_ino += 1;
        self.nodes.insert(
            path,
            Node {
                kind,
                mode,
                mtime_ns,
                ino: self.next_ino,
            },
        );
    }

    pub fn remove(&mut self, path: &[u8]) -> Option<Node> {
        self.nodes.remove(path)
    }

    /// Direct children of directory `dir`: (name, node).
    pub fn children(&self, dir: &[u8]) -> Vec<(Vec<u8>, &Node)> {
        let mut prefix = dir.to_vec();
        if prefix.last() != Some(&b'/') {
            prefix.push(b'/');
        }
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains(&b'/'))
            .map(|(k, n)| (k[prefix.len()..].to_vec(), n))
            .collect()
    }
}

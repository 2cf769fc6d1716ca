//! The in-memory overlay over the sandbox root: every write lands here and dies with the
//! sandbox; the host tree is never modified. Entries are keyed by normalized absolute path. A
//! whiteout hides a host entry that was removed or renamed away.
//!
//! A file's data lives in frames of the memory file, as tmpfs keeps its pages: `read`, `write`
//! and a `MAP_SHARED` mapping see the same bytes, and a page never written is a hole that
//! reads as zero. The frames count against the sandbox's memory (`--memory`) and the
//! overlay's own limit for as long as the file exists — open after unlink included: growing
//! past either is ENOSPC, as a full tmpfs says, and never an allocation failure of the Sentry.
//! A file is an inode ([`FileData`]: its pages, size, mode, times, link count): the paths that
//! name it (hard links) share it.
//!
//! `/dev/shm` is the same kind of directory, the Sentry's own: it exists in every mode
//! (`--ro` and `--rw` included) and never shows the host's `/dev/shm`.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::errno::{Errno, EFBIG, ENOSPC, EPERM};
use crate::memfile::{MemoryFile, PAGE_SIZE};

/// `fcntl` seals (`F_ADD_SEALS`).
pub use linux_raw_sys::general::{
    F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE,
};

/// The Sentry's own tmpfs directory (see the module comment).
pub const SHM_DIR: &[u8] = b"/dev/shm";

/// Whether the normalized path `np` is `dir` or lies under it.
pub fn under(np: &[u8], dir: &[u8]) -> bool {
    np.starts_with(dir) && (np.len() == dir.len() || np[dir.len()] == b'/')
}

/// Whether `np` (absolute, normalized) is `/dev/shm` or lies under it.
pub fn in_shm(np: &[u8]) -> bool {
    under(np, SHM_DIR)
}

/// An overlay file: an inode of the sandbox's tmpfs.
pub struct FileData {
    /// Page index → memory-file offset of its frame, of which this file is one owner (a
    /// shared mapping is another). A page not listed is a hole.
    pages: RefCell<BTreeMap<u64, u64>>,
    len: Cell<u64>,
    /// `F_ADD_SEALS` seals; None where the file takes none (EINVAL, as a file of a disk
    /// filesystem: the overlay stands in for the host's).
    seals: Cell<Option<u32>>,
    mode: Cell<u32>,
    /// Access, modification and status-change times (ns since the epoch). Reads leave the
    /// access time alone, as on a `noatime` mount.
    atime_ns: Cell<i64>,
    mtime_ns: Cell<i64>,
    ctime_ns: Cell<i64>,
    ino: u64,
    /// Owner and group (`chown`; a copied-up host file keeps the host's).
    owner: Cell<(u32, u32)>,
    /// Extended attributes (`user.*`), name → value.
    xattrs: RefCell<Xattrs>,
    /// Paths naming it (none for a memfd, as Linux counts).
    nlink: Cell<u32>,
    /// A `memfd_create` file: never in the tree (linking it elsewhere is EXDEV).
    anon: bool,
    budget: Rc<Budget>,
}

/// What the overlay's files may still hold, shared by all of them.
struct Budget {
    /// The overlay's own limit, in pages, and what is left of it.
    limit: u64,
    left: Cell<u64>,
    /// Where the pages come from.
    mem: Rc<MemoryFile>,
}

impl Budget {
    /// A zero page, or ENOSPC.
    fn take(&self) -> Result<u64, Errno> {
        if self.left.get() == 0 {
            return Err(ENOSPC);
        }
        let off = self.mem.alloc_page().map_err(|_| ENOSPC)?;
        self.left.set(self.left.get() - 1);
        Ok(off)
    }

    /// Drops the file's ownership of the frame at `off`.
    fn give(&self, off: u64) {
        self.mem.free_page(off);
        self.left.set(self.left.get() + 1);
    }
}

/// Linux's largest file size (`MAX_LFS_FILESIZE`): offsets beyond it are EFBIG.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

impl FileData {
    pub fn len(&self) -> u64 {
        self.len.get()
    }

    pub fn is_empty(&self) -> bool {
        self.len.get() == 0
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }

    pub fn nlink(&self) -> u32 {
        self.nlink.get()
    }

    /// Whether it is a `memfd_create` file.
    pub fn is_memfd(&self) -> bool {
        self.anon
    }

    /// Permission bits.
    pub fn mode(&self) -> u32 {
        self.mode.get()
    }

    pub fn set_mode(&self, mode: u32) {
        self.mode.set(mode & 0o7777);
    }

    pub fn mtime_ns(&self) -> i64 {
        self.mtime_ns.get()
    }

    pub fn atime_ns(&self) -> i64 {
        self.atime_ns.get()
    }

    pub fn ctime_ns(&self) -> i64 {
        self.ctime_ns.get()
    }

    /// `utimensat`: the times given (None: left alone); the status changed `now`.
    pub fn set_times(&self, atime: Option<i64>, mtime: Option<i64>, now: i64) {
        if let Some(a) = atime {
            self.atime_ns.set(a);
        }
        if let Some(m) = mtime {
            self.mtime_ns.set(m);
        }
        self.ctime_ns.set(now);
    }

    /// Owner and group.
    pub fn owner(&self) -> (u32, u32) {
        self.owner.get()
    }

    /// A copied-up file keeps the host's owner and group.
    pub fn set_owner(&self, uid: u32, gid: u32) {
        self.owner.set((uid, gid));
    }

    /// Its extended attributes, to read.
    pub fn xattrs(&self) -> core::cell::Ref<'_, Xattrs> {
        self.xattrs.borrow()
    }

    /// Runs `f` on its extended attributes; the status changed `now` if `f` says so (true).
    pub fn with_xattrs<R>(&self, now: i64, f: impl FnOnce(&mut Xattrs) -> (R, bool)) -> R {
        let (r, changed) = f(&mut self.xattrs.borrow_mut());
        if changed {
            self.ctime_ns.set(now);
        }
        r
    }

    /// `chown` (None: that id left alone), as Linux does it for a regular file: the set-user-ID
    /// bit goes, and the set-group-ID bit where group execution is on; the status changed
    /// `now`.
    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>, now: i64) {
        let (u, g) = self.owner.get();
        self.owner.set((uid.unwrap_or(u), gid.unwrap_or(g)));
        self.mode.set(drop_set_ids(self.mode.get()));
        self.ctime_ns.set(now);
    }

    /// The contents changed `now` (a write, a truncation): modification and change times.
    pub fn modified(&self, now: i64) {
        self.mtime_ns.set(now);
        self.ctime_ns.set(now);
    }

    /// 512-byte blocks held (holes hold none).
    pub fn blocks(&self) -> u64 {
        self.pages.borrow().len() as u64 * (PAGE_SIZE / 512)
    }

    pub fn seals(&self) -> Option<u32> {
        self.seals.get()
    }

    /// Makes the file take seals, starting with `seals` (`memfd_create`, `/dev/shm`).
    pub fn allow_seals(&self, seals: u32) {
        self.seals.set(Some(seals));
    }

    /// `F_ADD_SEALS`: EPERM once `F_SEAL_SEAL` is set; EBUSY for `F_SEAL_WRITE` while a
    /// shared mapping holds a page (Linux refuses while a writable one exists; a page's other
    /// owners are mappings of either kind, so read-only ones count here too).
    pub fn add_seals(&self, add: u32) -> Result<(), Errno> {
        let cur = self.seals.get().ok_or(crate::errno::EINVAL)?;
        if cur & F_SEAL_SEAL != 0 {
            return Err(EPERM);
        }
        if add & F_SEAL_WRITE != 0 && cur & F_SEAL_WRITE == 0 {
            let mem = &self.budget.mem;
            if self.pages.borrow().values().any(|&off| mem.is_shared(off)) {
                return Err(crate::errno::EBUSY);
            }
        }
        self.seals.set(Some(cur | add));
        Ok(())
    }

    fn sealed(&self, seal: u32) -> bool {
        self.seals.get().is_some_and(|s| s & seal != 0)
    }

    /// Whether writes are sealed off (`F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE`).
    pub fn write_sealed(&self) -> bool {
        self.sealed(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
    }

    /// Truncates or extends (with a hole) to `len` bytes.
    pub fn set_len(&self, len: u64) -> Result<(), Errno> {
        if len > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let cur = self.len.get();
        if (len < cur && self.sealed(F_SEAL_SHRINK)) || (len > cur && self.sealed(F_SEAL_GROW)) {
            return Err(EPERM);
        }
        if len < cur {
            let keep = len.div_ceil(PAGE_SIZE);
            let gone = self.pages.borrow_mut().split_off(&keep);
            for off in gone.into_values() {
                self.budget.give(off);
            }
            // The rest of the last page reads as zero if the file grows again.
            if !len.is_multiple_of(PAGE_SIZE) {
                if let Some(&off) = self.pages.borrow().get(&(len / PAGE_SIZE)) {
                    let from = len % PAGE_SIZE;
                    self.budget.mem.zero(off + from, PAGE_SIZE - from);
                }
            }
        }
        self.len.set(len);
        Ok(())
    }

    /// The frame of page `idx`, allocated (zero) if it is a hole.
    fn page(&self, idx: u64) -> Result<u64, Errno> {
        if let Some(&off) = self.pages.borrow().get(&idx) {
            return Ok(off);
        }
        let off = self.budget.take()?;
        self.pages.borrow_mut().insert(idx, off);
        Ok(off)
    }

    /// Writes `src` at `pos`, extending the file as needed; how many bytes were written
    /// (short only where `F_SEAL_GROW` stops it at the end of the file, as Linux's page-by-page
    /// write stops).
    pub fn write_at(&self, pos: u64, src: &[u8]) -> Result<usize, Errno> {
        let mut end = pos.checked_add(src.len() as u64).ok_or(EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        if self.write_sealed() {
            return Err(EPERM);
        }
        let mut src = src;
        if end > self.len.get() && self.sealed(F_SEAL_GROW) {
            // Page by page: a piece ending past the end of the file is refused, and so is
            // everything after it.
            let upto = self.len.get() / PAGE_SIZE * PAGE_SIZE;
            if upto <= pos {
                return Err(EPERM);
            }
            src = &src[..(upto - pos) as usize];
            end = upto;
        }
        let mut done = 0usize;
        while done < src.len() {
            let at = pos + done as u64;
            let in_page = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(src.len() - done);
            let off = self.page(at / PAGE_SIZE)?;
            self.budget
                .mem
                .write(off + in_page as u64, &src[done..done + n]);
            done += n;
        }
        if end > self.len.get() {
            self.len.set(end);
        }
        Ok(src.len())
    }

    /// Reads from `pos` into `out`; how many bytes (short at the end of the file).
    pub fn read_at(&self, pos: u64, out: &mut [u8]) -> usize {
        let n = (out.len() as u64).min(self.len.get().saturating_sub(pos)) as usize;
        let pages = self.pages.borrow();
        let mut done = 0usize;
        while done < n {
            let at = pos + done as u64;
            let in_page = (at % PAGE_SIZE) as usize;
            let m = (PAGE_SIZE as usize - in_page).min(n - done);
            match pages.get(&(at / PAGE_SIZE)) {
                Some(&off) => self
                    .budget
                    .mem
                    .read(off + in_page as u64, &mut out[done..done + m]),
                None => out[done..done + m].fill(0),
            }
            done += m;
        }
        n
    }

    /// The whole contents (a program's image), or ENOMEM where the Sentry cannot hold them
    /// (a sparse file of a terabyte is a file, not an image).
    pub fn to_vec(&self) -> Result<Vec<u8>, Errno> {
        const MAX: u64 = 1 << 30;
        let len = self.len.get();
        let mut v = Vec::new();
        if len > MAX || v.try_reserve_exact(len as usize).is_err() {
            return Err(crate::errno::ENOMEM);
        }
        v.resize(len as usize, 0);
        self.read_at(0, &mut v);
        Ok(v)
    }

    /// The pages of `first..first + n` that are not holes: (page index, frame).
    pub fn present(&self, first: u64, n: u64) -> Vec<(u64, u64)> {
        self.pages
            .borrow()
            .range(first..first.saturating_add(n))
            .map(|(&i, &off)| (i, off))
            .collect()
    }

    /// Copies the page in frame `off` out (a private mapping's copy).
    pub fn read_frame(&self, off: u64, out: &mut [u8]) {
        self.budget.mem.read(off, &mut out[..PAGE_SIZE as usize]);
    }

    /// The frames of pages `first..first + n` (holes filled), for a shared mapping: the
    /// caller adds its own ownership of each.
    /// ENOSPC leaves the file as it was.
    pub fn frames(&self, first: u64, n: u64) -> Result<Vec<u64>, Errno> {
        let end = first.checked_add(n).ok_or(EFBIG)?;
        // Refused before taking any when the holes cannot all be filled (zeroing pages only
        // to give them back costs time, under emulation a great deal).
        let holes = n - self.pages.borrow().range(first..end).count() as u64;
        let b = &self.budget;
        if holes > b.left.get().min(b.mem.pages_free()) {
            return Err(ENOSPC);
        }
        let mut out = Vec::new();
        let mut new = Vec::new();
        for i in first..end {
            let had = self.pages.borrow().contains_key(&i);
            match self.page(i) {
                Ok(off) => {
                    if !had {
                        new.push(i);
                    }
                    out.push(off);
                }
                Err(e) => {
                    for i in new {
                        if let Some(off) = self.pages.borrow_mut().remove(&i) {
                            self.budget.give(off);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}

impl Drop for FileData {
    fn drop(&mut self) {
        for off in core::mem::take(self.pages.get_mut()).into_values() {
            self.budget.give(off);
        }
    }
}

pub enum Kind {
    File(Rc<FileData>),
    Dir,
    /// A symlink made in the sandbox: its target.
    Symlink(Vec<u8>),
    Whiteout,
}

/// An entry. A file's mode, time and inode number are its [`FileData`]'s (shared by its hard
/// links); the fields here serve the other kinds.
pub struct Node {
    pub kind: Kind,
    mode: u32,
    atime_ns: i64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    /// Owner and group of a directory or symlink (a file's are its data's).
    owner: (u32, u32),
    /// Extended attributes of a directory or symlink (a file's are its data's).
    xattrs: Xattrs,
    /// A directory that hides the host's directory at its path (made by `mkdir`, perhaps where
    /// the sandbox had removed the host's); false for a host directory whose mode or times
    /// the sandbox changed: the host's entries still show through it.
    opaque: bool,
}

impl Node {
    /// See the field: whether the host's directory at this path stays hidden.
    pub fn opaque(&self) -> bool {
        self.opaque
    }

    /// This directory stands for the host's at its path (its mode or times changed): the
    /// host's entries show through it.
    pub fn merge_with_host(&mut self) {
        self.opaque = false;
    }

    /// Permission bits.
    pub fn mode(&self) -> u32 {
        match &self.kind {
            Kind::File(d) => d.mode(),
            _ => self.mode,
        }
    }

    pub fn set_mode(&mut self, mode: u32) {
        match &self.kind {
            Kind::File(d) => d.set_mode(mode),
            _ => self.mode = mode & 0o7777,
        }
    }

    pub fn mtime_ns(&self) -> i64 {
        match &self.kind {
            Kind::File(d) => d.mtime_ns(),
            _ => self.mtime_ns,
        }
    }

    pub fn atime_ns(&self) -> i64 {
        match &self.kind {
            Kind::File(d) => d.atime_ns(),
            _ => self.atime_ns,
        }
    }

    pub fn ctime_ns(&self) -> i64 {
        match &self.kind {
            Kind::File(d) => d.ctime_ns(),
            _ => self.ctime_ns,
        }
    }

    /// `utimensat`: see [`FileData::set_times`].
    pub fn set_times(&mut self, atime: Option<i64>, mtime: Option<i64>, now: i64) {
        match &self.kind {
            Kind::File(d) => d.set_times(atime, mtime, now),
            _ => {
                if let Some(a) = atime {
                    self.atime_ns = a;
                }
                if let Some(m) = mtime {
                    self.mtime_ns = m;
                }
                self.ctime_ns = now;
            }
        }
    }

    pub fn ino(&self) -> u64 {
        match &self.kind {
            Kind::File(d) => d.ino(),
            _ => self.ino,
        }
    }

    /// Owner and group.
    pub fn owner(&self) -> (u32, u32) {
        match &self.kind {
            Kind::File(d) => d.owner(),
            _ => self.owner,
        }
    }

    /// `chown` (None: that id left alone): see [`FileData::chown`]; a directory keeps its
    /// set-ID bits, as on Linux.
    pub fn chown(&mut self, uid: Option<u32>, gid: Option<u32>, now: i64) {
        match &self.kind {
            Kind::File(d) => d.chown(uid, gid, now),
            kind => {
                let dir = matches!(kind, Kind::Dir);
                self.owner = (uid.unwrap_or(self.owner.0), gid.unwrap_or(self.owner.1));
                if !dir {
                    self.mode = drop_set_ids(self.mode);
                }
                self.ctime_ns = now;
            }
        }
    }

    /// Its extended attributes (a directory's or symlink's; a file's are its data's).
    pub fn xattrs_ref(&self) -> &Xattrs {
        &self.xattrs
    }

    /// Runs `f` on its extended attributes; the status changed `now` if `f` says so (true).
    pub fn with_xattrs<R>(&mut self, now: i64, f: impl FnOnce(&mut Xattrs) -> (R, bool)) -> R {
        let (r, changed) = match &self.kind {
            Kind::File(d) => return d.with_xattrs(now, f),
            _ => f(&mut self.xattrs),
        };
        if changed {
            self.ctime_ns = now;
        }
        r
    }

    /// A copied-up entry keeps the host's owner and group.
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        match &self.kind {
            Kind::File(d) => d.set_owner(uid, gid),
            _ => self.owner = (uid, gid),
        }
    }
}

/// Extended attributes: name → value.
pub type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

/// Mode bits after a `chown` of a non-directory: no set-user-ID; no set-group-ID where group
/// execution is on (without it the bit marks mandatory locking, and stays).
fn drop_set_ids(mode: u32) -> u32 {
    let mut mode = mode & !0o4000;
    if mode & 0o010 != 0 {
        mode &= !0o2000;
    }
    mode
}

pub struct Overlay {
    /// Off with `--ro` and `--rw`: writes fail with EROFS or go to the host, except under
    /// `/dev/shm`.
    pub enabled: bool,
    nodes: BTreeMap<Vec<u8>, Node>,
    next_ino: Cell<u64>,
    budget: Rc<Budget>,
}

impl Overlay {
    /// `limit`: the most bytes of file data it holds at once; `mem`: where the data lives.
    /// `now_ns`: the time `/dev/shm` was made.
    pub fn new(enabled: bool, limit: u64, mem: Rc<MemoryFile>, now_ns: i64) -> Self {
        let mut o = Overlay {
            enabled,
            nodes: BTreeMap::new(),
            next_ino: Cell::new(0x7000_0000),
            budget: Rc::new(Budget {
                limit: limit / PAGE_SIZE,
                left: Cell::new(limit / PAGE_SIZE),
                mem,
            }),
        };
        o.insert(SHM_DIR.to_vec(), Kind::Dir, 0o1777, now_ns);
        o
    }

    fn ino(&self) -> u64 {
        self.next_ino.set(self.next_ino.get() + 1);
        self.next_ino.get()
    }

    /// A new empty file (linked nowhere yet), with permission bits `mode`.
    pub fn new_file(&self, mode: u32, mtime_ns: i64) -> Rc<FileData> {
        self.make_file(mode, mtime_ns, None, false)
    }

    /// A `memfd_create` file, its seals as it starts.
    pub fn new_memfd(&self, mode: u32, mtime_ns: i64, seals: u32) -> Rc<FileData> {
        self.make_file(mode, mtime_ns, Some(seals), true)
    }

    fn make_file(&self, mode: u32, mtime_ns: i64, seals: Option<u32>, anon: bool) -> Rc<FileData> {
        Rc::new(FileData {
            pages: RefCell::new(BTreeMap::new()),
            len: Cell::new(0),
            seals: Cell::new(seals),
            mode: Cell::new(mode & 0o7777),
            atime_ns: Cell::new(mtime_ns),
            mtime_ns: Cell::new(mtime_ns),
            ctime_ns: Cell::new(mtime_ns),
            ino: self.ino(),
            owner: Cell::new((0, 0)),
            xattrs: RefCell::new(Xattrs::new()),
            nlink: Cell::new(0),
            anon,
            budget: self.budget.clone(),
        })
    }

    /// Whether the sandbox has written nothing yet (every path is the host's): entries under
    /// `/dev/shm`, which hides the host's, do not count.
    pub fn is_empty(&self) -> bool {
        // "/dev/shm" and the paths under it sort together, before "/dev/shm0" ('/' < '0');
        // nothing else under /dev is ever in the overlay.
        let shm_end: &[u8] = b"/dev/shm0";
        let first = self.nodes.first_key_value().map(|(k, _)| &k[..]);
        let last = self.nodes.last_key_value().map(|(k, _)| &k[..]);
        first.is_none_or(|f| f >= SHM_DIR) && last.is_none_or(|l| l < shm_end)
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

    /// Puts `kind` at `path`, replacing what was there. `mode` and `mtime_ns` are a
    /// directory's, symlink's or whiteout's; a file brings its own (and gains a link).
    pub fn insert(&mut self, path: Vec<u8>, kind: Kind, mode: u32, mtime_ns: i64) {
        if let Kind::File(d) = &kind {
            d.nlink.set(d.nlink.get() + 1);
        }
        let ino = self.ino();
        let old = self.nodes.insert(
            path,
            Node {
                kind,
                mode: mode & 0o7777,
                atime_ns: mtime_ns,
                mtime_ns,
                ctime_ns: mtime_ns,
                ino,
                owner: (0, 0),
                xattrs: Xattrs::new(),
                opaque: true,
            },
        );
        if let Some(Node {
            kind: Kind::File(d),
            ..
        }) = old
        {
            d.nlink.set(d.nlink.get() - 1);
        }
    }

    pub fn remove(&mut self, path: &[u8]) -> Option<Node> {
        let n = self.nodes.remove(path)?;
        if let Kind::File(d) = &n.kind {
            d.nlink.set(d.nlink.get() - 1);
        }
        Some(n)
    }

    /// Renames the entry at `from` and everything below it to `to` (whatever was at or below
    /// `to` goes): the nodes themselves move, inodes, modes and times with them.
    pub fn move_tree(&mut self, from: &[u8], to: &[u8]) {
        for g in self.paths_under(to) {
            self.remove(&g);
        }
        for m in self.paths_under(from) {
            if let Some(n) = self.nodes.remove(&m) {
                self.nodes.insert([to, &m[from.len()..]].concat(), n);
            }
        }
    }

    /// The entries at `root` and below it.
    fn paths_under(&self, root: &[u8]) -> Vec<Vec<u8>> {
        self.nodes
            .range(root.to_vec()..)
            .take_while(|(k, _)| k.starts_with(root))
            .filter(|(k, _)| under(k, root))
            .map(|(k, _)| k.clone())
            .collect()
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

    /// For `statfs`: (pages in all, pages free) that the overlay's files may hold; the
    /// memory file's free frames bound what its own limit would allow.
    pub fn usage(&self) -> (u64, u64) {
        let b = &self.budget;
        let total = b.limit.min(b.mem.capacity());
        (total, b.left.get().min(b.mem.pages_free()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An overlay over a memory file of `pages` frames (the Vec backs it and is returned to
    /// outlive it).
    fn overlay(pages: u64, limit: u64) -> (Overlay, Rc<MemoryFile>, Vec<u8>) {
        let mut backing = alloc::vec![0u8; (pages * PAGE_SIZE) as usize];
        // SAFETY: the Vec outlives the memory file in each test (returned alongside it).
        let mem = Rc::new(unsafe {
            MemoryFile::new(backing.as_mut_ptr() as u64, backing.len() as u64, 0)
        });
        (Overlay::new(true, limit, mem.clone(), 0), mem, backing)
    }

    #[test]
    fn holes_hold_nothing_and_read_zero() {
        let (o, mem, _b) = overlay(16, 1 << 30);
        let f = o.new_file(0o644, 0);
        f.set_len(1 << 40).unwrap();
        assert_eq!((f.len(), f.blocks(), mem.pages_in_use()), (1 << 40, 0, 0));
        f.write_at((1 << 40) - 2, b"ab").unwrap();
        assert_eq!((f.blocks(), mem.pages_in_use()), (8, 1));
        let mut out = [7u8; 4];
        assert_eq!(f.read_at((1 << 40) - 4, &mut out), 4);
        assert_eq!(&out, b"\0\0ab");
        assert_eq!(f.read_at(1 << 40, &mut out), 0);
        assert_eq!(f.to_vec(), Err(crate::errno::ENOMEM));
        drop(f);
        assert_eq!(mem.pages_in_use(), 0);
    }

    #[test]
    fn shrinking_frees_pages_and_zeroes_the_tail() {
        let (o, mem, _b) = overlay(16, 1 << 30);
        let f = o.new_file(0o644, 0);
        f.write_at(0, &[1u8; 3 * 4096]).unwrap();
        assert_eq!(mem.pages_in_use(), 3);
        f.set_len(4100).unwrap();
        assert_eq!(mem.pages_in_use(), 2);
        f.set_len(3 * 4096).unwrap();
        let mut out = [9u8; 8];
        f.read_at(4098, &mut out);
        assert_eq!(out, [1, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn limits_are_enospc_and_a_failed_mapping_leaves_no_pages() {
        let (o, mem, _b) = overlay(16, 4 * PAGE_SIZE);
        let f = o.new_file(0o644, 0);
        f.write_at(0, &[1u8; 4 * 4096]).unwrap();
        assert_eq!(f.write_at(4 * 4096, b"x"), Err(ENOSPC));
        f.set_len(PAGE_SIZE).unwrap();
        // Pages 1..9 cannot all be had: none are kept.
        assert_eq!(f.frames(1, 8), Err(ENOSPC));
        assert_eq!((f.blocks(), mem.pages_in_use()), (8, 1));
        assert_eq!(f.frames(0, 2).map(|v| v.len()), Ok(2));
        assert_eq!(o.usage(), (4, 2));
    }

    #[test]
    fn seals_refuse_as_linux() {
        let (o, _mem, _b) = overlay(16, 1 << 30);
        let f = o.new_memfd(0o777, 0, 0);
        assert_eq!(
            o.new_file(0o644, 0).add_seals(F_SEAL_GROW),
            Err(crate::errno::EINVAL)
        );
        f.set_len(8192).unwrap();
        f.add_seals(F_SEAL_GROW | F_SEAL_SHRINK).unwrap();
        assert_eq!(f.set_len(4096), Err(EPERM));
        assert_eq!(f.set_len(9000), Err(EPERM));
        // Page by page: the piece within the file lands, the one past its end does not.
        assert_eq!(f.write_at(8190, b"abcd"), Ok(2));
        assert_eq!(f.write_at(8192, b"x"), Err(EPERM));
        let frames = f.frames(0, 1).unwrap();
        f.budget.mem.share_page(frames[0]); // a shared mapping of page 0
        assert_eq!(f.add_seals(F_SEAL_WRITE), Err(crate::errno::EBUSY));
        f.budget.mem.free_page(frames[0]);
        f.add_seals(F_SEAL_WRITE | F_SEAL_SEAL).unwrap();
        assert_eq!(f.write_at(0, b"x"), Err(EPERM));
        assert_eq!(f.add_seals(F_SEAL_FUTURE_WRITE), Err(EPERM));
        assert_eq!(
            f.seals(),
            Some(F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_WRITE | F_SEAL_SEAL)
        );
    }

    #[test]
    fn links_share_one_inode() {
        let (mut o, _mem, _b) = overlay(16, 1 << 30);
        let f = o.new_file(0o640, 5);
        o.insert(b"/a".to_vec(), Kind::File(f.clone()), 0, 0);
        o.insert(b"/b".to_vec(), Kind::File(f.clone()), 0, 0);
        assert_eq!(f.nlink(), 2);
        o.get_mut(b"/b").unwrap().set_mode(0o600);
        assert_eq!(
            (o.get(b"/a").unwrap().mode(), o.get(b"/a").unwrap().ino()),
            (0o600, f.ino())
        );
        // Replacing a name drops its link; removing the other drops the last.
        o.insert(b"/a".to_vec(), Kind::Dir, 0o755, 0);
        assert_eq!(f.nlink(), 1);
        o.remove(b"/b");
        assert_eq!(f.nlink(), 0);
        assert!(!o.is_empty());
        o.remove(b"/a");
        assert!(o.is_empty(), "/dev/shm alone does not count");
    }
}

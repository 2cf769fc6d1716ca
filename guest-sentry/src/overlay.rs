//! The in-memory overlay over the sandbox root: every write lands here and dies with the
//! sandbox; the host tree is never modified. Entries are keyed by normalized absolute path. A
//! whiteout hides a host entry that was removed or renamed away.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

pub enum Kind {
    File(Rc<RefCell<Vec<u8>>>),
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
}

impl Overlay {
    pub fn new(enabled: bool) -> Self {
        Overlay {
            enabled,
            nodes: BTreeMap::new(),
            next_ino: 0x7000_0000,
        }
    }

    /// Whether the sandbox has written nothing yet (every path is the host's).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The entry at `path`, whiteouts included.
    pub fn get(&self, path: &[u8]) -> Option<&Node> {
        self.nodes.get(path)
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

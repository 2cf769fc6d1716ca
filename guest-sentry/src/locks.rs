//! Advisory file locks between the sandbox's processes, as Linux keeps them:
//!
//! - POSIX record locks (`fcntl` `F_SETLK`/`F_SETLKW`/`F_GETLK`, `lockf`): byte ranges owned
//!   by a process, released when it closes any descriptor of the file or exits;
//! - open file description locks (`F_OFD_*`): the same ranges, owned by an open file
//!   description (shared by `dup` and `fork`), released with its last descriptor;
//! - `flock`: the whole file, shared or exclusive, owned by an open file description.
//!
//! POSIX and OFD locks conflict with each other; `flock` locks are a separate set (Linux
//! keeps them apart too). A file is known by its `(st_dev, st_ino)`.

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;

use crate::file::OpenFile;

pub type FileKey = (u64, u64);

/// Who holds a record lock.
#[derive(Clone, Debug)]
pub enum Owner {
    /// A process (POSIX locks).
    Process(u32),
    /// An open file description (OFD locks): gone when it is.
    Description(Weak<OpenFile>),
}

impl Owner {
    fn same(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::Process(a), Owner::Process(b)) => a == b,
            (Owner::Description(a), Owner::Description(b)) => Weak::ptr_eq(a, b),
            _ => false,
        }
    }

    fn alive(&self) -> bool {
        match self {
            Owner::Process(_) => true,
            Owner::Description(d) => d.strong_count() > 0,
        }
    }
}

/// One locked range, `start..=end` (`end` `u64::MAX`: to the end of the file, whatever it
/// becomes).
#[derive(Clone, Debug)]
struct Range {
    owner: Owner,
    start: u64,
    end: u64,
    write: bool,
}

/// A lock in the way (`F_GETLK`'s answer): its range, type and holder (-1: a description).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub start: u64,
    pub end: u64,
    pub write: bool,
    pub pid: i32,
}

struct Flock {
    desc: Weak<OpenFile>,
    exclusive: bool,
}

#[derive(Default)]
pub struct Locks {
    records: BTreeMap<FileKey, Vec<Range>>,
    flocks: BTreeMap<FileKey, Vec<Flock>>,
}

impl Locks {
    /// Drops the locks of descriptions that are gone.
    fn prune(&mut self, key: FileKey) {
        if let Some(v) = self.records.get_mut(&key) {
            v.retain(|r| r.owner.alive());
            if v.is_empty() {
                self.records.remove(&key);
            }
        }
        if let Some(v) = self.flocks.get_mut(&key) {
            v.retain(|f| f.desc.strong_count() > 0);
            if v.is_empty() {
                self.flocks.remove(&key);
            }
        }
    }

    /// The first lock of another owner on `key` that a lock of `start..=end` (`write`: an
    /// exclusive one) cannot share the bytes with.
    pub fn conflict(
        &mut self,
        key: FileKey,
        owner: &Owner,
        start: u64,
        end: u64,
        write: bool,
    ) -> Option<Conflict> {
        self.prune(key);
        let v = self.records.get(&key)?;
        v.iter()
            .filter(|r| !r.owner.same(owner))
            .find(|r| r.start <= end && start <= r.end && (write || r.write))
            .map(|r| Conflict {
                start: r.start,
                end: r.end,
                write: r.write,
                pid: match r.owner {
                    Owner::Process(p) => p as i32,
                    Owner::Description(_) => -1,
                },
            })
    }

    /// Sets `owner`'s lock on `start..=end` (`kind`: Some(write) to lock, None to unlock),
    /// replacing whatever it held there: its ranges are split around it and neighbours of the
    /// same type merged, as Linux does. Conflicts are the caller's to check first.
    pub fn set(&mut self, key: FileKey, owner: Owner, start: u64, end: u64, kind: Option<bool>) {
        self.prune(key);
        let v = self.records.entry(key).or_default();
        let mut kept = Vec::with_capacity(v.len() + 2);
        for r in v.drain(..) {
            if !r.owner.same(&owner) || r.end < start || r.start > end {
                kept.push(r);
                continue;
            }
            if r.start < start {
                kept.push(Range {
                    end: start - 1,
                    ..r.clone()
                });
            }
            if r.end > end {
                kept.push(Range {
                    start: end + 1,
                    ..r.clone()
                });
            }
        }
        if let Some(write) = kind {
            let (mut start, mut end) = (start, end);
            // Merge with the owner's adjacent ranges of the same type.
            kept.retain(|r| {
                let touches = r.owner.same(&owner)
                    && r.write == write
                    && (r.end.checked_add(1) == Some(start) || end.checked_add(1) == Some(r.start));
                if touches {
                    start = start.min(r.start);
                    end = end.max(r.end);
                }
                !touches
            });
            kept.push(Range {
                owner,
                start,
                end,
                write,
            });
        }
        if kept.is_empty() {
            self.records.remove(&key);
        } else {
            *v = kept;
        }
        crate::sched::note_progress();
    }

    /// Whether any lock is held at all (a close need not look further otherwise).
    pub fn any(&self) -> bool {
        !self.records.is_empty() || !self.flocks.is_empty()
    }

    /// Whether process `pid` holds any POSIX lock.
    pub fn holds_any(&self, pid: u32) -> bool {
        self.records
            .values()
            .flatten()
            .any(|r| matches!(r.owner, Owner::Process(p) if p == pid))
    }

    /// Process `pid` closed a descriptor of `key`: its POSIX locks there go.
    pub fn release_file(&mut self, key: FileKey, pid: u32) {
        self.set(key, Owner::Process(pid), 0, u64::MAX, None);
    }

    /// Process `pid` exited: all its POSIX locks go.
    pub fn release_process(&mut self, pid: u32) {
        if !self.holds_any(pid) {
            return;
        }
        for v in self.records.values_mut() {
            v.retain(|r| !matches!(r.owner, Owner::Process(p) if p == pid));
        }
        self.records.retain(|_, v| !v.is_empty());
        crate::sched::note_progress();
    }

    /// `flock(LOCK_SH/LOCK_EX)` by description `desc`: true when it holds the lock now; false
    /// when another description's lock is in the way (what it held before is released
    /// first, as Linux converts a lock).
    pub fn flock(&mut self, key: FileKey, desc: &Rc<OpenFile>, exclusive: bool) -> bool {
        self.prune(key);
        let me = Rc::downgrade(desc);
        let v = self.flocks.entry(key).or_default();
        if let Some(mine) = v.iter_mut().find(|f| Weak::ptr_eq(&f.desc, &me)) {
            if mine.exclusive == exclusive {
                return true;
            }
        }
        let others_block = v
            .iter()
            .filter(|f| !Weak::ptr_eq(&f.desc, &me))
            .any(|f| exclusive || f.exclusive);
        let had = v.iter().any(|f| Weak::ptr_eq(&f.desc, &me));
        if others_block {
            if had {
                v.retain(|f| !Weak::ptr_eq(&f.desc, &me));
                crate::sched::note_progress();
            }
            return false;
        }
        v.retain(|f| !Weak::ptr_eq(&f.desc, &me));
        v.push(Flock {
            desc: me,
            exclusive,
        });
        crate::sched::note_progress();
        true
    }

    /// `flock(LOCK_UN)`.
    pub fn funlock(&mut self, key: FileKey, desc: &Rc<OpenFile>) {
        let me = Rc::downgrade(desc);
        if let Some(v) = self.flocks.get_mut(&key) {
            v.retain(|f| !Weak::ptr_eq(&f.desc, &me));
        }
        self.prune(key);
        crate::sched::note_progress();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_merge_and_conflict() {
        let mut l = Locks::default();
        let k = (1, 2);
        let (a, b) = (Owner::Process(10), Owner::Process(20));
        l.set(k, a.clone(), 0, 99, Some(true));
        assert_eq!(l.conflict(k, &b, 50, 50, false).map(|c| c.pid), Some(10));
        assert!(l.conflict(k, &a, 0, 200, true).is_none());
        // Unlocking the middle splits the range in two.
        l.set(k, a.clone(), 40, 59, None);
        assert!(l.conflict(k, &b, 40, 59, true).is_none());
        assert_eq!(
            l.conflict(k, &b, 60, 60, false),
            Some(Conflict {
                start: 60,
                end: 99,
                write: true,
                pid: 10
            })
        );
        // Read locks share; a write lock does not.
        l.set(k, a.clone(), 200, u64::MAX, Some(false));
        assert!(l.conflict(k, &b, 300, 400, false).is_none());
        assert!(l.conflict(k, &b, 300, 400, true).is_some());
        l.release_process(10);
        assert!(l.conflict(k, &b, 0, u64::MAX, true).is_none());
        assert!(!l.holds_any(10));
    }
}

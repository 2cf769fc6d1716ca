//! `/proc` for the sandbox's processes, made up by the Sentry: `/proc/self` and `/proc/<pid>`
//! with `exe`, `cwd`, `fd/`, `status`, `stat`, `maps`, `comm`, `cmdline`. Nothing of the
//! host's `/proc` is ever visible.
//!
//! A syscall sees only its own task; for another process's entries (and the `/proc` listing)
//! it asks the scheduler for a [`ProcView`] of every process and runs again with it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;
use core::mem::size_of;

use zerocopy::IntoBytes;

use crate::errno::{Errno, ENOENT};
use crate::file::File;
use crate::kernel::Kernel;
use crate::kernel::Task;
use crate::linux::Dirent64;
use crate::mm::VmaKind;
use crate::platform::Platform;

#[derive(Clone, Debug)]
pub enum Node {
    File(Vec<u8>),
    /// A symlink: its target.
    Link(Vec<u8>),
    /// A directory: entry names and `d_type`s.
    Dir(Vec<(Vec<u8>, u8)>),
}

pub(super) const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
pub(super) const DT_LNK: u8 = 10;

/// What an open descriptor shows as in `/proc/self/fd`.
fn describe<P: Platform>(t: &Task<P>, fd: usize) -> Option<Vec<u8>> {
    let of = t.files.get().fds.get(fd)?.clone()?;
    Some(match &of.file {
        File::Stdio(n) => {
            format!("host:[{}]", ["stdin", "stdout", "stderr"][*n as usize % 3]).into_bytes()
        }
        File::Pipe(end) => format!(
            "pipe:[{}]",
            alloc::rc::Rc::as_ptr(&end.pipe) as u64 & 0xffff_ffff
        )
        .into_bytes(),
        File::Socket(s) => format!("socket:[{}]", s.borrow().ino).into_bytes(),
        File::Host(h) => h.path.clone(),
        File::Mem { path, .. } => path.clone(),
        File::Dev(d) => match d {
            crate::file::Dev::Null => b"/dev/null".to_vec(),
            crate::file::Dev::Zero => b"/dev/zero".to_vec(),
            crate::file::Dev::Urandom => b"/dev/urandom".to_vec(),
        },
        File::Synthetic { .. } => b"/proc".to_vec(),
        File::Pty(end) if end.master => b"/dev/ptmx".to_vec(),
        File::Pty(end) if end.as_tty => b"/dev/tty".to_vec(),
        File::Pty(end) => format!("/dev/pts/{}", end.pty.borrow().index).into_bytes(),
        f => format!("anon_inode:{}", f.anon_name().unwrap_or("[unknown]")).into_bytes(),
    })
}

/// Not an errno the app ever sees: the syscall needs a [`ProcView`] and runs again with one.
/// Above Linux's `MAX_ERRNO`, so it is none of the kernel's own codes (`ERESTARTSYS` = 512
/// and its kin included).
pub const NEED_VIEW: Errno = Errno(crate::errno::MAX_ERRNO + 1);

/// Every other process's `/proc/<pid>` entries, rendered by the scheduler for the syscall of
/// `for_pid` that asked (and dropped after it).
pub struct ProcView {
    pub for_pid: u32,
    /// pid → (entry path below `/proc/<pid>`, e.g. `""`, `"/status"`, `"/fd/3"`) → node.
    pub procs: BTreeMap<u32, BTreeMap<Vec<u8>, Node>>,
    /// pid → its threads' tids (every process's, the asking one's too).
    pub tids: BTreeMap<u32, Vec<u32>>,
}

/// The paths below `/proc/<pid>` that exist for `t`.
fn entry_paths<P: Platform>(t: &Task<P>) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "", "/exe", "/cwd", "/root", "/fd", "/status", "/stat", "/maps", "/comm", "/cmdline",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.extend(
        (0..t.files.get().fds.len())
            .filter(|&i| t.files.get().fds[i].is_some())
            .map(|i| format!("/fd/{i}").into_bytes()),
    );
    v
}

/// `/proc/<pid>` of `t`, for another process's view.
pub fn render<P: Platform>(t: &Task<P>) -> BTreeMap<Vec<u8>, Node> {
    entry_paths(t)
        .into_iter()
        .filter_map(|p| entry(t, &p).ok().map(|n| (p, n)))
        .collect()
}

/// The `/proc` node at the normalized absolute `path`, or `None` if the path is not in `/proc`.
/// [`NEED_VIEW`] when it is about another process and no view is at hand.
pub fn lookup<P: Platform>(k: &Kernel, t: &Task<P>, path: &[u8]) -> Option<Result<Node, Errno>> {
    let rest = path.strip_prefix(b"/proc")?;
    if !(rest.is_empty() || rest[0] == b'/') {
        return None;
    }
    let view = k.proc_view.as_ref().filter(|v| v.for_pid == t.pid);
    if rest.is_empty() || rest == b"/" {
        let Some(view) = view else {
            return Some(Err(NEED_VIEW));
        };
        let mut pids: Vec<u32> = view.procs.keys().copied().collect();
        pids.push(t.pid);
        pids.sort_unstable();
        let mut entries = alloc::vec![(b"self".to_vec(), DT_LNK)];
        entries.extend(
            pids.into_iter()
                .map(|p| (format!("{p}").into_bytes(), DT_DIR)),
        );
        return Some(Ok(Node::Dir(entries)));
    }
    let (pid, below) = match rest[1..].iter().position(|&b| b == b'/') {
        Some(i) => (&rest[1..1 + i], &rest[1 + i..]),
        None => (&rest[1..], &b""[..]),
    };
    let pid = if pid == b"self" {
        t.pid
    } else {
        match core::str::from_utf8(pid)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            Some(p) => p,
            None => return Some(Err(ENOENT)),
        }
    };
    // `task/` and `task/<tid>/...`: each thread's entries (those of its process here).
    if let Some(tasks) = below.strip_prefix(b"/task") {
        if !(tasks.is_empty() || tasks[0] == b'/') {
            return Some(Err(ENOENT));
        }
        let Some(view) = view else {
            return Some(Err(NEED_VIEW));
        };
        let Some(tids) = view.tids.get(&pid) else {
            return Some(Err(ENOENT));
        };
        let tasks = tasks.strip_prefix(b"/").unwrap_or(tasks);
        if tasks.is_empty() {
            return Some(Ok(Node::Dir(
                tids.iter()
                    .map(|tid| (format!("{tid}").into_bytes(), DT_DIR))
                    .collect(),
            )));
        }
        let (tid, inner) = match tasks.iter().position(|&b| b == b'/') {
            Some(i) => (&tasks[..i], &tasks[i..]),
            None => (tasks, &b""[..]),
        };
        let tid = core::str::from_utf8(tid)
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        if !tid.is_some_and(|tid| tids.contains(&tid)) || inner.starts_with(b"/task") {
            return Some(Err(ENOENT));
        }
        return lookup_entry(t, view, pid, inner);
    }
    if pid == t.pid {
        return Some(entry(t, below));
    }
    let Some(view) = view else {
        return Some(Err(NEED_VIEW));
    };
    lookup_entry(t, view, pid, below)
}

/// Entry `below` of process `pid`: the caller's own, or from the view.
fn lookup_entry<P: Platform>(
    t: &Task<P>,
    view: &ProcView,
    pid: u32,
    below: &[u8],
) -> Option<Result<Node, Errno>> {
    if pid == t.pid {
        return Some(entry(t, below));
    }
    let below = if below == b"/" || below == b"/fd/" {
        &below[..below.len() - 1]
    } else {
        below
    };
    Some(
        view.procs
            .get(&pid)
            .and_then(|entries| entries.get(below))
            .cloned()
            .ok_or(ENOENT),
    )
}

/// The entry `rest` (`""`, `"/status"`, ...) below `/proc/<pid>` of `t`.
fn entry<P: Platform>(t: &Task<P>, rest: &[u8]) -> Result<Node, Errno> {
    if !(rest.is_empty() || rest[0] == b'/') {
        return Err(ENOENT);
    }
    match rest {
        b"" | b"/" => Ok(Node::Dir(
            [
                ("exe", DT_LNK),
                ("cwd", DT_LNK),
                ("root", DT_LNK),
                ("fd", DT_DIR),
                ("task", DT_DIR),
                ("status", DT_REG),
                ("stat", DT_REG),
                ("maps", DT_REG),
                ("comm", DT_REG),
                ("cmdline", DT_REG),
            ]
            .iter()
            .map(|(n, d)| (n.as_bytes().to_vec(), *d))
            .collect(),
        )),
        b"/exe" => Ok(Node::Link(t.tg.get().exe_path.clone())),
        b"/cwd" => Ok(Node::Link(t.fs.get().cwd.clone())),
        // No chroot yet: every process's root is the sandbox's.
        b"/root" => Ok(Node::Link(b"/".to_vec())),
        b"/comm" => {
            let n = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
            let mut v = t.comm[..n].to_vec();
            v.push(b'\n');
            Ok(Node::File(v))
        }
        b"/cmdline" => Ok(Node::File(t.tg.get().cmdline.clone())),
        b"/stat" => {
            // The fields ps and top read: pid (comm) state ppid pgrp session tty_nr tpgid
            // flags, then zeros up to vsize and rss.
            let n = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
            let name = core::str::from_utf8(&t.comm[..n]).unwrap_or("?");
            let state = if t.exit.is_some() { 'Z' } else { 'R' };
            let vsize: u64 = t.mm.get().vmas().map(|(s, v)| v.end - s).sum();
            Ok(Node::File(
                format!(
                    "{} ({name}) {state} {} {} {} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 {vsize} {} 0\n",
                    t.pid,
                    t.tg.get().ppid,
                    t.tg.get().pgid,
                    t.tg.get().sid,
                    t.mm.get().resident_pages()
                )
                .into_bytes(),
            ))
        }
        b"/status" => {
            let n = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
            let name = core::str::from_utf8(&t.comm[..n]).unwrap_or("?");
            Ok(Node::File(
                format!(
                    "Name:\t{name}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmRSS:\t{} kB\nThreads:\t{}\nSigBlk:\t{:016x}\n",
                    t.fs.get().umask,
                    t.pid,
                    t.pid,
                    t.tg.get().ppid,
                    t.mm.get().resident_pages() * 4,
                    t.tg.get().threads,
                    t.signals.blocked
                )
                .into_bytes(),
            ))
        }
        b"/maps" => {
            let mut out = Vec::new();
            let exe_path = t.tg.get().exe_path.clone();
            let mm = t.mm.get();
            for (start, v) in mm.vmas() {
                let perms = [
                    if v.access.read { b'r' } else { b'-' },
                    if v.access.write { b'w' } else { b'-' },
                    if v.access.execute { b'x' } else { b'-' },
                    if v.kind == VmaKind::SharedAnon {
                        b's'
                    } else {
                        b'p'
                    },
                ];
                let name = match v.kind {
                    VmaKind::Image => core::str::from_utf8(&exe_path).unwrap_or(""),
                    VmaKind::Brk => "[heap]",
                    VmaKind::Stack => "[stack]",
                    VmaKind::Anon => "",
                    VmaKind::Syscalls => "[syscall-trampolines]",
                    VmaKind::SharedAnon => "/dev/zero (deleted)",
                };
                let line = format!(
                    "{start:08x}-{:08x} {} 00000000 00:00 0                          {name}\n",
                    v.end,
                    core::str::from_utf8(&perms).unwrap_or("----")
                );
                out.extend_from_slice(line.trim_end_matches(' ').as_bytes());
            }
            Ok(Node::File(out))
        }
        b"/fd" | b"/fd/" => Ok(Node::Dir(
            (0..t.files.get().fds.len())
                .filter(|&i| t.files.get().fds[i].is_some())
                .map(|i| (format!("{i}").into_bytes(), DT_LNK))
                .collect(),
        )),
        r => match r
            .strip_prefix(b"/fd/")
            .and_then(|n| core::str::from_utf8(n).ok()?.parse::<usize>().ok())
        {
            Some(fd) => describe(t, fd).map(Node::Link).ok_or(ENOENT),
            None => Err(ENOENT),
        },
    }
}

/// N, for a path `/proc/self/fd/N` (or `/proc/<pid>/fd/N`).
pub fn fd_number(path: &[u8]) -> Option<u64> {
    let slash = path.iter().rposition(|&b| b == b'/')?;
    let (dir, name) = (&path[..slash], &path[slash + 1..]);
    if !dir.ends_with(b"/fd") {
        return None;
    }
    core::str::from_utf8(name).ok()?.parse().ok()
}

/// `linux_dirent64` records for a made-up directory (with `.` and `..`), numbered in order.
pub fn dirents(entries: &[(Vec<u8>, u8)]) -> Vec<u8> {
    let all: Vec<(Vec<u8>, u8, u64)> = [(b".".to_vec(), DT_DIR), (b"..".to_vec(), DT_DIR)]
        .into_iter()
        .chain(entries.iter().cloned())
        .enumerate()
        .map(|(i, (name, dtype))| (name, dtype, i as u64 + 1))
        .collect();
    dirents_numbered(&all)
}

/// `linux_dirent64` records for (name, `d_type`, inode number), in order (`.` and `..`
/// included by the caller).
pub fn dirents_numbered(entries: &[(Vec<u8>, u8, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, dtype, ino) in entries.iter().cloned() {
        let reclen = (size_of::<Dirent64>() + name.len() + 1).div_ceil(8) * 8;
        let start = out.len();
        let head = Dirent64 {
            d_ino: ino,
            d_off: (start + reclen) as i64,
            d_reclen: reclen as u16,
            d_type: dtype,
        };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&name);
        out.resize(start + reclen, 0);
    }
    out
}

//! `/proc` for the sandbox's own process, made up by the Sentry: `/proc/self` (and
//! `/proc/<pid>`) with `exe`, `cwd`, `fd/`, `status`, `maps`, `comm`. Nothing of the host's
//! `/proc` is ever visible.

use alloc::format;
use alloc::vec::Vec;

use crate::errno::{Errno, ENOENT};
use crate::file::File;
use crate::kernel::Task;
use crate::mm::VmaKind;
use crate::platform::Platform;

pub enum Node {
    File(Vec<u8>),
    /// A symlink: its target.
    Link(Vec<u8>),
    /// A directory: entry names and `d_type`s.
    Dir(Vec<(Vec<u8>, u8)>),
}

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// What an open descriptor shows as in `/proc/self/fd`.
fn describe<P: Platform>(t: &Task<P>, fd: usize) -> Option<Vec<u8>> {
    let of = t.fds.get(fd)?.as_ref()?;
    Some(match &of.file {
        File::Stdio(n) => {
            format!("host:[{}]", ["stdin", "stdout", "stderr"][*n as usize % 3]).into_bytes()
        }
        File::Pipe(end) => format!(
            "pipe:[{}]",
            alloc::rc::Rc::as_ptr(&end.pipe) as u64 & 0xffff_ffff
        )
        .into_bytes(),
        File::Host(h) => h.path.clone(),
        File::Mem { path, .. } => path.clone(),
        File::Dev(d) => match d {
            crate::file::Dev::Null => b"/dev/null".to_vec(),
            crate::file::Dev::Zero => b"/dev/zero".to_vec(),
            crate::file::Dev::Urandom => b"/dev/urandom".to_vec(),
        },
        File::Synthetic { .. } => b"/proc".to_vec(),
    })
}

/// The `/proc` node at the normalized absolute `path`, or `None` if the path is not in `/proc`.
pub fn lookup<P: Platform>(t: &Task<P>, path: &[u8]) -> Option<Result<Node, Errno>> {
    let rest = path.strip_prefix(b"/proc")?;
    if !(rest.is_empty() || rest[0] == b'/') {
        return None;
    }
    if rest.is_empty() || rest == b"/" {
        return Some(Ok(Node::Dir(alloc::vec![
            (b"self".to_vec(), DT_LNK),
            (format!("{}", t.pid).into_bytes(), DT_DIR)
        ])));
    }
    let own = format!("/{}", t.pid);
    let rest = if let Some(r) = rest.strip_prefix(b"/self") {
        r
    } else if let Some(r) = rest.strip_prefix(own.as_bytes()) {
        r
    } else {
        return Some(Err(ENOENT));
    };
    if !(rest.is_empty() || rest[0] == b'/') {
        return Some(Err(ENOENT));
    }
    Some(match rest {
        b"" | b"/" => Ok(Node::Dir(
            [
                ("exe", DT_LNK),
                ("cwd", DT_LNK),
                ("fd", DT_DIR),
                ("status", DT_REG),
                ("maps", DT_REG),
                ("comm", DT_REG),
            ]
            .iter()
            .map(|(n, d)| (n.as_bytes().to_vec(), *d))
            .collect(),
        )),
        b"/exe" => Ok(Node::Link(t.exe_path.clone())),
        b"/cwd" => Ok(Node::Link(t.cwd.clone())),
        b"/comm" => {
            let n = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
            let mut v = t.comm[..n].to_vec();
            v.push(b'\n');
            Ok(Node::File(v))
        }
        b"/status" => {
            let n = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
            let name = core::str::from_utf8(&t.comm[..n]).unwrap_or("?");
            Ok(Node::File(
                format!(
                    "Name:\t{name}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmRSS:\t{} kB\nThreads:\t1\nSigBlk:\t{:016x}\n",
                    t.umask,
                    t.pid,
                    t.pid,
                    t.ppid,
                    t.mm.resident_pages() * 4,
                    t.signals.blocked
                )
                .into_bytes(),
            ))
        }
        b"/maps" => {
            let mut out = Vec::new();
            for (start, v) in t.mm.vmas() {
                let perms = [
                    if v.access.read { b'r' } else { b'-' },
                    if v.access.write { b'w' } else { b'-' },
                    if v.access.execute { b'x' } else { b'-' },
                    b'p',
                ];
                let name = match v.kind {
                    VmaKind::Image => core::str::from_utf8(&t.exe_path).unwrap_or(""),
                    VmaKind::Brk => "[heap]",
                    VmaKind::Stack => "[stack]",
                    VmaKind::Anon => "",
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
            (0..t.fds.len())
                .filter(|&i| t.fds[i].is_some())
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
    })
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

/// `linux_dirent64` records for a made-up directory (with `.` and `..`).
pub fn dirents(entries: &[(Vec<u8>, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    let all = [(b".".to_vec(), DT_DIR), (b"..".to_vec(), DT_DIR)]
        .into_iter()
        .chain(entries.iter().cloned());
    for (i, (name, dtype)) in all.enumerate() {
        let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
        let start = out.len();
        out.extend_from_slice(&(i as u64 + 1).to_le_bytes()); // d_ino
        out.extend_from_slice(&(start as u64 + reclen as u64).to_le_bytes()); // d_off
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(dtype);
        out.extend_from_slice(&name);
        out.resize(start + reclen, 0);
    }
    out
}

//! The hypercall server: the VMM side of the guest → host interface. Every field of a request
//! is checked before it is acted on — the guest is untrusted. A request that is malformed
//! (unknown op, a guest range outside guest memory, an oversized list) ends the sandbox; a
//! well-formed request the host refuses returns `-errno` to the guest.

// Decodes untrusted input: no silent truncating or sign-changing casts.
#![deny(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use guest_sentry::abi::{op, HostStat, Hypercall, IoVec, IOV_MAX, LOG_MAX, PATH_MAX};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryError, GuestMemoryMmap};

use crate::host::{HostResult, HostServices};

/// What the run loop does after a hypercall.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    Exit {
        code: i32,
        signal: i32,
        exec_errno: i32,
    },
    Panic(String),
    /// The guest broke the protocol: the sandbox is killed.
    Invalid(Malformed),
}

/// Why a hypercall request is malformed. The guest broke the protocol: the sandbox ends (a
/// request the host merely refuses is answered with `-errno` instead).
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("unknown hypercall {0}")]
    UnknownOp(u64),
    #[error("unaligned request block at {0:#x}")]
    Unaligned(u64),
    #[error("guest range {gpa:#x}+{len:#x} outside guest memory")]
    OutsideMemory { gpa: u64, len: u64 },
    #[error("guest address {gpa:#x}: {source}")]
    Address { gpa: u64, source: GuestMemoryError },
    /// A read or write of a checked range failed.
    #[error(transparent)]
    Access(GuestMemoryError),
    #[error("handle or fd {0:#x}")]
    Handle(u64),
    #[error("flag {0:#x}")]
    Flag(u64),
    #[error("argument {0:#x}")]
    Argument(u64),
    #[error("whence {0:#x}")]
    Whence(u64),
    #[error("mode {0:#x}")]
    Mode(u64),
    /// A length over its limit: `what` names the argument ("path", "read", ...).
    #[error("{what} of {len} bytes")]
    TooLong { what: &'static str, len: u64 },
    #[error("I/O list of {0} elements (max {IOV_MAX})")]
    TooManyIoVecs(u64),
    #[error("exit status {code} signal {signal} errno {errno}")]
    Exit { code: u64, signal: u64, errno: u64 },
    #[error("unknown modify kind {0}")]
    UnknownModify(u64),
}

/// A length argument as a host size.
fn len_arg(len: u64) -> Check<usize> {
    usize::try_from(len).map_err(|_| Malformed::Argument(len))
}

fn too_long<T>(what: &'static str, len: u64) -> Check<T> {
    Err(Malformed::TooLong { what, len })
}

/// Largest single PREAD.
const MAX_PREAD: u64 = 16 << 20;
/// Largest LOG / PANIC message: longer ones are malformed.
const MAX_LOG: u64 = LOG_MAX as u64;

pub struct Server<'a> {
    mem: &'a GuestMemoryMmap,
    mem_size: u64,
    host: HostServices,
    pub count: u64,
    /// The CPU features the guest reported at exit (`abi::CPU_*`).
    pub guest_cpu: u64,
}

type Check<T> = Result<T, Malformed>;

/// A handle or fd argument: the whole 64-bit value must fit, else the request is malformed
/// (never truncated into some other, valid handle).
fn handle_arg(v: u64) -> Check<u32> {
    u32::try_from(v).map_err(|_| Malformed::Handle(v))
}

/// A boolean argument: 0 or 1.
fn flag_arg(v: u64) -> Check<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Malformed::Flag(v)),
    }
}

impl<'a> Server<'a> {
    pub fn new(mem: &'a GuestMemoryMmap, mem_size: u64, host: HostServices) -> Self {
        Server {
            mem,
            mem_size,
            host,
            count: 0,
            guest_cpu: 0,
        }
    }

    /// Host address of the guest range `[gpa, gpa + len)`, if entirely inside guest memory.
    fn range(&self, gpa: u64, len: u64) -> Check<*mut u8> {
        match gpa.checked_add(len) {
            Some(end) if end <= self.mem_size => {}
            _ => return Err(Malformed::OutsideMemory { gpa, len }),
        }
        self.mem
            .get_host_address(GuestAddress(gpa))
            .map_err(|source| Malformed::Address { gpa, source })
    }

    /// A path argument: at most `PATH_MAX` bytes of guest memory.
    fn path(&self, gpa: u64, len: u64) -> Check<Vec<u8>> {
        if len > PATH_MAX as u64 {
            return too_long("path", len);
        }
        self.read_bytes(gpa, len)
    }

    /// A MODIFY hypercall: decoded and checked here, performed (or refused) by the host
    /// services.
    fn modify(&mut self, a: [u64; 6]) -> Check<HostResult<u64>> {
        use guest_sentry::abi::*;
        use guest_sentry::host::HostOp;
        let path = self.path(a[1], a[2])?;
        let second = || self.path(a[3], a[4]);
        let small = |v: u64| u32::try_from(v).map_err(|_| Malformed::Argument(v));
        let (p2, times);
        let o = match a[0] {
            MODIFY_MKDIR => HostOp::Mkdir {
                path: &path,
                mode: small(a[5])?,
            },
            MODIFY_UNLINK | MODIFY_RMDIR => HostOp::Unlink {
                path: &path,
                dir: a[0] == MODIFY_RMDIR,
            },
            MODIFY_RENAME => {
                p2 = second()?;
                HostOp::Rename {
                    from: &path,
                    to: &p2,
                }
            }
            MODIFY_LINK => {
                p2 = second()?;
                HostOp::Link {
                    from: &path,
                    to: &p2,
                }
            }
            MODIFY_SYMLINK => {
                p2 = second()?;
                HostOp::Symlink {
                    target: &p2,
                    path: &path,
                }
            }
            MODIFY_TRUNCATE => HostOp::Truncate {
                path: &path,
                len: a[5],
            },
            MODIFY_CHMOD => HostOp::Chmod {
                path: &path,
                mode: small(a[5])?,
            },
            MODIFY_CHOWN | MODIFY_LCHOWN => HostOp::Chown {
                path: &path,
                uid: small(a[5] >> 32)?,
                gid: small(a[5] & u64::from(u32::MAX))?,
                nofollow: a[0] == MODIFY_LCHOWN,
            },
            MODIFY_UTIMENS | MODIFY_LUTIMENS => {
                if a[4] != 32 {
                    return too_long("utimens times", a[4]);
                }
                let raw = self.read_bytes(a[3], 32)?;
                times = std::array::from_fn(|i| {
                    i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap())
                });
                HostOp::Utimens {
                    path: &path,
                    times,
                    nofollow: a[0] == MODIFY_LUTIMENS,
                }
            }
            other => return Err(Malformed::UnknownModify(other)),
        };
        Ok(self.host.modify(&o).map(|()| 0))
    }

    fn read_bytes(&self, gpa: u64, len: u64) -> Check<Vec<u8>> {
        self.range(gpa, len)?;
        let mut v = vec![0u8; len_arg(len)?];
        self.mem
            .read_slice(&mut v, GuestAddress(gpa))
            .map_err(Malformed::Access)?;
        Ok(v)
    }

    fn write_bytes(&self, gpa: u64, data: &[u8]) -> Check<()> {
        self.range(gpa, data.len() as u64)?;
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(Malformed::Access)
    }

    /// A guest gather/scatter list as host iovecs, every element checked.
    fn iovecs(&self, gpa: u64, count: u64) -> Check<Vec<libc::iovec>> {
        if count > IOV_MAX as u64 {
            return Err(Malformed::TooManyIoVecs(count));
        }
        let size = std::mem::size_of::<IoVec>() as u64;
        let raw = self.read_bytes(gpa, count * size)?;
        raw.chunks_exact(std::mem::size_of::<IoVec>())
            .map(|c| {
                let base = u64::from_le_bytes(c[..8].try_into().unwrap());
                let len = u64::from_le_bytes(c[8..16].try_into().unwrap());
                Ok(libc::iovec {
                    iov_base: self.range(base, len)?.cast(),
                    iov_len: len_arg(len)?,
                })
            })
            .collect()
    }

    /// Handles the hypercall whose request block is at `gpa`.
    pub fn handle(&mut self, gpa: u64) -> Outcome {
        self.count += 1;
        match self.serve(gpa) {
            Ok(o) => o,
            Err(why) => Outcome::Invalid(why),
        }
    }

    fn serve(&mut self, gpa: u64) -> Check<Outcome> {
        let size = std::mem::size_of::<Hypercall>() as u64;
        if !gpa.is_multiple_of(8) {
            return Err(Malformed::Unaligned(gpa));
        }
        let raw = self.read_bytes(gpa, size)?;
        let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        let opcode = word(0);
        let a: [u64; 6] = std::array::from_fn(|i| word(1 + i));
        let ret: HostResult<u64> = match opcode {
            op::EXIT => {
                if a[0] > 255 || a[1] > 64 || a[2] > 4095 {
                    return Err(Malformed::Exit {
                        code: a[0],
                        signal: a[1],
                        errno: a[2],
                    });
                }
                self.guest_cpu = a[3];
                // In range (checked above): the conversions cannot fail.
                let int = |v: u64| i32::try_from(v).map_err(|_| Malformed::Argument(v));
                return Ok(Outcome::Exit {
                    code: int(a[0])?,
                    signal: int(a[1])?,
                    exec_errno: int(a[2])?,
                });
            }
            op::PANIC => {
                if a[1] > MAX_LOG {
                    return too_long("panic message", a[1]);
                }
                let msg = self.read_bytes(a[0], a[1])?;
                return Ok(Outcome::Panic(crate::host::escape_log(&msg, true)));
            }
            op::WRITE => {
                let iov = self.iovecs(a[1], a[2])?;
                // SAFETY: `iovecs` checked every range lies inside guest memory, which stays
                // mapped while the server lives.
                unsafe { self.host.write_stdio(handle_arg(a[0])?, &iov) }
            }
            op::READ => {
                let iov = self.iovecs(a[1], a[2])?;
                // SAFETY: `iovecs` checked every range lies inside guest memory, which stays
                // mapped while the server lives.
                unsafe { self.host.read_stdio(handle_arg(a[0])?, &iov) }
            }
            op::OPEN => {
                let path = self.path(a[0], a[1])?;
                self.host.open(&path, a[2]).map(u64::from)
            }
            op::PREADV => {
                let iov = self.iovecs(a[1], a[2])?;
                let handle = handle_arg(a[0])?;
                // SAFETY: `iovecs` checked every range lies inside guest memory, which stays
                // mapped while the server lives.
                unsafe { self.host.preadv(handle, &iov, a[3]) }
            }
            op::GETDENTS => {
                if a[2] > MAX_PREAD {
                    return too_long("getdents", a[2]);
                }
                let buf = self.range(a[1], a[2])?;
                let handle = handle_arg(a[0])?;
                let len = len_arg(a[2])?;
                // SAFETY: `range` checked the buffer lies inside guest memory, which stays
                // mapped while the server lives.
                unsafe { self.host.getdents(handle, buf, len) }
            }
            op::LSEEK => {
                let handle = handle_arg(a[0])?;
                let whence = u32::try_from(a[2]).map_err(|_| Malformed::Whence(a[2]))?;
                self.host.lseek(handle, a[1] as i64, whence)
            }
            op::READLINK => {
                let path = self.path(a[0], a[1])?;
                if a[3] > PATH_MAX as u64 {
                    return too_long("readlink buffer", a[3]);
                }
                self.range(a[2], a[3])?;
                let mut out = vec![0u8; len_arg(a[3])?];
                let r = self.host.readlink(&path, &mut out);
                if let Ok(n) = r {
                    let n = len_arg(n)?.min(out.len());
                    self.write_bytes(a[2], &out[..n])?;
                }
                r
            }
            op::PREAD => {
                if a[2] > MAX_PREAD {
                    return too_long("read", a[2]);
                }
                let buf = self.range(a[1], a[2])?;
                let handle = handle_arg(a[0])?;
                self.host.pread(handle, buf, len_arg(a[2])?, a[3])
            }
            op::CLOSE => {
                let handle = handle_arg(a[0])?;
                self.host.close(handle).map(|_| 0)
            }
            op::FSTAT => {
                let fd = handle_arg(a[0])?;
                self.range(a[2], std::mem::size_of::<HostStat>() as u64)?;
                match self.host.fstat(fd, flag_arg(a[1])?) {
                    Ok(st) => {
                        // SAFETY: HostStat is plain old data (repr(C), integers only).
                        let bytes = unsafe {
                            std::slice::from_raw_parts(
                                &st as *const HostStat as *const u8,
                                std::mem::size_of::<HostStat>(),
                            )
                        };
                        self.write_bytes(a[2], bytes)?;
                        Ok(0)
                    }
                    Err(e) => Err(e),
                }
            }
            op::STATFS => {
                use guest_sentry::abi::HostStatfs;
                let h = handle_arg(a[0])?;
                self.range(a[1], std::mem::size_of::<HostStatfs>() as u64)?;
                match self.host.statfs(h) {
                    Ok(sfs) => {
                        let words = [
                            sfs.fs_type,
                            sfs.bsize,
                            sfs.blocks,
                            sfs.bfree,
                            sfs.bavail,
                            sfs.files,
                            sfs.ffree,
                            sfs.namelen,
                            sfs.frsize,
                            sfs.flags,
                        ];
                        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                        self.write_bytes(a[1], &bytes)?;
                        Ok(0)
                    }
                    Err(e) => Err(e),
                }
            }
            op::IOCTL => {
                if a[3] > 64 {
                    return too_long("ioctl buffer", a[3]);
                }
                self.range(a[2], a[3])?;
                // In for the set requests, out for the get ones.
                let mut out = self.read_bytes(a[2], a[3])?;
                let r = self.host.tty_ioctl(handle_arg(a[0])?, a[1], &mut out);
                if r.is_ok() {
                    self.write_bytes(a[2], &out)?;
                }
                r.map(|_| 0)
            }
            op::LOG => {
                if a[1] > MAX_LOG {
                    return too_long("log line", a[1]);
                }
                let msg = self.read_bytes(a[0], a[1])?;
                // Guest bytes never reach the terminal raw (no escape sequences).
                crate::host::sentry_log(&msg);
                Ok(0)
            }
            op::CLOCK => HostServices::clock(a[0]),
            op::OPEN_WRITE => {
                let path = self.path(a[0], a[1])?;
                let mode = u32::try_from(a[3]).map_err(|_| Malformed::Mode(a[3]))?;
                self.host.open_write(&path, a[2], mode).map(u64::from)
            }
            op::PWRITEV => {
                let iov = self.iovecs(a[1], a[2])?;
                let handle = handle_arg(a[0])?;
                // SAFETY: `iovecs` checked every range lies inside guest memory, which stays
                // mapped while the server lives.
                unsafe { self.host.pwritev(handle, &iov, a[3]) }
            }
            op::HANDLE => {
                let handle = handle_arg(a[0])?;
                self.host.handle_op(handle, a[1], a[2]).map(|()| 0)
            }
            op::MODIFY => self.modify(a)?,
            op::PREEMPT => {
                super::arm_kick(a[0]);
                Ok(0)
            }
            op::STAT => {
                let path = self.path(a[0], a[1])?;
                self.range(a[3], std::mem::size_of::<HostStat>() as u64)?;
                match self.host.stat_path(&path, flag_arg(a[2])?) {
                    Ok(st) => {
                        // SAFETY: HostStat is plain old data (repr(C), integers only).
                        let bytes = unsafe {
                            std::slice::from_raw_parts(
                                &st as *const HostStat as *const u8,
                                std::mem::size_of::<HostStat>(),
                            )
                        };
                        self.write_bytes(a[3], bytes)?;
                        Ok(0)
                    }
                    Err(e) => Err(e),
                }
            }
            op::SLEEP => {
                crate::host::sleep_interruptible(a[0].min(1_000_000_000));
                Ok(0)
            }
            other => return Err(Malformed::UnknownOp(other)),
        };
        let ret: i64 = match ret {
            Ok(v) => v as i64,
            Err(e) => -i64::from(e.0),
        };
        self.write_bytes(
            gpa + std::mem::offset_of!(Hypercall, ret) as u64,
            &ret.to_le_bytes(),
        )?;
        Ok(Outcome::Continue)
    }
}

/// What the server is checked against, by its property test and by the fuzz target
/// (`fuzz/fuzz_targets/hypercalls.rs`): a fixture root beside a directory no request may change.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    /// A tree as [`snapshot`] sees it: (path, kind + mode, size, mtime) of each file.
    pub type Tree = Vec<(String, u32, u64, i64)>;

    /// Every file below `dir` (symlinks as links, not followed).
    pub fn snapshot(dir: &Path) -> Tree {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let m = e.metadata().unwrap();
                out.push((e.path().display().to_string(), m.mode(), m.len(), m.mtime()));
                if m.is_dir() {
                    todo.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    /// A fresh root BASE/root (remade if there): files `a` and `d/b`, links out of it to
    /// BASE/outside (absolute `abs`, climbing `rel`), a link to `/proc/self/mem` (`mem`) and,
    /// where vmm may make one, a device node (`null`, /dev/null's numbers).
    pub fn fixture(base: &Path) -> PathBuf {
        let root = base.join("root");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("a"), b"file a").unwrap();
        std::fs::write(root.join("d/b"), b"file b").unwrap();
        std::os::unix::fs::symlink(base.join("outside"), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("/proc/self/mem", root.join("mem")).unwrap();
        let c = std::ffi::CString::new(root.join("null").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a C string; makedev computes a number.
        unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        root
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
mod tests {
    use super::*;
    use std::io::Write;

    const MEM: u64 = 1 << 20;
    const BLOCK: u64 = 0x1000;

    fn setup() -> (GuestMemoryMmap, HostServices) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
        let mut exe = tempfile();
        exe.write_all(b"\x7fELF-test").unwrap();
        (
            mem,
            HostServices::new(std::path::Path::new("/"), exe).unwrap(),
        )
    }

    fn tempfile() -> std::fs::File {
        // SAFETY: static C string; the fd is checked and owned.
        let fd = unsafe { libc::memfd_create(c"hypercall-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a fresh fd.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    }

    fn request(mem: &GuestMemoryMmap, at: u64, opcode: u64, args: [u64; 6]) {
        let mut raw = Vec::new();
        raw.extend_from_slice(&opcode.to_le_bytes());
        for a in args {
            raw.extend_from_slice(&a.to_le_bytes());
        }
        raw.extend_from_slice(&0i64.to_le_bytes());
        mem.write_slice(&raw, GuestAddress(at)).unwrap();
    }

    fn ret(mem: &GuestMemoryMmap) -> i64 {
        let mut b = [0u8; 8];
        mem.read_slice(&mut b, GuestAddress(BLOCK + 56)).unwrap();
        i64::from_le_bytes(b)
    }

    fn invalid(o: Outcome) -> bool {
        matches!(o, Outcome::Invalid(_))
    }

    #[test]
    fn malformed_requests_end_the_sandbox() {
        let (mem, host) = setup();
        let mut s = Server::new(&mem, MEM, host);
        // Block outside guest memory, unaligned, straddling the end.
        assert!(invalid(s.handle(MEM + 0x1000)));
        assert!(invalid(s.handle(BLOCK + 3)));
        assert!(invalid(s.handle(MEM - 16)));
        // Unknown op.
        request(&mem, BLOCK, 999, [0; 6]);
        assert!(invalid(s.handle(BLOCK)));
        // Gather list outside memory, too long, or naming memory outside the guest.
        request(&mem, BLOCK, op::WRITE, [1, MEM - 8, 1, 0, 0, 0]);
        assert!(invalid(s.handle(BLOCK)));
        request(
            &mem,
            BLOCK,
            op::WRITE,
            [1, 0x2000, IOV_MAX as u64 + 1, 0, 0, 0],
        );
        assert!(invalid(s.handle(BLOCK)));
        mem.write_slice(
            &[0x10u64.to_le_bytes(), u64::MAX.to_le_bytes()].concat(),
            GuestAddress(0x2000),
        )
        .unwrap();
        request(&mem, BLOCK, op::WRITE, [1, 0x2000, 1, 0, 0, 0]);
        assert!(invalid(s.handle(BLOCK)));
        // Oversized path and read; exit status out of range.
        request(
            &mem,
            BLOCK,
            op::OPEN,
            [0x3000, PATH_MAX as u64 + 1, 0, 0, 0, 0],
        );
        assert!(invalid(s.handle(BLOCK)));
        request(&mem, BLOCK, op::PREAD, [0, 0x3000, MAX_PREAD + 1, 0, 0, 0]);
        assert!(invalid(s.handle(BLOCK)));
        request(&mem, BLOCK, op::PREAD, [0, MEM - 4, 8, 0, 0, 0]);
        assert!(invalid(s.handle(BLOCK)));
        request(&mem, BLOCK, op::EXIT, [256, 0, 0, 0, 0, 0]);
        assert!(invalid(s.handle(BLOCK)));
    }

    #[test]
    fn refused_requests_return_errno() {
        let (mem, host) = setup();
        let mut s = Server::new(&mem, MEM, host);
        // Stdio only: fd 7 is not the sandbox's.
        mem.write_slice(
            &[0x2100u64.to_le_bytes(), 1u64.to_le_bytes()].concat(),
            GuestAddress(0x2000),
        )
        .unwrap();
        request(&mem, BLOCK, op::WRITE, [7, 0x2000, 1, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::EBADF as i64));
        // Unknown handles.
        request(&mem, BLOCK, op::PREAD, [5, 0x3000, 16, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::EBADF as i64));
        // Write access is never served.
        let path = b"/tmp";
        mem.write_slice(path, GuestAddress(0x3000)).unwrap();
        request(
            &mem,
            BLOCK,
            op::OPEN,
            [0x3000, path.len() as u64, libc::O_RDWR as u64, 0, 0, 0],
        );
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::EROFS as i64));
        // Terminal ioctls other than the mode queries and settings are refused.
        request(
            &mem,
            BLOCK,
            op::IOCTL,
            [1, 0x5412 /* TIOCSTI */, 0x3000, 1, 0, 0],
        );
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::ENOTTY as i64));
        // Without --rw, every write-through request is refused, whatever the Sentry asks.
        request(
            &mem,
            BLOCK,
            op::OPEN_WRITE,
            [
                0x3000,
                path.len() as u64,
                libc::O_WRONLY as u64,
                0o644,
                0,
                0,
            ],
        );
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::EROFS as i64));
        for kind in [
            guest_sentry::abi::MODIFY_MKDIR,
            guest_sentry::abi::MODIFY_UNLINK,
            guest_sentry::abi::MODIFY_CHMOD,
        ] {
            request(
                &mem,
                BLOCK,
                op::MODIFY,
                [kind, 0x3000, path.len() as u64, 0, 0, 0o755],
            );
            assert!(matches!(s.handle(BLOCK), Outcome::Continue));
            assert_eq!(ret(&mem), -(libc::EROFS as i64));
        }
    }

    #[test]
    fn malformed_write_through_requests_kill_the_sandbox() {
        let (mem, host) = setup();
        let mut s = Server::new(&mem, MEM, host);
        mem.write_slice(b"/x", GuestAddress(0x3000)).unwrap();
        // Unknown kind, oversized path, times of the wrong size, a mode beyond 32 bits.
        for args in [
            [99, 0x3000, 2, 0, 0, 0],
            [
                guest_sentry::abi::MODIFY_MKDIR,
                0x3000,
                PATH_MAX as u64 + 1,
                0,
                0,
                0,
            ],
            [guest_sentry::abi::MODIFY_UTIMENS, 0x3000, 2, 0x4000, 16, 0],
            [guest_sentry::abi::MODIFY_CHMOD, 0x3000, 2, 0, 0, 1 << 40],
            [guest_sentry::abi::MODIFY_RENAME, 0x3000, 2, MEM - 1, 8, 0],
        ] {
            request(&mem, BLOCK, op::MODIFY, args);
            assert!(invalid(s.handle(BLOCK)), "{args:?} was accepted");
        }
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("vmm-root-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), b"inside").unwrap();
        let _ = std::fs::remove_file(dir.join("abs"));
        std::os::unix::fs::symlink("/etc/passwd", dir.join("abs")).unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
        let mut s = Server::new(&mem, MEM, HostServices::new(&dir, tempfile()).unwrap());
        // `..` at the root, and an absolute symlink, both resolve inside the root.
        for path in [
            &b"/../../../etc/passwd"[..],
            b"/abs",
            b"etc/../../etc/passwd",
        ] {
            mem.write_slice(path, GuestAddress(0x3000)).unwrap();
            request(
                &mem,
                BLOCK,
                op::OPEN,
                [0x3000, path.len() as u64, 0, 0, 0, 0],
            );
            assert!(matches!(s.handle(BLOCK), Outcome::Continue));
            let h = ret(&mem);
            assert!(h > 0, "open {:?}: {h}", String::from_utf8_lossy(path));
            request(&mem, BLOCK, op::PREAD, [h as u64, 0x4000, 64, 0, 0, 0]);
            assert!(matches!(s.handle(BLOCK), Outcome::Continue));
            assert_eq!(ret(&mem), 6);
            let mut b = [0u8; 6];
            mem.read_slice(&mut b, GuestAddress(0x4000)).unwrap();
            assert_eq!(&b, b"inside");
        }
        // STAT resolves the same way, in one call.
        let path = b"/../abs";
        mem.write_slice(path, GuestAddress(0x3000)).unwrap();
        request(
            &mem,
            BLOCK,
            op::STAT,
            [0x3000, path.len() as u64, 0, 0x5000, 0, 0],
        );
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), 0);
        let mut st = [0u8; std::mem::size_of::<HostStat>()];
        mem.read_slice(&mut st, GuestAddress(0x5000)).unwrap();
        let size = u64::from_le_bytes(st[16..24].try_into().unwrap());
        assert_eq!(size, 6, "followed /abs -> /etc/passwd inside the root");
        request(
            &mem,
            BLOCK,
            op::STAT,
            [0x3000, path.len() as u64, 1, 0x5000, 0, 0],
        );
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        mem.read_slice(&mut st, GuestAddress(0x5000)).unwrap();
        assert_eq!(
            u32::from_le_bytes(st[..4].try_into().unwrap()) & 0o170000,
            0o120000,
            "lstat sees the link"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn oversized_handles_and_flags_are_malformed() {
        let (mem, host) = setup();
        let mut s = Server::new(&mem, MEM, host);
        mem.write_slice(
            &[0x2100u64.to_le_bytes(), 1u64.to_le_bytes()].concat(),
            GuestAddress(0x2000),
        )
        .unwrap();
        // Each of these names a valid fd or handle (stdout, the program) once cut to 32 bits.
        let high = 1u64 << 32;
        for (opcode, args) in [
            (op::WRITE, [high | 1, 0x2000, 1, 0, 0, 0]),
            (op::READ, [high, 0x2000, 1, 0, 0, 0]),
            (op::IOCTL, [high | 1, 0x5401, 0x3000, 36, 0, 0]),
            (op::PREAD, [high, 0x3000, 16, 0, 0, 0]),
            (op::PREADV, [high, 0x2000, 1, 0, 0, 0]),
            (op::PWRITEV, [high, 0x2000, 1, 0, 0, 0]),
            (op::GETDENTS, [high, 0x3000, 64, 0, 0, 0]),
            (op::LSEEK, [high, 0, 0, 0, 0, 0]),
            (op::CLOSE, [high, 0, 0, 0, 0, 0]),
            (op::FSTAT, [high, 0, 0x3000, 0, 0, 0]),
            (op::FSTAT, [high | 1, 1, 0x3000, 0, 0, 0]),
            (
                op::HANDLE,
                [high, guest_sentry::abi::HANDLE_FSYNC, 0, 0, 0, 0],
            ),
            (op::LSEEK, [0, 0, high, 0, 0, 0]),
            // Flags are 0 or 1.
            (op::FSTAT, [1, 2, 0x3000, 0, 0, 0]),
            (op::STAT, [0x2000, 1, 3, 0x3000, 0, 0]),
            // Over-long log and panic messages are refused, not cut.
            (op::LOG, [0x3000, MAX_LOG + 1, 0, 0, 0, 0]),
            (op::PANIC, [0x3000, MAX_LOG + 1, 0, 0, 0, 0]),
            (op::LOG, [0x3000, u64::MAX, 0, 0, 0, 0]),
            // A readlink whose output lies outside guest memory (checked before acting).
            (op::READLINK, [0x2000, 1, MEM - 2, 16, 0, 0]),
        ] {
            request(&mem, BLOCK, opcode, args);
            assert!(
                invalid(s.handle(BLOCK)),
                "op {opcode} {args:x?} was accepted"
            );
        }
        // The program handle is still open (nothing was acted on).
        request(&mem, BLOCK, op::PREAD, [0, 0x3000, 4, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), 4);
        // In range: served or refused with an errno.
        request(&mem, BLOCK, op::LSEEK, [0, 0, 7, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::EINVAL as i64));
        request(&mem, BLOCK, op::PANIC, [0x3000, MAX_LOG, 0, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Panic(_)));
    }

    #[test]
    fn panic_messages_are_escaped() {
        let (mem, host) = setup();
        let mut s = Server::new(&mem, MEM, host);
        let msg = b"boom\x1b]0;title\x07\nline 2";
        mem.write_slice(msg, GuestAddress(0x3000)).unwrap();
        request(
            &mem,
            BLOCK,
            op::PANIC,
            [0x3000, msg.len() as u64, 0, 0, 0, 0],
        );
        match s.handle(BLOCK) {
            Outcome::Panic(m) => assert_eq!(m, "boom\\x1b]0;title\\x07\nline 2"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn write_through_arguments_are_checked() {
        let dir = crate::host::tests::TempDir::new("hc-rw");
        std::fs::write(dir.0.join("f"), b"x").unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
        let mut host = HostServices::new(&dir.0, tempfile()).unwrap();
        host.allow_writes();
        let mut s = Server::new(&mem, MEM, host);
        let path = b"/f";
        mem.write_slice(path, GuestAddress(0x3000)).unwrap();
        let modify = |s: &mut Server, kind, g2, l2, extra| {
            request(&mem, BLOCK, op::MODIFY, [kind, 0x3000, 2, g2, l2, extra]);
            assert!(matches!(s.handle(BLOCK), Outcome::Continue));
            ret(&mem)
        };
        use guest_sentry::abi::*;
        // Times: tv_nsec out of range is the app's mistake (the Sentry passes them on): EINVAL.
        let times = |t: [i64; 4]| {
            let b: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            mem.write_slice(&b, GuestAddress(0x4000)).unwrap();
        };
        times([0, 1_000_000_000, 0, 0]);
        assert_eq!(
            modify(&mut s, MODIFY_UTIMENS, 0x4000, 32, 0),
            -(libc::EINVAL as i64)
        );
        times([0, (1 << 30) - 2, 9, 0]);
        assert_eq!(modify(&mut s, MODIFY_UTIMENS, 0x4000, 32, 0), 0);
        // Chown: only unchanged, the current owner or vmm's own ids.
        let all = u64::MAX;
        assert_eq!(modify(&mut s, MODIFY_CHOWN, 0, 0, all), 0);
        assert_eq!(
            modify(&mut s, MODIFY_CHOWN, 0, 0, 4242 << 32 | 0xffff_ffff),
            -(libc::EPERM as i64)
        );
        // Set-uid never reaches the host.
        assert_eq!(modify(&mut s, MODIFY_CHMOD, 0, 0, 0o4755), 0);
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.0.join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o7777, 0o755);
        // O_WRONLY | O_RDWR.
        request(&mem, BLOCK, op::OPEN_WRITE, [0x3000, 2, 3, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), -(libc::EINVAL as i64));
        request(
            &mem,
            BLOCK,
            op::OPEN_WRITE,
            [
                0x3000,
                2,
                (libc::O_CREAT | libc::O_WRONLY) as u64,
                0o6777,
                0,
                0,
            ],
        );
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert!(ret(&mem) > 0);
    }

    #[test]
    fn pread_of_the_program_and_exit() {
        let (mem, host) = setup();
        let mut s = Server::new(&mem, MEM, host);
        request(&mem, BLOCK, op::PREAD, [0, 0x3000, 64, 0, 0, 0]);
        assert!(matches!(s.handle(BLOCK), Outcome::Continue));
        assert_eq!(ret(&mem), 9);
        let mut b = [0u8; 9];
        mem.read_slice(&mut b, GuestAddress(0x3000)).unwrap();
        assert_eq!(&b, b"\x7fELF-test");
        request(&mem, BLOCK, op::EXIT, [3, 0, 0, 0, 0, 0]);
        assert!(matches!(
            s.handle(BLOCK),
            Outcome::Exit {
                code: 3,
                signal: 0,
                exec_errno: 0
            }
        ));
        assert_eq!(s.count, 2);
    }

    /// The decoder and server against random request blocks: random op numbers and fields,
    /// addresses in and out of guest memory, random lengths, paths built from names that
    /// lead out of the root (absolute and climbing symlinks, `..`) and into device nodes —
    /// with writes allowed. Every request must be served, refused with an errno or declared
    /// malformed; none may panic; nothing outside the test root may change.
    mod fuzz {
        use super::super::testing::{fixture, snapshot};
        use super::*;
        use proptest::prelude::*;

        const OPS: [u64; 21] = [
            op::EXIT,
            op::WRITE,
            op::READ,
            op::OPEN,
            op::PREAD,
            op::CLOSE,
            op::FSTAT,
            op::IOCTL,
            op::LOG,
            op::PANIC,
            op::CLOCK,
            op::PREADV,
            op::GETDENTS,
            op::LSEEK,
            op::READLINK,
            op::STAT,
            op::OPEN_WRITE,
            op::PWRITEV,
            op::HANDLE,
            op::MODIFY,
            op::STATFS,
        ];
        const NAMES: [&str; 12] = [
            "a", "d", "b", "abs", "rel", "..", ".", "null", "new", "outside", "victim", "",
        ];
        const PATH_GPA: u64 = 0x3000;
        const IOV_GPA: u64 = 0x2000;
        const AUX_GPA: u64 = 0x4000;

        fn arg() -> impl Strategy<Value = u64> {
            prop_oneof![
                0u64..8,
                Just(PATH_GPA),
                Just(IOV_GPA),
                Just(AUX_GPA),
                (0u64..MEM).prop_map(|v| v & !7),
                (MEM - 64..MEM + 64),
                any::<u64>(),
                (0u32..0o20_000_000).prop_map(u64::from),
                Just(u64::MAX),
                Just(1 << 32),
            ]
        }

        fn path() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                (any::<bool>(), prop::collection::vec(0..NAMES.len(), 0..6)).prop_map(
                    |(abs, parts)| {
                        let mut p = if abs { b"/".to_vec() } else { Vec::new() };
                        let names: Vec<&str> = parts.iter().map(|&i| NAMES[i]).collect();
                        p.extend_from_slice(names.join("/").as_bytes());
                        p
                    }
                ),
                prop::collection::vec(any::<u8>(), 0..32),
            ]
        }

        #[derive(Debug, Clone)]
        struct Req {
            shaped: bool,
            opcode: u64,
            args: [u64; 6],
            path: Vec<u8>,
            iov: Vec<(u64, u64)>,
            aux: [u64; 4],
        }

        fn req() -> impl Strategy<Value = Req> {
            (
                prop::bool::weighted(0.75),
                prop_oneof![4 => prop::sample::select(OPS.to_vec()), 1 => any::<u64>()],
                prop::array::uniform6(arg()),
                path(),
                prop::collection::vec((arg(), 0u64..256), 0..4),
                prop::array::uniform4(
                    prop_oneof![
                        0i64..2_000_000_000,
                        Just((1 << 30) - 1),
                        Just((1 << 30) - 2),
                        any::<i64>()
                    ]
                    .prop_map(|v| v as u64),
                ),
            )
                .prop_map(|(shaped, opcode, args, path, iov, aux)| Req {
                    shaped,
                    opcode,
                    args,
                    path,
                    iov,
                    aux,
                })
        }

        fn place(mem: &GuestMemoryMmap, r: &Req) -> [u64; 6] {
            mem.write_slice(&r.path, GuestAddress(PATH_GPA)).unwrap();
            let iov: Vec<u8> = (r.iov.iter())
                .flat_map(|&(g, l)| {
                    // Mostly ranges of guest memory (the buffer area), some anywhere.
                    let g = if g < 8 { 0x8000 + g * 0x100 } else { g };
                    [g.to_le_bytes(), l.to_le_bytes()].concat()
                })
                .collect();
            mem.write_slice(&iov, GuestAddress(IOV_GPA)).unwrap();
            let aux: Vec<u8> = r.aux.iter().flat_map(|v| v.to_le_bytes()).collect();
            mem.write_slice(&aux, GuestAddress(AUX_GPA)).unwrap();
            let mut a = r.args;
            // Never the test's own stdio: a read would block, a TCSETS change the terminal.
            if matches!(r.opcode, op::READ | op::WRITE | op::IOCTL) && a[0] <= 2 {
                a[0] += 3;
            }
            // Keep the log short (longer than the limit stays malformed).
            if r.opcode == op::LOG && a[1] <= MAX_LOG {
                a[1] %= 96;
            }
            if !r.shaped {
                return a;
            }
            // Most requests are well-formed, so that the host side is reached: paths where
            // the path was put, lists where the list was, small handles, valid kinds.
            let (path, len) = (PATH_GPA, r.path.len() as u64);
            let handle = a[0] % 6;
            let buf = 0x8000 + (a[1] % 16) * 0x100;
            let open_flags = [
                0,
                libc::O_DIRECTORY,
                libc::O_PATH,
                libc::O_NOFOLLOW | libc::O_PATH,
                libc::O_WRONLY | libc::O_CREAT,
                libc::O_RDWR | libc::O_TRUNC,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                libc::O_WRONLY | libc::O_APPEND,
            ];
            let flags = open_flags[(a[2] % 8) as usize] as u64;
            match r.opcode {
                op::OPEN => a = [path, len, flags & !0o3777, 0, 0, 0],
                op::OPEN_WRITE => a = [path, len, flags, a[3] & 0o7777, 0, 0],
                op::STAT => a = [path, len, a[2] & 1, AUX_GPA + 64, 0, 0],
                op::READLINK => a = [path, len, buf, a[3] % 128, 0, 0],
                op::PREAD | op::GETDENTS => a = [handle, buf, a[2] % 512, a[3] % 64, 0, 0],
                op::PREADV | op::PWRITEV => {
                    a = [handle, IOV_GPA, r.iov.len() as u64, a[3] % 64, 0, 0]
                }
                op::FSTAT => a = [handle, 0, AUX_GPA + 64, 0, 0, 0],
                op::STATFS => a = [handle, AUX_GPA + 64, 0, 0, 0, 0],
                op::CLOSE => a = [handle, 0, 0, 0, 0, 0],
                op::LSEEK => a = [handle, a[1] % 64, a[2] % 5, 0, 0, 0],
                op::HANDLE => a = [handle, a[1] % 3, a[2] % 64, 0, 0, 0],
                op::MODIFY => {
                    let kind = 1 + a[0] % 11;
                    let (g2, l2) = if kind >= 10 {
                        (AUX_GPA, 32)
                    } else {
                        (path, len)
                    };
                    a = [kind, path, len, g2, l2, a[5] % 0o10000];
                    if kind == 8 || kind == 9 {
                        a[5] = r.args[5];
                    }
                }
                _ => {}
            }
            a
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]
            #[test]
            fn random_requests_are_served_refused_or_malformed(
                reqs in prop::collection::vec(req(), 1..24)
            ) {
                let base = crate::host::tests::TempDir::new("fuzz");
                let outside = base.0.join("outside");
                std::fs::create_dir_all(outside.join("sub")).unwrap();
                std::fs::write(outside.join("victim"), b"untouched").unwrap();
                let root = fixture(&base.0);
                let before = snapshot(&outside);
                let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
                let mut host = HostServices::new(&root, tempfile()).unwrap();
                host.allow_writes();
                let mut s = Server::new(&mem, MEM, host);
                for r in &reqs {
                    let a = place(&mem, r);
                    request(&mem, BLOCK, r.opcode, a);
                    match s.handle(BLOCK) {
                        Outcome::Continue => {
                            let v = ret(&mem);
                            prop_assert!(v >= -4095, "{r:?}: ret {v}");
                        }
                        Outcome::Exit { .. } | Outcome::Panic(_) | Outcome::Invalid(_) => {}
                    }
                }
                prop_assert_eq!(snapshot(&outside), before);
                let mut names: Vec<_> = std::fs::read_dir(&base.0).unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                names.sort();
                prop_assert_eq!(names, vec!["outside", "root"]);
            }
        }
    }
}

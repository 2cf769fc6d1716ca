//! Open files: what a file descriptor refers to — host stdio streams, in-Sentry pipes (which
//! never leave the Sentry: no host round trip on any platform), devices, host files (read-only,
//! or written through to the host with `vmm run --rw`), files of the in-memory overlay and
//! made-up `/proc` files.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

/// Linux's default pipe capacity.
pub const PIPE_CAPACITY: usize = 65536;

pub struct Pipe {
    pub data: VecDeque<u8>,
    /// How much it holds before writers wait (`F_SETPIPE_SZ`; [`PIPE_CAPACITY`] at first).
    pub capacity: usize,
    pub readers: u32,
    pub writers: u32,
    /// The last wake-up of readers (data written, an end closed) and of writers (room made,
    /// an end closed), as [`crate::events::stamp`]s: what an edge-triggered epoll watch
    /// reports again.
    pub gen_in: u64,
    pub gen_out: u64,
}

/// One end of a pipe; dropping it closes that end.
pub struct PipeEnd {
    pub pipe: Rc<RefCell<Pipe>>,
    pub write: bool,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        crate::sched::note_progress();
        let mut p = self.pipe.borrow_mut();
        p.gen_in = crate::events::stamp();
        p.gen_out = p.gen_in;
        if self.write {
            p.writers -= 1;
        } else {
            p.readers -= 1;
        }
    }
}

pub enum File {
    /// A host stdio stream (0..=2), reached through the host interface.
    Stdio(u32),
    Pipe(PipeEnd),
    /// A file under the sandbox root, open on the host: read-only, or for writing in
    /// write-through mode (`vmm run --rw`; [`HostFile::write`]).
    Host(HostFile),
    /// A device the Sentry itself provides.
    Dev(Dev),
    /// A file of the in-memory overlay (written by the sandbox).
    Mem {
        data: Rc<crate::overlay::FileData>,
        path: Vec<u8>,
        append: bool,
    },
    /// A file the Sentry makes up (`/proc`): its contents as of the open; for a directory,
    /// `linux_dirent64` records.
    Synthetic {
        data: Vec<u8>,
        dir: bool,
        /// A directory of the overlay (its listing merged with the host's): its absolute
        /// path inside the sandbox (for `*at` syscalls relative to it, `fchdir`) and its
        /// stat as `lstat` of that path says. None: a file the Sentry makes up.
        at: Option<(Vec<u8>, crate::abi::HostStat)>,
    },
    /// An epoll instance ([`crate::events::Epoll`]).
    Epoll(RefCell<crate::events::Epoll>),
    /// An `eventfd` counter.
    EventFd(RefCell<crate::events::EventFd>),
    /// A `timerfd`.
    TimerFd(RefCell<crate::events::TimerFd>),
    /// A `signalfd`: the signals it takes (of the reading task's pending ones).
    SignalFd(Cell<u64>),
    /// A `pidfd` of process `pid`.
    PidFd(u32),
    /// A Unix domain socket ([`crate::net::unix`]).
    Socket(crate::net::unix::SockRef),
    /// An end of a pseudo-terminal ([`crate::tty`]).
    Pty(crate::tty::PtyEnd),
}

impl File {
    /// The anonymous-inode name Linux shows for an event file in `/proc/self/fd`
    /// (`anon_inode:[eventfd]`), `None` for other files.
    pub fn anon_name(&self) -> Option<&'static str> {
        Some(match self {
            File::Epoll(_) => "[eventpoll]",
            File::EventFd(_) => "[eventfd]",
            File::TimerFd(_) => "[timerfd]",
            File::SignalFd(_) => "[signalfd]",
            File::PidFd(_) => "[pidfd]",
            _ => return None,
        })
    }
}

/// The character devices served inside the Sentry (no host file is opened for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    Null,
    Zero,
    Urandom,
}

impl Dev {
    /// The device at `path` (an absolute, normalized path), if any.
    pub fn at(path: &[u8]) -> Option<Dev> {
        match path {
            b"/dev/null" => Some(Dev::Null),
            b"/dev/zero" => Some(Dev::Zero),
            b"/dev/urandom" | b"/dev/random" => Some(Dev::Urandom),
            _ => None,
        }
    }

    /// Linux's device number (major 1: mem devices).
    pub fn rdev(self) -> u64 {
        let minor = match self {
            Dev::Null => 3,
            Dev::Zero => 5,
            Dev::Urandom => 9,
        };
        (1 << 8) | minor
    }
}

pub struct HostFile {
    pub handle: u32,
    /// Absolute path inside the sandbox (for `*at` syscalls relative to it, `fchdir`).
    pub path: Vec<u8>,
    pub dir: bool,
    /// Opened with `O_PATH`: usable only as a directory reference or for `fstat`.
    pub path_only: bool,
    /// Opened for writing through to the host (`vmm run --rw`); `append` for `O_APPEND`.
    pub write: bool,
    pub append: bool,
}

/// A descriptor's target, its status flags and its file offset.
pub struct OpenFile {
    pub file: File,
    pub nonblock: Cell<bool>,
    pub offset: Cell<u64>,
    /// `O_ACCMODE` of the open (pipes, stdio and host files also enforce their own direction).
    pub access: u64,
}

/// Drops a descriptor's reference to an open file, closing the host file with the last one.
pub fn release(host: &dyn crate::host::Host, of: Rc<OpenFile>) {
    if let Ok(of) = Rc::try_unwrap(of) {
        if let File::Host(h) = of.file {
            host.close(h.handle);
        }
    }
}

impl OpenFile {
    pub fn new(file: File, nonblock: bool) -> Self {
        OpenFile {
            file,
            nonblock: Cell::new(nonblock),
            offset: Cell::new(0),
            access: 2,
        }
    }

    pub fn readable(&self) -> bool {
        self.access != 1
    }

    pub fn writable(&self) -> bool {
        self.access == 1 || self.access == 2
    }
}

/// A new pipe: (read end, write end).
pub fn pipe() -> (File, File) {
    let p = Rc::new(RefCell::new(Pipe {
        data: VecDeque::new(),
        capacity: PIPE_CAPACITY,
        readers: 1,
        writers: 1,
        gen_in: 0,
        gen_out: 0,
    }));
    (
        File::Pipe(PipeEnd {
            pipe: p.clone(),
            write: false,
        }),
        File::Pipe(PipeEnd {
            pipe: p,
            write: true,
        }),
    )
}

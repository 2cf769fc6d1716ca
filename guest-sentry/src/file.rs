//! Open files: what a file descriptor refers to. For now host stdio streams and in-Sentry pipes
//! (pipes never leave the Sentry: no host round trip on any platform).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;

/// Linux's default pipe capacity.
pub const PIPE_CAPACITY: usize = 65536;

pub struct Pipe {
    pub data: VecDeque<u8>,
    pub readers: u32,
    pub writers: u32,
}

/// One end of a pipe; dropping it closes that end.
pub struct PipeEnd {
    pub pipe: Rc<RefCell<Pipe>>,
    pub write: bool,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut p = self.pipe.borrow_mut();
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
}

/// A descriptor's target and its status flags (`O_NONBLOCK`, ...).
pub struct OpenFile {
    pub file: File,
    pub nonblock: bool,
}

/// A new pipe: (read end, write end).
pub fn pipe() -> (File, File) {
    let p = Rc::new(RefCell::new(Pipe {
        data: VecDeque::new(),
        readers: 1,
        writers: 1,
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

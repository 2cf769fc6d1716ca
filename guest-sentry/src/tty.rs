//! Pseudo-terminals (`/dev/ptmx`, `/dev/pts/N`): a master and a replica end around Linux's
//! line discipline (`n_tty`), all inside the Sentry.
//!
//! What the master writes is the terminal's *input*: the line discipline maps `\r` to `\n`,
//! edits lines (erase, kill, word erase, literal next, reprint), ends them at `\n`, EOF and
//! EOL, echoes, and turns the interrupt, quit and suspend characters into signals for the
//! terminal's foreground process group. The replica reads that input (whole lines in
//! canonical mode, bytes by `VMIN`/`VTIME` otherwise) and writes *output*, processed as
//! `OPOST` says (`ONLCR`, tabs, …), which the master reads. Closing the last master hangs the
//! terminal up (the replica reads EOF, writes fail with EIO, its session leader gets
//! SIGHUP); closing the last replica makes the master's reads fail with EIO.
//!
//! Echoes made by one master write are committed at its end, as Linux commits them at the
//! end of a receive batch: an interrupt character flushes the input and the echoes not yet
//! committed, then echoes itself (`abc^C` reads back as `^C`).
//!
//! Signals the terminal sends (the interrupt characters, `SIGWINCH`, hang-ups) go to an
//! [`Outbox`] the scheduler empties: a terminal knows process groups by number only.

use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::linux::{Termios, Winsize};
use crate::signo::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGWINCH};

// c_iflag
const ISTRIP: u32 = 0x20;
const INLCR: u32 = 0x40;
const IGNCR: u32 = 0x80;
const ICRNL: u32 = 0x100;
const IUCLC: u32 = 0x200;
const IXON: u32 = 0x400;
const IXANY: u32 = 0x800;
const IUTF8: u32 = 0x4000;
// c_oflag
const OPOST: u32 = 0x1;
const OLCUC: u32 = 0x2;
const ONLCR: u32 = 0x4;
const OCRNL: u32 = 0x8;
const ONOCR: u32 = 0x10;
const ONLRET: u32 = 0x20;
const TABDLY: u32 = 0x1800;
const XTABS: u32 = 0x1800;
// c_lflag
const ISIG: u32 = 0x1;
const ICANON: u32 = 0x2;
const ECHO: u32 = 0x8;
const ECHOE: u32 = 0x10;
const ECHOK: u32 = 0x20;
const ECHONL: u32 = 0x40;
pub const NOFLSH: u32 = 0x80;
pub const TOSTOP: u32 = 0x100;
const ECHOCTL: u32 = 0x200;
const ECHOKE: u32 = 0x800;
const IEXTEN: u32 = 0x8000;
// c_cc
const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
const VSTART: usize = 8;
const VSTOP: usize = 9;
const VSUSP: usize = 10;
const VEOL: usize = 11;
const VREPRINT: usize = 12;
const VWERASE: usize = 14;
const VLNEXT: usize = 15;
const VEOL2: usize = 16;

/// Linux's `_POSIX_VDISABLE`: a control character set to this is off.
const DISABLED: u8 = 0;

/// The input a line discipline holds (`N_TTY_BUF_SIZE`): a line longer than this less one
/// loses its extra characters; beyond it a master write waits for the replica to read.
const IN_CAP: usize = 4096;
/// What the master has yet to read before a replica write waits (Linux's tty buffer limit).
const OUT_CAP: usize = 65536;
/// Ptys at once (`/proc/sys/kernel/pty/max`).
pub const MAX_PTYS: usize = 4096;

/// A replica's termios when the pty is made (Linux's `tty_std_termios`, `CREAD` and no
/// `HUPCL`, as the unix98 pty driver sets it).
fn std_termios() -> Termios {
    let mut cc = [0u8; 19];
    cc[..17]
        .copy_from_slice(b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00");
    Termios {
        c_iflag: ICRNL | IXON,
        c_oflag: OPOST | ONLCR,
        c_cflag: 0xbf, // B38400 | CS8 | CREAD
        c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
        c_line: 0,
        c_cc: cc,
    }
}

/// Whom a terminal's signal is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every process of a process group.
    Group(u32),
    /// One process.
    Process(u32),
}

/// Signals terminals sent, for the scheduler to deliver.
pub type Outbox = Rc<RefCell<Vec<(Target, i32)>>>;

pub type PtyRef = Rc<RefCell<Pty>>;

pub struct Pty {
    /// N of `/dev/pts/N`.
    pub index: u32,
    /// The replica's modes (the master's termios requests act on them too, as on Linux).
    pub termios: Termios,
    pub winsize: Winsize,
    /// `TIOCSPTLCK`: the replica cannot be opened while set (set when the pty is made).
    pub locked: bool,
    /// `TIOCEXCL`: further opens of the replica fail with EBUSY for all but root.
    pub exclusive: bool,
    /// Owner of `/dev/pts/N` (whoever opened `/dev/ptmx`).
    pub uid: u32,
    pub gid: u32,
    /// When it was made (CLOCK_REALTIME ns): its times in `stat`.
    pub time_ns: u64,
    /// The session this is the controlling terminal of (0: none) and its foreground group.
    pub sid: u32,
    pub fg_pgid: u32,
    /// Completed input lines (canonical mode; an empty one is an end of file) and input
    /// bytes (non-canonical mode), as the replica reads them.
    lines: VecDeque<Vec<u8>>,
    raw: VecDeque<u8>,
    /// The line being edited (canonical mode).
    edit: Vec<u8>,
    /// Echoes of the current master write, not yet committed to `out`.
    echo: Vec<u8>,
    /// The output the master has yet to read.
    out: VecDeque<u8>,
    /// The output column (tabs, erasing) and where the line being edited began.
    column: usize,
    canon_column: usize,
    /// The last character was `VLNEXT`: the next is taken literally.
    lnext: bool,
    /// Output stopped by `VSTOP` (`IXON`).
    pub stopped: bool,
    /// Open ends (file descriptions) of each side; whether a replica was ever opened.
    masters: u32,
    replicas: u32,
    replica_opened: bool,
    /// Last wake-ups, as [`crate::events::stamp`]s (for edge-triggered epoll): of the
    /// master's readers and writers, and of the replica's.
    gens: [u64; 4],
    outbox: Outbox,
}

const M_IN: usize = 0;
const M_OUT: usize = 1;
const R_IN: usize = 2;
const R_OUT: usize = 3;

/// Every pty of the sandbox, by index.
pub struct Ptys {
    slots: Vec<Weak<RefCell<Pty>>>,
    pub outbox: Outbox,
}

impl Default for Ptys {
    fn default() -> Self {
        Ptys {
            slots: Vec::new(),
            outbox: Rc::new(RefCell::new(Vec::new())),
        }
    }
}

impl Ptys {
    /// A new pty (locked, as `/dev/ptmx` makes them) owned by `uid`/`gid`: its master end.
    /// ENOSPC when [`MAX_PTYS`] are in use.
    pub fn open_master(&mut self, uid: u32, gid: u32) -> Result<PtyEnd, crate::errno::Errno> {
        let index = match self.slots.iter().position(|w| w.strong_count() == 0) {
            Some(i) => i,
            None if self.slots.len() < MAX_PTYS => {
                self.slots.push(Weak::new());
                self.slots.len() - 1
            }
            None => return Err(crate::errno::ENOSPC),
        };
        let pty = Rc::new(RefCell::new(Pty {
            index: index as u32,
            termios: std_termios(),
            winsize: Winsize::default(),
            locked: true,
            exclusive: false,
            uid,
            gid,
            time_ns: 0,
            sid: 0,
            fg_pgid: 0,
            lines: VecDeque::new(),
            raw: VecDeque::new(),
            edit: Vec::new(),
            echo: Vec::new(),
            out: VecDeque::new(),
            column: 0,
            canon_column: 0,
            lnext: false,
            stopped: false,
            masters: 1,
            replicas: 0,
            replica_opened: false,
            gens: [0; 4],
            outbox: self.outbox.clone(),
        }));
        self.slots[index] = Rc::downgrade(&pty);
        Ok(PtyEnd {
            pty,
            master: true,
            as_tty: false,
        })
    }

    /// `/dev/pts/N`: there while its master is open.
    pub fn get(&self, index: u32) -> Option<PtyRef> {
        let pty = self.slots.get(index as usize)?.upgrade()?;
        let live = pty.borrow().masters > 0;
        live.then_some(pty)
    }

    /// The N of every `/dev/pts/N` there is, in order.
    pub fn indices(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&i| self.get(i).is_some())
            .collect()
    }

    /// The signals sent since the last call.
    pub fn take_signals(&self) -> Vec<(Target, i32)> {
        core::mem::take(&mut *self.outbox.borrow_mut())
    }
}

/// An open end of a pty; dropping it closes that end.
pub struct PtyEnd {
    pub pty: PtyRef,
    pub master: bool,
    /// A replica opened as `/dev/tty` (its path and stat are `/dev/tty`'s, as on Linux).
    pub as_tty: bool,
}

impl PtyEnd {
    /// Another open of the replica of `pty`: EIO while it is locked or hung up.
    pub fn open_replica(pty: &PtyRef) -> Result<PtyEnd, crate::errno::Errno> {
        let mut p = pty.borrow_mut();
        if p.masters == 0 {
            return Err(crate::errno::EIO);
        }
        if p.locked {
            return Err(crate::errno::EIO);
        }
        p.replicas += 1;
        p.replica_opened = true;
        drop(p);
        Ok(PtyEnd {
            pty: pty.clone(),
            master: false,
            as_tty: false,
        })
    }
}

impl Drop for PtyEnd {
    fn drop(&mut self) {
        crate::sched::note_progress();
        let mut p = self.pty.borrow_mut();
        if self.master {
            p.masters -= 1;
            if p.masters == 0 {
                p.hang_up();
            }
        } else {
            p.replicas -= 1;
        }
        p.stamp_all();
    }
}

/// What [`Pty::read_input`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Data(Vec<u8>),
    /// An end of file (`VEOF` on an empty line, or the master closed).
    Eof,
    /// Nothing to read yet.
    Empty,
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl Pty {
    fn lflag(&self, f: u32) -> bool {
        self.termios.c_lflag & f != 0
    }

    fn iflag(&self, f: u32) -> bool {
        self.termios.c_iflag & f != 0
    }

    fn oflag(&self, f: u32) -> bool {
        self.termios.c_oflag & f != 0
    }

    fn cc(&self, i: usize) -> u8 {
        self.termios.c_cc[i]
    }

    /// Whether `c` is the control character `i` (a disabled one matches nothing).
    fn is(&self, c: u8, i: usize) -> bool {
        self.cc(i) != DISABLED && c == self.cc(i)
    }

    pub fn canonical(&self) -> bool {
        self.lflag(ICANON)
    }

    pub fn hung_up(&self) -> bool {
        self.masters == 0
    }

    /// No replica is open any more (one was): the master's reads fail with EIO.
    pub fn replica_gone(&self) -> bool {
        self.replica_opened && self.replicas == 0
    }

    fn stamp(&mut self, which: usize) {
        self.gens[which] = crate::events::stamp();
        crate::sched::note_progress();
    }

    fn stamp_all(&mut self) {
        let s = crate::events::stamp();
        self.gens = [s; 4];
    }

    /// Sends `sig` to `target` (through the outbox).
    pub fn send_signal(&self, target: Target, sig: i32) {
        self.send(target, sig);
    }

    fn send(&self, target: Target, sig: i32) {
        self.outbox.borrow_mut().push((target, sig));
    }

    fn input_len(&self) -> usize {
        self.raw.len() + self.lines.iter().map(|l| l.len() + 1).sum::<usize>() + self.edit.len()
    }

    /// The last master closed: the session leader is told (SIGHUP, SIGCONT) and the pty
    /// stops being anyone's terminal.
    fn hang_up(&mut self) {
        if self.sid != 0 {
            self.send(Target::Process(self.sid), SIGHUP);
            self.send(Target::Process(self.sid), SIGCONT);
        }
        self.sid = 0;
        self.fg_pgid = 0;
        self.lines.clear();
        self.raw.clear();
        self.edit.clear();
    }

    /// The terminal stops being its session's (`TIOCNOTTY` by the session leader: `on_exit`
    /// false; the leader's exit: true): its foreground group gets SIGHUP (and SIGCONT unless
    /// the leader exited).
    pub fn disassociate(&mut self, on_exit: bool) {
        if self.fg_pgid != 0 {
            self.send(Target::Group(self.fg_pgid), SIGHUP);
            if !on_exit {
                self.send(Target::Group(self.fg_pgid), SIGCONT);
            }
        }
        self.sid = 0;
        self.fg_pgid = 0;
    }

    // ----- input: what the master writes -----

    /// A master write: takes input bytes until the line discipline is full; how many it took.
    pub fn write_input(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        for &c in data {
            if self.input_len() >= IN_CAP && !(self.canonical() && self.lines.is_empty()) {
                break;
            }
            self.receive(c);
            n += 1;
        }
        self.commit_echo();
        if n > 0 {
            self.stamp(R_IN);
        }
        n
    }

    /// Whether a master write would take a byte now.
    pub fn input_room(&self) -> bool {
        self.input_len() < IN_CAP || (self.canonical() && self.lines.is_empty())
    }

    fn receive(&mut self, mut c: u8) {
        if self.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if self.iflag(IUCLC) && self.lflag(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            if self.lflag(ECHO) {
                self.echo_char(c);
            }
            self.put(c);
            return;
        }
        if self.iflag(IXON) {
            if self.is(c, VSTART) {
                self.start();
                return;
            }
            if self.is(c, VSTOP) {
                self.stopped = true;
                return;
            }
        }
        if self.lflag(ISIG) {
            let sig = if self.is(c, VINTR) {
                Some(SIGINT)
            } else if self.is(c, VQUIT) {
                Some(SIGQUIT)
            } else if self.is(c, VSUSP) {
                Some(SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                self.signal_char(c, sig);
                return;
            }
        }
        if self.stopped && self.iflag(IXON) && self.iflag(IXANY) {
            self.start();
        }
        if c == b'\r' {
            if self.iflag(IGNCR) {
                return;
            }
            if self.iflag(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.iflag(INLCR) {
            c = b'\r';
        }
        if self.canonical() {
            if self.is(c, VERASE)
                || self.is(c, VKILL)
                || (self.is(c, VWERASE) && self.lflag(IEXTEN))
            {
                self.erase(c);
                return;
            }
            if self.is(c, VLNEXT) && self.lflag(IEXTEN) {
                self.lnext = true;
                if self.lflag(ECHO) && self.lflag(ECHOCTL) {
                    self.echo.extend_from_slice(b"^\x08");
                }
                return;
            }
            if self.is(c, VREPRINT) && self.lflag(ECHO) && self.lflag(IEXTEN) {
                self.echo_char(c);
                self.echo.push(b'\n');
                for i in 0..self.edit.len() {
                    self.echo_char(self.edit[i]);
                }
                return;
            }
            if c == b'\n' {
                if self.lflag(ECHO) || self.lflag(ECHONL) {
                    self.echo.push(b'\n');
                }
                self.edit.push(c);
                self.end_line();
                return;
            }
            if self.is(c, VEOF) {
                self.end_line();
                return;
            }
            if self.is(c, VEOL) || (self.is(c, VEOL2) && self.lflag(IEXTEN)) {
                if self.lflag(ECHO) {
                    self.echo_char(c);
                }
                self.edit.push(c);
                self.end_line();
                return;
            }
        }
        if self.lflag(ECHO) {
            if c == b'\n' {
                self.echo.push(b'\n');
            } else {
                self.echo_char(c);
            }
        }
        self.put(c);
    }

    /// A character into the line being edited (canonical: if it fits) or the input.
    fn put(&mut self, c: u8) {
        if self.canonical() {
            if self.edit.is_empty() {
                self.canon_column = self.column;
            }
            if self.edit.len() < IN_CAP - 1 {
                self.edit.push(c);
            }
        } else {
            self.raw.push_back(c);
        }
    }

    fn end_line(&mut self) {
        let line = core::mem::take(&mut self.edit);
        self.lines.push_back(line);
    }

    /// `TCXONC`'s `TCOOFF` (true) and `TCOON` (false).
    pub fn set_stopped(&mut self, stopped: bool) {
        if stopped {
            self.stopped = true;
        } else {
            self.start();
        }
    }

    fn start(&mut self) {
        if self.stopped {
            self.stopped = false;
            self.stamp(R_OUT);
        }
    }

    /// An interrupt, quit or suspend character: the input (and the echoes not yet
    /// committed) flushed unless `NOFLSH`, the character echoed, the foreground group
    /// signalled.
    fn signal_char(&mut self, c: u8, sig: i32) {
        if !self.lflag(NOFLSH) {
            self.lines.clear();
            self.raw.clear();
            self.edit.clear();
            self.echo.clear();
            self.lnext = false;
        }
        if self.iflag(IXON) {
            self.start();
        }
        if self.lflag(ECHO) {
            self.echo_char(c);
        }
        if self.fg_pgid != 0 {
            self.send(Target::Group(self.fg_pgid), sig);
        }
    }

    /// Erase, kill or word erase (`n_tty`'s `eraser`).
    fn erase(&mut self, c: u8) {
        if self.edit.is_empty() {
            return;
        }
        #[derive(PartialEq)]
        enum Kind {
            Erase,
            Word,
            Kill,
        }
        let kind = if self.is(c, VERASE) {
            Kind::Erase
        } else if self.is(c, VWERASE) {
            Kind::Word
        } else {
            if !self.lflag(ECHO) {
                self.edit.clear();
                return;
            }
            if !self.lflag(ECHOK) || !self.lflag(ECHOKE) || !self.lflag(ECHOE) {
                self.edit.clear();
                self.echo_char(c);
                if self.lflag(ECHOK) {
                    self.echo.push(b'\n');
                }
                return;
            }
            Kind::Kill
        };
        let mut seen_alnums = 0;
        while let Some(&last) = self.edit.last() {
            // One character: a UTF-8 sequence as a whole under IUTF8.
            let mut start = self.edit.len() - 1;
            if self.iflag(IUTF8) {
                while start > 0 && self.edit[start] & 0xc0 == 0x80 {
                    start -= 1;
                }
            }
            let ch = self.edit[start];
            if kind == Kind::Word {
                if ch.is_ascii_alphanumeric() || ch == b'_' || ch >= 0x80 {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            self.edit.truncate(start);
            let _ = last;
            if self.lflag(ECHO) {
                if kind == Kind::Erase && !self.lflag(ECHOE) {
                    self.echo_char(self.cc(VERASE));
                } else if ch == b'\t' {
                    // Back to where the tab began: the columns of the line before it.
                    let col = self.columns_of(&self.edit.clone());
                    let width = 8 - (col & 7);
                    for _ in 0..width {
                        self.echo.push(b'\x08');
                    }
                } else {
                    let ctl = is_cntrl(ch) && self.lflag(ECHOCTL);
                    if ctl {
                        self.echo.extend_from_slice(b"\x08 \x08");
                    }
                    if !is_cntrl(ch) || self.lflag(ECHOCTL) {
                        self.echo.extend_from_slice(b"\x08 \x08");
                    }
                }
            }
            if kind == Kind::Erase {
                break;
            }
        }
    }

    /// The output column after echoing `line` from where the line began.
    fn columns_of(&self, line: &[u8]) -> usize {
        let mut col = self.canon_column;
        for &c in line {
            if c == b'\t' {
                col += 8 - (col & 7);
            } else if is_cntrl(c) {
                if self.lflag(ECHOCTL) {
                    col += 2;
                }
            } else if !(self.iflag(IUTF8) && c & 0xc0 == 0x80) {
                col += 1;
            }
        }
        col
    }

    /// An echo of `c`: a control character as `^X` under `ECHOCTL` (tab and newline as
    /// they are).
    fn echo_char(&mut self, c: u8) {
        if self.lflag(ECHOCTL) && is_cntrl(c) && c != b'\t' && c != b'\n' {
            self.echo.push(b'^');
            self.echo.push(c ^ 0x40);
        } else {
            self.echo.push(c);
        }
    }

    fn commit_echo(&mut self) {
        if self.echo.is_empty() {
            return;
        }
        let echo = core::mem::take(&mut self.echo);
        for c in echo {
            self.output_char(c);
        }
        self.stamp(M_IN);
    }

    /// One output character, processed as `OPOST` says, to what the master reads.
    fn output_char(&mut self, mut c: u8) {
        if !self.oflag(OPOST) {
            self.out.push_back(c);
            return;
        }
        match c {
            b'\n' => {
                if self.oflag(ONLRET) {
                    self.column = 0;
                }
                if self.oflag(ONLCR) {
                    self.column = 0;
                    self.canon_column = 0;
                    self.out.extend(b"\r\n");
                    return;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if self.oflag(ONOCR) && self.column == 0 {
                    return;
                }
                if self.oflag(OCRNL) {
                    c = b'\n';
                    if self.oflag(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                } else {
                    self.column = 0;
                    self.canon_column = 0;
                }
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                self.column += spaces;
                if self.termios.c_oflag & TABDLY == XTABS {
                    self.out.extend(&b"        "[..spaces]);
                    return;
                }
            }
            b'\x08' => self.column = self.column.saturating_sub(1),
            _ if !is_cntrl(c) => {
                if self.oflag(OLCUC) {
                    c = c.to_ascii_uppercase();
                }
                if !(self.iflag(IUTF8) && c & 0xc0 == 0x80) {
                    self.column += 1;
                }
            }
            _ => {}
        }
        self.out.push_back(c);
    }

    // ----- output: what the replica writes -----

    /// A replica write: takes bytes while the master's queue has room; how many it took.
    /// None while output is stopped (`VSTOP`).
    pub fn write_output(&mut self, data: &[u8]) -> Option<usize> {
        if self.stopped {
            return None;
        }
        let mut n = 0;
        for &c in data {
            if self.out.len() >= OUT_CAP {
                break;
            }
            self.output_char(c);
            n += 1;
        }
        if n > 0 {
            self.stamp(M_IN);
        }
        Some(n)
    }

    pub fn output_room(&self) -> bool {
        !self.stopped && self.out.len() < OUT_CAP
    }

    /// A master read of at most `max` bytes (empty: nothing to read).
    pub fn read_output(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.out.len());
        let data: Vec<u8> = self.out.drain(..n).collect();
        if n > 0 {
            self.stamp(R_OUT);
        }
        data
    }

    /// Puts back output a master read could not copy to the app (a bad buffer).
    pub fn unread_output(&mut self, data: &[u8]) {
        for &c in data.iter().rev() {
            self.out.push_front(c);
        }
    }

    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// What one end can read now without waiting (`FIONREAD`): the master the output; the
    /// replica the input ([`Pty::input_available`]).
    pub fn readable(&self, master: bool) -> usize {
        if master {
            self.out.len()
        } else {
            self.input_available()
        }
    }

    /// What the replica can read now without waiting: the completed lines in canonical
    /// mode, the bytes otherwise.
    pub fn input_available(&self) -> usize {
        if self.canonical() {
            self.lines.iter().map(|l| l.len()).sum()
        } else {
            self.raw.len()
        }
    }

    /// Whether the replica's read would return now (poll's `POLLIN`): a line, or in
    /// non-canonical mode `VMIN` bytes (one when `VTIME` is set).
    pub fn input_ready(&self) -> bool {
        if self.canonical() {
            return !self.lines.is_empty();
        }
        let min = if self.cc(VTIME) != 0 {
            1
        } else {
            (self.cc(VMIN) as usize).max(1)
        };
        self.raw.len() >= min
    }

    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// A replica read of at most `max` bytes: in canonical mode from one line (what is left
    /// of it stays for the next read), else from the input bytes.
    pub fn read_input(&mut self, max: usize) -> Input {
        if self.canonical() {
            let Some(line) = self.lines.front_mut() else {
                return Input::Empty;
            };
            if line.is_empty() {
                self.lines.pop_front();
                self.stamp(M_OUT);
                return Input::Eof;
            }
            let n = max.min(line.len());
            let data: Vec<u8> = line.drain(..n).collect();
            if line.is_empty() {
                self.lines.pop_front();
            }
            self.stamp(M_OUT);
            return Input::Data(data);
        }
        if self.raw.is_empty() {
            return Input::Empty;
        }
        let n = max.min(self.raw.len());
        let data: Vec<u8> = self.raw.drain(..n).collect();
        self.stamp(M_OUT);
        Input::Data(data)
    }

    /// Puts back input a replica read could not copy to the app.
    pub fn unread_input(&mut self, data: &[u8]) {
        if self.canonical() {
            match self.lines.front_mut() {
                Some(l) if !l.is_empty() => {
                    let mut v = data.to_vec();
                    v.extend_from_slice(l);
                    *l = v;
                }
                _ => self.lines.push_front(data.to_vec()),
            }
        } else {
            for &c in data.iter().rev() {
                self.raw.push_front(c);
            }
        }
    }

    // ----- modes -----

    /// `TCSETS*`: new modes; switching canonical mode moves what was typed across (off: the
    /// lines and the line being edited become bytes to read; on: unread bytes become a line).
    pub fn set_termios(&mut self, new: Termios) {
        let was = self.canonical();
        self.termios = new;
        let now = self.canonical();
        if was && !now {
            for l in core::mem::take(&mut self.lines) {
                self.raw.extend(l);
            }
            self.raw.extend(core::mem::take(&mut self.edit));
        } else if !was && now && !self.raw.is_empty() {
            let line: Vec<u8> = self.raw.drain(..).collect();
            self.lines.push_back(line);
        }
        if !self.iflag(IXON) {
            self.start();
        }
        self.stamp_all();
        crate::sched::note_progress();
    }

    /// `TCFLSH` and `TCSETSF`: drop unread input and/or output not yet read by the master.
    pub fn flush(&mut self, input: bool, output: bool) {
        if input {
            self.lines.clear();
            self.raw.clear();
            self.edit.clear();
        }
        if output {
            self.out.clear();
        }
        self.stamp_all();
        crate::sched::note_progress();
    }

    /// `TIOCSWINSZ`: a changed size tells the foreground group (SIGWINCH).
    pub fn set_winsize(&mut self, ws: Winsize) {
        if ws != self.winsize {
            self.winsize = ws;
            if self.fg_pgid != 0 {
                self.send(Target::Group(self.fg_pgid), SIGWINCH);
            }
        }
    }

    /// `poll` bits for one end, and its read and write wake-up stamps.
    pub fn poll(&self, master: bool) -> (u32, u64, u64) {
        use crate::events::{EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDNORM, EPOLLWRNORM};
        let mut mask = 0;
        if master {
            if !self.out.is_empty() {
                mask |= EPOLLIN | EPOLLRDNORM;
            }
            if self.replica_gone() {
                mask |= EPOLLHUP;
            }
            if self.input_room() {
                mask |= EPOLLOUT | EPOLLWRNORM;
            }
            (mask, self.gens[M_IN], self.gens[M_OUT])
        } else {
            if self.hung_up() {
                mask |= EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM | EPOLLERR | EPOLLHUP;
            } else {
                if self.input_ready() {
                    mask |= EPOLLIN | EPOLLRDNORM;
                }
                if self.output_room() {
                    mask |= EPOLLOUT | EPOLLWRNORM;
                }
            }
            (mask, self.gens[R_IN], self.gens[R_OUT])
        }
    }
}

/// The controlling terminal of process `g`, if it is a pty that is still its session's.
pub fn controlling(g: &crate::kernel::ThreadGroup) -> Option<PtyRef> {
    let pty = g.ctty.as_ref()?;
    let p = pty.borrow();
    (p.sid != 0 && p.sid == g.sid).then(|| pty.clone())
}

/// Process `pid` (of group `g`) exits: if it leads its session and controls a pty, the pty
/// stops being the session's and its foreground group gets SIGHUP.
pub fn process_exited(pid: u32, g: &crate::kernel::ThreadGroup) {
    if g.sid != pid {
        return;
    }
    if let Some(pty) = controlling(g) {
        pty.borrow_mut().disassociate(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pty() -> (Ptys, PtyEnd, PtyEnd) {
        let mut ptys = Ptys::default();
        let m = ptys.open_master(0, 0).unwrap();
        m.pty.borrow_mut().locked = false;
        let r = PtyEnd::open_replica(&m.pty).unwrap();
        (ptys, m, r)
    }

    fn out(p: &PtyRef) -> Vec<u8> {
        p.borrow_mut().read_output(1 << 20)
    }

    #[test]
    fn lines_echo_and_editing() {
        let (_ptys, m, _r) = pty();
        let p = &m.pty;
        p.borrow_mut().write_input(b"ab\x7fc\x15xy\x17z\n");
        assert_eq!(
            out(p),
            b"ab\x08 \x08c\x08 \x08\x08 \x08xy\x08 \x08\x08 \x08z\r\n"
        );
        assert_eq!(p.borrow_mut().read_input(100), Input::Data(b"z\n".to_vec()));
        p.borrow_mut().write_input(b"foo bar\x17q\n");
        out(p);
        assert_eq!(
            p.borrow_mut().read_input(100),
            Input::Data(b"foo q\n".to_vec())
        );
        p.borrow_mut().write_input(b"l1\nl2\neof\x04\x04");
        assert_eq!(p.borrow_mut().read_input(1), Input::Data(b"l".to_vec()));
        assert_eq!(p.borrow_mut().read_input(100), Input::Data(b"1\n".to_vec()));
        assert_eq!(
            p.borrow_mut().read_input(100),
            Input::Data(b"l2\n".to_vec())
        );
        assert_eq!(p.borrow_mut().read_input(100), Input::Data(b"eof".to_vec()));
        assert_eq!(p.borrow_mut().read_input(100), Input::Eof);
        assert_eq!(p.borrow_mut().read_input(100), Input::Empty);
    }

    #[test]
    fn interrupt_flushes_and_signals_the_foreground() {
        let (ptys, m, _r) = pty();
        let p = &m.pty;
        p.borrow_mut().fg_pgid = 7;
        p.borrow_mut().write_output(b"out1\n");
        p.borrow_mut().write_input(b"abc\x03");
        assert_eq!(out(p), b"out1\r\n^C");
        assert_eq!(p.borrow_mut().read_input(100), Input::Empty);
        assert_eq!(ptys.take_signals(), [(Target::Group(7), SIGINT)]);
    }

    #[test]
    fn hang_ups() {
        let (ptys, m, r) = pty();
        let p = m.pty.clone();
        p.borrow_mut().sid = 5;
        drop(r);
        assert!(p.borrow().replica_gone());
        let r = PtyEnd::open_replica(&p).unwrap();
        drop(m);
        assert!(p.borrow().hung_up());
        assert!(ptys.get(0).is_none());
        assert_eq!(
            ptys.take_signals(),
            [(Target::Process(5), SIGHUP), (Target::Process(5), SIGCONT)]
        );
        drop(r);
    }
}

//! `vmm`'s own log (the `log` facade): warnings on stderr; with `--debug`, debug records too;
//! with `--debug-log FILE`, every record at debug level into FILE (warnings still on stderr).
//! Records are one line each, `vmm: MESSAGE` (in the file with the seconds since vmm started
//! in front). The Sentry's log and `--strace` lines do not come through here: the host
//! writes them to stderr as they arrive.
//!
//! The file is opened when the logger is installed, before vmm confines itself (it opens no
//! paths afterwards); records are written with one `write` each.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    /// The most verbose level written to stderr.
    stderr: LevelFilter,
    /// `--debug-log`: every record (debug and above) goes here too.
    file: Option<Mutex<File>>,
    start: Instant,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.stderr || (self.file.is_some() && metadata.level() <= Level::Debug)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Some(file) = &self.file {
            let t = self.start.elapsed();
            let line = format!(
                "{}.{:06} {:<5} vmm: {}\n",
                t.as_secs(),
                t.subsec_micros(),
                record.level(),
                record.args()
            );
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        if record.level() <= self.stderr {
            let _ = std::io::stderr().write_all(format!("vmm: {}\n", record.args()).as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: `debug` writes debug records to stderr; `file` gets every record at
/// debug level.
pub fn init(debug: bool, file: Option<File>) {
    let stderr = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    };
    let max = if file.is_some() {
        LevelFilter::Debug
    } else {
        stderr
    };
    let logger = Logger {
        stderr,
        file: file.map(Mutex::new),
        start: Instant::now(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

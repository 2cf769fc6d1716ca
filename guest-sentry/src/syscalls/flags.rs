//! Linux flag values the file syscalls share: `open` flags, `*at` flags, `st_mode` file types
//! (from `linux-raw-sys`).

use linux_raw_sys::general as g;

pub const O_ACCMODE: u64 = g::O_ACCMODE as u64;
pub const O_WRONLY: u64 = g::O_WRONLY as u64;
pub const O_CREAT: u64 = g::O_CREAT as u64;
pub const O_EXCL: u64 = g::O_EXCL as u64;
pub const O_TRUNC: u64 = g::O_TRUNC as u64;
pub const O_APPEND: u64 = g::O_APPEND as u64;
pub const O_NONBLOCK: u64 = g::O_NONBLOCK as u64;
pub const O_DIRECT: u64 = g::O_DIRECT as u64;
pub const O_DIRECTORY: u64 = g::O_DIRECTORY as u64;
pub const O_NOFOLLOW: u64 = g::O_NOFOLLOW as u64;
pub const O_CLOEXEC: u64 = g::O_CLOEXEC as u64;
pub const O_PATH: u64 = g::O_PATH as u64;
/// Linux's `O_TMPFILE` includes `O_DIRECTORY` (`__O_TMPFILE | O_DIRECTORY`).
pub const O_TMPFILE: u64 = g::O_TMPFILE as u64;

pub const AT_SYMLINK_NOFOLLOW: u64 = g::AT_SYMLINK_NOFOLLOW as u64;
pub const AT_REMOVEDIR: u64 = g::AT_REMOVEDIR as u64;
pub const AT_EMPTY_PATH: u64 = g::AT_EMPTY_PATH as u64;

pub const S_IFMT: u32 = g::S_IFMT;
pub const S_IFDIR: u32 = g::S_IFDIR;
pub const S_IFREG: u32 = g::S_IFREG;
pub const S_IFLNK: u32 = g::S_IFLNK;
pub const S_IFCHR: u32 = g::S_IFCHR;
pub const S_IFIFO: u32 = g::S_IFIFO;
pub const S_IFSOCK: u32 = g::S_IFSOCK;

const _: () = assert!(O_TMPFILE == 0o20000000 | O_DIRECTORY);

//! Filesystems the Sentry makes up itself rather than reading from the host: `/proc`
//! ([`procfs`]) and `/dev` and `/sys` ([`devfs`]). Kernel-level: the syscall layer looks
//! paths up in them, the scheduler renders other processes' `/proc` entries.

pub mod devfs;
pub mod procfs;

//! Sockets served by the Sentry. Unix domain sockets ([`unix`]) are Sentry objects that never
//! leave it; so are the loopback network's TCP and UDP sockets ([`inet`], `--network none`),
//! built on the same queues. Other families (AF_NETLINK, AF_PACKET, ...) are not served
//! (EAFNOSUPPORT, so libc's lookups fall back to files).

pub mod inet;
pub mod unix;

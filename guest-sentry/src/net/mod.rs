//! Sockets served by the Sentry. Unix domain sockets ([`unix`]) are Sentry objects that never
//! leave it; so are the loopback network's TCP and UDP sockets ([`inet`], `--network none`),
//! built on the same queues, and `NETLINK_ROUTE` ([`netlink`]) describes that network. Other
//! families (AF_PACKET, AF_VSOCK, ...) are not served (EAFNOSUPPORT).

pub mod inet;
pub mod netlink;
pub mod unix;

//! Sockets served by the Sentry. Unix domain sockets ([`unix`]) are Sentry objects that never
//! leave it; other families (AF_INET, AF_INET6, AF_NETLINK, ...) are not served yet
//! (EAFNOSUPPORT, so libc's lookups fall back to files).

pub mod unix;

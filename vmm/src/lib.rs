//! vmm as a library: everything but the command line (`src/main.rs`), so that the fuzz
//! targets (`fuzz/`) reach the hypercall server the way the VMM does.
//!
//! - [`runner`]: one run over the three platforms; [`sandbox`]: the fallbacks' runner;
//!   [`kvm`]: the KVM VMM and its hypercall server ([`kvm::hypercall`]).
//! - [`host`]: the only code doing host syscalls for the sandbox; [`confine`]: vmm's own
//!   confinement (mount namespace, capabilities, seccomp filter).
//! - [`oci`]: the OCI runtime; [`bench`]: `vmm bench`; [`probe`]: which platforms work here;
//!   [`logger`]: vmm's log.

pub mod bench;
pub mod confine;
pub mod host;
pub mod kvm;
pub mod logger;
pub mod oci;
pub mod probe;
pub mod runner;
pub mod sandbox;

//! # The VeNCrypt driver (work in progress)
//!
//! Will terminate VeNCrypt (X.509 TLS) towards QEMU/libvirt VNC servers; not usable yet.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

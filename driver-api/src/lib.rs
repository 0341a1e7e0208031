//! # consolegate driver ABI
//!
//! The only thing between the consolegate proxy and its security drivers. A driver is a shared
//! library (`libconsolegate_<name>.so`) that exports one symbol,
//! `const cg_driver_descriptor *consolegate_driver_v1(void)`. The C header
//! `include/consolegate_driver.h` states the same contract for drivers in other languages;
//! [`abi`] mirrors it field for field.
//!
//! The lifecycle, the rules of the ABI (ownership, errors, NULL, panics, threads) and its
//! compatibility policy (what may change in a minor step, what needs a new `CG_ABI_VERSION`,
//! and what a host does with an older or newer driver) are written once, in `docs/ABI.md` of
//! the source tree. This crate keeps them for Rust drivers: [`export_driver!`] catches panics,
//! checks pointers, and reads the host's structs with [`versioned::read_versioned`].
//!
//! ## Writing a driver in Rust
//! Implement [`Driver`] and [`Channel`], then call [`export_driver!`] once. See
//! `drivers/noop` for the shortest complete example.

#![deny(missing_docs)]

pub mod abi;
pub mod deadline;
mod driver;
mod error;
pub mod export;
mod host_log;
pub mod text;
pub mod versioned;

pub use driver::{
    Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, Kind, Options, PlainChannel,
};
pub use error::{browser_reason, DriverError};

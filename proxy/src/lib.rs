//! # consolegate
//!
//! A secure websocket console proxy for virtual machines. See `docs/ARCHITECTURE.md`.

#![deny(missing_docs)]

pub mod token;

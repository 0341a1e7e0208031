//! # consolegate-tests: the support library of the integration tests
//!
//! Each integration test in `tests/tests/` starts what it needs and drops it at the end:
//! a real QEMU ([`qemu`]), the built `consolegate` binary with a generated configuration
//! ([`proxy`]), and a websocket client ([`ws`]) that speaks RFB ([`rfb`]) through it; a real
//! `redis-server` ([`redis`]) where proxies share a token store.
//! Nothing is skipped: a missing QEMU, `openssl`, `cc` or unbuilt binary fails the test with
//! a message saying what to install or build.
//!
//! The test command builds the workspace first (`cargo build --workspace --all-targets`),
//! because `cargo test` does not build the `cdylib` drivers the proxy loads.

pub mod backend;
pub mod c_driver;
pub mod fds;
pub mod http;
pub mod pki;
pub mod ports;
pub mod proxy;
pub mod qemu;
pub mod reasons;
pub mod redis;
pub mod rfb;
pub mod scratch;
pub mod setup;
pub mod tls_peer;
pub mod wait;
pub mod web;
pub mod ws;

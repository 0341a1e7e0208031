//! # consolegate-tests: the one test harness of the workspace
//!
//! Every test that needs a real peer uses it: the integration tests in `tests/tests/`, the
//! proxy's token-source tests (`proxy/tests/`), the VeNCrypt driver's tests
//! (`drivers/vencrypt/tests/`) and the TLS client's unit tests (a dev-dependency each; this
//! crate depends on no workspace crate, so there is no cycle).
//!
//! Each test starts what it needs and drops it at the end: a real QEMU in every console mode
//! ([`qemu`]), TigerVNC `Xvnc` ([`xvnc`]), `redis-server` ([`redis`]), an HTTPS token resolver
//! ([`resolver`]), an MIT KDC ([`kdc`]) and SASL-protected QEMUs ([`sasl`]), the built
//! `consolegate` binary with a generated configuration ([`proxy`]),
//! ([`resolver`]), HAProxy in front of the proxy ([`haproxy`]), Prometheus scraping its metrics
//! ([`prometheus`]), the built `consolegate` binary with a generated configuration ([`proxy`]),
//! and a websocket client ([`ws`]) that speaks RFB ([`rfb`]) or SPICE ([`spice`]) through it.
//! The console pages (`web/`, built by [`web`]) run in a real headless Chromium ([`browser`]).
//! They share one PKI ([`pki`], made with `openssl`), one port lease ([`ports`]) and one
//! scratch-directory helper ([`scratch`]).
//! Nothing is skipped: a missing QEMU, `openssl`, `cc` or unbuilt binary fails the test with
//! a message saying what to install or build.
//!
//! The test command builds the workspace first (`cargo build --workspace --all-targets`),
//! because `cargo test` does not build the `cdylib` drivers the proxy loads.

pub mod audit;
pub mod backend;
pub mod browser;
pub mod c_driver;
pub mod fds;
pub mod haproxy;
pub mod http;
pub mod kdc;
pub mod pki;
pub mod ports;
pub mod prometheus;
pub mod proxy;
pub mod qemu;
pub mod reasons;
pub mod redis;
pub mod resolver;
pub mod rfb;
pub mod sasl;
pub mod scratch;
pub mod setup;
pub mod spice;
pub mod tls_peer;
pub mod wait;
pub mod web;
pub mod ws;
pub mod xvnc;

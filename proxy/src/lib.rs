//! # consolegate
//!
//! A secure websocket console proxy for virtual machines. A browser (noVNC, spice-html5,
//! xterm.js) opens a websocket with a token; the proxy resolves the token to a console on a
//! hypervisor, connects there through a security driver (a shared library behind the C ABI of
//! `consolegate-driver-api`), and relays bytes. See `docs/ARCHITECTURE.md` for the flow.
//!
//! Module map, in the order a connection meets them:
//! [`daemon`] accepts → [`session`] runs one connection: [`browser_stream`] (TLS),
//! [`http_upgrade`] (request, Origin, token), [`token`] (lookup), [`driver`] (handshake),
//! [`websocket`], [`relay`] → [`audit`]. [`config`], [`listener`], [`sessions`],
//! [`static_files`], [`deadline`] and [`error`] serve them; [`systemd`] talks to the service
//! manager; [`cli`] is the command line. [`client_address`] finds the real client behind a load
//! balancer; [`metrics`] counts, [`metrics_listener`] serves the counts and the health
//! endpoints, [`log_format`] writes the log.

#![deny(missing_docs)]

pub mod allowed_targets;
pub mod audit;
pub mod browser_stream;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod daemon;
pub mod deadline;
pub mod driver;
pub mod error;
pub mod http_upgrade;
pub mod listener;
pub mod log_format;
pub mod metrics;
pub mod metrics_listener;
pub mod refusal_check;
pub mod relay;
pub mod session;
pub mod sessions;
pub mod static_files;
pub mod systemd;
pub mod token;
pub mod unix;
pub mod watchdog;
pub mod websocket;

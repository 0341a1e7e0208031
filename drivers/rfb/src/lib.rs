//! # The RFB codec of consolegate's VNC drivers
//!
//! One place for what every VNC driver must get right on the wire (RFC 6143 and the VeNCrypt
//! extension), so the `vencrypt` and `sasl_gssapi` drivers read a server's offer and answer a
//! browser the same way:
//!
//! - [`version`]: ProtocolVersion — parsing it, and which version to speak with a server or a
//!   browser.
//! - [`security`]: security types and VeNCrypt subtypes, their wire numbers, names and limits.
//! - [`reason`]: failure reasons — a server's read as safe text, ours framed for the browser.
//! - [`wire`]: bounded reads and writes of RFB fields, failing with a [`WireError`].
//! - [`server`]: the client's first steps towards a server (version, security types, VeNCrypt
//!   version, subtypes), failing with a [`server::ServerStepError`].
//! - [`browser`]: the browser side of the handshake: security type None, or a failure with a
//!   reason that noVNC shows.
//!
//! It knows nothing of websockets or TLS: it reads and writes any blocking stream, and the
//! caller's socket timeouts bound every step.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod browser;
pub mod reason;
#[cfg(any(test, feature = "script"))]
pub mod script;
pub mod security;
pub mod server;
pub mod version;
pub mod wire;

pub use reason::{reason_text, with_reason, MAX_REASON_LEN};
pub use security::{list, SecurityType, Subtype};
pub use version::{parse_version, RfbVersion, VERSION_LEN};
pub use wire::WireError;

//! # consolegate driver ABI
//!
//! The only thing between the consolegate proxy and its security drivers. A driver is a shared
//! library (`libconsolegate_<name>.so`) that exports one symbol,
//! `const cg_driver_descriptor *consolegate_driver_v1(void)`. The C header
//! `include/consolegate_driver.h` states the same contract for drivers in other languages.
//!
//! ## Lifecycle
//! 1. The proxy loads the library, calls `consolegate_driver_v1`, and checks `magic`,
//!    `abi_version` and `struct_size`. A mismatch refuses the driver at start-up.
//! 2. `init(host, options)` once: the driver reads the INI sections named in
//!    `option_sections` and returns a handle. Errors are configuration errors.
//! 3. `connect(handle, session, client, server_fd)` once per session, on the session's thread,
//!    concurrently with others. The proxy has already connected `server_fd` (TCP, blocking,
//!    read and write timeouts set to the handshake deadline). The driver runs its handshake,
//!    with the browser through `client` if its protocol needs that (VNC does), and returns a
//!    channel.
//! 4. The proxy sets the socket non-blocking and relays through the channel's vtable until one
//!    side closes, then calls the channel's `destroy`, then closes the socket.
//! 5. `destroy(handle)` at shutdown.
//!
//! ## Rules
//! - **Ownership.** The host owns the socket and every buffer it passes; the driver owns its
//!   handle and channels. Outputs (`out_handle`, `out_channel`, `out_n`) are written only on
//!   success.
//! - **Errors** are a [`CgStatus`](abi::CgStatus) plus a message written into the caller's
//!   [`CgError`](abi::CgError) buffer. Messages never contain passwords or tokens.
//! - **NULL** arguments give `INVALID_ARGUMENT`, never a crash.
//! - **Panics** never cross the boundary: the Rust shims catch them and return `PANIC`.
//!   Drivers in C must not let C++ exceptions or `longjmp` cross it either.
//! - **Versioning.** Structs start with `struct_size` and only grow at the end; status numbers
//!   are never reused. An incompatible change bumps `CG_ABI_VERSION` and the symbol name.
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

pub use driver::{
    Channel, ClientStream, Driver, Kind, Options, PlainChannel, ServerSocket, Session,
};
pub use error::{browser_reason, DriverError};

//! # The noop driver: the shortest complete consolegate driver
//!
//! Serves VNC, SPICE and serial consoles by relaying bytes to the hypervisor unchanged. The
//! hypervisor leg stays in **cleartext**, so the descriptor carries `CG_DRIVER_FLAG_CLEARTEXT`
//! and the proxy refuses to start with it unless `connect_insecure = true`.
//!
//! Read this file first when writing a driver: implement [`Driver`] (options and handshake),
//! return a [`Channel`] for the non-blocking I/O after the handshake (here the ready-made
//! [`PlainChannel`]), then call `export_driver!` once.

#![forbid(unsafe_code)]

use consolegate_driver_api::{
    export_driver, Browser, Channel, ConsoleRequest, ConsoleSocket, Driver, DriverError, Options,
    PlainChannel,
};

/// The noop driver. It has no options.
pub struct Noop;

impl Driver for Noop {
    fn init(_options: &Options) -> Result<Self, DriverError> {
        log::warn!("noop driver: the hypervisor leg of every session is cleartext");
        Ok(Noop)
    }

    fn connect(
        &self,
        session: &ConsoleRequest<'_>,
        _client: &mut Browser<'_>,
        server: ConsoleSocket,
    ) -> Result<Box<dyn Channel>, DriverError> {
        log::debug!(
            "session {}: noop relay to {}:{} ({})",
            session.session_id,
            session.hypervisor,
            session.port,
            session.kind
        );
        Ok(Box::new(PlainChannel::new(server)))
    }
}

export_driver! {
    driver: Noop,
    name: "noop",
    kinds: CG_KIND_VNC | CG_KIND_SPICE | CG_KIND_SERIAL,
    flags: CG_DRIVER_FLAG_CLEARTEXT,
    option_sections: "",
    description: "relays bytes to the hypervisor unchanged (cleartext hypervisor leg)",
}

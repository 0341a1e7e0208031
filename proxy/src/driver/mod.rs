//! Security drivers as the core sees them: the [`DriverRegistry`] loads the configured drivers
//! and picks one per console kind; [`loader`] checks and initialises a driver library;
//! [`channel`] wraps an established channel's C vtable in a safe type; [`browser_io`] lends the
//! browser's websocket to a driver during its handshake. The ABI's rules and compatibility
//! policy are in `docs/ABI.md`.

pub mod browser_io;
pub mod channel;
pub mod loader;
mod log_bridge;

use std::path::Path;
use std::sync::Arc;

use consolegate_driver_api::Kind;

pub use channel::{ConnectFailure, DriverChannel};
pub use loader::{LoadError, LoadedDriver};

use crate::config::Config;

/// The loaded drivers, in the order of `console_proxy_security_driver`.
pub struct DriverRegistry {
    drivers: Vec<Arc<LoadedDriver>>,
}

impl DriverRegistry {
    /// Loads and initialises every configured driver, enforcing `connect_insecure`.
    pub fn load(config: &Config) -> Result<Self, LoadError> {
        let mut drivers = Vec::new();
        for name in &config.drivers {
            let path = library_path(&config.driver_dir, name);
            let driver =
                LoadedDriver::load(name, &path, |sections| config.section_options(sections))?;
            if driver.is_cleartext() && !config.connect_insecure {
                return Err(LoadError::Cleartext { name: name.clone() });
            }
            if driver.is_placeholder() {
                log::warn!(
                    "driver '{name}' is a placeholder and cannot complete sessions: {}",
                    driver.description()
                );
            }
            drivers.push(Arc::new(driver));
        }
        Ok(Self { drivers })
    }

    /// The first driver, in configured order, that serves `kind`.
    pub fn for_kind(&self, kind: Kind) -> Option<&Arc<LoadedDriver>> {
        self.drivers.iter().find(|d| d.serves(kind))
    }

    /// The driver for a console: the one it names (`driver` in its console object), which must
    /// be loaded and serve its kind; without a name, [`for_kind`](Self::for_kind).
    pub fn for_console(
        &self,
        kind: Kind,
        name: Option<&str>,
    ) -> Result<&Arc<LoadedDriver>, crate::error::SessionError> {
        use crate::error::SessionError;
        match name {
            None => self.for_kind(kind).ok_or(SessionError::NoDriver(kind)),
            Some(name) => self
                .drivers
                .iter()
                .find(|d| d.name() == name && d.serves(kind))
                .ok_or_else(|| SessionError::DriverNotLoaded {
                    name: name.to_owned(),
                    kind,
                }),
        }
    }

    /// All loaded drivers, in configured order.
    pub fn drivers(&self) -> &[Arc<LoadedDriver>] {
        &self.drivers
    }
}

/// Test only (feature `abi-v1-plus-test`): logs whether a driver's struct carried the field
/// appended after v1 (`tests/tests/abi_growth.rs` expects "absent" from v1 drivers).
#[cfg(feature = "abi-v1-plus-test")]
fn log_test_extension(structure: &str, value: u64) {
    let presence = if value == 0 { "absent" } else { "present" };
    log::info!("abi-v1-plus-test: {structure}.test_extension is {presence}");
}

/// `DIR/libconsolegate_<name>.so`.
pub fn library_path(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("libconsolegate_{name}.so"))
}

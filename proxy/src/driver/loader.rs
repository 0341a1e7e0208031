//! Loading one driver library: open it, find `consolegate_driver_v1`, check the descriptor's
//! magic, ABI version and size, copy what it says (by the growth rule of `docs/ABI.md`),
//! refuse a NULL function, and call `init` with its options.

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};

use consolegate_driver_api::abi::*;
use consolegate_driver_api::versioned::read_versioned;
use consolegate_driver_api::Kind;
use libloading::Library;

use super::log_bridge::host_log;

/// Why a driver could not be used. Every message names the driver, and the file where one
/// is involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The library file is missing or not loadable; check `driver_dir` and the package.
    #[error("driver '{name}': cannot load {}: {detail}", path.display())]
    Open {
        /// Driver name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// The loader's message.
        detail: String,
    },
    /// The file is a library but not a consolegate driver.
    #[error("driver '{name}': {} does not export {CG_DRIVER_SYMBOL}", path.display())]
    NoSymbol {
        /// Driver name.
        name: String,
        /// Library path.
        path: PathBuf,
    },
    /// The descriptor does not start with the magic number.
    #[error("driver '{name}': {} is not a consolegate driver (magic {found:#010x}, expected {CG_DRIVER_MAGIC:#010x})", path.display())]
    BadMagic {
        /// Driver name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// The magic found.
        found: u32,
    },
    /// The driver was built for another ABI version; install a matching driver build.
    #[error("driver '{name}': {} has ABI version {found}, but this consolegate supports ABI version {CG_ABI_VERSION}", path.display())]
    AbiVersion {
        /// Driver name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The descriptor is malformed (NULL, too small, no name, or another name).
    #[error("driver '{name}': {} has a malformed descriptor: {detail}", path.display())]
    BadDescriptor {
        /// Driver name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A function the ABI requires is NULL in the descriptor: the driver is broken.
    #[error("driver '{name}': descriptor field '{field}' is NULL ({}); the driver must set every function of its descriptor", path.display())]
    NullFunction {
        /// Driver name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// The descriptor's field (`init`, `connect`, `destroy`).
        field: &'static str,
    },
    /// The driver rejected its options; the message is the driver's.
    #[error("driver '{name}': init failed: {message} ({status})")]
    Init {
        /// Driver name.
        name: String,
        /// The status name.
        status: &'static str,
        /// The driver's message.
        message: String,
    },
    /// A cleartext driver was configured without `connect_insecure = true`.
    #[error("driver '{name}' leaves the hypervisor leg in cleartext; set connect_insecure = true to allow it")]
    Cleartext {
        /// Driver name.
        name: String,
    },
}

/// A loaded, initialised driver. Dropping it calls the driver's `destroy` and unloads it.
pub struct LoadedDriver {
    handle: DriverHandle,
    name: Box<Box<str>>,
    path: PathBuf,
    kinds: u32,
    flags: u32,
    version: String,
    description: String,
    sections: Vec<String>,
    pub(super) connect: CgConnectFn,
    destroy: CgDestroyFn,
    /// Declared last so it is dropped last: every function pointer above points into it.
    _library: Library,
}

/// The driver's opaque handle.
struct DriverHandle(*mut c_void);

// SAFETY: the ABI requires a driver handle to be usable from any thread (connect is called
// concurrently from session threads); the host never dereferences it.
unsafe impl Send for DriverHandle {}
// SAFETY: as above.
unsafe impl Sync for DriverHandle {}

impl LoadedDriver {
    /// Loads the driver `name` from `path`; `options` gives the `(section, key, value)` triples
    /// of the sections the driver names.
    pub fn load(
        name: &str,
        path: &Path,
        options: impl FnOnce(&[&str]) -> Vec<(String, String, String)>,
    ) -> Result<Self, LoadError> {
        let open_err = |detail: String| LoadError::Open {
            name: name.into(),
            path: path.into(),
            detail,
        };
        if !path.exists() {
            return Err(open_err("no such file (check driver_dir)".into()));
        }
        // SAFETY: loading a library runs its initialisers. Driver libraries are installed by the
        // operator into driver_dir, the same trust as the proxy binary itself.
        let library = unsafe { Library::new(path) }.map_err(|e| open_err(e.to_string()))?;
        // SAFETY: the symbol's type is fixed by the ABI (`const cg_driver_descriptor *(void)`).
        let entry = unsafe {
            library.get::<unsafe extern "C" fn() -> *const CgDriverDescriptor>(
                CG_DRIVER_SYMBOL.as_bytes(),
            )
        }
        .map_err(|_| LoadError::NoSymbol {
            name: name.into(),
            path: path.into(),
        })?;
        let bad = |detail: &str| LoadError::BadDescriptor {
            name: name.into(),
            path: path.into(),
            detail: detail.into(),
        };
        // SAFETY: calling the entry point per the ABI; it takes no arguments.
        let descriptor = unsafe { entry() };
        if descriptor.is_null() {
            return Err(bad("consolegate_driver_v1 returned NULL"));
        }
        // The leading u32 fields are stable across all ABI versions: read them before
        // trusting the rest of the struct.
        // SAFETY: descriptor is non-NULL and points at a static descriptor of at least the
        // leading u32 fields that every ABI version shares.
        let (magic, abi_version) = unsafe {
            let head = descriptor.cast::<u32>();
            (head.read(), head.add(1).read())
        };
        if magic != CG_DRIVER_MAGIC {
            return Err(LoadError::BadMagic {
                name: name.into(),
                path: path.into(),
                found: magic,
            });
        }
        if abi_version != CG_ABI_VERSION {
            return Err(LoadError::AbiVersion {
                name: name.into(),
                path: path.into(),
                found: abi_version,
            });
        }
        // SAFETY: non-NULL, magic and version checked: a v1 or later descriptor of
        // struct_size bytes, static in the library.
        let d = unsafe { read_versioned(descriptor) }.map_err(|e| bad(&e.to_string()))?;
        #[cfg(feature = "abi-v1-plus-test")]
        super::log_test_extension(
            &format!("driver '{name}': cg_driver_descriptor"),
            d.test_extension,
        );
        let null = |field| LoadError::NullFunction {
            name: name.into(),
            path: path.into(),
            field,
        };
        let init = d.init.ok_or_else(|| null("init"))?;
        let connect = d.connect.ok_or_else(|| null("connect"))?;
        let destroy = d.destroy.ok_or_else(|| null("destroy"))?;
        // SAFETY: the ABI requires these to be NULL or static NUL-terminated strings.
        let text = |p: *const std::ffi::c_char| unsafe { c_text(p) };
        let declared = text(d.name).ok_or_else(|| bad("no name"))?;
        if declared != name {
            return Err(bad(&format!("it calls itself '{declared}'")));
        }
        if d.kinds & (CG_KIND_VNC | CG_KIND_SPICE | CG_KIND_SERIAL) == 0 {
            return Err(bad("it serves no console kind"));
        }
        let sections: Vec<String> = text(d.option_sections)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut driver = LoadedDriver {
            handle: DriverHandle(std::ptr::null_mut()),
            name: Box::new(name.into()),
            path: path.into(),
            kinds: d.kinds,
            flags: d.flags,
            version: text(d.version).unwrap_or_default(),
            description: text(d.description).unwrap_or_default(),
            sections,
            connect,
            destroy,
            _library: library,
        };
        let refs: Vec<&str> = driver.sections.iter().map(String::as_str).collect();
        let triples = options(&refs);
        driver.init(init, &triples)?;
        log::info!(
            "driver '{name}' {} loaded from {} (serves {})",
            driver.version,
            driver.path.display(),
            driver.kind_names().join(", ")
        );
        Ok(driver)
    }

    fn init(
        &mut self,
        init: CgInitFn,
        triples: &[(String, String, String)],
    ) -> Result<(), LoadError> {
        let options: Vec<CgOption> = triples
            .iter()
            .map(|(s, k, v)| CgOption {
                section: CgStr::borrow(s),
                key: CgStr::borrow(k),
                value: CgStr::borrow(v),
            })
            .collect();
        let host = CgHost {
            struct_size: std::mem::size_of::<CgHost>() as u32,
            abi_version: CG_ABI_VERSION,
            log_ctx: (&*self.name as *const Box<str>).cast_mut().cast(),
            log: Some(host_log),
            #[cfg(feature = "abi-v1-plus-test")]
            test_extension: 1,
        };
        let mut message = [0u8; 1024];
        let mut err = CgError {
            buf: message.as_mut_ptr(),
            cap: message.len(),
            len: 0,
        };
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; options borrow triples, which outlive
        // it; the name behind log_ctx is boxed and lives as long as self.
        let status = unsafe {
            init(
                &host,
                options.as_ptr(),
                options.len(),
                &mut handle,
                &mut err,
            )
        };
        if status != CgStatus::OK {
            return Err(LoadError::Init {
                name: self.name().into(),
                status: status.name(),
                message: error_text(&message, err.len),
            });
        }
        self.handle = DriverHandle(handle);
        Ok(())
    }

    /// The driver's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver's own version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The driver's one-line description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the driver serves consoles of `kind`.
    pub fn serves(&self, kind: Kind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// Names of the kinds served.
    pub fn kind_names(&self) -> Vec<&'static str> {
        [Kind::Vnc, Kind::Spice, Kind::Serial]
            .into_iter()
            .filter(|k| self.serves(*k))
            .map(Kind::name)
            .collect()
    }

    /// Whether the hypervisor leg stays cleartext.
    pub fn is_cleartext(&self) -> bool {
        self.flags & CG_DRIVER_FLAG_CLEARTEXT != 0
    }

    /// Whether the driver is a placeholder that cannot complete sessions.
    pub fn is_placeholder(&self) -> bool {
        self.flags & CG_DRIVER_FLAG_PLACEHOLDER != 0
    }

    pub(super) fn raw_handle(&self) -> *mut c_void {
        self.handle.0
    }
}

impl Drop for LoadedDriver {
    fn drop(&mut self) {
        if !self.handle.0.is_null() {
            // SAFETY: the handle came from this driver's init and every channel is gone (each
            // holds an Arc of this driver).
            unsafe { (self.destroy)(self.handle.0) };
        }
    }
}

/// Reads a NUL-terminated string.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn c_text(p: *const std::ffi::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The message a driver wrote into an error buffer.
pub(super) fn error_text(buf: &[u8], len: usize) -> String {
    String::from_utf8_lossy(&buf[..len.min(buf.len())]).into_owned()
}

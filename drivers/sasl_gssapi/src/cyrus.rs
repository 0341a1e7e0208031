//! The one `unsafe` module of the driver: a small safe wrapper of cyrus-sasl's client API
//! (through `sasl2-sys`), the library QEMU's VNC server uses on its side.
//!
//! - [`init`]: `sasl_client_init`, once per process.
//! - [`SaslClient`]: one connection: `sasl_client_new` with the security properties of the
//!   route ([`Security`]), `start` with one mechanism, `step`, the negotiated SSF and
//!   `maxoutbuf`, and `encode`/`decode` through the security layer. Dropping it disposes of
//!   the connection.
//! - Credentials (SCRAM's username and password) are answered through cyrus-sasl's
//!   interaction list, never through global callbacks; they are kept, zeroed on drop, for
//!   the life of the connection because the plug-ins read them after the call returns.
//! - Failures are [`CyrusError`]s: the operation, the SASL code with its name, and
//!   `sasl_errdetail`, which for GSSAPI carries the GSS major and minor status text.
//!
//! ## Threads
//! cyrus-sasl's global initialisation, plug-in loading and its default (no-op) mutexes are not
//! thread-safe, and the GSSAPI plug-in touches process-wide Kerberos state while it
//! authenticates. So every call that creates, steps or disposes of a connection runs under
//! one process-wide lock ([`LIBRARY`]). Session set-up is short, so this costs little; the
//! security layer's `encode` and `decode` touch only their own connection and run without it,
//! so relays never wait on each other.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::fmt;
use std::ptr;
use std::sync::{Mutex, MutexGuard, OnceLock};

use sasl2_sys::sasl::{
    sasl_callback_t, sasl_client_init, sasl_client_new, sasl_client_start, sasl_client_step,
    sasl_conn_t, sasl_decode, sasl_dispose, sasl_encode, sasl_errdetail, sasl_errstring,
    sasl_getprop, sasl_interact_t, sasl_security_properties_t, sasl_setprop, sasl_ssf_t,
    SASL_CB_AUTHNAME, SASL_CB_LIST_END, SASL_CB_PASS, SASL_CB_USER, SASL_CONTINUE, SASL_INTERACT,
    SASL_MAXOUTBUF, SASL_OK, SASL_SEC_NOANONYMOUS, SASL_SEC_NOPLAINTEXT, SASL_SEC_PROPS, SASL_SSF,
    SASL_SSF_EXTERNAL,
};

/// The lock around cyrus-sasl's non-thread-safe parts (see the module documentation).
static LIBRARY: Mutex<()> = Mutex::new(());

/// The largest buffer the proxy accepts from the peer's security layer, in bytes.
pub const MAX_BUFFER: u32 = 65536;

fn library() -> MutexGuard<'static, ()> {
    // A panic while holding the lock leaves cyrus-sasl as it was: nothing to repair.
    LIBRARY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cyrus-sasl failure: what was being done, the SASL code, and the library's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CyrusError {
    /// The operation (`sasl_client_start`).
    pub op: &'static str,
    /// The SASL result code (negative).
    pub code: i32,
    /// `sasl_errdetail` (or `sasl_errstring` without a connection): for GSSAPI the GSS major
    /// and minor status text.
    pub detail: String,
}

impl fmt::Display for CyrusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed (SASL {}): {}",
            self.op, self.code, self.detail
        )
    }
}

impl std::error::Error for CyrusError {}

/// The text of a SASL code.
fn errstring(code: c_int) -> String {
    // SAFETY: sasl_errstring returns a pointer to a static string (or NULL) for any code.
    let text = unsafe { sasl_errstring(code, ptr::null(), ptr::null_mut()) };
    if text.is_null() {
        return format!("SASL error {code}");
    }
    // SAFETY: non-NULL, NUL-terminated, static.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// Initialises cyrus-sasl's client side, once per process. Later calls return the first
/// result.
pub fn init() -> Result<(), CyrusError> {
    static INIT: OnceLock<Result<(), CyrusError>> = OnceLock::new();
    INIT.get_or_init(|| {
        let _lock = library();
        // SAFETY: called once, under the library lock; NULL means no global callbacks.
        let rc = unsafe { sasl_client_init(ptr::null()) };
        if rc == SASL_OK {
            Ok(())
        } else {
            Err(CyrusError {
                op: "sasl_client_init",
                code: rc,
                detail: errstring(rc),
            })
        }
    })
    .clone()
}

/// The security properties of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP (RFB type 20): a security layer with at least this SSF is required, and no
    /// mechanism that sends a password in the clear or is anonymous.
    Layer {
        /// The least SSF accepted.
        min_ssf: u32,
    },
    /// Inside TLS (VeNCrypt X509SASL) with this SSF: no security layer (TLS protects the
    /// bytes), as QEMU itself asks.
    InsideTls {
        /// The TLS cipher's key length in bits.
        external_ssf: u32,
    },
}

/// The credentials a mechanism may ask for (SCRAM); GSSAPI uses the keytab instead.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication name.
    pub username: Option<String>,
    /// The password. Never logged.
    pub password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One step's result: the data for the server (`None`: none at all, which SASL distinguishes
/// from empty) and whether the client side is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Data to send.
    pub data: Option<Vec<u8>>,
    /// `SASL_OK` (true) rather than `SASL_CONTINUE`.
    pub done: bool,
}

/// A NUL-terminated secret, zeroed on drop.
struct Secret(Vec<u8>);

impl Secret {
    fn new(text: &str) -> Option<Self> {
        let mut bytes = text.as_bytes().to_vec();
        if bytes.contains(&0) {
            return None;
        }
        bytes.push(0);
        Some(Self(bytes))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

/// One cyrus-sasl client connection.
pub struct SaslClient {
    conn: *mut sasl_conn_t,
    /// Answers to the interaction prompts, kept alive as long as the connection.
    answers: Vec<Secret>,
    credentials: Credentials,
    /// The prompts the proxy answers through the interaction list; cyrus-sasl keeps a pointer
    /// to them for the life of the connection.
    _prompts: Box<[sasl_callback_t; 4]>,
}

// SAFETY: the connection is used by one thread at a time (the session's), and every call that
// touches cyrus-sasl's shared state holds the LIBRARY lock.
unsafe impl Send for SaslClient {}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslClient").finish_non_exhaustive()
    }
}

fn c_string(what: &'static str, text: &str) -> Result<CString, CyrusError> {
    CString::new(text).map_err(|_| CyrusError {
        op: what,
        code: -7,
        detail: format!("{what} contains a NUL byte"),
    })
}

impl SaslClient {
    /// A client for `service` (`vnc`) on `host` with the route's `security`.
    pub fn new(
        service: &str,
        host: &str,
        security: Security,
        credentials: Credentials,
    ) -> Result<Self, CyrusError> {
        init()?;
        let service = c_string("the service name", service)?;
        let host = c_string("the host name", host)?;
        // A NULL procedure declares a prompt answered through the interaction list; without
        // the entry cyrus-sasl skips every mechanism that needs it.
        let prompt = |id| sasl_callback_t {
            id,
            proc_: None,
            context: ptr::null_mut(),
        };
        let prompts = Box::new([
            prompt(SASL_CB_USER),
            prompt(SASL_CB_AUTHNAME),
            prompt(SASL_CB_PASS),
            prompt(SASL_CB_LIST_END),
        ]);
        let _lock = library();
        let mut conn = ptr::null_mut();
        // SAFETY: valid NUL-terminated strings; no address strings; the prompt list lives as
        // long as the connection (it moves into the client, on the heap); conn is a valid out
        // pointer.
        let rc = unsafe {
            sasl_client_new(
                service.as_ptr(),
                host.as_ptr(),
                ptr::null(),
                ptr::null(),
                prompts.as_ptr(),
                0,
                &mut conn,
            )
        };
        if rc != SASL_OK {
            if !conn.is_null() {
                // SAFETY: conn was allocated by sasl_client_new.
                unsafe { sasl_dispose(&mut conn) };
            }
            return Err(CyrusError {
                op: "sasl_client_new",
                code: rc,
                detail: errstring(rc),
            });
        }
        let client = Self {
            conn,
            answers: Vec::new(),
            credentials,
            _prompts: prompts,
        };
        let (min_ssf, max_ssf, flags) = match security {
            Security::Layer { min_ssf } => (
                min_ssf,
                100_000,
                SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT,
            ),
            Security::InsideTls { external_ssf } => {
                let ssf: sasl_ssf_t = external_ssf;
                // SASL_SSF_EXTERNAL takes a sasl_ssf_t.
                client.set(SASL_SSF_EXTERNAL, &ssf, "sasl_setprop(SASL_SSF_EXTERNAL)")?;
                (0, 0, SASL_SEC_NOANONYMOUS)
            }
        };
        let props = sasl_security_properties_t {
            min_ssf,
            max_ssf,
            maxbufsize: MAX_BUFFER,
            security_flags: flags,
            property_names: ptr::null_mut(),
            property_values: ptr::null_mut(),
        };
        // SASL_SEC_PROPS takes a sasl_security_properties_t.
        client.set(SASL_SEC_PROPS, &props, "sasl_setprop(SASL_SEC_PROPS)")?;
        Ok(client)
    }

    /// `sasl_setprop(prop, value)`; `T` must be the type cyrus-sasl expects for `prop`.
    fn set<T>(&self, prop: c_uint, value: &T, op: &'static str) -> Result<(), CyrusError> {
        // SAFETY: conn is live; value points to a T that cyrus-sasl copies before returning;
        // the callers pass the type the property takes.
        let rc = unsafe { sasl_setprop(self.conn, prop as c_int, (value as *const T).cast()) };
        self.check(op, rc)
    }

    /// The error for `rc` if it is not `SASL_OK`/`SASL_CONTINUE`.
    fn check(&self, op: &'static str, rc: c_int) -> Result<(), CyrusError> {
        if rc == SASL_OK || rc == SASL_CONTINUE {
            return Ok(());
        }
        // SAFETY: conn is live; errdetail returns a string owned by the connection.
        let detail = unsafe { sasl_errdetail(self.conn) };
        let detail = if detail.is_null() {
            errstring(rc)
        } else {
            // SAFETY: non-NULL, NUL-terminated, valid until the next call on conn.
            unsafe { CStr::from_ptr(detail) }
                .to_string_lossy()
                .into_owned()
        };
        Err(CyrusError {
            op,
            code: rc,
            detail,
        })
    }

    /// Answers the prompts of an interaction list.
    ///
    /// # Safety
    /// `prompts` is the list cyrus-sasl just returned with `SASL_INTERACT`.
    unsafe fn answer(
        &mut self,
        op: &'static str,
        mut prompt: *mut sasl_interact_t,
    ) -> Result<(), CyrusError> {
        while !prompt.is_null() && (*prompt).id != SASL_CB_LIST_END {
            let answer = match (*prompt).id {
                // The authorisation identity: none (the authenticated one).
                SASL_CB_USER => Some(""),
                SASL_CB_AUTHNAME => self.credentials.username.as_deref(),
                SASL_CB_PASS => self.credentials.password.as_deref(),
                _ => None,
            };
            let what = match (*prompt).id {
                SASL_CB_AUTHNAME => "a username",
                SASL_CB_PASS => "a password",
                _ => "an unsupported prompt",
            };
            let secret = answer.and_then(Secret::new).ok_or_else(|| CyrusError {
                op,
                code: SASL_INTERACT,
                detail: format!(
                    "the mechanism asked for {what} (prompt {}), which the console's token does \
                     not give",
                    (*prompt).id
                ),
            })?;
            (*prompt).result = secret.0.as_ptr().cast::<c_void>();
            // The length excludes the NUL; credentials are at most a few KiB.
            (*prompt).len = (secret.0.len() - 1) as c_uint;
            self.answers.push(secret);
            prompt = prompt.add(1);
        }
        Ok(())
    }

    /// Starts `mechanism` (one name: the driver chooses, not cyrus-sasl).
    pub fn start(&mut self, mechanism: &str) -> Result<Step, CyrusError> {
        let mech = c_string("the mechanism", mechanism)?;
        let mut chosen: *const c_char = ptr::null();
        self.exchange("sasl_client_start", |conn, prompts, out, out_len| {
            // SAFETY: conn is live; every pointer is a valid out pointer or the answered
            // prompt list (see exchange).
            unsafe { sasl_client_start(conn, mech.as_ptr(), prompts, out, out_len, &mut chosen) }
        })
    }

    /// One step with the server's data (`None`: the server sent none).
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Step, CyrusError> {
        let (ptr_in, len_in) = match input {
            Some(data) => (
                data.as_ptr().cast::<c_char>(),
                c_uint::try_from(data.len()).map_err(|_| CyrusError {
                    op: "sasl_client_step",
                    code: -3,
                    detail: "the server's data is too long".into(),
                })?,
            ),
            None => (ptr::null(), 0),
        };
        self.exchange("sasl_client_step", |conn, prompts, out, out_len| {
            // SAFETY: as in start; ptr_in/len_in describe the caller's slice, or NULL/0.
            unsafe { sasl_client_step(conn, ptr_in, len_in, prompts, out, out_len) }
        })
    }

    /// Runs `call` (a start or a step) under the library lock, answering its prompts until
    /// it returns something else than `SASL_INTERACT`; copies its output.
    fn exchange(
        &mut self,
        op: &'static str,
        mut call: impl FnMut(
            *mut sasl_conn_t,
            *mut *mut sasl_interact_t,
            *mut *const c_char,
            *mut c_uint,
        ) -> c_int,
    ) -> Result<Step, CyrusError> {
        let _lock = library();
        let mut prompts: *mut sasl_interact_t = ptr::null_mut();
        loop {
            let mut out: *const c_char = ptr::null();
            let mut out_len: c_uint = 0;
            let rc = call(self.conn, &mut prompts, &mut out, &mut out_len);
            if rc == SASL_INTERACT {
                // SAFETY: prompts is the list cyrus-sasl just returned.
                unsafe { self.answer(op, prompts)? };
                continue;
            }
            self.check(op, rc)?;
            return Ok(Step {
                // SAFETY: out points to out_len bytes owned by conn until its next call.
                data: unsafe { copy_out(out, out_len) },
                done: rc == SASL_OK,
            });
        }
    }

    /// A numeric property (`SASL_SSF`, `SASL_MAXOUTBUF`).
    fn uint_prop(&self, prop: c_uint, op: &'static str) -> Result<u32, CyrusError> {
        let mut value: *const c_void = ptr::null();
        // SAFETY: conn is live; value is a valid out pointer.
        let rc = unsafe { sasl_getprop(self.conn, prop as c_int, &mut value) };
        self.check(op, rc)?;
        if value.is_null() {
            return Ok(0);
        }
        // SAFETY: both properties point to an unsigned int owned by conn.
        Ok(unsafe { *(value as *const c_uint) })
    }

    /// The negotiated security strength factor (0: no security layer).
    pub fn ssf(&self) -> Result<u32, CyrusError> {
        self.uint_prop(SASL_SSF, "sasl_getprop(SASL_SSF)")
    }

    /// The most plaintext one `encode` call takes.
    pub fn max_outbuf(&self) -> Result<u32, CyrusError> {
        self.uint_prop(SASL_MAXOUTBUF, "sasl_getprop(SASL_MAXOUTBUF)")
    }

    /// Wraps `plain` (at most [`max_outbuf`](Self::max_outbuf) bytes) through the security
    /// layer, appending the result to `out`.
    pub fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), CyrusError> {
        self.transform(plain, out, true)
    }

    /// Unwraps bytes from the peer, appending whatever plaintext they complete to `out` (a
    /// partial packet is kept inside cyrus-sasl until the rest arrives).
    pub fn decode(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), CyrusError> {
        self.transform(wire, out, false)
    }

    fn transform(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        encode: bool,
    ) -> Result<(), CyrusError> {
        let op = if encode { "sasl_encode" } else { "sasl_decode" };
        let len = c_uint::try_from(input.len()).map_err(|_| CyrusError {
            op,
            code: -3,
            detail: "buffer too long".into(),
        })?;
        let mut result: *const c_char = ptr::null();
        let mut result_len: c_uint = 0;
        // SAFETY: conn is live and used by this thread only; the input slice is valid; the
        // result is owned by conn until its next call, and copied at once.
        let rc = unsafe {
            let f = if encode { sasl_encode } else { sasl_decode };
            f(
                self.conn,
                input.as_ptr().cast(),
                len,
                &mut result,
                &mut result_len,
            )
        };
        self.check(op, rc)?;
        // SAFETY: as above.
        if let Some(bytes) = unsafe { borrow_out(result, result_len) } {
            out.extend_from_slice(bytes);
        }
        Ok(())
    }
}

/// Copies cyrus-sasl's output; `None` when it gave none (NULL).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes.
unsafe fn copy_out(data: *const c_char, len: c_uint) -> Option<Vec<u8>> {
    borrow_out(data, len).map(<[u8]>::to_vec)
}

/// # Safety
/// As [`copy_out`]; the slice lives as long as the caller says.
unsafe fn borrow_out<'a>(data: *const c_char, len: c_uint) -> Option<&'a [u8]> {
    if data.is_null() {
        return None;
    }
    Some(std::slice::from_raw_parts(data.cast::<u8>(), len as usize))
}

impl Drop for SaslClient {
    fn drop(&mut self) {
        let _lock = library();
        // SAFETY: conn was allocated by sasl_client_new and is disposed of once.
        unsafe { sasl_dispose(&mut self.conn) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(security: Security, credentials: Credentials) -> SaslClient {
        SaslClient::new("vnc", "localhost", security, credentials).unwrap()
    }

    #[test]
    fn init_is_idempotent_and_a_client_starts_no_unknown_mechanism() {
        init().unwrap();
        init().unwrap();
        let mut c = client(Security::Layer { min_ssf: 56 }, Credentials::default());
        let e = c.start("NO-SUCH-MECH").unwrap_err();
        assert_eq!(e.op, "sasl_client_start");
        assert_eq!(e.code, sasl2_sys::sasl::SASL_NOMECH, "{e}");
    }

    #[test]
    fn scram_outside_tls_is_too_weak_and_inside_tls_asks_for_the_credentials() {
        let mut c = client(Security::Layer { min_ssf: 56 }, Credentials::default());
        assert!(c.start("SCRAM-SHA-256").is_err());
        let mut c = client(
            Security::InsideTls { external_ssf: 256 },
            Credentials::default(),
        );
        let e = c.start("SCRAM-SHA-256").unwrap_err();
        assert!(e.detail.contains("asked for a username"), "{e}");
        let mut c = client(
            Security::InsideTls { external_ssf: 256 },
            Credentials {
                username: Some("proxy".into()),
                password: Some("secret".into()),
            },
        );
        let first = c.start("SCRAM-SHA-256").unwrap();
        let text = String::from_utf8(first.data.unwrap()).unwrap();
        assert!(text.starts_with("n,,n=proxy,r="), "{text}");
        assert!(!first.done);
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials {
            username: Some("u".into()),
            password: Some("hunter2".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

//! The harness's test PKI (`consolegate_tests::pki`, made once per test process with openssl)
//! as this crate's unit tests name it: its files by their names in the flat layout QEMU reads
//! (`ca-cert.pem`, `client-key.pem`, `rogue/ca-cert.pem`, …), and a server certificate by its
//! validity. Unit tests only.

use std::path::PathBuf;

use consolegate_tests::pki::{pki, RefusedServer, ServerIdentity};

/// The validity period of a test server certificate (for `localhost`, `127.0.0.1`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    /// Valid now.
    Current,
    /// Valid only in 2000 (expired on 2001-01-01).
    Expired,
    /// Valid only from 2090-01-01.
    NotYetValid,
}

impl Validity {
    /// The trusted CA's server certificate and key with this validity.
    pub(crate) fn server(self) -> ServerIdentity {
        match self {
            Validity::Current => pki().trusted_server(),
            Validity::Expired => pki().refused_server(RefusedServer::Expired),
            Validity::NotYetValid => pki().refused_server(RefusedServer::NotYetValid),
        }
    }
}

/// The trusted certificate set of the process's test PKI; `rogue/…` names the files of an
/// unrelated CA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestPki;

impl TestPki {
    /// The trusted set (made on first use).
    pub(crate) fn trusted() -> Self {
        Self
    }

    /// A file of the set, for example `path("ca-cert.pem")` or `path("rogue/client-cert.pem")`.
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        pki().trusted.dir().join(file)
    }
}

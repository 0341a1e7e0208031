//! A throw-away test PKI made with rcgen (feature `test-pki`; never in production builds), in
//! the flat layout QEMU's `tls-creds-x509,dir=…` reads:
//!
//! - `ca-cert.pem`, `ca-key.pem`: the CA (`CA:TRUE`, keyUsage keyCertSign + cRLSign)
//! - `server-cert.pem`, `server-key.pem`: CN=localhost, SAN `localhost`, `127.0.0.1`, `::1`
//! - `client-cert.pem`, `client-key.pem`: CN=console-proxy, EKU clientAuth
//! - `rogue/…`: the same set from an unrelated CA, for negative tests
//!
//! Keys are ECDSA P-256 (QEMU 7.2's gnutls accepts them, and they are fast to make).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The validity period of a test certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// 2020 to 2040.
    Current,
    /// 2000 to 2001.
    Expired,
    /// 2090 to 2091.
    NotYetValid,
}

/// A test PKI in its own temporary directory, removed on drop.
pub struct TestPki {
    dir: PathBuf,
    ca: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Panics on failure: this is test support code.
impl TestPki {
    /// Makes the CA, server and client certificates and the `rogue/` set in a fresh directory
    /// whose name contains `name`, the process id and a per-process sequence number.
    pub fn generate(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "consolegate-test-pki-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rogue")).expect("create the test PKI directory");
        let ca = write_set(&dir, "Console Proxy Test CA");
        let _rogue = write_set(&dir.join("rogue"), "Rogue Test CA");
        Self { dir, ca }
    }

    /// The directory (QEMU's `dir=`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file in the directory, for example `path("ca-cert.pem")` or
    /// `path("rogue/client-cert.pem")`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Issues another server certificate from the CA, as `<stem>-cert.pem` and
    /// `<stem>-key.pem`, for the given subjectAltNames and validity.
    pub fn issue_server(&self, stem: &str, names: &[&str], validity: Validity) {
        write_leaf(
            &self.dir,
            stem,
            &self.ca,
            "localhost",
            names,
            Role::Server,
            validity,
        );
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy)]
enum Role {
    Server,
    Client,
}

fn write_set(dir: &Path, ca_name: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().expect("generate the CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Console Proxy Test");
    params.distinguished_name.push(DnType::CommonName, ca_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, Validity::Current);
    let cert = params.self_signed(&key).expect("self-sign the CA");
    write(dir, "ca-cert.pem", &cert.pem());
    write(dir, "ca-key.pem", &key.serialize_pem());
    let ca = Issuer::new(params, key);
    let names = ["localhost", "127.0.0.1", "::1"];
    write_leaf(
        dir,
        "server",
        &ca,
        "localhost",
        &names,
        Role::Server,
        Validity::Current,
    );
    write_leaf(
        dir,
        "client",
        &ca,
        "console-proxy",
        &[],
        Role::Client,
        Validity::Current,
    );
    ca
}

fn write_leaf(
    dir: &Path,
    stem: &str,
    ca: &Issuer<'static, KeyPair>,
    common_name: &str,
    names: &[&str],
    role: Role,
    validity: Validity,
) {
    let key = KeyPair::generate().expect("generate a leaf key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Console Proxy Test");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match role {
        Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity);
    let cert = params.signed_by(&key, ca).expect("sign a leaf");
    write(dir, &format!("{stem}-cert.pem"), &cert.pem());
    write(dir, &format!("{stem}-key.pem"), &key.serialize_pem());
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let (from, to) = match validity {
        Validity::Current => (2020, 2040),
        Validity::Expired => (2000, 2001),
        Validity::NotYetValid => (2090, 2091),
    };
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(to, 1, 1);
}

fn write(dir: &Path, file: &str, contents: &str) {
    std::fs::write(dir.join(file), contents).expect("write a test PKI file");
}

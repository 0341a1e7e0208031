//! The test PKI, made with the `openssl` CLI as `/work/shared/peers/make-pki.sh` does. It is
//! made once (a second or two) and shared by every test process of the day: it lives in
//! [`shared_dir`]`("pki-<hash of this file>-<day>")`, made under a `flock` by the first process
//! that needs it, so a change to this file or a new day makes a fresh one (and removes those
//! older than two days). Nothing writes to it after it is made.
//!
//! The directory has the flat layout QEMU (`tls-creds-x509,dir=`) and SPICE (`x509-dir=`) read:
//! `ca-cert.pem ca-key.pem server-cert.pem server-key.pem client-cert.pem client-key.pem
//! dh-params.pem`, and `rogue/` holds a second, unrelated CA with its own server and client
//! certificates for negative tests. Server certificates are for `localhost`, `127.0.0.1` and
//! `::1`, valid for 90 days (the CA for a year), with a CRL distribution point, as a real
//! server's would be: a TLS scanner flags a certificate without revocation information, one
//! valid for more than 398 days, and one that expires within 60 days. [`Pki::refused_server`]
//! adds, on first use, server certificates from the trusted CA that a client must refuse: an
//! expired one, one not valid yet, one for another name. [`server_config`] makes a rustls
//! server configuration from any of them, for test servers played in-process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use sha2::{Digest, Sha256};

use crate::scratch::{lock, shared_dir};

/// One CA with a server and a client certificate.
#[derive(Debug, Clone)]
pub struct CertSet {
    dir: PathBuf,
}

impl CertSet {
    /// The directory holding the set.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The CA certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca-cert.pem")
    }
    /// The server certificate (PEM): CN=localhost, SAN localhost, 127.0.0.1, ::1.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server-cert.pem")
    }
    /// The server key (PEM, PKCS#8).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
    /// The client certificate (PEM): CN=console-proxy, EKU clientAuth.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client-cert.pem")
    }
    /// The client key (PEM, PKCS#8).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }
}

/// The process's test PKI: the trusted set and a rogue one.
#[derive(Debug)]
pub struct Pki {
    /// The CA everything trusts, with its server and client certificates (and `dh-params.pem`).
    pub trusted: CertSet,
    /// An unrelated CA with its own server and client certificates.
    pub rogue: CertSet,
    /// The [`RefusedServer`] certificates made so far.
    refused: [OnceLock<ServerIdentity>; 3],
}

/// A server certificate signed by the trusted CA that a client must nevertheless refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedServer {
    /// For `localhost`, `127.0.0.1` and `::1`, but valid only in the year 2000 (it expired on
    /// 2001-01-01).
    Expired,
    /// For `localhost`, `127.0.0.1` and `::1`, but valid only from 2090-01-01 (for a year).
    NotYetValid,
    /// Valid now, but only for [`OTHER_NAME`] (CN and subjectAltName).
    OtherName,
}

/// The only name in the [`RefusedServer::OtherName`] certificate.
pub const OTHER_NAME: &str = "other-console.example";

impl RefusedServer {
    fn index(self) -> usize {
        self as usize
    }

    fn dir_name(self) -> &'static str {
        match self {
            RefusedServer::Expired => "expired",
            RefusedServer::NotYetValid => "not-yet-valid",
            RefusedServer::OtherName => "other-name",
        }
    }
}

/// A server's certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// The certificate.
    pub cert: PathBuf,
    /// Its key (PKCS#8).
    pub key: PathBuf,
}

impl Pki {
    /// The trusted set's server certificate and key.
    pub fn trusted_server(&self) -> ServerIdentity {
        ServerIdentity {
            cert: self.trusted.server_cert(),
            key: self.trusted.server_key(),
        }
    }

    /// The rogue CA's server certificate and key (for `localhost`, `127.0.0.1`, `::1`, signed
    /// by a CA nothing trusts).
    pub fn rogue_server(&self) -> ServerIdentity {
        ServerIdentity {
            cert: self.rogue.server_cert(),
            key: self.rogue.server_key(),
        }
    }

    /// The `which` certificate (signed by the trusted CA), made on first use in its own
    /// directory under the PKI's.
    pub fn refused_server(&self, which: RefusedServer) -> ServerIdentity {
        self.refused[which.index()]
            .get_or_init(|| {
                let dir = self.trusted.dir().join(which.dir_name());
                made_once(self.trusted.dir(), which.dir_name(), || {
                    std::fs::create_dir_all(&dir)
                        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
                    let other_name = format!("DNS:{OTHER_NAME}");
                    let spec = match which {
                        RefusedServer::Expired => Leaf::server("server", SERVER_NAMES)
                            .valid("20000101000000Z", "20010101000000Z"),
                        RefusedServer::NotYetValid => Leaf::server("server", SERVER_NAMES)
                            .valid("20900101000000Z", "20910101000000Z"),
                        RefusedServer::OtherName => Leaf::server("server", &other_name),
                    };
                    leaf(&dir, self.trusted.dir(), &spec);
                });
                ServerIdentity {
                    cert: dir.join("server-cert.pem"),
                    key: dir.join("server-key.pem"),
                }
            })
            .clone()
    }
}

/// The test PKI, made by the first test process of the day that needs it.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let name = pki_dir_name();
        let dir = shared_dir(&name);
        made_once(&dir, "pki", || {
            make_set(&dir, "Console Proxy Test CA");
            make_set(&dir.join("rogue"), "Rogue Test CA");
            // RFC 7919 group: instant, and spares QEMU generating DH parameters at start-up.
            openssl(
                &dir,
                &["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt"],
            )
            .args(["group:ffdhe2048", "-out", "dh-params.pem"])
            .run();
            remove_old_pkis(&dir, &name);
        });
        Pki {
            trusted: CertSet { dir: dir.clone() },
            rogue: CertSet {
                dir: dir.join("rogue"),
            },
            refused: Default::default(),
        }
    })
}

/// `pki-<hash>-<day>`: the first 12 hex digits of this file's SHA-256 (a change to how the PKI
/// is made makes a new one) and the days since 1970 (so no certificate gets near its expiry).
fn pki_dir_name() -> String {
    let hash = Sha256::digest(include_str!("pki.rs"));
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    let days = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        / 86_400;
    format!("pki-{hex}-{days}")
}

/// Runs `make` unless another test process (or an earlier one) already did: under an
/// exclusive lock on `dir/WHAT.lock`, with `dir/WHAT.done` marking it done.
fn made_once(dir: &Path, what: &str, make: impl FnOnce()) {
    let _lock = lock(&dir.join(format!("{what}.lock")), true);
    let done = dir.join(format!("{what}.done"));
    if !done.exists() {
        make();
        std::fs::write(&done, "")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", done.display()));
    }
}

/// Removes the other `pki-*` directories next to `dir` that were made more than two days ago.
fn remove_old_pkis(dir: &Path, name: &str) {
    let Some(entries) = dir.parent().and_then(|base| std::fs::read_dir(base).ok()) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(2 * 86_400));
        if old && other != name && other.to_string_lossy().starts_with("pki-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A rustls server configuration (ring, TLS 1.2 and 1.3) presenting `identity`; with
/// `client_ca`, it requires a client certificate signed by that CA.
pub fn server_config(
    identity: &ServerIdentity,
    client_ca: Option<&Path>,
) -> Arc<rustls::ServerConfig> {
    let read = |what: &str, path: &Path| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .unwrap_or_else(|e| panic!("{what} {}: {e}", path.display()))
    };
    let chain = read("server certificate", &identity.cert);
    let key = PrivateKeyDer::from_pem_file(&identity.key)
        .unwrap_or_else(|e| panic!("server key {}: {e}", identity.key.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read("CA certificate", ca) {
                roots.add(cert).expect("add the CA certificate");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(
        builder
            .with_single_cert(chain, key)
            .expect("the server certificate and key match"),
    )
}

/// A CA plus server and client certificates in `dir`.
fn make_set(dir: &Path, ca_name: &str) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    rsa_key(dir, "ca-key.pem");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-sha256",
            "-days",
            "365",
            "-key",
            "ca-key.pem",
        ],
    )
    .args([
        "-out",
        "ca-cert.pem",
        "-subj",
        &format!("/O=Console Proxy Test/CN={ca_name}"),
    ])
    .args(["-addext", "basicConstraints=critical,CA:TRUE"])
    .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    .args(["-addext", "subjectKeyIdentifier=hash"])
    .run();
    leaf(dir, dir, &Leaf::server("server", SERVER_NAMES));
    leaf(dir, dir, &Leaf::client("client", "console-proxy"));
}

/// The names of every test server certificate: what a client connecting to `localhost`,
/// `127.0.0.1` or `::1` checks.
const SERVER_NAMES: &str = "DNS:localhost,IP:127.0.0.1,IP:::1";

/// Where a test server certificate says its CA publishes revocations. Nothing serves it (no
/// test fetches it), but a real server certificate names one, and TLS scanners flag a
/// certificate without CRL or OCSP URI (testssl's `cert_revocation`).
const CRL_URI: &str = "http://127.0.0.1:9/console-proxy-test-ca.crl";

/// How long a current leaf certificate is valid: more than the 60 days before expiry that
/// testssl warns about, less than the 398 it calls too long.
const LEAF_DAYS: &str = "90";

/// What one leaf certificate is: file name stem, subject, usage, names and validity.
struct Leaf<'a> {
    /// `NAME-key.pem` and `NAME-cert.pem`.
    name: &'a str,
    cn: &'a str,
    eku: &'a str,
    /// The subjectAltName value (`DNS:…,IP:…`), or none.
    san: Option<&'a str>,
    /// `None`: valid from now for [`LEAF_DAYS`]; else openssl's `YYYYMMDDHHMMSSZ` start and end.
    dates: Option<(&'a str, &'a str)>,
}

impl<'a> Leaf<'a> {
    /// A server certificate (EKU serverAuth, CRL distribution point) for `san`, CN its first
    /// DNS name.
    fn server(name: &'a str, san: &'a str) -> Self {
        let cn = san
            .split(',')
            .find_map(|n| n.strip_prefix("DNS:"))
            .unwrap_or("localhost");
        Self {
            name,
            cn,
            eku: "serverAuth",
            san: Some(san),
            dates: None,
        }
    }

    /// A client certificate (EKU clientAuth) with CN `cn`.
    fn client(name: &'a str, cn: &'a str) -> Self {
        Self {
            name,
            cn,
            eku: "clientAuth",
            san: None,
            dates: None,
        }
    }

    /// The same certificate, valid only between `not_before` and `not_after`.
    fn valid(self, not_before: &'a str, not_after: &'a str) -> Self {
        Self {
            dates: Some((not_before, not_after)),
            ..self
        }
    }

    /// The X.509v3 extensions, in openssl's extension-file syntax.
    fn extensions(&self) -> String {
        let mut ext = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage={}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
            self.eku
        );
        if let Some(san) = self.san {
            ext.push_str(&format!(
                "subjectAltName={san}\ncrlDistributionPoints=URI:{CRL_URI}\n"
            ));
        }
        ext
    }
}

/// Writes `dir/NAME-key.pem` and `dir/NAME-cert.pem`, signed by the CA in `ca_dir` with
/// `openssl ca` (the one signing path: it sets any validity period, past ones included). Its
/// database goes in `dir/ca-db/`, so that leaves signed in different directories never
/// share one.
fn leaf(dir: &Path, ca_dir: &Path, leaf: &Leaf) {
    let db = dir.join("ca-db");
    std::fs::create_dir_all(&db).unwrap_or_else(|e| panic!("cannot create {}: {e}", db.display()));
    std::fs::write(db.join("index.txt"), "").expect("write the CA database");
    std::fs::write(db.join("serial"), format!("{}\n", serial())).expect("write the serial");
    std::fs::write(
        db.join("ca.cnf"),
        "[ca]\ndefault_ca = test_ca\n[test_ca]\ndir = .\ndatabase = index.txt\n\
         new_certs_dir = .\nserial = serial\ndefault_md = sha256\nunique_subject = no\n\
         policy = any_subject\n[any_subject]\norganizationName = optional\n\
         commonName = supplied\n",
    )
    .expect("write the CA configuration");
    std::fs::write(db.join("leaf.ext"), leaf.extensions()).expect("write the extension file");
    let (key, csr, cert) = (
        dir.join(format!("{}-key.pem", leaf.name)),
        db.join(format!("{}.csr", leaf.name)),
        dir.join(format!("{}-cert.pem", leaf.name)),
    );
    let path = |p: &Path| p.display().to_string();
    rsa_key(dir, &path(&key));
    openssl(&db, &["req", "-new", "-sha256"])
        .args(["-key", &path(&key), "-out", &path(&csr)])
        .args(["-subj", &format!("/O=Console Proxy Test/CN={}", leaf.cn)])
        .run();
    let mut sign = openssl(&db, &["ca", "-batch", "-notext", "-preserveDN"])
        .args(["-config", "ca.cnf", "-extfile", "leaf.ext"])
        .args(["-cert", &path(&ca_dir.join("ca-cert.pem"))])
        .args(["-keyfile", &path(&ca_dir.join("ca-key.pem"))])
        .args(["-in", &path(&csr), "-out", &path(&cert)]);
    sign = match leaf.dates {
        Some((start, end)) => sign.args(["-startdate", start, "-enddate", end]),
        None => sign.args(["-days", LEAF_DAYS]),
    };
    sign.run();
}

fn rsa_key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    )
    .args(["-out", name])
    .run();
}

/// A random 128-bit serial number in hex, as `openssl ca` reads it from its `serial` file.
fn serial() -> String {
    let mut bytes = [0u8; 16];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    got.expect("read /dev/urandom");
    bytes[0] &= 0x7f;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An `openssl` command run in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> OpensslCommand {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    OpensslCommand(cmd)
}

struct OpensslCommand(Command);

impl OpensslCommand {
    fn args<const N: usize>(mut self, args: [&str; N]) -> Self {
        self.0.args(args);
        self
    }

    /// Runs it; any failure panics with openssl's own words.
    fn run(mut self) {
        let out = self.0.output().unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install it (apt-get install openssl)")
        });
        assert!(
            out.status.success(),
            "{:?} failed: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

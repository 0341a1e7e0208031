//! A throw-away PKI for the test process, made with the `openssl` CLI as
//! `/work/shared/peers/make-pki.sh` does, once per process (about a second).
//!
//! The directory has the flat layout QEMU (`tls-creds-x509,dir=`) and SPICE (`x509-dir=`) read:
//! `ca-cert.pem ca-key.pem server-cert.pem server-key.pem client-cert.pem client-key.pem
//! dh-params.pem`, and `rogue/` holds a second, unrelated CA with its own server and client
//! certificates for negative tests. Server certificates are for `localhost`, `127.0.0.1` and
//! `::1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::scratch::run_dir;

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
}

/// The PKI of this test process, generated on first use.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = run_dir().join("pki");
        let trusted = make_set(&dir, "Console Proxy Test CA");
        let rogue = make_set(&dir.join("rogue"), "Rogue Test CA");
        // RFC 7919 group: instant, and spares QEMU generating DH parameters at start-up.
        openssl(
            &dir,
            &["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt"],
        )
        .args(["group:ffdhe2048", "-out", "dh-params.pem"])
        .run();
        Pki { trusted, rogue }
    })
}

/// A CA plus server and client certificates in `dir`.
fn make_set(dir: &Path, ca_name: &str) -> CertSet {
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
            "30",
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
    leaf(
        dir,
        "server",
        "localhost",
        "serverAuth",
        Some("DNS:localhost,IP:127.0.0.1,IP:::1"),
    );
    leaf(dir, "client", "console-proxy", "clientAuth", None);
    CertSet {
        dir: dir.to_path_buf(),
    }
}

/// `NAME-key.pem` and `NAME-cert.pem`, signed by the CA in `dir`.
fn leaf(dir: &Path, name: &str, cn: &str, eku: &str, san: Option<&str>) {
    let mut ext = format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage={eku}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    );
    if let Some(san) = san {
        ext.push_str(&format!("subjectAltName={san}\n"));
    }
    let (key, csr, cert, extfile) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}-cert.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).expect("write the extension file");
    rsa_key(dir, &key);
    openssl(dir, &["req", "-new", "-sha256", "-key", &key, "-out", &csr])
        .args(["-subj", &format!("/O=Console Proxy Test/CN={cn}")])
        .run();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "30",
            "-in",
            &csr,
            "-CA",
            "ca-cert.pem",
        ],
    )
    .args([
        "-CAkey",
        "ca-key.pem",
        "-set_serial",
        &serial(),
        "-extfile",
        &extfile,
    ])
    .args(["-out", &cert])
    .run();
    let _ = std::fs::remove_file(dir.join(csr));
    let _ = std::fs::remove_file(dir.join(extfile));
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

/// A random 128-bit serial number in openssl's `0x…` form.
fn serial() -> String {
    let mut bytes = [0u8; 16];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    got.expect("read /dev/urandom");
    bytes[0] &= 0x7f;
    format!(
        "0x{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
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

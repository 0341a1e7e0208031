//! A real MIT Kerberos KDC per test: its own realm in a scratch directory, created with
//! `kdb5_util`, principals and keytabs made with `kadmin.local`, and `krb5kdc` in the
//! foreground on a leased port (TCP and UDP). Nothing system-wide is read or written: every
//! command gets `KRB5_CONFIG` and `KRB5_KDC_PROFILE` pointing into the directory, and so must
//! every process that uses the realm ([`Kdc::env`]). Dropping a [`Kdc`] kills it.
//!
//! A missing `krb5kdc`, `kdb5_util` or `kadmin.local` fails the test with a message saying
//! what to install (`krb5-kdc`, `krb5-admin-server`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::ports::{self, PortLease};
use crate::proxy::die_with_starting_thread;
use crate::scratch::TempDir;
use crate::wait;

/// The realm of every test KDC (each has its own database and port).
pub const REALM: &str = "CONSOLEGATE.TEST";

/// How long the KDC may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running KDC, killed when dropped.
#[derive(Debug)]
pub struct Kdc {
    dir: TempDir,
    port: PortLease,
    child: Child,
}

/// `tool` from `/usr/sbin` (where Debian puts the KDC tools, which a non-root `PATH` may
/// lack), else by name.
pub fn sbin(tool: &str) -> PathBuf {
    let path = PathBuf::from("/usr/sbin").join(tool);
    if path.is_file() {
        path
    } else {
        PathBuf::from(tool)
    }
}

/// The Debian package that ships `tool`.
fn package_of(tool: &str) -> &'static str {
    match tool {
        "kadmin.local" => "krb5-admin-server",
        _ => "krb5-kdc",
    }
}

impl Kdc {
    /// Creates the realm and starts `krb5kdc`; returns once it listens.
    pub fn start() -> Self {
        let dir = TempDir::new("kdc");
        let port = ports::port();
        let p = port.port();
        let path = |name: &str| dir.join(name).display().to_string();
        dir.write(
            "krb5.conf",
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n \
                 dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n \
                 ignore_acceptor_hostname = true\n udp_preference_limit = 1\n \
                 ticket_lifetime = 1h\n\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{p}\n }}\n\n\
                 [domain_realm]\n 127.0.0.1 = {REALM}\n localhost = {REALM}\n"
            ),
        );
        dir.write(
            "kdc.conf",
            format!(
                "[kdcdefaults]\n kdc_ports = {p}\n kdc_tcp_ports = {p}\n\n[realms]\n {REALM} = {{\n  \
                 database_name = {}\n  key_stash_file = {}\n  acl_file = {}\n  \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal\n  max_life = 1h\n }}\n\n\
                 [logging]\n kdc = FILE:{}\n",
                path("principal"),
                path("stash"),
                path("kadm5.acl"),
                path("kdc.log")
            ),
        );
        dir.write("kadm5.acl", "");
        let kdc = |tool: &str| {
            let mut c = Command::new(sbin(tool));
            c.env("KRB5_CONFIG", path("krb5.conf"))
                .env("KRB5_KDC_PROFILE", path("kdc.conf"))
                .stdin(Stdio::null());
            c
        };
        run(kdc("kdb5_util").args(["create", "-s", "-r", REALM, "-P", "consolegate-test-master"]));
        let mut command = kdc("krb5kdc");
        command
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_starting_thread(&mut command);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run krb5kdc ({e}): install it with `apt-get install krb5-kdc \
                 krb5-admin-server` (or run .ci/run)"
            )
        });
        let mut kdc = Self { dir, port, child };
        let up = wait::until_true(READY_TIMEOUT, || {
            ports::listening(p) || kdc.child.try_wait().ok().flatten().is_some()
        });
        if !up || kdc.child.try_wait().ok().flatten().is_some() {
            panic!("krb5kdc did not listen on {p}; its log:\n{}", kdc.log());
        }
        kdc
    }

    /// The realm's `krb5.conf`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The variables a process needs to use the realm.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("KRB5_CONFIG".into(), self.krb5_conf().display().to_string())]
    }

    /// The KDC's port.
    pub fn port(&self) -> u16 {
        self.port.port()
    }

    /// The KDC's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kdc.log")).unwrap_or_default()
    }

    /// Runs one `kadmin.local` query; panics with its output if it fails.
    pub fn kadmin(&self, query: &str) -> String {
        let mut c = Command::new(sbin("kadmin.local"));
        c.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))
            .args(["-r", REALM, "-q", query])
            .stdin(Stdio::null());
        run(&mut c)
    }

    /// Adds `name` (without the realm) with a random key.
    pub fn add_principal(&self, name: &str) {
        self.kadmin(&format!("addprinc -randkey {name}"));
    }

    /// Writes a keytab `file` (in the KDC's directory) with the current keys of `principals`.
    /// (`ktadd` makes new keys: a keytab made earlier for the same principal goes stale.)
    pub fn keytab(&self, file: &str, principals: &[&str]) -> PathBuf {
        let path = self.dir.join(file);
        self.kadmin(&format!(
            "ktadd -k {} {}",
            path.display(),
            principals.join(" ")
        ));
        path
    }

    /// A path inside the KDC's scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Runs `command`, panicking with its output unless it succeeds; returns stdout.
fn run(command: &mut Command) -> String {
    let program = std::path::Path::new(command.get_program());
    let tool = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    let out = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {tool} ({e}): install it with `apt-get install {}` (or run .ci/run)",
            package_of(&tool)
        )
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{tool} failed ({}):\n{text}",
        out.status
    );
    text
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

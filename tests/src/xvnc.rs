//! A real TigerVNC `Xvnc` per test, for the VeNCrypt subtypes QEMU does not offer: X509Plain
//! (username and password checked by PAM), besides X509Vnc, X509None, TLSVnc and VncAuth. It
//! listens on a leased VNC port (display = port - 5900) with the trusted test PKI's server
//! certificate; [`Xvnc::start`] returns once it greets `RFB 003.008`. Dropping an [`Xvnc`]
//! stops it (SIGTERM, so it removes its lock files) and removes its PAM service.
//!
//! PAM: a service file `/etc/pam.d/consolegate-test-xvnc-<display>` runs a check script that
//! admits user [`PLAIN_USER`] with the password given to [`Xvnc::start`] (writing it needs
//! root, as `.ci/run` has). A missing `Xvnc` or `vncpasswd` fails the test with what to
//! install.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pki::pki;
use crate::ports::{self, PortLease};
use crate::scratch::TempDir;
use crate::{rfb, wait};

/// How long Xvnc may take to greet.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The only user the PAM check script admits for X509Plain.
pub const PLAIN_USER: &str = "proxy";

/// The desktop name Xvnc announces in ServerInit.
pub const DESKTOP: &str = "xvnc-peer";

/// A running Xvnc, stopped when dropped.
#[derive(Debug)]
pub struct Xvnc {
    child: Child,
    port: PortLease,
    pam_service: PathBuf,
    dir: TempDir,
}

impl Xvnc {
    /// Starts Xvnc offering `X509Plain,X509Vnc,X509None,TLSVnc,VncAuth`, with `password` for
    /// [`PLAIN_USER`] (X509Plain) and as the VNC password; waits until it greets.
    pub fn start(password: &str) -> Self {
        let port = ports::vnc_port();
        let display = port.port() - 5900;
        let dir = TempDir::new("xvnc");
        let pam_service = pam_service(&dir, display, password);
        let passwd = dir.write("passwd", vnc_password_file(password));
        // A display left by a killed Xvnc would make this one refuse to start.
        let _ = std::fs::remove_file(format!("/tmp/.X{display}-lock"));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{display}"));
        let log = std::fs::File::create(dir.join("xvnc.log")).expect("create the Xvnc log");
        let trusted = &pki().trusted;
        let child = Command::new("Xvnc")
            .arg(format!(":{display}"))
            .args(["-rfbport", &port.port().to_string()])
            .args(["-localhost", "-nolisten", "tcp", "-desktop", DESKTOP])
            .args([
                "-SecurityTypes",
                "X509Plain,X509Vnc,X509None,TLSVnc,VncAuth",
            ])
            .arg("-X509Cert")
            .arg(trusted.server_cert())
            .arg("-X509Key")
            .arg(trusted.server_key())
            .arg("-PasswordFile")
            .arg(&passwd)
            .args(["-PlainUsers", PLAIN_USER, "-PAMService"])
            .arg(pam_service.file_name().expect("a service name"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run Xvnc ({e}): apt-get install tigervnc-standalone-server")
            });
        let mut xvnc = Xvnc {
            child,
            port,
            pam_service,
            dir,
        };
        let port = xvnc.port();
        let greets = wait::until_true(READY_TIMEOUT, || {
            rfb::server_greeting(port) == "RFB 003.008\n" || xvnc.exited()
        });
        if !greets || xvnc.exited() {
            panic!(
                "Xvnc :{display} not ready after {READY_TIMEOUT:?}:\n{}",
                xvnc.log()
            );
        }
        xvnc
    }

    /// The RFB port.
    pub fn port(&self) -> u16 {
        self.port.port()
    }

    /// Xvnc's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("xvnc.log")).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Xvnc {
    fn drop(&mut self) {
        // SIGTERM lets Xvnc remove its lock files.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child, not reaped yet (we wait for it below).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pam_service);
    }
}

/// Writes the PAM check script into `dir` and the service that runs it into `/etc/pam.d`;
/// returns the service file.
fn pam_service(dir: &TempDir, display: u16, password: &str) -> PathBuf {
    // pam_exec gives the script $PAM_USER and the NUL-terminated password on stdin.
    let script = dir.write(
        "check.sh",
        format!(
            "#!/bin/sh\npw=$(tr -d '\\000')\n[ \"$PAM_USER\" = {PLAIN_USER} ] && [ \"$pw\" = '{password}' ]\n"
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make the PAM check script executable");
    let service = Path::new("/etc/pam.d").join(format!("consolegate-test-xvnc-{display}"));
    std::fs::write(
        &service,
        format!(
            "auth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n",
            script.display()
        ),
    )
    .unwrap_or_else(|e| panic!("cannot write {} (run as root): {e}", service.display()));
    service
}

/// `password` obfuscated the way Xvnc's `-PasswordFile` reads it (`vncpasswd -f`).
fn vnc_password_file(password: &str) -> Vec<u8> {
    Command::new("vncpasswd")
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("vncpasswd's stdin")
                .write_all(format!("{password}\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("cannot run vncpasswd ({e}): apt-get install tigervnc-tools"))
        .stdout
}

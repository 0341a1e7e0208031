//! The built `consolegate` binary, started per test with a generated configuration.
//!
//! [`Config::new`] starts from a configuration that works with the `noop` driver over plain
//! ws on a leased port, with an empty token file; tests change keys with [`Config::set`],
//! [`Config::unset`] and [`Config::section`] and add tokens with [`Config::token`].
//! [`Proxy::start`] writes the configuration and token file into a scratch directory, runs
//! the binary (stderr to a file, `RUST_LOG=info`), and returns once it listens (seen in
//! `/proc/net/tcp`, so no probe connection appears in its log).
//! Dropping a [`Proxy`] kills it; if the test is failing, its log is printed first.

use std::fs;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::pki::{pki, CertSet};
use crate::ports::{self, PortLease};
use crate::scratch::TempDir;
use crate::wait;

/// How long the proxy may take to start listening (or to fail at start-up).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// `RUST_LOG` for the proxy: `$CONSOLEGATE_TEST_RUST_LOG`, else `info` (audit lines are info).
fn rust_log() -> String {
    std::env::var("CONSOLEGATE_TEST_RUST_LOG").unwrap_or_else(|_| "info".into())
}

/// Cargo's output directory for this profile (`target/debug`): where the `consolegate`
/// binary and the `libconsolegate_<name>.so` drivers are. Found from the running test
/// executable (`target/debug/deps/…`), else from the workspace root.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    if let Some(deps) = exe.as_deref().and_then(Path::parent) {
        if deps.file_name().is_some_and(|n| n == "deps") {
            if let Some(dir) = deps.parent() {
                return dir.to_path_buf();
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where cargo puts the Rust drivers (`libconsolegate_noop.so`, `libconsolegate_fault.so`).
pub fn driver_dir() -> PathBuf {
    profile_dir()
}

/// The `consolegate` binary; panics with the build command if it is missing.
pub fn binary() -> PathBuf {
    let path = profile_dir().join("consolegate");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace --all-targets)",
        path.display()
    );
    path
}

/// A configuration under construction, with its scratch directory and listen port.
#[derive(Debug)]
pub struct Config {
    dir: TempDir,
    listen: PortLease,
    /// `(section, key, value)` in order; `DEFAULT` first.
    entries: Vec<(String, String, String)>,
    tokens: String,
    /// Text that replaces the generated configuration.
    raw: Option<String>,
    /// `RUST_LOG` for this proxy, instead of [`rust_log`]'s.
    rust_log: Option<String>,
    /// The daemon to run, instead of [`binary`].
    daemon: Option<PathBuf>,
    /// Extra environment variables for the daemon.
    env: Vec<(String, String)>,
    /// A program (and its arguments) that runs the daemon, such as `systemd-socket-activate`.
    launcher: Vec<String>,
    /// Sets `JOURNAL_STREAM` to the log file, as systemd does for the journal's stream.
    journal_stream: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// `listen = 127.0.0.1:<leased port>`, plain ws, the `noop` driver from the build's
    /// output directory with `connect_insecure = true`, and an empty token file.
    pub fn new() -> Self {
        let dir = TempDir::new("proxy");
        let listen = ports::port();
        let tokens_path = dir.join("tokens");
        let config = Self {
            dir,
            listen,
            entries: Vec::new(),
            tokens: String::new(),
            raw: None,
            rust_log: None,
            daemon: None,
            env: Vec::new(),
            launcher: Vec::new(),
            journal_stream: false,
        };
        let port = config.port();
        config
            .set("listen", &format!("127.0.0.1:{port}"))
            .set("listen_insecure", "true")
            .set("console_proxy_security_driver", "noop")
            .set("driver_dir", &driver_dir().display().to_string())
            .set("connect_insecure", "true")
            .set("token_source", &format!("file:{}", tokens_path.display()))
    }

    /// Runs the daemon at `path` (a test build of `consolegate`) instead of [`binary`].
    pub fn daemon_binary(mut self, path: &Path) -> Self {
        self.daemon = Some(path.to_path_buf());
        self
    }

    /// Sets `key=value` in the daemon's environment and `--check-config`'s (`NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC`, a test realm's `KRB5_CONFIG`, ...).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the daemon through `program args… DAEMON --config FILE` (for example
    /// `systemd-socket-activate -l ADDR`); panics at start if `program` is not installed.
    pub fn launched_by(mut self, program: &str, args: &[&str]) -> Self {
        self.launcher = std::iter::once(program)
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        self
    }

    /// The daemon this configuration runs: [`binary`], unless [`Config::daemon_binary`] chose
    /// another.
    fn daemon(&self) -> PathBuf {
        self.daemon.clone().unwrap_or_else(binary)
    }

    /// Sets `key = value` in `[DEFAULT]`, replacing an earlier value.
    pub fn set(self, key: &str, value: &str) -> Self {
        self.section("DEFAULT", key, value)
    }

    /// Removes `key` from `[DEFAULT]`.
    pub fn unset(mut self, key: &str) -> Self {
        self.entries
            .retain(|(s, k, _)| !(s == "DEFAULT" && k == key));
        self
    }

    /// Sets `key = value` in `[section]`, replacing an earlier value.
    pub fn section(mut self, section: &str, key: &str, value: &str) -> Self {
        let value = value.to_string();
        match self
            .entries
            .iter_mut()
            .find(|(s, k, _)| s == section && k == key)
        {
            Some(entry) => entry.2 = value,
            None => self.entries.push((section.into(), key.into(), value)),
        }
        self
    }

    /// Uses the one driver `name` from the build's output directory.
    pub fn driver(self, name: &str) -> Self {
        self.set("console_proxy_security_driver", name)
    }

    /// Uses the one driver `name` from `dir` (a compiled C library's directory).
    pub fn driver_in(self, dir: &Path, name: &str) -> Self {
        self.set("driver_dir", &dir.display().to_string())
            .driver(name)
    }

    /// Uses the fault test driver in `mode` (`ok`, `panic_in_connect`, `hang_in_connect`,
    /// `fail_init`, `panic_in_init`).
    pub fn fault_driver(self, mode: &str) -> Self {
        self.driver("fault").section("fault", "mode", mode)
    }

    /// Adds `token: target` to the token file.
    pub fn token(mut self, token: &str, target: &str) -> Self {
        self.tokens.push_str(&format!("{token}: {target}\n"));
        self
    }

    /// Uses the TLS drivers `drivers` (for example `vencrypt` or `vencrypt, spice_tls`) without
    /// `connect_insecure`; `[console_proxy_tls]` trusts `ca`'s CA and presents `client`'s
    /// certificate (none when `None`).
    pub fn tls_drivers(self, drivers: &str, ca: &CertSet, client: Option<&CertSet>) -> Self {
        let path = |p: PathBuf| p.display().to_string();
        let config = self.driver(drivers).unset("connect_insecure").section(
            "console_proxy_tls",
            "ca_certificate",
            &path(ca.ca_cert()),
        );
        match client {
            Some(set) => config
                .section(
                    "console_proxy_tls",
                    "client_certificate",
                    &path(set.client_cert()),
                )
                .section("console_proxy_tls", "client_key", &path(set.client_key())),
            None => config,
        }
    }

    /// [`Config::tls_drivers`] with the test PKI's trusted CA and client certificate.
    pub fn trusted_tls_drivers(self, drivers: &str) -> Self {
        let set = &pki().trusted;
        self.tls_drivers(drivers, set, Some(set))
    }

    /// Serves wss with the test PKI's server certificate (for `localhost`, `127.0.0.1`, `::1`)
    /// and drops `listen_insecure`.
    pub fn tls(self) -> Self {
        let set = &pki().trusted;
        self.set("ssl_certificate", &set.server_cert().display().to_string())
            .set("ssl_key", &set.server_key().display().to_string())
            .unset("listen_insecure")
    }

    /// The leased listen port.
    pub fn port(&self) -> u16 {
        self.listen.port()
    }

    /// The scratch directory (config, token file, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The value of `key` in `[DEFAULT]`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(s, k, _)| s == "DEFAULT" && k == key)
            .map(|e| e.2.as_str())
    }

    /// The INI text: the `[DEFAULT]` keys first, without a section header (keys before any
    /// header belong to `[DEFAULT]`; `cli.rs` checks that an explicit header works too), then
    /// each other section.
    pub fn text(&self) -> String {
        self.text_with_default_header(false)
    }

    /// The INI text, with `[DEFAULT]` written out when `header` is true.
    pub fn text_with_default_header(&self, header: bool) -> String {
        let mut sections: Vec<&str> = vec!["DEFAULT"];
        for (s, _, _) in &self.entries {
            if !sections.contains(&s.as_str()) {
                sections.push(s);
            }
        }
        let mut out = String::new();
        for section in sections {
            if section != "DEFAULT" || header {
                out.push_str(&format!("[{section}]\n"));
            }
            for (_, k, v) in self.entries.iter().filter(|(s, _, _)| s == section) {
                out.push_str(&format!("{k} = {v}\n"));
            }
            out.push('\n');
        }
        out
    }

    /// Runs the proxy with `RUST_LOG=level`.
    pub fn rust_log(mut self, level: &str) -> Self {
        self.rust_log = Some(level.into());
        self
    }

    /// Runs the proxy as systemd runs it with its stderr connected to the journal:
    /// `JOURNAL_STREAM` names the device and inode of its stderr (here, the log file).
    pub fn journal_stream(mut self) -> Self {
        self.journal_stream = true;
        self
    }

    /// Replaces the generated text with `text` (the listen port, scratch directory and token
    /// file stay as they are; use [`Config::port`] and [`Config::dir`] to refer to them).
    pub fn with_text(mut self, text: String) -> Self {
        self.raw = Some(text);
        self
    }

    /// Writes `consolegate.conf` and the token file; returns the config's path.
    fn write(&self) -> PathBuf {
        self.dir.write("tokens", &self.tokens);
        let text = self.raw.clone().unwrap_or_else(|| self.text());
        self.dir.write("consolegate.conf", text)
    }
}

/// Runs `consolegate --check-config --config FILE`: the exit code and stdout followed by
/// stderr.
pub fn check_config(config: &Config) -> (i32, String) {
    let path = config.write();
    let daemon = config.daemon();
    let out = Command::new(&daemon)
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", rust_log())
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", daemon.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A running `consolegate`, killed when dropped.
#[derive(Debug)]
pub struct Proxy {
    child: Child,
    exit: Option<ExitStatus>,
    addr: SocketAddr,
    tls: bool,
    config: Config,
}

impl Proxy {
    /// Starts the proxy and waits until its (first) listen port is listening; panics with the
    /// proxy's log if it exits or does not listen in time. Start it on the thread that uses
    /// it: the proxy is killed when the thread that started it ends.
    pub fn start(config: Config) -> Self {
        let mut proxy = Self::spawn(config);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = proxy.try_exit() {
                panic!(
                    "consolegate exited at start-up ({status}):\n{}",
                    proxy.log()
                );
            }
            if ports::listening(proxy.addr.port()) {
                return proxy;
            }
            if Instant::now() >= deadline {
                panic!(
                    "consolegate did not listen on {} within {START_TIMEOUT:?}:\n{}",
                    proxy.addr,
                    proxy.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a proxy that is expected to refuse its configuration: returns its exit code
    /// and log once it exits; panics if it is still running after the start-up timeout.
    pub fn start_failure(config: Config) -> (i32, String) {
        let mut proxy = Self::spawn(config);
        match proxy.wait_exit(START_TIMEOUT) {
            Some(status) => (status.code().unwrap_or(-1), proxy.log()),
            None => panic!(
                "consolegate is running but should have refused:\n{}",
                proxy.log()
            ),
        }
    }

    fn spawn(config: Config) -> Self {
        let path = config.write();
        let stderr = fs::File::create(config.dir.join("stderr.log")).expect("create stderr.log");
        let daemon = config.daemon();
        let mut command = match config.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&daemon);
                command
            }
            None => Command::new(&daemon),
        };
        if config.journal_stream {
            use std::os::unix::fs::MetadataExt;
            let meta = stderr.metadata().expect("stat stderr.log");
            command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        command
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", config.rust_log.clone().unwrap_or_else(rust_log))
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("dup stderr.log"))
            .stderr(stderr);
        // A killed test run (whose drops never run) leaves no proxy behind; every test drops
        // its proxy on its own thread.
        die_with_starting_thread(&mut command);
        let program = config
            .launcher
            .first()
            .map_or(daemon.clone(), PathBuf::from);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let addr = listen_addr(config.get("listen").unwrap_or("0.0.0.0:6080"));
        let tls = config.get("ssl_certificate").is_some();
        Self {
            child,
            exit: None,
            addr,
            tls,
            config,
        }
    }

    /// Everything the proxy wrote to stderr (and stdout) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.config.dir.join("stderr.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; the log, or `None` after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        wait::until(timeout, || Some(self.log()).filter(|l| l.contains(needle)))
    }

    /// Opens a websocket with `token` and waits for the Close frame of the driver's refusal:
    /// asserts the code is 1011 and the reason generic (a phrase and the session number), and
    /// returns the detail the log gives for that session and how long it took from the upgrade.
    pub fn driver_refusal(&self, token: &str) -> (String, Duration) {
        let t0 = Instant::now();
        let mut ws = crate::ws::open(&self.url(token));
        let (code, reason) = ws
            .close_frame(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
        assert_eq!(code, 1011, "{reason}");
        let id = crate::reasons::session_of_close_reason(&reason);
        (self.driver_failure(id), t0.elapsed())
    }

    /// What the log says about session `id`'s driver failure: the driver's message, between
    /// `session ID: driver 'NAME' failed: ` and ` (STATUS)` (waits up to 5 s for it; panics
    /// with the log if it never comes).
    pub fn driver_failure(&self, id: u64) -> String {
        let needle = format!("session {id}: driver '");
        let log = self
            .wait_for_log(&needle, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no {needle:?} line in the log:\n{}", self.log()));
        let line = log
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_default();
        line.split_once("' failed: ")
            .map(|(_, detail)| {
                detail
                    .rsplit_once(" (")
                    .map_or(detail, |(m, _)| m)
                    .to_string()
            })
            .unwrap_or_else(|| panic!("not a driver failure line: {line}"))
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The address the tests connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `ws://ADDR/websockify?token=TOKEN` (wss when the config has a certificate).
    pub fn url(&self, token: &str) -> String {
        self.url_path(&format!("/websockify?token={token}"))
    }

    /// `ws://ADDR` + `path_and_query` (wss when the config has a certificate).
    pub fn url_path(&self, path_and_query: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path_and_query}", self.addr)
    }

    /// Replaces the token file's contents (written to a new file, then renamed over the old).
    pub fn write_tokens(&self, text: &str) {
        let tmp = self.config.dir.write("tokens.new", text);
        fs::rename(&tmp, self.config.dir.join("tokens")).expect("rename the token file");
    }

    /// Sends SIGHUP.
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    fn signal(&self, signal: i32) {
        if self.exit.is_none() {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(self.pid(), signal) };
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait::until(timeout, || self.try_exit())
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- consolegate log ({}):\n{}",
                self.config.dir().display(),
                self.log()
            );
        }
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes the process `command` starts get SIGKILL when the thread that started it ends (also
/// when the test process is killed).
pub fn die_with_starting_thread(command: &mut Command) {
    // SAFETY: the closure only calls prctl(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    };
}

/// The first `listen` address, with a wildcard host replaced by loopback.
fn listen_addr(listen: &str) -> SocketAddr {
    let first = listen.split(',').next().unwrap_or(listen).trim();
    let first = first
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    first
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve listen address {first:?}"))
}

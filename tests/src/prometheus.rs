//! The proxy's metrics listener from the outside: [`scrape`] reads `/metrics`, has Prometheus's
//! own parser accept it (`promtool check metrics`), then reads its sample lines; [`Prometheus`] runs a real Prometheus server (Debian `prometheus`) that scrapes it every
//! second and answers PromQL queries.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{self, Response};
use crate::ports::{self, PortLease};
use crate::proxy::die_with_starting_thread;
use crate::scratch::TempDir;
use crate::wait;

/// `GET path` on the metrics listener, with `Authorization: Bearer TOKEN` when given.
pub fn get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> Response {
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http::exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// The samples of one exposition, keyed `name{label="value",…}` exactly as written.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub BTreeMap<String, f64>);

impl Samples {
    /// The value of the sample `key` (`name{labels}` as written), 0 if absent (a counter
    /// family has no sample until it is first counted).
    pub fn value(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }
}

/// Scrapes `/metrics`, asserts 200, checks the text with `promtool check metrics` (panics with
/// its complaint), and returns the samples.
pub fn scrape(addr: SocketAddr, bearer: Option<&str>) -> Samples {
    let response = get(addr, "/metrics", bearer);
    assert_eq!(response.status, 200, "{response:?}");
    promtool_check(&response.body);
    parse(&response.body)
}

/// Runs `promtool check metrics` on `text`; panics unless it passes.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install prometheus (.ci/install-peers)")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let complaint = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool exits 3 for lint warnings only (naming advice), 1 for a text it cannot parse.
    assert!(
        out.status.code() != Some(1) && !complaint.contains("error while linting"),
        "promtool check metrics failed: {complaint}\n{text}"
    );
}

/// The sample lines of a text exposition: `key value` (comments and `# EOF` skipped).
pub fn parse(text: &str) -> Samples {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (key, value) = line.rsplit_once(' ').expect("a sample line is 'key value'");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(key.to_string(), value);
    }
    Samples(samples)
}

/// A Prometheus server scraping one target every second. Killed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    dir: TempDir,
    listen: PortLease,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` (with `bearer` as its credentials) and
    /// waits until it is ready.
    pub fn start(target: SocketAddr, bearer: Option<&str>) -> Self {
        let dir = TempDir::new("prometheus");
        let listen = ports::port();
        let auth = match bearer {
            Some(token) => {
                let file = dir.write("bearer", token);
                format!(
                    "    authorization:\n      type: Bearer\n      credentials_file: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: consolegate\n{auth}    static_configs:\n      \
             - targets: ['{target}']\n"
        );
        let path = dir.write("prometheus.yml", config);
        let log = fs::File::create(dir.join("prometheus.log")).expect("create prometheus.log");
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", listen.port()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        die_with_starting_thread(&mut command);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot run prometheus ({e}): install it (.ci/install-peers)")
        });
        let mut prometheus = Self { child, dir, listen };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", prometheus.log());
            }
            if ports::listening(prometheus.listen.port())
                && http::get(prometheus.addr(), "/-/ready").status == 200
            {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.listen.port()))
    }

    /// The value of the instant PromQL `query` (a single series), once it equals `want` or
    /// after `timeout`; `None` if it never had a value.
    pub fn query_until(&self, query: &str, want: f64, timeout: Duration) -> Option<f64> {
        let mut last = None;
        wait::until(timeout, || {
            last = self.query(query);
            last.filter(|v| *v == want)
        })
        .or(last)
    }

    /// The value of the instant PromQL `query`, if it has exactly one series.
    pub fn query(&self, query: &str) -> Option<f64> {
        let encoded: String =
            percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let response = http::get(self.addr(), &format!("/api/v1/query?query={encoded}"));
        let json: serde_json::Value = serde_json::from_str(&response.body).ok()?;
        let result = json["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Whether Prometheus sees the target up (`up == 1`), waiting up to `timeout`.
    pub fn target_up(&self, timeout: Duration) -> bool {
        self.query_until("up", 1.0, timeout) == Some(1.0)
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- prometheus log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! An outside TLS audit of the wss listener: testssl.sh (Debian's `testssl.sh` package, command
//! `testssl`) scans the proxy on 127.0.0.1 with the harness's PKI (a CA-signed server
//! certificate with subjectAltName, key usage, 30 days' validity and a CRL distribution point,
//! the CA passed with `--add-ca`) and a `web` directory, so that the HTTP header checks see a
//! 200 page. The test reads testssl's JSON and asserts:
//! - no SSLv2, SSLv3, TLS 1.0 or TLS 1.1 (and TLS 1.2 and 1.3 offered, so the scan reached
//!   the listener);
//! - no finding of severity LOW or above;
//! - forward secrecy only: every cipher offered (`-E`, each cipher per protocol) has an
//!   (EC)DHE key exchange, and no RSA key transport (ROBOT).
//!
//! The scan runs `-p -s -f -E -P -S -U -h` (protocols, cipher categories, forward secrecy,
//! ciphers per protocol, server preferences, server defaults, vulnerabilities, HTTP headers):
//! about 60 s on this 2-core machine. The whole run is bounded by [`SCAN_TIMEOUT`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use consolegate_tests::pki::pki;
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::scratch::TempDir;
use consolegate_tests::wait;
use serde_json::Value;

/// The bound on the whole scan; it is killed past it.
const SCAN_TIMEOUT: Duration = Duration::from_secs(240);

/// testssl's severities from LOW up.
const LOW_OR_ABOVE: &[&str] = &["LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// One testssl finding.
#[derive(Debug)]
struct Finding {
    id: String,
    severity: String,
    finding: String,
}

/// Runs testssl against `127.0.0.1:port` with `ca` trusted; its findings and how long it took.
fn testssl(port: u16, ca: &Path) -> (Vec<Finding>, Duration) {
    let dir = TempDir::new("testssl");
    let json = dir.join("testssl.json");
    let log = dir.join("testssl.log");
    let stdout = std::fs::File::create(&log).expect("create testssl.log");
    let t0 = Instant::now();
    let mut child = Command::new("testssl")
        .args([
            "--warnings",
            "off",
            "--quiet",
            "--color",
            "0",
            "--ip",
            "one",
        ])
        // No DNS queries beyond the minimum: the target is a loopback address, and the CAA
        // check (a property of a domain's DNS zone, not of the server) would flag its absence.
        .args(["--nodns", "min"])
        .arg("--add-ca")
        .arg(ca)
        .arg("--jsonfile")
        .arg(&json)
        .args(["-p", "-s", "-f", "-E", "-P", "-S", "-U", "-h"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("dup testssl.log"))
        .stderr(stdout)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run testssl ({e}): install it with `apt-get install testssl.sh` \
                 (.ci/install-peers does)"
            )
        });
    let status = wait::until(SCAN_TIMEOUT, || child.try_wait().ok().flatten());
    let took = t0.elapsed();
    let output = || std::fs::read_to_string(&log).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "testssl did not finish within {SCAN_TIMEOUT:?}:\n{}",
            output()
        );
    };
    // testssl 3.0's exit code is the sum of its checks' return codes, which are not verdicts
    // (a check that hit a timeout counts too): its findings decide, and the scan must have run
    // to its end (`scanTime`, asserted by the test).
    if !status.success() {
        eprintln!("testssl exited with {status}:\n{}", output());
    }
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no {} ({e}):\n{}", json.display(), output()));
    let parsed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("testssl's JSON does not parse ({e}):\n{text}"));
    let findings = parsed
        .as_array()
        .unwrap_or_else(|| panic!("testssl's JSON is not a list of findings:\n{text}"))
        .iter()
        .map(|f| {
            let field = |name: &str| f[name].as_str().unwrap_or_default().to_string();
            Finding {
                id: field("id"),
                severity: field("severity"),
                finding: field("finding"),
            }
        })
        .collect();
    (findings, took)
}

/// The finding with `id`; panics with the list if there is none.
fn finding<'a>(findings: &'a [Finding], id: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("testssl reported no {id}: {findings:#?}"))
}

#[test]
fn testssl_finds_no_old_protocol_no_weakness_and_forward_secrecy_only() {
    let web = TempDir::new("tls-audit-web");
    web.write("index.html", "<!doctype html><title>console</title>\n");
    let config = Config::new()
        .tls()
        .set("web", &web.path().display().to_string());
    let proxy = Proxy::start(config);
    let (findings, took) = testssl(proxy.addr().port(), &pki().trusted.ca_cert());
    eprintln!("testssl took {took:?}");

    // The scan reached the listener, over TLS, and fetched a page for the header checks.
    let problems: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == "FATAL" || f.id == "scanProblem")
        .collect();
    assert!(problems.is_empty(), "the scan had problems: {problems:#?}");
    finding(&findings, "scanTime");
    assert_eq!(finding(&findings, "TLS1_2").finding, "offered");
    assert!(
        finding(&findings, "TLS1_3").finding.starts_with("offered"),
        "{:?}",
        finding(&findings, "TLS1_3")
    );
    assert!(
        finding(&findings, "HTTP_status_code")
            .finding
            .starts_with("200 OK"),
        "{:?}",
        finding(&findings, "HTTP_status_code")
    );
    assert_eq!(finding(&findings, "cert_chain_of_trust").finding, "passed.");

    // No SSLv2, SSLv3, TLS 1.0 or TLS 1.1.
    for old in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert_eq!(finding(&findings, old).finding, "not offered", "{old}");
    }

    // No finding of severity LOW or above.
    let flagged: Vec<&Finding> = findings
        .iter()
        .filter(|f| LOW_OR_ABOVE.contains(&f.severity.as_str()))
        .collect();
    assert!(
        flagged.is_empty(),
        "testssl flags the listener: {flagged:#?}"
    );

    // Forward secrecy only: every cipher offered has an (EC)DHE key exchange.
    let ciphers: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.id.starts_with("cipher-tls"))
        .collect();
    assert!(ciphers.len() >= 2, "no cipher list: {findings:#?}");
    for cipher in &ciphers {
        // "TLS 1.2   xc030   ECDHE-RSA-AES256-GCM-SHA384   ECDH 253   AESGCM   256   …"
        let kx = cipher.finding.split_whitespace().nth(4).unwrap_or_default();
        assert!(
            kx == "ECDH" || kx == "DH",
            "a cipher without forward secrecy: {cipher:?}"
        );
    }
    assert_eq!(finding(&findings, "PFS").finding, "offered");
    assert!(
        finding(&findings, "ROBOT")
            .finding
            .contains("no RSA key transport cipher"),
        "{:?}",
        finding(&findings, "ROBOT")
    );
}

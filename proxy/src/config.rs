//! The INI configuration, parsed into a typed [`Config`]. Every key, its default and its
//! meaning are documented here and in `conf/consolegate.conf`.

use std::net::SocketAddr;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ini::Ini;

use crate::allowed_targets::AllowedTargets;
use crate::client_address::{ProxyProtocol, TrustedProxies};
use crate::log_format::LogFormat;

/// Where the daemon reads its configuration unless `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/consolegate/consolegate.conf";
/// Default `driver_dir`.
pub const DEFAULT_DRIVER_DIR: &str = "/usr/lib/consolegate/drivers";

/// `connect_timeout`'s default, in seconds (a token source's own `timeout` must fit in it).
pub const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 5.0;

/// The daemon's settings (the `[DEFAULT]` section; driver sections stay in [`Config::ini`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// `listen`: addresses to accept on. Default `0.0.0.0:6080`.
    pub listen: Vec<SocketAddr>,
    /// `ssl_certificate`: PEM certificate chain for wss. No default.
    pub ssl_certificate: Option<PathBuf>,
    /// `ssl_key`: PEM private key for wss. No default.
    pub ssl_key: Option<PathBuf>,
    /// `listen_insecure`: allow plain ws when no certificate is set. Default false.
    pub listen_insecure: bool,
    /// `console_proxy_security_driver`: driver names in order of preference. Default `vencrypt`.
    pub drivers: Vec<String>,
    /// `driver_dir`: where `libconsolegate_<name>.so` files are. Default
    /// `/usr/lib/consolegate/drivers`.
    pub driver_dir: PathBuf,
    /// `connect_insecure`: allow drivers that leave the hypervisor leg in cleartext. Default false.
    pub connect_insecure: bool,
    /// `token_source`: where tokens resolve (`file:PATH`, ...). Default
    /// `file:/etc/consolegate/tokens`.
    pub token_source: String,
    /// `allowed_origins`: browser origins allowed to open consoles. Empty (the default) means the
    /// `Origin` must match the `Host` the browser connected to.
    pub allowed_origins: Vec<String>,
    /// `allowed_targets`: CIDRs and host names consoles may point at; a target outside them is
    /// refused before connecting. `None` (the default): any target (`--check-config` warns).
    pub allowed_targets: Option<AllowedTargets>,
    /// `web`: optional directory of static files served to plain GET requests.
    pub web: Option<PathBuf>,
    /// `connect_timeout`: seconds for the token lookup and the TCP connect to the hypervisor.
    /// Default 5.
    pub connect_timeout: Duration,
    /// `handshake_timeout`: seconds for the HTTP upgrade and, separately, for the driver's
    /// handshake. Default 10.
    pub handshake_timeout: Duration,
    /// `idle_timeout`: seconds without traffic either way before a session is closed; 0 (the
    /// default) means never.
    pub idle_timeout: Option<Duration>,
    /// `max_connections`: concurrent connections, handshakes included. Default 1024.
    pub max_connections: usize,
    /// `max_handshakes`: concurrent connections that have not finished the websocket upgrade
    /// (TLS, request, token, console connection). Default 256.
    pub max_handshakes: usize,
    /// `max_connections_per_client`: concurrent connections from one client address; 0 means no
    /// limit. Default 64.
    pub max_connections_per_client: Option<usize>,
    /// `drain_timeout`: seconds sessions may run on after SIGTERM. Default 10.
    pub drain_timeout: Duration,
    /// `thread_stack_size`: bytes of stack per session thread. Default 256 KiB.
    pub thread_stack_size: usize,
    /// `keepalive_timeout`: seconds a connection that was answered from `web` waits for its
    /// next request; 0 turns keep-alive off. Default 5.
    pub keepalive_timeout: Option<Duration>,
    /// `keepalive_requests`: the most requests one connection gets answered from `web`.
    /// Default 100.
    pub keepalive_requests: usize,
    /// `proxy_protocol`: `true` for every listener, or a list of `listen` addresses whose
    /// connections from `trusted_proxies` must begin with a PROXY protocol (v1 or v2) header.
    /// Default off.
    pub proxy_protocol: ProxyProtocol,
    /// `trusted_proxies`: CIDRs and addresses of the load balancers whose PROXY headers and
    /// `Forwarded`/`X-Forwarded-For` headers are believed. Default none.
    pub trusted_proxies: TrustedProxies,
    /// `metrics_listen`: the address of the metrics and health listener (`/metrics`,
    /// `/healthz`, `/readyz`). Default none: off.
    pub metrics_listen: Option<SocketAddr>,
    /// `metrics_token_file`: a file holding the bearer token `/metrics` requires. Default
    /// none: `/metrics` is open to whoever reaches `metrics_listen`.
    pub metrics_token_file: Option<PathBuf>,
    /// `log_format`: `auto` (the default: `journal` when stderr is the systemd journal, else
    /// `text`), `text`, `journal` (`<N>` syslog priority prefixes) or `json` (one object per line).
    pub log_format: LogFormat,
    /// The whole file, for driver and token-source sections.
    pub ini: Ini,
}

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read or is not valid INI.
    #[error("cannot read configuration {path}: {detail}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A key has a value that cannot be used; the message says which and why.
    #[error("configuration key '{key}': {detail}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong and what to write instead.
        detail: String,
    },
    /// A key this version does not know (likely a typo) in `[DEFAULT]`.
    #[error(
        "unknown configuration key '{0}' in [DEFAULT] (see conf/consolegate.conf for the keys)"
    )]
    UnknownKey(String),
}

/// Every key of the general (`[DEFAULT]`) section; any other key there is refused.
pub const KNOWN_KEYS: &[&str] = &[
    "listen",
    "ssl_certificate",
    "ssl_key",
    "listen_insecure",
    "console_proxy_security_driver",
    "driver_dir",
    "connect_insecure",
    "token_source",
    "allowed_origins",
    "allowed_targets",
    "web",
    "connect_timeout",
    "handshake_timeout",
    "idle_timeout",
    "max_connections",
    "max_handshakes",
    "max_connections_per_client",
    "drain_timeout",
    "thread_stack_size",
    "keepalive_timeout",
    "keepalive_requests",
    "proxy_protocol",
    "trusted_proxies",
    "metrics_listen",
    "metrics_token_file",
    "log_format",
];

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.into(),
            detail: e.to_string(),
        })?;
        Self::parse(&text)
            .map_err(|e| match e {
                ConfigError::Read { detail, .. } => ConfigError::Read {
                    path: path.into(),
                    detail,
                },
                other => other,
            })
            .map(|mut c| {
                // Relative paths in the file are relative to the file's directory.
                let base = path.parent().unwrap_or(Path::new("."));
                for p in [
                    &mut c.ssl_certificate,
                    &mut c.ssl_key,
                    &mut c.web,
                    &mut c.metrics_token_file,
                ]
                .into_iter()
                .flatten()
                {
                    *p = base.join(&*p);
                }
                c.driver_dir = base.join(&c.driver_dir);
                for scheme in ["file:", "json:"] {
                    if let Some(rest) = c.token_source.strip_prefix(scheme) {
                        c.token_source = format!("{scheme}{}", base.join(rest).display());
                    }
                }
                c
            })
    }

    /// Parses INI text (paths stay as written).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut ini = Ini::load_from_str(text).map_err(|e| ConfigError::Read {
            path: PathBuf::new(),
            detail: e.to_string(),
        })?;
        // Keys under an explicit `[DEFAULT]` header belong to the general section (as in
        // Python's configparser, which nova's files are written for); fold them in once, so
        // every reader of `ini` sees one section.
        if let Some(default) = ini.delete(Some("DEFAULT")) {
            for (key, value) in default.iter() {
                ini.with_general_section().set(key, value);
            }
        }
        let section = ini.general_section();
        for (key, _) in section.iter() {
            if !KNOWN_KEYS.contains(&key) {
                return Err(ConfigError::UnknownKey(key.to_string()));
            }
        }
        let get = |key: &str| section.get(key).map(str::trim).filter(|v| !v.is_empty());

        let listen = parse_listen(get("listen").unwrap_or("0.0.0.0:6080"))?;
        let drivers: Vec<String> = list(get("console_proxy_security_driver").unwrap_or("vencrypt"));
        if drivers.is_empty() {
            return Err(invalid("console_proxy_security_driver", "names no driver"));
        }
        let idle = seconds("idle_timeout", get("idle_timeout"), 0.0)?;
        let keepalive = seconds(
            "keepalive_timeout",
            get("keepalive_timeout"),
            crate::static_files::keep_alive::DEFAULT_IDLE_SECS,
        )?;
        let mut config = Config {
            listen,
            ssl_certificate: get("ssl_certificate").map(PathBuf::from),
            ssl_key: get("ssl_key").map(PathBuf::from),
            listen_insecure: boolean("listen_insecure", get("listen_insecure"))?,
            drivers,
            driver_dir: PathBuf::from(get("driver_dir").unwrap_or(DEFAULT_DRIVER_DIR)),
            connect_insecure: boolean("connect_insecure", get("connect_insecure"))?,
            token_source: get("token_source")
                .unwrap_or("file:/etc/consolegate/tokens")
                .into(),
            allowed_origins: list(get("allowed_origins").unwrap_or(""))
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            allowed_targets: get("allowed_targets")
                .map(AllowedTargets::parse)
                .transpose()
                .map_err(|e| invalid("allowed_targets", e.to_string()))?,
            web: get("web").map(PathBuf::from),
            connect_timeout: positive(
                "connect_timeout",
                get("connect_timeout"),
                DEFAULT_CONNECT_TIMEOUT_SECS,
            )?,
            handshake_timeout: positive("handshake_timeout", get("handshake_timeout"), 10.0)?,
            idle_timeout: (!idle.is_zero()).then_some(idle),
            max_connections: number("max_connections", get("max_connections"), 1024)?,
            max_handshakes: number("max_handshakes", get("max_handshakes"), 256)?,
            max_connections_per_client: match get("max_connections_per_client") {
                Some("0") => None,
                other => Some(number("max_connections_per_client", other, 64)?),
            },
            drain_timeout: seconds("drain_timeout", get("drain_timeout"), 10.0)?,
            thread_stack_size: number("thread_stack_size", get("thread_stack_size"), 256 * 1024)?
                .max(64 * 1024),
            keepalive_timeout: (!keepalive.is_zero()).then_some(keepalive),
            keepalive_requests: number(
                "keepalive_requests",
                get("keepalive_requests"),
                crate::static_files::keep_alive::DEFAULT_MAX_REQUESTS,
            )?,
            proxy_protocol: ProxyProtocol::Off,
            trusted_proxies: get("trusted_proxies")
                .map(TrustedProxies::parse)
                .transpose()
                .map_err(|e| invalid("trusted_proxies", e))?
                .unwrap_or_default(),
            metrics_listen: get("metrics_listen")
                .map(|v| {
                    parse_listen(v)
                        .map(|a| a[0])
                        .map_err(|_| invalid("metrics_listen", format!("'{v}' is not host:port")))
                })
                .transpose()?,
            metrics_token_file: get("metrics_token_file").map(PathBuf::from),
            log_format: get("log_format")
                .map(|v| v.parse().map_err(|e: String| invalid("log_format", e)))
                .transpose()?
                .unwrap_or_default(),
            ini: ini.clone(),
        };
        config.proxy_protocol = proxy_protocol(get("proxy_protocol"), &config.listen)?;
        if config.proxy_protocol != ProxyProtocol::Off && config.trusted_proxies.is_empty() {
            return Err(invalid(
                "proxy_protocol",
                "is on but trusted_proxies is empty: list the load balancers' addresses",
            ));
        }
        if config.ssl_certificate.is_some() != config.ssl_key.is_some() {
            return Err(invalid(
                "ssl_certificate",
                "ssl_certificate and ssl_key go together",
            ));
        }
        Ok(config)
    }

    /// The connection limits checked at accept.
    pub fn limits(&self) -> crate::sessions::Limits {
        crate::sessions::Limits {
            connections: self.max_connections,
            handshakes: self.max_handshakes,
            per_client: self.max_connections_per_client,
        }
    }

    /// Keep-alive of the connections answered from `web`.
    pub fn keep_alive(&self) -> crate::static_files::KeepAlive {
        crate::static_files::KeepAlive {
            idle: self.keepalive_timeout,
            max_requests: self.keepalive_requests,
        }
    }

    /// Whether the browser leg is wss.
    pub fn tls(&self) -> bool {
        self.ssl_certificate.is_some()
    }

    /// The `(section, key, value)` triples of the named sections, in file order.
    pub fn section_options(&self, sections: &[&str]) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for name in sections {
            if let Some(props) = self.ini.section(Some(*name)) {
                for (k, v) in props.iter() {
                    out.push((name.to_string(), k.to_string(), v.trim().to_string()));
                }
            }
        }
        out
    }
}

fn invalid(key: &'static str, detail: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        detail: detail.into(),
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_listen(value: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out = Vec::new();
    for item in list(value) {
        let addrs: Vec<SocketAddr> = item
            .to_socket_addrs()
            .map_err(|e| invalid("listen", format!("'{item}' is not host:port ({e})")))?
            .collect();
        let first = addrs
            .first()
            .copied()
            .ok_or_else(|| invalid("listen", format!("'{item}' resolves to no address")))?;
        out.push(first);
    }
    if out.is_empty() {
        return Err(invalid("listen", "names no address"));
    }
    Ok(out)
}

/// `proxy_protocol`: a boolean, or `listen` addresses (each must be one of `listen`).
fn proxy_protocol(
    value: Option<&str>,
    listen: &[SocketAddr],
) -> Result<ProxyProtocol, ConfigError> {
    let Some(value) = value else {
        return Ok(ProxyProtocol::Off);
    };
    if let Ok(on) = boolean("proxy_protocol", Some(value)) {
        return Ok(if on {
            ProxyProtocol::All
        } else {
            ProxyProtocol::Off
        });
    }
    let addrs = parse_listen(value).map_err(|_| {
        invalid(
            "proxy_protocol",
            format!("'{value}' is neither true/false nor a list of listen addresses"),
        )
    })?;
    if let Some(stray) = addrs.iter().find(|a| !listen.contains(a)) {
        return Err(invalid(
            "proxy_protocol",
            format!("{stray} is not one of the listen addresses"),
        ));
    }
    Ok(ProxyProtocol::Listeners(addrs))
}

fn boolean(key: &'static str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("true" | "yes" | "on" | "1") => Ok(true),
        Some("false" | "no" | "off" | "0") => Ok(false),
        Some(other) => Err(invalid(key, format!("'{other}' is not true or false"))),
    }
}

fn seconds(key: &'static str, value: Option<&str>, default: f64) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs_f64(default));
    };
    let secs: f64 = value
        .parse()
        .map_err(|_| invalid(key, format!("'{value}' is not seconds")))?;
    Duration::try_from_secs_f64(secs).map_err(|_| {
        invalid(
            key,
            format!("'{value}' is not a non-negative number of seconds"),
        )
    })
}

fn positive(key: &'static str, value: Option<&str>, default: f64) -> Result<Duration, ConfigError> {
    let d = seconds(key, value, default)?;
    if d.is_zero() {
        return Err(invalid(key, "must be more than 0 seconds"));
    }
    Ok(d)
}

fn number(key: &'static str, value: Option<&str>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid(
                key,
                format!("'{v}' is not a positive whole number"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen, vec!["0.0.0.0:6080".parse().unwrap()]);
        assert!(!c.listen_insecure && !c.connect_insecure);
        assert_eq!(c.drivers, vec!["vencrypt"]);
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.allowed_targets, None);
    }

    #[test]
    fn reads_allowed_targets() {
        let c = Config::parse("allowed_targets = 10.0.0.0/8, *.hv.example\n").unwrap();
        let allowed = c.allowed_targets.expect("set");
        assert!(allowed.allows_address("10.1.1.1".parse().unwrap()));
        assert!(allowed.allows_name("a.hv.example"));
    }

    #[test]
    fn reads_lists_and_ipv6() {
        let c = Config::parse(
            "listen = 127.0.0.1:1, [::1]:2\nconsole_proxy_security_driver = vencrypt, spice_tls\n\
             idle_timeout = 0.5\nallowed_origins = https://A.example/, http://b\n\
             [console_proxy_tls]\nca_certificate = /x\n",
        )
        .unwrap();
        assert_eq!(c.listen.len(), 2);
        assert!(c.listen[1].is_ipv6());
        assert_eq!(c.drivers, vec!["vencrypt", "spice_tls"]);
        assert_eq!(c.idle_timeout, Some(Duration::from_millis(500)));
        assert_eq!(c.allowed_origins, vec!["https://a.example", "http://b"]);
        assert_eq!(
            c.section_options(&["console_proxy_tls"]),
            vec![(
                "console_proxy_tls".into(),
                "ca_certificate".into(),
                "/x".into()
            )]
        );
    }

    #[test]
    fn reads_the_load_balancer_and_metrics_keys() {
        let c = Config::parse(
            "listen = 127.0.0.1:1, 127.0.0.1:2\nproxy_protocol = 127.0.0.1:2\n\
             trusted_proxies = 10.0.0.0/8\nmetrics_listen = 127.0.0.1:9100\nlog_format = json\n",
        )
        .unwrap();
        assert!(!c.proxy_protocol.on("127.0.0.1:1".parse().unwrap()));
        assert!(c.proxy_protocol.on("127.0.0.1:2".parse().unwrap()));
        assert!(c.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.log_format, LogFormat::Json);
        let d = Config::parse("").unwrap();
        assert_eq!(d.proxy_protocol, ProxyProtocol::Off);
        assert_eq!((d.metrics_listen, d.log_format), (None, LogFormat::Auto));
    }

    #[test]
    fn an_explicit_default_header_is_the_same_section() {
        let c =
            Config::parse("[DEFAULT]\nlisten_insecure = true\nlisten = 127.0.0.1:9\n[x]\na = b\n")
                .unwrap();
        assert!(c.listen_insecure);
        assert_eq!(c.listen, vec!["127.0.0.1:9".parse().unwrap()]);
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = Config::parse("listen_insecure = maybe\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration key 'listen_insecure': 'maybe' is not true or false"
        );
        let e = Config::parse("listne = 1\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown configuration key 'listne'"),
            "{e}"
        );
        let e = Config::parse("connect_timeout = 0\n").unwrap_err();
        assert!(e.to_string().contains("must be more than 0 seconds"), "{e}");
        let e = Config::parse("allowed_targets = 10.0.0.0/40\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration key 'allowed_targets': '10.0.0.0/40' is not a CIDR (10.0.0.0/8, \
             fd00::/8), an IP address, a host name or *.domain"
        );
        let e = Config::parse("proxy_protocol = true\n").unwrap_err();
        assert!(e.to_string().contains("trusted_proxies is empty"), "{e}");
        let e = Config::parse("listen = 127.0.0.1:1\nproxy_protocol = 127.0.0.1:2\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("127.0.0.1:2 is not one of the listen addresses"),
            "{e}"
        );
        let e = Config::parse("log_format = xml\n").unwrap_err();
        assert!(
            e.to_string().starts_with("configuration key 'log_format'"),
            "{e}"
        );
        let e = Config::parse("ssl_key = k.pem\n").unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
    }
}

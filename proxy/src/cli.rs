//! The command line of the `consolegate` daemon, shared by the daemon (`main.rs`) and the
//! generator of its manual page (`consolegate-man`, which renders it with clap_mangen).

use std::path::PathBuf;

use clap::Parser;

use crate::config::DEFAULT_CONFIG_PATH;

/// A secure websocket console proxy for virtual machines.
#[derive(Parser, Debug)]
#[command(
    name = "consolegate",
    version,
    about,
    long_about = "consolegate lets browsers (noVNC, spice-html5, xterm.js) reach the VNC, SPICE \
                  and serial consoles of virtual machines through one HTTPS/websocket port. A \
                  token in the request names the console; a security driver secures the leg \
                  to the hypervisor (VeNCrypt x509 for VNC, TLS for SPICE and serial).\n\n\
                  Signals: SIGHUP re-reads the token source and the wss certificate without \
                  dropping sessions; SIGTERM or SIGINT stops accepting, lets sessions run on \
                  for drain_timeout, then closes them.\n\n\
                  Under systemd (Type=notify) the daemon reports READY once its listeners are \
                  bound and its drivers loaded, RELOADING around SIGHUP, STOPPING, and pings \
                  the watchdog when WatchdogSec is set; with consolegate.socket it takes its \
                  listening sockets from systemd (LISTEN_FDS) instead of binding them.\n\n\
                  Every configuration key is described in consolegate.conf(5)."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, short = 'c', value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Check the configuration (load drivers, open the token source, read certificates) and
    /// exit: 0 if it is usable.
    #[arg(long)]
    pub check_config: bool,
}

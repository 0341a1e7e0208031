//! The `consolegate` daemon: command line, logging, exit codes.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use consolegate::cli::Cli;
use consolegate::config::Config;
use consolegate::daemon::{self, Daemon};

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        // No console byte, token or password reaches the log at any level, whatever RUST_LOG
        // says (these directives replace any for the same modules): tungstenite's trace lines
        // print every websocket frame's payload (keystrokes, screen contents), and ureq's show
        // request paths, where a REST token source puts the token.
        .filter_module("tungstenite", log::LevelFilter::Debug)
        .filter_module("ureq", log::LevelFilter::Debug)
        .filter_module("ureq_proto", log::LevelFilter::Debug)
        .init();
    match do_main(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("consolegate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn do_main(cli: &Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config)?;
    if cli.check_config {
        let shared = daemon::prepare(config).context("configuration check failed")?;
        for d in shared.drivers.drivers() {
            let mut line = format!(
                "driver '{}' {} ({}): serves {}",
                d.name(),
                d.version(),
                d.path().display(),
                d.kind_names().join(", ")
            );
            if d.is_cleartext() {
                line.push_str("; WARNING: cleartext hypervisor leg");
            }
            println!("{line}");
            if d.is_placeholder() {
                println!(
                    "WARNING: driver '{}' is a placeholder: {}",
                    d.name(),
                    d.description()
                );
            }
        }
        println!("token source: {}", shared.tokens.describe());
        if shared.config.allowed_targets.is_none() {
            println!(
                "WARNING: allowed_targets is not set: a token may point a console at any \
                 address this host reaches; list the hypervisors' CIDRs or host names"
            );
        }
        println!("configuration OK");
        return Ok(());
    }
    Daemon::start(config)?.run()?;
    Ok(())
}

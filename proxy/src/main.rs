//! The `consolegate` daemon: command line, logging, exit codes.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use consolegate::cli::Cli;
use consolegate::config::Config;
use consolegate::daemon::{self, Daemon};
use consolegate::log_format::{self, LogFormat};
use consolegate::metrics_listener::BearerToken;

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    // The configuration is read first: it chooses the log format. A configuration that cannot
    // be read is reported in the default format.
    let config = Config::load(&cli.config);
    let format = config.as_ref().map_or(LogFormat::Auto, |c| c.log_format);
    log_format::init(format);
    match config
        .map_err(anyhow::Error::from)
        .and_then(|c| do_main(&cli, c))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("consolegate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn do_main(cli: &Cli, config: Config) -> anyhow::Result<()> {
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
        if let Some(addr) = shared.config.metrics_listen {
            if let Some(path) = &shared.config.metrics_token_file {
                BearerToken::read(path).context("configuration check failed")?;
            }
            println!("metrics and health: http://{addr}/ (/metrics, /healthz, /readyz)");
        }
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

//! The papo binary: flags and environment into a `Config`, logging, start, and a clean
//! shutdown on Ctrl-C or SIGTERM.

use papo::config::{self, Invocation};
use std::process::ExitCode;

fn main() -> ExitCode {
    let invocation = match config::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("papo: {message}");
            return ExitCode::from(2);
        }
    };
    let config = match invocation {
        Invocation::Help => {
            print!("{}", config::help_text());
            return ExitCode::SUCCESS;
        }
        Invocation::Backup { config, out } => {
            if let Err(e) = papo::store::Store::backup(&config.db, &out) {
                eprintln!("papo: backup failed: {e}");
                return ExitCode::FAILURE;
            }
            // The files the copied database names, taken after it (files never change).
            let live = config
                .files
                .dir
                .clone()
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| papo::files::backup::dir_of(&config.db));
            return match papo::files::backup::copy_files(&live, &out) {
                Ok(copied) => {
                    println!(
                        "papo: copied {} to {out} and {} files to {}",
                        config.db,
                        copied.files,
                        papo::files::backup::dir_of(&out).display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("papo: backup of the files failed: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Invocation::User { config, command } => {
            let stdin = std::io::stdin();
            return finish(papo::accounts::cli::user(
                &config.db,
                &command,
                &mut stdin.lock(),
            ));
        }
        Invocation::Invite { config } => return finish(papo::accounts::cli::invite(&config.db)),
        Invocation::Audit { config, limit } => {
            return finish(papo::store::moderation::audit(&config.db, limit))
        }
        Invocation::Healthcheck { config } => {
            return match papo::healthcheck::check(&config, papo::healthcheck::TIMEOUT) {
                Ok(status) => {
                    println!("papo: healthy ({status})");
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("papo: unhealthy: {why}");
                    ExitCode::FAILURE
                }
            };
        }
        Invocation::Serve(config) => config,
    };
    let level = config.log_level.parse().unwrap_or(log::LevelFilter::Info);
    let _ = simple_logger::SimpleLogger::new().with_level(level).init();
    raise_open_file_limit();

    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    }) {
        log::warn!("cannot handle Ctrl-C/SIGTERM: {e}");
    }

    let server = match papo::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("papo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = server.local_addr();
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!("papo is running: open http://{shown}/ in your browser (Ctrl-C stops it)");

    let _ = stop_rx.recv();
    log::info!("shutting down");
    server.shutdown();
    ExitCode::SUCCESS
}

/// Prints a command's result: its output alone on standard output, errors on standard
/// error.
fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("papo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Each WebSocket connection holds one descriptor; the default soft limit (often 1024)
/// would cap the server far below its thread budget, so raise it to the hard limit.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => log::info!("open file limit: {limit}"),
        Err(e) => log::warn!("cannot raise the open file limit: {e}"),
    }
}

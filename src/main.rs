//! `nearline`: the one binary that runs any nearline service, all of them, or their tools.

mod backends;
mod cli;
mod commands;
mod demo;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand};

/// Request handling allocates many small, short-lived values (decoded events, response
/// rows); mimalloc serves them markedly faster than glibc's allocator (see the README's
/// performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for invalid configuration (EX_CONFIG would be 78; 64 is EX_USAGE, which is
/// what operators and the issue tracker agreed on for "you called it wrong").
const EXIT_INVALID_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Configuration is checked in full before anything is bound or started.
    let mut config = match nearline_runtime::config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprint!("{error}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    // The demo's terminal is for its status line: only warnings and errors of the
    // services, unless the operator chose a filter.
    if matches!(cli.command, Command::Demo(_)) && config.telemetry.log_filter == "info" {
        config.telemetry.log_filter = "warn,sqlx=error,tower_http=off".into();
    }
    if let Some(format) = cli.log_format {
        config.telemetry.log_format = format.into();
    }

    let result = match cli.command {
        Command::Config { command: ConfigCommand::Print } => commands::config_print(&config),
        command => run_async(command, Arc::new(config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(command: Command, config: Arc<nearline_runtime::Config>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let _telemetry = nearline_runtime::telemetry::init(&config.telemetry)?;
        match command {
            Command::Serve(args) => commands::serve(args, config).await,
            Command::Migrate(args) => commands::migrate(args, &config).await,
            Command::Backfill(args) => commands::backfill(args, &config).await,
            Command::Reconcile(args) => commands::reconcile(args, &config).await,
            Command::Demo(args) => commands::demo(args, config).await,
            Command::Evaluate(args) => commands::evaluate(args, &config).await,
            Command::Config { .. } => unreachable!("handled without a runtime"),
        }
    })
}

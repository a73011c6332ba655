//! The subcommands.

mod batch;
mod demo;
mod evaluate;
mod migrate;
mod serve;

pub(crate) use batch::{backfill, reconcile};
pub(crate) use demo::{DemoArgs, demo};
pub(crate) use evaluate::{EvaluateArgs, evaluate};
pub(crate) use migrate::migrate;
pub(crate) use serve::serve;

/// `nearline config print`: the effective configuration as TOML, secrets masked.
pub(crate) fn config_print(config: &nearline_runtime::Config) -> anyhow::Result<()> {
    print!("{}", toml::to_string_pretty(config)?);
    Ok(())
}

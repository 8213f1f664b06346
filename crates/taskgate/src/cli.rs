//! Client subcommands (filled in with the user-token work).

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {}

pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {}
}

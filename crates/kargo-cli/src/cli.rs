//! The command line: every command and flag, defined once; help and completions come from here.

use clap::{Parser, Subcommand};

/// Kargo: access control for GitOps promotions.
#[derive(Debug, Parser)]
#[command(name = "kargo", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kargo API server.
    Server(crate::server::ServerArgs),
}

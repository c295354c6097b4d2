//! `kargo config view|set-project|get-project`.

use super::{Context, Error};
use crate::cli::{ConfigCommand, UsageError};
use crate::output::{self, OutputFormat};

/// Runs a `kargo config` command.
pub fn run(ctx: &mut Context<'_>, command: ConfigCommand) -> Result<(), Error> {
    match command {
        ConfigCommand::View(args) => {
            let format = args.output.for_object()?;
            let config = ctx.config()?.config;
            let shown = if args.raw { config } else { config.masked() };
            let value = serde_json::to_value(&shown).unwrap_or_default();
            let text = match format {
                None | Some(OutputFormat::Yaml) => shown.to_yaml(),
                Some(OutputFormat::Name) => {
                    return Err(UsageError(
                        "-o name does not apply to the configuration".to_owned(),
                    )
                    .into());
                }
                Some(other) => output::render_document(&value, other)?,
            };
            ctx.print(&text)
        }
        ConfigCommand::SetProject(args) => {
            let mut file = ctx.config()?;
            file.config.project = args.name.trim().to_lowercase();
            file.save()?;
            Ok(())
        }
        ConfigCommand::GetProject => {
            let file = ctx.config()?;
            if file.config.project.is_empty() {
                return Err(UsageError("default project is not set".to_owned()).into());
            }
            ctx.print(&format!("{}\n", file.config.project))
        }
    }
}

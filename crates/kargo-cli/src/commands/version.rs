//! `kargo version`: this CLI's version and, when a server is configured, the server's, as
//! upstream Kargo's `kargo version` and `kubectl version` print them (`Client Version: v0.1.0`,
//! `Server Version: v0.1.0`). The server's comes from its `/version`
//! ([`kargo_api::version::kargo_version_of`]). An unreachable server is an error (exit 1) after
//! the client version, as kubectl does.

use kargo_api::version::{self, Build};
use serde_json::{Value, json};

use super::{Context, Error};
use crate::api;
use crate::cli::{UsageError, VersionArgs};
use crate::client::Client;
use crate::output::{self, OutputFormat};

/// Prints the versions; with `-o json|yaml|jsonpath=...`, upstream's `ComponentVersions`
/// object (`client`, and `server` when known).
pub fn run(ctx: &mut Context<'_>, args: &VersionArgs) -> Result<(), Error> {
    let format = args.output.for_object()?;
    if matches!(format, Some(OutputFormat::Name)) {
        return Err(UsageError("-o name does not apply to kargo version".to_owned()).into());
    }
    let build = crate::BUILD;
    if format.is_none() {
        ctx.print(&format!("Client Version: {}\n", build.kargo_version()))?;
    }
    let server = if args.client {
        Ok(None)
    } else {
        server_version(ctx, args)
    };
    let (server_info, error) = match server {
        Ok(info) => (info, None),
        Err(e) => (None, Some(e)),
    };
    match format {
        None => {
            if let Some(info) = &server_info {
                let server = version::kargo_version_of(info).unwrap_or_default();
                ctx.print(&format!("Server Version: {server}\n"))?;
            }
        }
        Some(format) => {
            let document = component_versions(&build, server_info.as_ref());
            ctx.print(&output::render_document(&document, format)?)?;
        }
    }
    error.map_or(Ok(()), Err)
}

/// The server's `/version`, or `None` when no server is configured (not logged in).
fn server_version(ctx: &Context<'_>, args: &VersionArgs) -> Result<Option<Value>, Error> {
    let file = ctx.config()?;
    let Some(mut connection) =
        file.connection(ctx.env, args.client_flags.insecure_skip_tls_verify)?
    else {
        return Ok(None);
    };
    // `/version` needs no credential: send none.
    connection.token = None;
    let client = Client::new(connection)?;
    Ok(Some(client.send(&api::server_version())?))
}

/// Upstream Kargo's `ComponentVersions`.
fn component_versions(build: &Build, server: Option<&Value>) -> Value {
    let mut document = json!({
        "apiVersion": "kargo.akuity.io/v1alpha1",
        "kind": "ComponentVersions",
        "client": build.kargo_info(),
    });
    if let Some(server) = server {
        document["server"] = version::kargo_info_of(server);
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_versions_has_the_client_and_the_server_when_known() {
        let build = Build::unknown();
        let client_only = component_versions(&build, None);
        assert_eq!(client_only["kind"], "ComponentVersions");
        assert_eq!(client_only["client"]["version"], build.kargo_version());
        assert!(client_only.get("server").is_none());
        let both = component_versions(&build, Some(&build.kube_info()));
        assert_eq!(both["server"], build.kargo_info());
    }
}

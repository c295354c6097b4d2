//! `kargo whoami`: who the server says the caller is (a `SelfSubjectReview`), and how the CLI
//! logged in.

use serde_json::Value;

use super::{Context, Error};
use crate::api;
use crate::cli::{UsageError, WhoamiArgs};
use crate::config::{ConfigFile, Environment};
use crate::output::{self, OutputFormat};
use crate::sso::refresh;

/// Prints the review as kubectl's `auth whoami` table (plus how the CLI logged in), or the
/// `SelfSubjectReview` itself with `-o json|yaml|jsonpath=...`.
pub fn run(ctx: &mut Context<'_>, args: &WhoamiArgs) -> Result<(), Error> {
    let format = args.output.for_object()?;
    if matches!(format, Some(OutputFormat::Name)) {
        return Err(UsageError("-o name does not apply to kargo whoami".to_owned()).into());
    }
    let file = ctx.config()?;
    let client = ctx.client(&file, &args.client)?;
    let review = client.send(&api::self_subject_review())?;
    let text = match format {
        Some(format) => output::render_document(&review, format)?,
        None => table(&review, &login_method(ctx.env, &file)),
    };
    ctx.print(&text)
}

/// kubectl's rows (`Username`, `UID`, `Groups`, `Extra: <key>`) and `Logged in with`.
fn table(review: &Value, method: &str) -> String {
    let user = &review["status"]["userInfo"];
    let list = crate::output::bracketed;
    let mut rows = Vec::new();
    if let Some(name) = user["username"].as_str() {
        rows.push(vec!["Username".to_owned(), name.to_owned()]);
    }
    if let Some(uid) = user["uid"].as_str().filter(|u| !u.is_empty()) {
        rows.push(vec!["UID".to_owned(), uid.to_owned()]);
    }
    if user["groups"].is_array() {
        rows.push(vec!["Groups".to_owned(), list(&user["groups"])]);
    }
    if let Some(extra) = user["extra"].as_object() {
        for (key, values) in extra {
            rows.push(vec![format!("Extra: {key}"), list(values)]);
        }
    }
    rows.push(vec!["Logged in with".to_owned(), method.to_owned()]);
    output::table(Some(&["ATTRIBUTE", "VALUE"]), &rows)
}

/// How the token was obtained: `sso (<issuer>)`, `admin`, `KARGO_API_TOKEN`, or a token put in
/// the configuration file by hand.
fn login_method(env: &Environment, file: &ConfigFile) -> String {
    if env.replaces_the_file() {
        return "KARGO_API_TOKEN".to_owned();
    }
    let config = &file.config;
    match config.auth_method.as_str() {
        "sso" => {
            let issuer = refresh::claims(&config.bearer_token)
                .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned));
            match issuer {
                Some(issuer) => format!("sso ({issuer})"),
                None => "sso".to_owned(),
            }
        }
        // The issued token names the CI identity it was exchanged for.
        "federated" => {
            let identity = refresh::claims(&config.bearer_token).and_then(|c| {
                let f = c.get("kargo.akuity.io/federated-identity")?;
                Some(format!(
                    "{} {}",
                    f.get("issuer")?.as_str()?,
                    f.get("subject")?.as_str()?
                ))
            });
            match identity {
                Some(identity) => format!("federated ({identity})"),
                None => "federated".to_owned(),
            }
        }
        "" => "bearerToken (configuration file)".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CliConfig;
    use crate::sso::refresh::tests::jwt;
    use serde_json::json;

    #[test]
    fn the_table_shows_kubectls_rows_and_the_login_method() {
        let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "status": {"userInfo": {
                "username": "alice@example.com",
                "groups": ["devs", "system:authenticated"],
                "extra": {"authentication.kubernetes.io/credential-id": ["JTI=1"]},
            }},
        });
        assert_eq!(
            table(&review, "sso (https://idp)"),
            "\
ATTRIBUTE                                           VALUE
Username                                            alice@example.com
Groups                                              [devs system:authenticated]
Extra: authentication.kubernetes.io/credential-id   [JTI=1]
Logged in with                                      sso (https://idp)
"
        );
    }

    #[test]
    fn the_login_method_comes_from_the_configuration_or_the_environment() {
        let file = |auth_method: &str, token: String| ConfigFile {
            path: "/c".into(),
            config: CliConfig {
                api_address: "https://k".into(),
                auth_method: auth_method.into(),
                bearer_token: token,
                ..CliConfig::default()
            },
        };
        let none = Environment::default();
        let id_token = jwt(&json!({"iss": "https://idp", "exp": 1}));
        assert_eq!(
            login_method(&none, &file("sso", id_token)),
            "sso (https://idp)"
        );
        assert_eq!(login_method(&none, &file("sso", "opaque".into())), "sso");
        assert_eq!(login_method(&none, &file("admin", "t".into())), "admin");
        let exchanged = jwt(&json!({"kargo.akuity.io/federated-identity":
            {"issuer": "https://ci", "subject": "repo:a/b:ref:refs/heads/main"}}));
        assert_eq!(
            login_method(&none, &file("federated", exchanged)),
            "federated (https://ci repo:a/b:ref:refs/heads/main)"
        );
        assert_eq!(
            login_method(&none, &file("", "t".into())),
            "bearerToken (configuration file)"
        );
        let env = Environment {
            api_address: Some("https://k".into()),
            api_token: Some("t".into()),
            ..Environment::default()
        };
        assert_eq!(
            login_method(&env, &file("sso", "t".into())),
            "KARGO_API_TOKEN"
        );
    }
}

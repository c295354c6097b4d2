//! A scope's tokens, both kinds: ServiceAccount tokens and Kargo Roles' API tokens. Listed
//! redacted with created, expiry, last use and state; created and rotated with the value shown
//! once (copy button, a kubeconfig to download); disabled, enabled and deleted.

use axum::response::Response;
use base64::Engine;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{after, annotation, failed, items, name_of, unreadable};
use crate::client::ApiError;
use crate::extract::{Names, Posted, Signed, is_name};
use crate::html;
use crate::scope::Scope;
use crate::session::Flash;
use kargo_api::expiry::EXPIRES_AT_ANNOTATION;
use kargo_api::kargo::DESCRIPTION_ANNOTATION;
use kargo_api::last_used::LAST_USED_AT_ANNOTATION;
use kargo_api::token_lifecycle::DISABLED_ANNOTATION;

/// The token Secret's annotation naming its ServiceAccount.
const ACCOUNT_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// The two kinds of token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Kargo ServiceAccount's token.
    Account,
    /// A Kargo Role's API token.
    Api,
}

impl Kind {
    fn from_form(value: &str) -> Option<Kind> {
        match value {
            "account" => Some(Kind::Account),
            "api" => Some(Kind::Api),
            _ => None,
        }
    }

    /// The UI's path segment.
    fn segment(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Api => "api",
        }
    }

    /// The API's collection of this kind.
    fn collection(self) -> &'static str {
        match self {
            Kind::Account => "service-account-tokens",
            Kind::Api => "api-tokens",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Account => "ServiceAccount token",
            Kind::Api => "API token",
        }
    }
}

/// What the user may do with tokens here.
struct Allowed {
    create: bool,
    update: bool,
    delete: bool,
}

/// `GET {scope}/tokens`.
pub(crate) async fn list(signed: Signed, names: Names) -> Response {
    let scope = &names.scope;
    let title = format!("{} · Tokens", scope.title());
    let nav = html::scope_nav(scope, "tokens");
    let (accounts, api) = match read_tokens(&signed, scope).await {
        Ok(both) => both,
        Err(error) => return unreadable(&signed, &title, nav, &error),
    };
    let ns = scope.namespace();
    let allowed = Allowed {
        create: signed.client.can("create", "", "secrets", ns).await,
        update: signed.client.can("update", "", "secrets", ns).await,
        delete: signed.client.can("delete", "", "secrets", ns).await,
    };
    let now = now();
    let mut rows: Vec<(Kind, &Value)> = items(&accounts)
        .iter()
        .map(|t| (Kind::Account, t))
        .collect();
    rows.extend(items(&api).iter().map(|t| (Kind::Api, t)));
    let body = html! {
        h1 { (title) }
        (nav)
        @if rows.is_empty() {
            p { "No tokens yet." }
        } @else {
            div.scroll {
                table {
                    caption.visually-hidden { "Tokens" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "For" }
                        th scope="col" { "Description" } th scope="col" { "Created" } th scope="col" { "Expires" }
                        th scope="col" { "Last used" } th scope="col" { "State" }
                        @if allowed.update || allowed.delete { th scope="col" { "Actions" } }
                    } }
                    tbody { @for (kind, token) in &rows { (row(&signed, scope, *kind, token, &allowed, now)) } }
                }
            }
        }
        @if allowed.create {
            (create_forms(&signed, scope).await)
        }
    };
    html::ok(&title, &signed, body)
}

/// Both kinds of token of a scope, redacted.
async fn read_tokens(signed: &Signed, scope: &Scope) -> Result<(Value, Value), ApiError> {
    let accounts = signed
        .client
        .get(&format!("{}/service-account-tokens", scope.api()))
        .await?;
    let api = signed
        .client
        .get(&format!("{}/api-tokens", scope.api()))
        .await?;
    Ok((accounts, api))
}

/// One token's row.
fn row(
    signed: &Signed,
    scope: &Scope,
    kind: Kind,
    token: &Value,
    allowed: &Allowed,
    now: i64,
) -> Markup {
    let name = name_of(token);
    let disabled = kargo_api::token_lifecycle::is_disabled(annotation(token, DISABLED_ANNOTATION));
    let expiry = kargo_api::expiry::describe(annotation(token, EXPIRES_AT_ANNOTATION), now);
    let state = if disabled {
        "disabled"
    } else if expiry == "expired" || expiry == "invalid" {
        "expired"
    } else {
        "active"
    };
    let base = format!("{}/tokens/{}/{name}", scope.ui(), kind.segment());
    html! {
        tr {
            th scope="row" { (name) }
            td data-label="Kind" { (kind.label()) }
            td data-label="For" { (annotation(token, ACCOUNT_ANNOTATION).unwrap_or("—")) }
            td data-label="Description" { (annotation(token, DESCRIPTION_ANNOTATION).unwrap_or("")) }
            td data-label="Created" { (html::when(token["metadata"]["creationTimestamp"].as_str())) }
            td data-label="Expires" { (expiry) }
            td data-label="Last used" { (kargo_api::last_used::describe(annotation(token, LAST_USED_AT_ANNOTATION), now)) }
            td data-label="State" { span class=(format!("state {state}")) { (state) } }
            @if allowed.update || allowed.delete {
                td.actions {
                    @if allowed.update {
                        @if disabled {
                            (html::button_form(signed, &format!("{base}/enable"), &format!("Enable {name}"), None))
                        } @else {
                            (html::button_form(signed, &format!("{base}/disable"), &format!("Disable {name}"), None))
                        }
                        (html::button_form(signed, &format!("{base}/rotate"), &format!("Rotate {name}"),
                            Some(&format!("Rotate {name}? Its current value stops working now."))))
                    }
                    @if allowed.delete {
                        (html::button_form(signed, &format!("{base}/delete"), &format!("Delete {name}"),
                            Some(&format!("Delete token {name}? It stops working at once."))))
                    }
                }
            }
        }
    }
}

/// The two creation forms: a ServiceAccount's token, a role's API token.
async fn create_forms(signed: &Signed, scope: &Scope) -> Markup {
    let accounts: Vec<String> = signed
        .client
        .get(&format!("{}/service-accounts", scope.api()))
        .await
        .map(|list| items(&list).iter().map(|a| name_of(a).to_owned()).collect())
        .unwrap_or_default();
    let roles: Vec<String> = signed
        .client
        .get(&format!("{}/roles", scope.api()))
        .await
        .map(|list| {
            list.as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|r| name_of(r).to_owned())
                .collect()
        })
        .unwrap_or_default();
    let action = format!("{}/tokens", scope.ui());
    html! {
        div.cards {
            @for (kind, owners, owner_label) in [(Kind::Account, &accounts, "ServiceAccount"), (Kind::Api, &roles, "Role")] {
                @let id = kind.segment();
                form.card method="post" action=(action) {
                    h2 { "New " (kind.label()) }
                    (html::csrf(signed))
                    input type="hidden" name="kind" value=(id);
                    label for=(format!("{id}-owner")) { (owner_label) }
                    select id=(format!("{id}-owner")) name="owner" required {
                        @for owner in owners { option value=(owner) { (owner) } }
                    }
                    label for=(format!("{id}-name")) { "Token name" }
                    input id=(format!("{id}-name")) name="name" required;
                    label for=(format!("{id}-expires")) { "Expires in (e.g. 90d, 12h; empty: the server's default)" }
                    input id=(format!("{id}-expires")) name="expires";
                    label for=(format!("{id}-description")) { "Description" }
                    input id=(format!("{id}-description")) name="description";
                    button type="submit" { "Create " (kind.label()) }
                }
            }
        }
    }
}

/// `POST {scope}/tokens`: creates a token and shows its value once.
pub(crate) async fn create(names: Names, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let scope = &names.scope;
    let back = format!("{}/tokens", scope.ui());
    let (kind, owner, name) = (
        Kind::from_form(form.get("kind")),
        form.get("owner"),
        form.get("name"),
    );
    let Some(kind) = kind.filter(|_| is_name(owner) && is_name(name)) else {
        signed.flash(Flash::Failed(
            "Choose an owner and a valid token name.".to_owned(),
        ));
        return html::see_other(&back);
    };
    let path = match kind {
        Kind::Account => format!("{}/service-accounts/{owner}/tokens", scope.api()),
        Kind::Api => format!("{}/roles/{owner}/api-tokens", scope.api()),
    };
    let mut body = json!({"name": name});
    if let Some(expires) = form.optional("expires") {
        body["expiresIn"] = json!(expires);
    }
    if let Some(description) = form.optional("description") {
        body["description"] = json!(description);
    }
    match signed.client.post(&path, body).await {
        Ok(secret) => shown(
            &signed,
            scope,
            &secret,
            &format!("{} {name} created", kind.label()),
        ),
        Err(error) => failed(&signed, &error, &back),
    }
}

/// `POST {scope}/tokens/{kind}/{name}/{action}`: disable, enable, rotate or delete.
pub(crate) async fn act(names: Names, posted: Posted) -> Response {
    let signed = posted.signed;
    let scope = &names.scope;
    let back = format!("{}/tokens", scope.ui());
    let name = names.get("name");
    let Some(kind) = Kind::from_form(names.get("kind")) else {
        return super::not_found().await;
    };
    let path = format!("{}/{}/{name}", scope.api(), kind.collection());
    let client = &signed.client;
    match names.get("action") {
        "disable" => after(
            &signed,
            client.post(&format!("{path}/disable"), Value::Null).await,
            format!("Token {name} disabled."),
            &back,
        ),
        "enable" => after(
            &signed,
            client.post(&format!("{path}/enable"), Value::Null).await,
            format!("Token {name} enabled."),
            &back,
        ),
        "delete" => after(
            &signed,
            client.send(http::Method::DELETE, &path, None).await,
            format!("Token {name} deleted."),
            &back,
        ),
        "rotate" => match client.post(&format!("{path}/rotate"), json!({})).await {
            Ok(secret) => shown(&signed, scope, &secret, &format!("Token {name} rotated")),
            Err(error) => failed(&signed, &error, &back),
        },
        _ => super::not_found().await,
    }
}

/// The page showing a new token value, once: the value with a copy button, the warning, and
/// a kubeconfig to download.
fn shown(signed: &Signed, scope: &Scope, secret: &Value, heading: &str) -> Response {
    let decode = |key: &str| {
        secret["data"][key]
            .as_str()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default()
    };
    let token = decode("token");
    let name = name_of(secret);
    let body = html! {
        h1 { (heading) }
        p.notice.warn role="status" { strong { "Copy this token now: you will not see it again." } }
        label for="token-value" { "Token" }
        textarea #token-value readonly rows="5" spellcheck="false" { (token) }
        p.row {
            button type="button" data-copy="token-value" hidden { "Copy token" }
            span #copy-status role="status" {}
        }
        form method="post" action="/ui/kubeconfig" {
            (html::csrf(signed))
            input type="hidden" name="token" value=(token);
            input type="hidden" name="ca" value=(secret["data"]["ca.crt"].as_str().unwrap_or(""));
            input type="hidden" name="namespace" value=(scope.namespace());
            input type="hidden" name="name" value=(name);
            button type="submit" { "Download kubeconfig" }
        }
        p { a href=(format!("{}/tokens", scope.ui())) { "Back to tokens" } }
    };
    html::ok(heading, signed, body)
}

/// The current Unix second.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

//! A scope's Kargo ServiceAccounts: the list, creation (in projects), and deletion after a
//! confirmation that lists the tokens going with the account.

use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{after, annotation, failed, items, name_of, unreadable};
use crate::extract::{Names, Posted, Signed, is_name};
use crate::html;
use crate::session::Flash;
use kargo_api::kargo::MANAGED_ANNOTATION;

/// `GET {scope}/accounts`.
pub(crate) async fn list(signed: Signed, names: Names) -> Response {
    let scope = &names.scope;
    let title = format!("{} · ServiceAccounts", scope.title());
    let nav = html::scope_nav(scope, "accounts");
    let accounts = match signed
        .client
        .get(&format!("{}/service-accounts", scope.api()))
        .await
    {
        Ok(list) => list,
        Err(error) => return unreadable(&signed, &title, nav, &error),
    };
    let ns = scope.namespace();
    let may_create =
        scope.editable() && signed.client.can("create", "", "serviceaccounts", ns).await;
    let may_delete =
        scope.editable() && signed.client.can("delete", "", "serviceaccounts", ns).await;
    let body = html! {
        h1 { (title) }
        (nav)
        @if items(&accounts).is_empty() {
            p { "No ServiceAccounts yet." }
        } @else {
            table {
                caption.visually-hidden { "ServiceAccounts" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Managed by Kargo" }
                    @if may_delete { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for account in items(&accounts) {
                        @let name = name_of(account);
                        @let managed = annotation(account, MANAGED_ANNOTATION) == Some("true");
                        tr {
                            td { a href=(format!("{}/tokens#for-{name}", scope.ui())) { (name) } }
                            td data-label="Created" { (html::when(account["metadata"]["creationTimestamp"].as_str())) }
                            td data-label="Managed by Kargo" { @if managed { "yes" } @else { "no" } }
                            @if may_delete {
                                td { @if managed {
                                    a.button href=(format!("{}/accounts/{name}/delete", scope.ui())) aria-label=(format!("Delete {name}")) { "Delete…" }
                                } }
                            }
                        }
                    }
                }
            }
        }
        @if may_create {
            form.card method="post" action=(format!("{}/accounts", scope.ui())) {
                h2 { "Create a ServiceAccount" }
                (html::csrf(&signed))
                label for="account-name" { "Name" }
                input #account-name name="name" required;
                button type="submit" { "Create ServiceAccount" }
            }
        }
    };
    html::ok(&title, &signed, body)
}

/// `POST {scope}/accounts`: creates a Kargo ServiceAccount.
pub(crate) async fn create(names: Names, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let back = format!("{}/accounts", names.scope.ui());
    let name = form.get("name");
    if !is_name(name) {
        signed.flash(Flash::Failed(format!("{name:?} is not a valid name.")));
        return html::see_other(&back);
    }
    let body = json!({"metadata": {"name": name}});
    let result = signed
        .client
        .post(&format!("{}/service-accounts", names.scope.api()), body)
        .await;
    after(
        &signed,
        result,
        format!("ServiceAccount {name} created."),
        &back,
    )
}

/// `GET {scope}/accounts/{name}/delete`: what deleting the account deletes, and the button.
pub(crate) async fn confirm_delete(signed: Signed, names: Names) -> Response {
    let scope = &names.scope;
    let name = names.get("name");
    let back = format!("{}/accounts", scope.ui());
    let path = format!(
        "{}/service-account-tokens?serviceAccount={name}",
        scope.api()
    );
    let tokens = match signed.client.get(&path).await {
        Ok(list) => list,
        Err(error) => return failed(&signed, &error, &back),
    };
    let tokens = items(&tokens);
    let title = format!("Delete ServiceAccount {name}?");
    let body = html! {
        h1 { (title) }
        @if tokens.is_empty() {
            p { "It has no tokens." }
        } @else {
            p { "Its " (tokens.len()) " token(s) stop working at once and are deleted with it:" }
            ul.tokens { @for token in tokens { li { code { (name_of(token)) } } } }
        }
        p { "It is also removed from every role it holds." }
        form method="post" action=(format!("{}/accounts/{name}/delete", scope.ui())) {
            (html::csrf(&signed))
            button.danger type="submit" { "Delete " (name) }
            " "
            a href=(back) { "Cancel" }
        }
    };
    html::ok(&title, &signed, body)
}

/// `POST {scope}/accounts/{name}/delete`.
pub(crate) async fn delete(names: Names, posted: Posted) -> Response {
    let signed = posted.signed;
    let name = names.get("name");
    let path = format!("{}/service-accounts/{name}", names.scope.api());
    let result = signed.client.send(http::Method::DELETE, &path, None).await;
    let back = format!("{}/accounts", names.scope.ui());
    after(
        &signed,
        result,
        format!("ServiceAccount {name} and its tokens deleted."),
        &back,
    )
}

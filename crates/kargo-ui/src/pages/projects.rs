//! The projects page: every project the user may list, and a form to create one for those who
//! may.

use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{after, items, name_of, unreadable};
use crate::extract::{Posted, Signed, is_name};
use crate::html;
use crate::session::Flash;

/// `GET /ui/`: the projects.
pub(crate) async fn list(signed: Signed) -> Response {
    let title = "Projects";
    let projects = match signed.client.get("/v1beta1/projects").await {
        Ok(list) => list,
        Err(error) => return unreadable(&signed, title, html! {}, &error),
    };
    let may_create = signed
        .client
        .can("create", "kargo.akuity.io", "projects", "")
        .await;
    let body = html! {
        h1 { (title) }
        @if items(&projects).is_empty() {
            p { "No projects yet." }
        } @else {
            table {
                caption.visually-hidden { "Projects" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Phase" } } }
                tbody {
                    @for project in items(&projects) {
                        @let name = name_of(project);
                        tr {
                            td { a href=(format!("/ui/projects/{name}/accounts")) { (name) } }
                            td data-label="Created" { (html::when(project["metadata"]["creationTimestamp"].as_str())) }
                            td data-label="Phase" { (project["status"]["phase"].as_str().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
        @if may_create {
            form.card method="post" action="/ui/projects" {
                h2 { "Create a project" }
                (html::csrf(&signed))
                label for="project-name" { "Name" }
                input #project-name name="name" required pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" aria-describedby="project-name-help";
                small #project-name-help { "Lowercase letters, digits and dashes." }
                button type="submit" { "Create project" }
            }
        }
    };
    html::ok(title, &signed, body)
}

/// `POST /ui/projects`: creates a project.
pub(crate) async fn create(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let name = form.get("name");
    if !is_name(name) {
        signed.flash(Flash::Failed(format!(
            "{name:?} is not a valid project name."
        )));
        return html::see_other("/ui/");
    }
    let body = json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project", "metadata": {"name": name}});
    let result = signed.client.post("/v1beta1/projects", body).await;
    after(&signed, result, format!("Project {name} created."), "/ui/")
}

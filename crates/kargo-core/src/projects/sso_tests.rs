//! People signed in with single sign-on (a [`UserInfo`] with claims, built by hand): the system
//! roles they are mapped to by the configured admin and viewer claims, and the projects they
//! create, in process on [`Fixture`].

use kargo_api::kargo::{CLAIMS_ANNOTATION, CREATE_ACTOR_ANNOTATION, SYSTEM_NAMESPACE};
use kargo_api::resources::{PROJECTS, SERVICEACCOUNTS};
use kargo_registry::Meta;
use serde_json::json;

use super::*;
use crate::Scope;
use crate::testing::Fixture;

fn person(username: &str, claims: &[(&str, &str)]) -> UserInfo {
    let mut user = UserInfo::new(username, ["system:authenticated"]);
    for (name, value) in claims {
        user.claims
            .entry((*name).to_owned())
            .or_default()
            .push((*value).to_owned());
    }
    user
}

fn pairs(claims: &[(&str, &str)]) -> Vec<(String, String)> {
    claims
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// Writes the system objects with these claims and waits until the auth view has seen them.
async fn bootstrap(fixture: &Fixture, claims: &SystemClaims) {
    bootstrap_system(fixture.kargo.registry(), claims)
        .await
        .expect("bootstrap");
    let newest = fixture
        .stored(&SERVICEACCOUNTS, SYSTEM_NAMESPACE, "kargo-viewer")
        .await
        .expect("kargo-viewer");
    let admin = fixture
        .stored(&SERVICEACCOUNTS, SYSTEM_NAMESPACE, "kargo-admin")
        .await
        .expect("kargo-admin");
    fixture.kargo.await_seen(&newest).await;
    fixture.kargo.await_seen(&admin).await;
}

async fn claims_of(fixture: &Fixture, namespace: &str, account: &str) -> Option<String> {
    fixture
        .stored(&SERVICEACCOUNTS, namespace, account)
        .await
        .expect("account")
        .annotation(CLAIMS_ANNOTATION)
        .map(str::to_owned)
}

async fn create_project(fixture: &Fixture, user: &UserInfo, name: &str) -> Result<Object> {
    fixture
        .kargo
        .create_project(user, json!({"metadata": {"name": name}}))
        .await
}

fn forbidden(result: Result<impl std::fmt::Debug>, message: &str) {
    let error = result.unwrap_err();
    assert_eq!(error.code(), 403);
    assert_eq!(error.to_string(), message);
}

#[tokio::test]
async fn the_configured_claims_map_people_to_the_system_admin_and_viewer() {
    let fixture = Fixture::new().await;
    let claims = SystemClaims {
        admins: pairs(&[("email", "boss@x.io"), ("groups", "admins")]),
        viewers: pairs(&[("groups", "auditors"), ("groups", "admins")]),
    };
    bootstrap(&fixture, &claims).await;
    assert_eq!(
        claims_of(&fixture, SYSTEM_NAMESPACE, "kargo-admin")
            .await
            .as_deref(),
        Some(r#"{"email":["boss@x.io"],"groups":["admins"]}"#)
    );
    assert_eq!(
        claims_of(&fixture, SYSTEM_NAMESPACE, "kargo-viewer")
            .await
            .as_deref(),
        Some(r#"{"groups":["admins","auditors"]}"#)
    );
    assert_eq!(
        claims_of(&fixture, SYSTEM_NAMESPACE, "kargo-user").await,
        None
    );

    let boss = person("boss@x.io", &[("email", "boss@x.io")]);
    let auditor = person("eve@x.io", &[("email", "eve@x.io"), ("groups", "auditors")]);
    create_project(&fixture, &boss, "p")
        .await
        .expect("the admin creates");
    forbidden(
        create_project(&fixture, &auditor, "q").await,
        r#"projects.kargo.akuity.io "q" is forbidden: create is not permitted"#,
    );
    fixture
        .kargo
        .list_projects(&auditor)
        .await
        .expect("the viewer lists");
    fixture
        .kargo
        .get_project(&auditor, "p")
        .await
        .expect("the viewer reads");
    forbidden(
        fixture
            .kargo
            .list_projects(&person("nobody@x.io", &[("email", "nobody@x.io")]))
            .await,
        "projects.kargo.akuity.io is forbidden: list is not permitted",
    );

    // The configuration is authoritative: a claim taken out of it stops mapping at the next start.
    bootstrap(&fixture, &SystemClaims::default()).await;
    assert_eq!(
        claims_of(&fixture, SYSTEM_NAMESPACE, "kargo-admin").await,
        None
    );
    forbidden(
        create_project(&fixture, &boss, "r").await,
        r#"projects.kargo.akuity.io "r" is forbidden: create is not permitted"#,
    );
}

#[tokio::test]
async fn a_project_created_by_a_person_is_administered_by_them() {
    let fixture = Fixture::new().await;
    let creators = SystemClaims {
        admins: pairs(&[("email", "a@b.c"), ("sub", "42")]),
        viewers: Vec::new(),
    };
    bootstrap(&fixture, &creators).await;
    let alice = person("a@b.c", &[("sub", "1234"), ("email", "a@b.c")]);
    let bob = person("bob", &[("sub", "42")]);

    // A create actor sent by the client is the server's to say.
    let p = fixture
        .kargo
        .create_project(
            &alice,
            json!({"metadata": {"name": "p", "annotations": {CREATE_ACTOR_ANNOTATION: "email:mallory@x.io", "keep": "me"}}}),
        )
        .await
        .expect("create p");
    assert_eq!(p.annotation(CREATE_ACTOR_ANNOTATION), Some("email:a@b.c"));
    assert_eq!(p.annotation("keep"), Some("me"));
    for role in ["kargo-admin", "kargo-viewer", "kargo-promoter"] {
        assert_eq!(
            claims_of(&fixture, "p", role).await.as_deref(),
            Some(r#"{"email":["a@b.c"]}"#),
            "{role}"
        );
    }
    let q = create_project(&fixture, &bob, "q").await.expect("create q");
    assert_eq!(q.annotation(CREATE_ACTOR_ANNOTATION), Some("sub:42"));
    assert_eq!(
        claims_of(&fixture, "q", "kargo-admin").await.as_deref(),
        Some(r#"{"sub":["42"]}"#)
    );
    let admin = fixture.admin.clone();
    let r = fixture
        .kargo
        .create_project(
            &admin,
            json!({"metadata": {"name": "r", "annotations": {CREATE_ACTOR_ANNOTATION: "email:a@b.c"}}}),
        )
        .await
        .expect("create r");
    assert_eq!(r.annotation(CREATE_ACTOR_ANNOTATION), None);
    assert_eq!(
        claims_of(&fixture, "r", "kargo-admin").await.as_deref(),
        Some("{}")
    );

    // Without the system mapping, each creator administers their own project only.
    bootstrap(&fixture, &SystemClaims::default()).await;
    let sa = |name: &str| serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    fixture
        .kargo
        .create_service_account(&alice, &Scope::Project("p".into()), sa("ci"))
        .await
        .expect("alice administers p");
    forbidden(
        fixture
            .kargo
            .create_service_account(&alice, &Scope::Project("q".into()), sa("ci"))
            .await,
        r#"serviceaccounts "ci" is forbidden: create is not permitted"#,
    );
    fixture
        .kargo
        .create_service_account(&bob, &Scope::Project("q".into()), sa("ci"))
        .await
        .expect("bob administers q");
    forbidden(
        fixture.kargo.get_project(&alice, "q").await,
        r#"projects.kargo.akuity.io "q" is forbidden: get is not permitted"#,
    );
    assert!(fixture.stored(&PROJECTS, "", "p").await.is_some());
}

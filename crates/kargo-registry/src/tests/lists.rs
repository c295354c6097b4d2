//! Lists: label and field selectors, `limit` and `continue` paging at one revision.

use kargo_api::resources::SERVICEACCOUNTS;

use super::{account, assert_status, labelled_accounts, setup};
use crate::testing::TestRegistry;
use crate::{ListOptions, Meta};

/// Creates ServiceAccounts `a`..`e` in `p`; `a`, `c` and `e` are labelled `team=x`.
async fn five_accounts() -> TestRegistry {
    let test = setup().await;
    let teams = [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y"), ("e", "x")];
    labelled_accounts(&test, &teams).await;
    test
}

fn names(list: &crate::ObjectList) -> Vec<&str> {
    list.items.iter().map(|o| o.name()).collect()
}

/// Lists the ServiceAccounts of `p`.
async fn list(test: &TestRegistry, options: &ListOptions) -> crate::ObjectList {
    test.registry
        .list(&SERVICEACCOUNTS, Some("p"), options)
        .await
        .unwrap()
}

/// Pages of `limit` objects.
fn limited(limit: usize) -> ListOptions {
    ListOptions {
        limit,
        ..ListOptions::default()
    }
}

fn selectors(label: Option<&str>, field: Option<&str>) -> ListOptions {
    ListOptions::with_selectors(&SERVICEACCOUNTS, label, field).unwrap()
}

#[tokio::test]
async fn label_and_field_selectors_filter_a_list() {
    let test = five_accounts().await;
    for (label, field, expected) in [
        (Some("team=x"), None, &["a", "c", "e"][..]),
        (
            Some("team in (x,y),team!=x"),
            Some("metadata.name!=b"),
            &["d"],
        ),
    ] {
        let found = list(&test, &selectors(label, field)).await;
        assert_eq!(names(&found), expected, "{label:?} {field:?}");
    }
    let list = test
        .registry
        .list(
            &SERVICEACCOUNTS,
            None,
            &selectors(None, Some("metadata.namespace=p")),
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 5);
    let json = list.to_json(&SERVICEACCOUNTS);
    assert_eq!(json["kind"], "ServiceAccountList");
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(
        json["metadata"]["resourceVersion"],
        list.resource_version.to_string()
    );
}

#[tokio::test]
async fn unsupported_or_malformed_selectors_are_400s() {
    let err =
        ListOptions::with_selectors(&SERVICEACCOUNTS, None, Some("spec.foo=bar")).unwrap_err();
    assert_status(
        &err,
        (400, "BadRequest"),
        "field label not supported: spec.foo",
    );
    let err = ListOptions::with_selectors(&SERVICEACCOUNTS, Some("a in (b"), None).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.starts_with("unable to parse requirement: "),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn limit_and_continue_page_through_one_snapshot() {
    let test = five_accounts().await;
    let mut options = limited(2);
    let first = list(&test, &options).await;
    assert_eq!(names(&first), ["a", "b"]);
    let token = first.continue_token.clone().expect("a continue token");

    // Written after the first page: not in the pages of this list.
    account(&test, "zz").await;

    options.continue_token = Some(token);
    let second = list(&test, &options).await;
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!(second.resource_version, first.resource_version);
    options.continue_token = second.continue_token.clone();
    let last = list(&test, &options).await;
    assert_eq!(names(&last), ["e"]);
    assert_eq!(last.continue_token, None);
    assert_eq!(last.resource_version, first.resource_version);

    // A fresh list sees the new object.
    let all = list(&test, &ListOptions::default()).await;
    assert_eq!(names(&all), ["a", "b", "c", "d", "e", "zz"]);
}

#[tokio::test]
async fn a_limit_counts_matching_objects_only() {
    let test = five_accounts().await;
    let mut options = selectors(Some("team=x"), None);
    options.limit = 2;
    let first = list(&test, &options).await;
    assert_eq!(names(&first), ["a", "c"]);
    options.continue_token = first.continue_token.clone();
    assert!(options.continue_token.is_some());
    let second = list(&test, &options).await;
    assert_eq!(names(&second), ["e"]);
    assert_eq!(second.continue_token, None);
}

#[tokio::test]
async fn a_resource_version_with_continue_is_a_400() {
    let test = five_accounts().await;
    let mut options = limited(1);
    options.continue_token = list(&test, &options).await.continue_token;
    options.resource_version = Some("3".into());
    let err = test
        .registry
        .list(&SERVICEACCOUNTS, Some("p"), &options)
        .await
        .unwrap_err();
    assert_status(
        &err,
        (400, "BadRequest"),
        "specifying resource version is not allowed when using continue",
    );
}

//! Tests of the RBAC engine through its public API: rule matching, binding and subject
//! semantics, resolution errors, incremental index updates, effective rules and escalation.
//! Each group goes through one `check` helper; expectations are Kubernetes' exact texts.

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(verbs),
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        ..PolicyRule::default()
    }
}

fn named(rule: PolicyRule, names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: Some(strings(names)),
        ..rule
    }
}

fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(verbs),
        non_resource_urls: Some(strings(urls)),
        ..PolicyRule::default()
    }
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
        ..ObjectMeta::default()
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta("", name),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(namespace, name),
        rules: Some(rules),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn crb(name: &str, cluster_role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta("", name),
        role_ref: role_ref("ClusterRole", cluster_role),
        subjects: Some(subjects),
    }
}

/// A RoleBinding; `role` is `Role/<name>` or `ClusterRole/<name>`.
fn rb(namespace: &str, name: &str, role: &str, subjects: Vec<Subject>) -> RoleBinding {
    let (kind, role_name) = role.split_once('/').unwrap_or(("Role", role));
    RoleBinding {
        metadata: meta(namespace, name),
        role_ref: role_ref(kind, role_name),
        subjects: Some(subjects),
    }
}

fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
    Subject {
        api_group: (kind != "ServiceAccount").then(|| RBAC_GROUP.to_owned()),
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

fn user_subject(name: &str) -> Subject {
    subject("User", name, None)
}

fn group_subject(name: &str) -> Subject {
    subject("Group", name, None)
}

fn sa_subject(namespace: Option<&str>, name: &str) -> Subject {
    subject("ServiceAccount", name, namespace)
}

/// Any RBAC object, to build policies from lists.
enum Obj {
    Role(Role),
    ClusterRole(ClusterRole),
    RoleBinding(RoleBinding),
    ClusterRoleBinding(ClusterRoleBinding),
}

impl From<Role> for Obj {
    fn from(o: Role) -> Self {
        Obj::Role(o)
    }
}
impl From<ClusterRole> for Obj {
    fn from(o: ClusterRole) -> Self {
        Obj::ClusterRole(o)
    }
}
impl From<RoleBinding> for Obj {
    fn from(o: RoleBinding) -> Self {
        Obj::RoleBinding(o)
    }
}
impl From<ClusterRoleBinding> for Obj {
    fn from(o: ClusterRoleBinding) -> Self {
        Obj::ClusterRoleBinding(o)
    }
}

fn apply(policy: &mut Policy, obj: &Obj) {
    match obj {
        Obj::Role(o) => policy.apply_role(o),
        Obj::ClusterRole(o) => policy.apply_cluster_role(o),
        Obj::RoleBinding(o) => policy.apply_role_binding(o),
        Obj::ClusterRoleBinding(o) => policy.apply_cluster_role_binding(o),
    }
}

fn policy(objects: Vec<Obj>) -> Policy {
    let mut policy = Policy::new();
    for obj in &objects {
        apply(&mut policy, obj);
    }
    policy
}

fn alice() -> UserInfo {
    UserInfo::new("alice", ["system:authenticated"])
}

fn sa(namespace: &str, name: &str) -> UserInfo {
    UserInfo::service_account(namespace, name, "uid")
}

fn res(verb: &str, namespace: &str, group: &str, resource: &str) -> ResourceAttributes {
    Attributes::resource(verb, namespace, group, resource)
}

/// `allow: <reason>`, `no opinion`, or `no opinion: <reason> <errors>`.
fn render(decision: &Decision) -> String {
    match decision {
        Decision::Allow { reason } => format!("allow: {reason}"),
        Decision::NoOpinion { reason, errors } if errors.is_empty() && reason.is_empty() => {
            "no opinion".to_owned()
        }
        Decision::NoOpinion { reason, errors } => format!("no opinion: {reason} {errors:?}"),
    }
}

fn check(policy: &Policy, user: &UserInfo, attrs: impl Into<Attributes>, expected: &str) {
    let attrs = attrs.into();
    let got = render(&policy.authorize(user, &attrs));
    assert_eq!(got, expected, "user {} attrs {attrs:?}", user.username);
}

// ---------------------------------------------------------------------------------------------
// Rule matching

const BY_RULE: &str =
    r#"allow: RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "alice""#;

/// One ClusterRole with `rules` bound to alice cluster-wide; is `attrs` allowed?
fn check_rule(rules: Vec<PolicyRule>, attrs: impl Into<Attributes>, allowed: bool) {
    let policy = policy(vec![
        cluster_role("r", rules).into(),
        crb("b", "r", vec![user_subject("alice")]).into(),
    ]);
    check(
        &policy,
        &alice(),
        attrs,
        if allowed { BY_RULE } else { "no opinion" },
    );
}

#[test]
fn verbs_match_exactly_or_by_star() {
    check_rule(
        vec![rule(&["get"], &[""], &["pods"])],
        res("get", "p", "", "pods"),
        true,
    );
    check_rule(
        vec![rule(&["get"], &[""], &["pods"])],
        res("list", "p", "", "pods"),
        false,
    );
    check_rule(
        vec![rule(&["get", "list"], &[""], &["pods"])],
        res("list", "p", "", "pods"),
        true,
    );
    check_rule(
        vec![rule(&["*"], &[""], &["pods"])],
        res("deletecollection", "p", "", "pods"),
        true,
    );
    check_rule(
        vec![rule(&["Get"], &[""], &["pods"])],
        res("get", "p", "", "pods"),
        false,
    );
}

#[test]
fn api_groups_match_exactly_or_by_star_and_empty_is_core() {
    check_rule(
        vec![rule(&["get"], &[""], &["pods"])],
        res("get", "p", "apps", "pods"),
        false,
    );
    check_rule(
        vec![rule(&["get"], &["apps"], &["deployments"])],
        res("get", "p", "apps", "deployments"),
        true,
    );
    check_rule(
        vec![rule(&["get"], &["apps"], &["deployments"])],
        res("get", "p", "", "deployments"),
        false,
    );
    check_rule(
        vec![rule(&["get"], &["*"], &["deployments"])],
        res("get", "p", "apps", "deployments"),
        true,
    );
    check_rule(
        vec![rule(&["get"], &[], &["pods"])],
        res("get", "p", "", "pods"),
        false,
    );
}

#[test]
fn resources_match_with_subresource_rules() {
    let pods_log = || res("get", "p", "", "pods").with_subresource("log");
    check_rule(vec![rule(&["get"], &[""], &["*"])], pods_log(), true);
    check_rule(
        vec![rule(&["get"], &[""], &["*"])],
        res("get", "p", "", "secrets"),
        true,
    );
    check_rule(vec![rule(&["get"], &[""], &["pods"])], pods_log(), false);
    check_rule(vec![rule(&["get"], &[""], &["pods/log"])], pods_log(), true);
    check_rule(
        vec![rule(&["get"], &[""], &["pods/log"])],
        res("get", "p", "", "pods"),
        false,
    );
    check_rule(vec![rule(&["get"], &[""], &["*/log"])], pods_log(), true);
    check_rule(
        vec![rule(&["get"], &[""], &["*/log"])],
        res("get", "p", "", "nodes").with_subresource("log"),
        true,
    );
    check_rule(
        vec![rule(&["get"], &[""], &["*/log"])],
        res("get", "p", "", "pods"),
        false,
    );
    check_rule(
        vec![rule(&["get"], &[""], &["*/log"])],
        res("get", "p", "", "pods").with_subresource("exec"),
        false,
    );
    check_rule(vec![rule(&["get"], &[""], &["pods/*"])], pods_log(), false);
    check_rule(
        vec![rule(&["get"], &[""], &["pod"])],
        res("get", "p", "", "pods"),
        false,
    );
    check_rule(
        vec![rule(&["create"], &[""], &["serviceaccounts/token"])],
        res("create", "p", "", "serviceaccounts")
            .with_name("sa")
            .with_subresource("token"),
        true,
    );
}

#[test]
fn resource_names_restrict_to_named_requests() {
    let only_x = || vec![named(rule(&["*"], &[""], &["secrets"]), &["x"])];
    check_rule(
        only_x(),
        res("get", "p", "", "secrets").with_name("x"),
        true,
    );
    check_rule(
        only_x(),
        res("delete", "p", "", "secrets").with_name("x"),
        true,
    );
    check_rule(
        only_x(),
        res("get", "p", "", "secrets").with_name("y"),
        false,
    );
    check_rule(only_x(), res("list", "p", "", "secrets"), false);
    check_rule(only_x(), res("watch", "p", "", "secrets"), false);
    check_rule(only_x(), res("create", "p", "", "secrets"), false);
    check_rule(
        vec![rule(&["get"], &[""], &["secrets"])],
        res("get", "p", "", "secrets").with_name("y"),
        true,
    );
}

#[test]
fn non_resource_urls_match_exactly_by_star_or_by_trailing_star_prefix() {
    let get = |path: &str| Attributes::non_resource("get", path);
    check_rule(vec![urls(&["get"], &["/healthz"])], get("/healthz"), true);
    check_rule(
        vec![urls(&["get"], &["/healthz"])],
        get("/healthz/etcd"),
        false,
    );
    check_rule(
        vec![urls(&["get"], &["/healthz"])],
        Attributes::non_resource("post", "/healthz"),
        false,
    );
    check_rule(vec![urls(&["get"], &["/apis/*"])], get("/apis/x"), true);
    check_rule(vec![urls(&["get"], &["/apis/*"])], get("/apis/"), true);
    check_rule(vec![urls(&["get"], &["/apis/*"])], get("/apis"), false);
    check_rule(vec![urls(&["get"], &["/ap*"])], get("/apis"), true);
    check_rule(vec![urls(&["get"], &["*"])], get("/anything/at/all"), true);
    check_rule(
        vec![urls(&["*"], &["*"])],
        Attributes::non_resource("delete", "/x"),
        true,
    );
}

#[test]
fn resource_rules_and_non_resource_rules_do_not_mix() {
    check_rule(
        vec![rule(&["get"], &["*"], &["*"])],
        Attributes::non_resource("get", "/healthz"),
        false,
    );
    check_rule(
        vec![urls(&["get"], &["*"])],
        res("get", "", "", "namespaces"),
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Bindings and subjects

fn pod_reader() -> Vec<PolicyRule> {
    vec![rule(&["get", "list"], &[""], &["pods"])]
}

#[test]
fn role_binding_to_cluster_role_applies_only_in_its_namespace() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        rb("a", "b", "ClusterRole/reader", vec![user_subject("alice")]).into(),
    ]);
    let allowed =
        r#"allow: RBAC: allowed by RoleBinding "b/a" of ClusterRole "reader" to User "alice""#;
    check(&policy, &alice(), res("list", "a", "", "pods"), allowed);
    check(
        &policy,
        &alice(),
        res("list", "other", "", "pods"),
        "no opinion",
    );
    check(&policy, &alice(), res("list", "", "", "pods"), "no opinion");
}

#[test]
fn role_binding_to_role_uses_the_role_of_its_own_namespace() {
    let policy = policy(vec![
        role("a", "reader", pod_reader()).into(),
        role("c", "writer", vec![rule(&["*"], &["*"], &["*"])]).into(),
        rb("a", "b", "Role/reader", vec![user_subject("alice")]).into(),
        rb("a", "w", "Role/writer", vec![user_subject("alice")]).into(),
    ]);
    check(
        &policy,
        &alice(),
        res("get", "a", "", "pods").with_name("x"),
        r#"allow: RBAC: allowed by RoleBinding "b/a" of Role "reader" to User "alice""#,
    );
    check(
        &policy,
        &alice(),
        res("delete", "a", "", "pods").with_name("x"),
        r#"no opinion: RBAC: role.rbac.authorization.k8s.io "writer" not found ["role.rbac.authorization.k8s.io \"writer\" not found"]"#,
    );
}

#[test]
fn service_account_subject_without_namespace_defaults_to_the_role_binding_namespace() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        rb("p", "b", "ClusterRole/reader", vec![sa_subject(None, "sa")]).into(),
    ]);
    check(
        &policy,
        &sa("p", "sa"),
        res("list", "p", "", "pods"),
        r#"allow: RBAC: allowed by RoleBinding "b/p" of ClusterRole "reader" to ServiceAccount "sa/p""#,
    );
    check(
        &policy,
        &sa("q", "sa"),
        res("list", "p", "", "pods"),
        "no opinion",
    );
    check(
        &policy,
        &sa("p", "other"),
        res("list", "p", "", "pods"),
        "no opinion",
    );
}

#[test]
fn service_account_subject_with_namespace_names_that_namespace() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        rb(
            "p",
            "b",
            "ClusterRole/reader",
            vec![sa_subject(Some("q"), "sa")],
        )
        .into(),
    ]);
    check(
        &policy,
        &sa("q", "sa"),
        res("list", "p", "", "pods"),
        r#"allow: RBAC: allowed by RoleBinding "b/p" of ClusterRole "reader" to ServiceAccount "sa/q""#,
    );
    check(
        &policy,
        &sa("p", "sa"),
        res("list", "p", "", "pods"),
        "no opinion",
    );
    check(
        &policy,
        &sa("q", "sa"),
        res("list", "q", "", "pods"),
        "no opinion",
    );
}

#[test]
fn cluster_role_binding_service_account_subject_needs_a_namespace() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        crb(
            "no-ns",
            "reader",
            vec![sa_subject(None, "sa"), sa_subject(Some(""), "sa")],
        )
        .into(),
    ]);
    check(
        &policy,
        &sa("p", "sa"),
        res("list", "p", "", "pods"),
        "no opinion",
    );
    let policy = policy_with(
        policy,
        vec![crb("with-ns", "reader", vec![sa_subject(Some("p"), "sa")]).into()],
    );
    check(
        &policy,
        &sa("p", "sa"),
        res("list", "x", "", "pods"),
        r#"allow: RBAC: allowed by ClusterRoleBinding "with-ns" of ClusterRole "reader" to ServiceAccount "sa/p""#,
    );
}

fn policy_with(mut policy: Policy, objects: Vec<Obj>) -> Policy {
    for obj in &objects {
        apply(&mut policy, obj);
    }
    policy
}

#[test]
fn group_subjects_match_service_account_groups() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        cluster_role("viewer", vec![rule(&["get"], &[""], &["configmaps"])]).into(),
        rb(
            "p",
            "all-sas-of-p",
            "ClusterRole/reader",
            vec![group_subject("system:serviceaccounts:p")],
        )
        .into(),
        crb(
            "everyone",
            "viewer",
            vec![group_subject("system:authenticated")],
        )
        .into(),
    ]);
    check(
        &policy,
        &sa("p", "any"),
        res("list", "p", "", "pods"),
        r#"allow: RBAC: allowed by RoleBinding "all-sas-of-p/p" of ClusterRole "reader" to Group "system:serviceaccounts:p""#,
    );
    check(
        &policy,
        &sa("q", "any"),
        res("list", "p", "", "pods"),
        "no opinion",
    );
    check(
        &policy,
        &sa("q", "any"),
        res("get", "z", "", "configmaps").with_name("c"),
        r#"allow: RBAC: allowed by ClusterRoleBinding "everyone" of ClusterRole "viewer" to Group "system:authenticated""#,
    );
    check(
        &policy,
        &UserInfo::anonymous(),
        res("get", "z", "", "configmaps").with_name("c"),
        "no opinion",
    );
}

#[test]
fn unknown_subject_kinds_and_user_name_mismatches_never_match() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        crb(
            "b",
            "reader",
            vec![
                subject("Robot", "alice", None),
                user_subject("Alice"),
                group_subject("alice"),
            ],
        )
        .into(),
    ]);
    check(
        &policy,
        &alice(),
        res("list", "p", "", "pods"),
        "no opinion",
    );
}

#[test]
fn allow_reason_names_the_first_subject_of_the_binding_that_applies() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        crb(
            "b",
            "reader",
            vec![
                user_subject("bob"),
                group_subject("system:authenticated"),
                user_subject("alice"),
            ],
        )
        .into(),
    ]);
    check(
        &policy,
        &alice(),
        res("list", "p", "", "pods"),
        r#"allow: RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "reader" to Group "system:authenticated""#,
    );
}

#[test]
fn cluster_role_bindings_are_visited_before_role_bindings_and_each_in_name_order() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        rb(
            "p",
            "a-local",
            "ClusterRole/reader",
            vec![user_subject("alice")],
        )
        .into(),
        crb("z-global", "reader", vec![user_subject("alice")]).into(),
        crb(
            "m-global",
            "reader",
            vec![group_subject("system:authenticated")],
        )
        .into(),
    ]);
    check(
        &policy,
        &alice(),
        res("list", "p", "", "pods"),
        r#"allow: RBAC: allowed by ClusterRoleBinding "m-global" of ClusterRole "reader" to Group "system:authenticated""#,
    );
}

#[test]
fn system_masters_are_allowed_without_any_binding() {
    let policy = Policy::new();
    let master = UserInfo::new("root", ["system:masters"]);
    check(
        &policy,
        &master,
        res("delete", "p", "", "secrets").with_name("s"),
        "allow: ",
    );
    check(
        &policy,
        &master,
        Attributes::non_resource("get", "/metrics"),
        "allow: ",
    );
}

// ---------------------------------------------------------------------------------------------
// Resolution errors

#[test]
fn missing_roles_of_applicable_bindings_are_collected_in_visit_order() {
    let policy = policy(vec![
        crb("a", "gone", vec![user_subject("alice")]).into(),
        crb(
            "b",
            "also-gone",
            vec![group_subject("system:authenticated")],
        )
        .into(),
        crb("c", "not-mine", vec![user_subject("bob")]).into(),
        rb("p", "d", "Role/missing", vec![user_subject("alice")]).into(),
    ]);
    check(
        &policy,
        &alice(),
        res("list", "p", "", "pods"),
        concat!(
            r#"no opinion: RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, "#,
            r#"clusterrole.rbac.authorization.k8s.io "also-gone" not found, role.rbac.authorization.k8s.io "missing" not found] "#,
            r#"["clusterrole.rbac.authorization.k8s.io \"gone\" not found", "clusterrole.rbac.authorization.k8s.io \"also-gone\" not found", "role.rbac.authorization.k8s.io \"missing\" not found"]"#,
        ),
    );
    check(
        &policy,
        &alice(),
        res("list", "", "", "namespaces"),
        concat!(
            r#"no opinion: RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, "#,
            r#"clusterrole.rbac.authorization.k8s.io "also-gone" not found] "#,
            r#"["clusterrole.rbac.authorization.k8s.io \"gone\" not found", "clusterrole.rbac.authorization.k8s.io \"also-gone\" not found"]"#,
        ),
    );
    check(
        &policy,
        &UserInfo::new("bob", Vec::<String>::new()),
        res("list", "", "", "namespaces"),
        concat!(
            r#"no opinion: RBAC: clusterrole.rbac.authorization.k8s.io "not-mine" not found "#,
            r#"["clusterrole.rbac.authorization.k8s.io \"not-mine\" not found"]"#,
        ),
    );
}

#[test]
fn errors_do_not_prevent_an_allow_from_another_binding() {
    let policy = policy(vec![
        cluster_role("reader", pod_reader()).into(),
        crb("a", "gone", vec![user_subject("alice")]).into(),
        crb("b", "reader", vec![user_subject("alice")]).into(),
    ]);
    check(
        &policy,
        &alice(),
        res("list", "p", "", "pods"),
        r#"allow: RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "reader" to User "alice""#,
    );
}

#[test]
fn unsupported_role_ref_kind_is_an_error() {
    let policy = policy(vec![
        rb("p", "b", "Policy/x", vec![user_subject("alice")]).into(),
    ]);
    check(
        &policy,
        &alice(),
        res("list", "p", "", "pods"),
        r#"no opinion: RBAC: unsupported role reference kind: "Policy" ["unsupported role reference kind: \"Policy\""]"#,
    );
}

#[test]
fn forbidden_message_carries_the_resolution_errors_of_the_decision() {
    let policy = policy(vec![
        crb("a", "x", vec![group_subject("system:serviceaccounts")]).into(),
    ]);
    let user = sa("p", "sa");
    let attrs: Attributes = res("list", "p", "", "pods").into();
    let decision = policy.authorize(&user, &attrs);
    assert_eq!(
        forbidden_message(&user, &attrs, decision.errors()),
        r#"pods is forbidden: User "system:serviceaccount:p:sa" cannot list resource "pods" in API group "" in the namespace "p": RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#
    );
}

// ---------------------------------------------------------------------------------------------
// Incremental index updates

#[test]
fn incremental_apply_and_remove_keep_decisions_right() {
    let mut policy = Policy::new();
    let list_pods = || res("list", "p", "", "pods");
    let user = sa("p", "sa");
    let by_rb =
        r#"allow: RBAC: allowed by RoleBinding "b/p" of Role "reader" to ServiceAccount "sa/p""#;
    let missing = r#"no opinion: RBAC: role.rbac.authorization.k8s.io "reader" not found ["role.rbac.authorization.k8s.io \"reader\" not found"]"#;

    check(&policy, &user, list_pods(), "no opinion");
    policy.apply_role_binding(&rb("p", "b", "Role/reader", vec![sa_subject(None, "sa")]));
    check(&policy, &user, list_pods(), missing);
    policy.apply_role(&role("p", "reader", pod_reader()));
    check(&policy, &user, list_pods(), by_rb);

    // Updating the role's rules takes effect.
    policy.apply_role(&role("p", "reader", vec![rule(&["get"], &[""], &["pods"])]));
    check(&policy, &user, list_pods(), "no opinion");
    policy.apply_role(&role("p", "reader", pod_reader()));
    check(&policy, &user, list_pods(), by_rb);

    // Replacing the binding's subjects drops the old index entries.
    policy.apply_role_binding(&rb(
        "p",
        "b",
        "Role/reader",
        vec![sa_subject(None, "other")],
    ));
    check(&policy, &user, list_pods(), "no opinion");
    check(
        &policy,
        &sa("p", "other"),
        list_pods(),
        r#"allow: RBAC: allowed by RoleBinding "b/p" of Role "reader" to ServiceAccount "other/p""#,
    );
    assert_eq!(policy.candidate_bindings(&user, "p"), Vec::<String>::new());
    policy.apply_role_binding(&rb(
        "p",
        "b",
        "Role/reader",
        vec![sa_subject(None, "other"), sa_subject(None, "sa")],
    ));
    check(&policy, &user, list_pods(), by_rb);

    // Removing the role makes the binding an error; removing the binding forgets it.
    policy.remove_role("p", "reader");
    check(&policy, &user, list_pods(), missing);
    policy.remove_role_binding("p", "b");
    check(&policy, &user, list_pods(), "no opinion");
    assert_eq!(policy.namespace_count(), 0);

    // Cluster scope: same story.
    policy.apply_cluster_role_binding(&crb(
        "cb",
        "admin",
        vec![group_subject("system:serviceaccounts:p")],
    ));
    policy.apply_cluster_role(&cluster_role("admin", vec![rule(&["*"], &["*"], &["*"])]));
    check(
        &policy,
        &user,
        list_pods(),
        r#"allow: RBAC: allowed by ClusterRoleBinding "cb" of ClusterRole "admin" to Group "system:serviceaccounts:p""#,
    );
    policy.remove_cluster_role("admin");
    check(
        &policy,
        &user,
        list_pods(),
        r#"no opinion: RBAC: clusterrole.rbac.authorization.k8s.io "admin" not found ["clusterrole.rbac.authorization.k8s.io \"admin\" not found"]"#,
    );
    policy.remove_cluster_role_binding("cb");
    check(&policy, &user, list_pods(), "no opinion");

    // Removing what is not there is harmless.
    policy.remove_role("nowhere", "x");
    policy.remove_role_binding("nowhere", "x");
    policy.remove_cluster_role("x");
    policy.remove_cluster_role_binding("x");
    check(&policy, &user, list_pods(), "no opinion");
}

#[test]
fn index_offers_only_bindings_that_name_the_user_or_its_groups() {
    let mut policy = Policy::new();
    policy.apply_cluster_role(&cluster_role("reader", pod_reader()));
    for i in 0..2_000 {
        policy.apply_cluster_role_binding(&crb(
            &format!("other-{i}"),
            "reader",
            vec![user_subject(&format!("u{i}"))],
        ));
        policy.apply_role_binding(&rb(
            "p",
            &format!("rb-{i}"),
            "ClusterRole/reader",
            vec![sa_subject(None, &format!("sa{i}"))],
        ));
    }
    policy.apply_cluster_role_binding(&crb(
        "mine",
        "reader",
        vec![group_subject("system:serviceaccounts")],
    ));
    policy.apply_role_binding(&rb(
        "p",
        "local",
        "ClusterRole/reader",
        vec![sa_subject(Some("p"), "me")],
    ));
    policy.apply_role_binding(&rb(
        "q",
        "elsewhere",
        "ClusterRole/reader",
        vec![sa_subject(Some("p"), "me")],
    ));

    let me = sa("p", "me");
    assert_eq!(
        policy.candidate_bindings(&me, "p"),
        ["ClusterRoleBinding/mine", "RoleBinding/p/local"]
    );
    assert_eq!(
        policy.candidate_bindings(&me, "q"),
        ["ClusterRoleBinding/mine", "RoleBinding/q/elsewhere"]
    );
    assert_eq!(
        policy.candidate_bindings(&me, ""),
        ["ClusterRoleBinding/mine"]
    );
    assert_eq!(
        policy.candidate_bindings(&sa("p", "sa7"), "p"),
        ["ClusterRoleBinding/mine", "RoleBinding/p/rb-7"]
    );
    assert_eq!(
        policy.candidate_bindings(&UserInfo::new("u7", Vec::<String>::new()), "p"),
        ["ClusterRoleBinding/other-7"]
    );
}

// ---------------------------------------------------------------------------------------------
// Effective rules

#[test]
fn rules_for_lists_cluster_wide_rules_then_the_namespace_rules_and_errors() {
    let policy = policy(vec![
        cluster_role(
            "basic",
            vec![rule(
                &["create"],
                &["authorization.k8s.io"],
                &["selfsubjectaccessreviews"],
            )],
        )
        .into(),
        cluster_role("reader", pod_reader()).into(),
        crb(
            "basic",
            "basic",
            vec![group_subject("system:authenticated")],
        )
        .into(),
        crb(
            "broken",
            "gone",
            vec![group_subject("system:authenticated")],
        )
        .into(),
        rb("p", "b", "ClusterRole/reader", vec![sa_subject(None, "sa")]).into(),
    ]);
    let user = sa("p", "sa");
    let basic = rule(
        &["create"],
        &["authorization.k8s.io"],
        &["selfsubjectaccessreviews"],
    );
    let not_found = r#"clusterrole.rbac.authorization.k8s.io "gone" not found"#.to_owned();

    let (rules, errors) = policy.rules_for(&user, "p");
    assert_eq!(rules, [vec![basic.clone()], pod_reader()].concat());
    assert_eq!(errors, std::slice::from_ref(&not_found));

    let (rules, errors) = policy.rules_for(&user, "");
    assert_eq!(rules, std::slice::from_ref(&basic));
    assert_eq!(errors, std::slice::from_ref(&not_found));

    let (rules, _) = policy.rules_for(&user, "q");
    assert_eq!(rules, [basic]);
}

// ---------------------------------------------------------------------------------------------
// Escalation: covers

/// Does `owner` cover `requested`? `missing` is the printed lines, empty if covered.
fn check_covers(owner: Vec<PolicyRule>, requested: Vec<PolicyRule>, missing: &[&str]) {
    let got: Vec<String> = match covers(&owner, &requested) {
        Ok(()) => Vec::new(),
        Err(rules) => rules.iter().map(compact_string).collect(),
    };
    assert_eq!(got, missing, "owner {owner:?} requested {requested:?}");
}

#[test]
fn covers_accepts_equal_and_wider_rules() {
    check_covers(pod_reader(), pod_reader(), &[]);
    check_covers(pod_reader(), vec![rule(&["get"], &[""], &["pods"])], &[]);
    check_covers(
        vec![rule(&["*"], &["*"], &["*"])],
        vec![rule(&["escalate"], &["x"], &["y/z"])],
        &[],
    );
    check_covers(
        vec![rule(&["get"], &[""], &["*/status"])],
        vec![rule(&["get"], &[""], &["pods/status"])],
        &[],
    );
    check_covers(
        pod_reader(),
        vec![named(rule(&["get"], &[""], &["pods"]), &["a", "b"])],
        &[],
    );
    check_covers(
        vec![named(rule(&["get"], &[""], &["pods"]), &["a", "b"])],
        vec![named(rule(&["get"], &[""], &["pods"]), &["a"])],
        &[],
    );
    check_covers(
        vec![urls(&["get"], &["/apis/*"])],
        vec![urls(&["get"], &["/apis/x", "/apis/"])],
        &[],
    );
    check_covers(vec![urls(&["*"], &["*"])], vec![urls(&["*"], &["*"])], &[]);
    check_covers(Vec::new(), Vec::new(), &[]);
}

#[test]
fn covers_reports_missing_atoms_merged_on_verbs_and_sorted() {
    check_covers(
        vec![rule(&["get"], &[""], &["pods"])],
        vec![rule(
            &["get", "list", "delete"],
            &[""],
            &["secrets", "pods"],
        )],
        &[
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["list" "delete"]}"#,
            r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "delete"]}"#,
        ],
    );
    check_covers(
        pod_reader(),
        vec![
            rule(&["get"], &["", "apps"], &["pods"]),
            urls(&["*"], &["*"]),
        ],
        &[
            r#"{APIGroups:["apps"], Resources:["pods"], Verbs:["get"]}"#,
            r#"{NonResourceURLs:["*"], Verbs:["*"]}"#,
        ],
    );
}

#[test]
fn covers_keeps_named_and_subresource_atoms_apart() {
    check_covers(
        vec![named(rule(&["get"], &[""], &["pods"]), &["a"])],
        vec![
            named(rule(&["get", "delete"], &[""], &["pods"]), &["a", "b"]),
            rule(&["get"], &[""], &["pods"]),
        ],
        &[
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["delete"]}"#,
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["b"], Verbs:["delete"]}"#,
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["b"], Verbs:["get"]}"#,
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}"#,
        ],
    );
    check_covers(
        vec![rule(&["get"], &[""], &["pods"])],
        vec![rule(&["get"], &[""], &["pods/log"])],
        &[r#"{APIGroups:[""], Resources:["pods/log"], Verbs:["get"]}"#],
    );
    check_covers(
        vec![urls(&["get"], &["/healthz"])],
        vec![urls(&["get"], &["/healthz/etcd", "*"])],
        &[
            r#"{NonResourceURLs:["*"], Verbs:["get"]}"#,
            r#"{NonResourceURLs:["/healthz/etcd"], Verbs:["get"]}"#,
        ],
    );
}

#[test]
fn covers_needs_star_to_cover_star() {
    check_covers(
        vec![rule(&["get", "list"], &[""], &["pods"])],
        vec![rule(&["*"], &[""], &["pods"])],
        &[r#"{APIGroups:[""], Resources:["pods"], Verbs:["*"]}"#],
    );
    check_covers(
        vec![named(rule(&["*"], &["*"], &["*"]), &["a"])],
        vec![rule(&["get"], &[""], &["pods"])],
        &[r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}"#],
    );
}

// ---------------------------------------------------------------------------------------------
// Escalation: checks on writes

fn project_policy() -> Policy {
    policy(vec![
        role("p", "viewer", vec![rule(&["get"], &[""], &["pods"])]).into(),
        rb("p", "viewer", "Role/viewer", vec![user_subject("u")]).into(),
        cluster_role(
            "editor",
            vec![
                rule(&["get", "delete"], &[""], &["pods"]),
                urls(&["*"], &["*"]),
            ],
        )
        .into(),
        cluster_role(
            "binder",
            vec![named(
                rule(&["bind"], &[RBAC_GROUP], &["clusterroles"]),
                &["editor"],
            )],
        )
        .into(),
        cluster_role(
            "escalator",
            vec![named(
                rule(&["escalate"], &[RBAC_GROUP], &["roles"]),
                &["r"],
            )],
        )
        .into(),
        rb(
            "p",
            "binder",
            "ClusterRole/binder",
            vec![user_subject("binder")],
        )
        .into(),
        rb(
            "p",
            "escalator",
            "ClusterRole/escalator",
            vec![user_subject("escalator")],
        )
        .into(),
    ])
}

fn u() -> UserInfo {
    UserInfo::new("u", ["g1", "g2"])
}

/// The outcome of a write check as a line: `ok` or the error message.
fn outcome<E: std::fmt::Display>(result: Result<(), E>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn check_write(got: String, expected: &str) {
    assert_eq!(got, expected);
}

#[test]
fn binding_a_role_with_more_permissions_is_forbidden_with_kubernetes_message() {
    let policy = project_policy();
    let binding = rb(
        "p",
        "b",
        "ClusterRole/editor",
        vec![user_subject("someone")],
    );
    check_write(
        outcome(policy.check_role_binding_write(&u(), &binding)),
        concat!(
            r#"rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "u" (groups=["g1" "g2"]) is attempting to grant RBAC permissions not currently held:"#,
            "\n",
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
            "\n",
            r#"{NonResourceURLs:["*"], Verbs:["*"]}"#,
        ),
    );
    let Err(BindingWriteError::Forbidden(forbidden)) =
        policy.check_role_binding_write(&u(), &binding)
    else {
        panic!("expected Forbidden");
    };
    assert_eq!(
        forbidden.details,
        ForbiddenDetails {
            name: "b".into(),
            group: RBAC_GROUP.into(),
            kind: "rolebindings".into()
        }
    );
}

#[test]
fn binding_a_role_whose_permissions_are_held_is_allowed() {
    let policy = project_policy();
    let binding = rb("p", "b", "Role/viewer", vec![user_subject("someone")]);
    check_write(
        outcome(policy.check_role_binding_write(&u(), &binding)),
        "ok",
    );
    // The same role bound cluster-wide is not held cluster-wide.
    let binding = crb("cb", "binder", vec![user_subject("someone")]);
    check_write(
        outcome(policy.check_cluster_role_binding_write(&u(), &binding)),
        concat!(
            r#"clusterrolebindings.rbac.authorization.k8s.io "cb" is forbidden: user "u" (groups=["g1" "g2"]) is attempting to grant RBAC permissions not currently held:"#,
            "\n",
            r#"{APIGroups:["rbac.authorization.k8s.io"], Resources:["clusterroles"], ResourceNames:["editor"], Verbs:["bind"]}"#,
        ),
    );
}

#[test]
fn bind_verb_and_system_masters_skip_the_escalation_check() {
    let policy = project_policy();
    let editor_binding = rb(
        "p",
        "b",
        "ClusterRole/editor",
        vec![user_subject("someone")],
    );
    let binder = UserInfo::new("binder", Vec::<String>::new());
    check_write(
        outcome(policy.check_role_binding_write(&binder, &editor_binding)),
        "ok",
    );
    let elsewhere = rb(
        "q",
        "b",
        "ClusterRole/editor",
        vec![user_subject("someone")],
    );
    assert!(
        policy
            .check_role_binding_write(&binder, &elsewhere)
            .is_err()
    );
    let master = UserInfo::new("root", ["system:masters"]);
    check_write(
        outcome(policy.check_role_binding_write(&master, &elsewhere)),
        "ok",
    );
    check_write(
        outcome(
            policy
                .check_cluster_role_binding_write(&master, &crb("x", "does-not-exist", Vec::new())),
        ),
        "ok",
    );
}

#[test]
fn binding_a_missing_role_is_not_found_in_storage_wording() {
    let policy = project_policy();
    let cases = [
        (
            rb("p", "b", "ClusterRole/nope", Vec::new()),
            r#"clusterroles.rbac.authorization.k8s.io "nope" not found"#,
        ),
        (
            rb("p", "b", "Role/nope", Vec::new()),
            r#"roles.rbac.authorization.k8s.io "nope" not found"#,
        ),
        (
            rb("p", "b", "Thing/nope", Vec::new()),
            r#"unsupported role reference kind: "Thing""#,
        ),
    ];
    for (binding, expected) in cases {
        let got = policy.check_role_binding_write(&u(), &binding);
        assert!(matches!(got, Err(BindingWriteError::RoleRef(_))), "{got:?}");
        check_write(outcome(got), expected);
    }
}

#[test]
fn escalation_message_appends_resolution_errors_of_the_users_own_rules() {
    let policy = policy_with(
        project_policy(),
        vec![crb("broken", "gone", vec![group_subject("g2")]).into()],
    );
    let binding = rb(
        "p",
        "b",
        "ClusterRole/editor",
        vec![user_subject("someone")],
    );
    check_write(
        outcome(policy.check_role_binding_write(&u(), &binding)),
        concat!(
            r#"rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "u" (groups=["g1" "g2"]) is attempting to grant RBAC permissions not currently held:"#,
            "\n",
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
            "\n",
            r#"{NonResourceURLs:["*"], Verbs:["*"]}; resolution errors: [clusterroles.rbac.authorization.k8s.io "gone" not found]"#,
        ),
    );
}

#[test]
fn role_writes_need_held_rules_or_escalate_on_the_named_role() {
    let policy = project_policy();
    let r = role("p", "r", vec![rule(&["get", "list"], &[""], &["pods"])]);
    let expected_denied = concat!(
        r#"roles.rbac.authorization.k8s.io "r" is forbidden: user "u" (groups=["g1" "g2"]) is attempting to grant RBAC permissions not currently held:"#,
        "\n",
        r#"{APIGroups:[""], Resources:["pods"], Verbs:["list"]}"#,
    );
    check_write(
        outcome(policy.check_role_write(&u(), &r, None)),
        expected_denied,
    );
    check_write(
        outcome(policy.check_role_write(
            &u(),
            &role("p", "r", vec![rule(&["get"], &[""], &["pods"])]),
            None,
        )),
        "ok",
    );

    // `escalate` limited to the name `r` only counts on update: a create request has no name.
    let escalator = UserInfo::new("escalator", Vec::<String>::new());
    check_write(
        outcome(policy.check_role_write(&escalator, &r, Some(&r))),
        "ok",
    );
    assert!(policy.check_role_write(&escalator, &r, None).is_err());
}

#[test]
fn aggregating_cluster_roles_need_full_authority() {
    let holder = policy(vec![
        cluster_role(
            "reader",
            vec![rule(&["get", "list", "watch"], &["*"], &["*"])],
        )
        .into(),
        crb("b", "reader", vec![user_subject("u")]).into(),
    ]);
    let mut aggregating = cluster_role("agg", vec![rule(&["get"], &[""], &["pods"])]);
    aggregating.aggregation_rule = Some(AggregationRule {
        cluster_role_selectors: Some(vec![LabelSelector::default()]),
    });
    check_write(
        outcome(holder.check_cluster_role_write(&u(), &aggregating, None)),
        r#"clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin privileges to use the aggregationRule"#,
    );
    // Removing the aggregationRule is checked as well.
    let plain = cluster_role("agg", vec![rule(&["get"], &[""], &["pods"])]);
    assert!(
        holder
            .check_cluster_role_write(&u(), &plain, Some(&aggregating))
            .is_err()
    );
    check_write(
        outcome(holder.check_cluster_role_write(&u(), &plain, Some(&plain))),
        "ok",
    );

    let admin = policy_with(
        holder,
        vec![
            cluster_role("admin", full_authority()).into(),
            crb("admin", "admin", vec![user_subject("u")]).into(),
        ],
    );
    check_write(
        outcome(admin.check_cluster_role_write(&u(), &aggregating, None)),
        "ok",
    );
}

#[test]
fn escalation_denied_forbidden_has_rbac_group_details() {
    let denied = EscalationDenied {
        username: "u".into(),
        groups: Vec::new(),
        missing: vec![rule(&["get"], &[""], &["pods"])],
        resolution_errors: vec!["e1".into(), "e2".into()],
    };
    let forbidden = denied.forbidden("roles", "r");
    assert_eq!(
        forbidden.message,
        concat!(
            r#"roles.rbac.authorization.k8s.io "r" is forbidden: user "u" (groups=[]) is attempting to grant RBAC permissions not currently held:"#,
            "\n",
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}; resolution errors: [[e1, e2]]"#,
        )
    );
    assert_eq!(
        forbidden.details,
        ForbiddenDetails {
            name: "r".into(),
            group: RBAC_GROUP.into(),
            kind: "roles".into()
        }
    );
}

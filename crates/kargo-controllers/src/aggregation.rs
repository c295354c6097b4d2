//! The ClusterRole aggregation controller (kube-controller-manager's
//! `clusterrole-aggregation`): a ClusterRole with an `aggregationRule` gets, as its `rules`, the
//! rules of every other ClusterRole one of its `clusterRoleSelectors` matches, in the order of
//! their names, each rule once. So a ClusterRole labelled
//! `rbac.authorization.k8s.io/aggregate-to-view: "true"` reaches `view` (and through `view`'s
//! own label, `edit` and `admin`) as soon as it is written, and leaves them when it is deleted or
//! relabelled.
//!
//! Any change to any ClusterRole recomputes every aggregated one (there are few ClusterRoles;
//! the queue folds a burst of changes into one pass). An aggregated role that is itself
//! aggregated (`view` into `edit`) settles in a second pass, triggered by its own update.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kargo_api::resources::CLUSTERROLES;
use kargo_api::selector::LabelSelector;
use kargo_store::{Event, KeyValue};
use tokio_util::sync::CancellationToken;

use kargo_registry::informer::{Handler, Head, Item};
use kargo_registry::queue::{self, Action, Queue};
use kargo_registry::status::{Result, Status};
use kargo_registry::{ListOptions, Registry, Target, WriteOptions};

/// The one piece of work: bring every aggregated ClusterRole up to date.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Aggregate;

/// The controller's informer handler.
pub struct AggregationController {
    queue: Queue<Aggregate>,
    prefix: String,
}

impl AggregationController {
    /// Starts the controller's worker; returns its informer handler.
    pub fn start(registry: Registry, shutdown: CancellationToken) -> AggregationController {
        let queue = queue::start(shutdown, move |_: Aggregate| {
            let registry = registry.clone();
            async move {
                match aggregate_all(&registry).await {
                    Ok(()) => Action::Done,
                    Err(status) => {
                        tracing::debug!(error = %status, "aggregating ClusterRoles failed; retrying");
                        Action::Requeue(Duration::from_secs(1))
                    }
                }
            }
        });
        AggregationController {
            queue,
            prefix: CLUSTERROLES.key_prefix(),
        }
    }

    fn observe(&self, kv: &KeyValue) {
        if kv.key.starts_with(&self.prefix) {
            self.queue.add(Aggregate);
        }
    }
}

impl Handler for AggregationController {
    fn resync_page(&mut self, items: &[Item<'_>]) {
        for item in items {
            self.observe(item.kv);
        }
    }

    fn event(&mut self, event: &Event, _head: Option<&Head>) {
        self.observe(&event.kv);
    }
}

/// Recomputes every ClusterRole with an aggregation rule, writing those whose rules changed.
async fn aggregate_all(registry: &Registry) -> Result<()> {
    let list = registry
        .list(&CLUSTERROLES, None, &ListOptions::default())
        .await?;
    let roles: Vec<ClusterRole> = list
        .items
        .into_iter()
        .filter_map(|item| serde_json::from_value(item).ok())
        .collect();
    for role in &roles {
        let Some(selectors) = selectors(role) else {
            continue;
        };
        let rules = aggregated_rules(role, &selectors, &roles);
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            continue;
        }
        let name = role.metadata.name.as_deref().unwrap_or_default();
        write_rules(registry, name, rules).await?;
    }
    Ok(())
}

/// The label selectors of a role's aggregation rule; `None` without one (or with a selector that
/// does not parse, which the role's validation refuses anyway).
fn selectors(role: &ClusterRole) -> Option<Vec<LabelSelector>> {
    let rule = role.aggregation_rule.as_ref()?;
    rule.cluster_role_selectors
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|s| LabelSelector::from_metav1(Some(s)).ok())
        .collect()
}

/// The rules of the roles (other than `role`) any selector matches, by name, each rule once.
fn aggregated_rules(
    role: &ClusterRole,
    selectors: &[LabelSelector],
    roles: &[ClusterRole],
) -> Vec<PolicyRule> {
    let no_labels = BTreeMap::new();
    let mut matching: Vec<&ClusterRole> = roles
        .iter()
        .filter(|other| other.metadata.name != role.metadata.name)
        .filter(|other| {
            let labels = other.metadata.labels.as_ref().unwrap_or(&no_labels);
            selectors.iter().any(|s| s.matches(labels))
        })
        .collect();
    matching.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for rule in matching
        .iter()
        .flat_map(|r| r.rules.as_deref().unwrap_or_default())
    {
        if !rules.contains(rule) {
            rules.push(rule.clone());
        }
    }
    rules
}

/// Replaces the rules of the ClusterRole `name` (gone: nothing to do).
async fn write_rules(registry: &Registry, name: &str, rules: Vec<PolicyRule>) -> Result<()> {
    let rules = serde_json::to_value(&rules).map_err(|e| Status::internal(e.to_string()))?;
    let written = registry
        .update_with(
            Target::new(&CLUSTERROLES, None, name),
            &WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                next["rules"] = rules.clone();
                Ok(next)
            },
        )
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector as MetaSelector, ObjectMeta,
    };

    use super::*;

    fn rule(verb: &str, resource: &str) -> PolicyRule {
        PolicyRule {
            verbs: vec![verb.to_owned()],
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![resource.to_owned()]),
            ..PolicyRule::default()
        }
    }

    fn role(name: &str, label: Option<&str>, rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: label.map(|l| BTreeMap::from([(l.to_owned(), "true".to_owned())])),
                ..ObjectMeta::default()
            },
            rules: Some(rules),
            aggregation_rule: None,
        }
    }

    fn aggregating(name: &str, label: &str) -> ClusterRole {
        ClusterRole {
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: Some(vec![MetaSelector {
                    match_labels: Some(BTreeMap::from([(label.to_owned(), "true".to_owned())])),
                    ..MetaSelector::default()
                }]),
            }),
            ..role(name, None, Vec::new())
        }
    }

    #[test]
    fn the_rules_of_the_matching_roles_by_name_each_once() {
        let view = aggregating("view", "to-view");
        let roles = vec![
            role("zeta", Some("to-view"), vec![rule("get", "secrets")]),
            role("alpha", Some("to-view"), vec![rule("get", "configmaps")]),
            role("beta", Some("to-view"), vec![rule("get", "configmaps")]),
            role("other", Some("to-edit"), vec![rule("delete", "secrets")]),
            view.clone(),
        ];
        let chosen = selectors(&view).unwrap();
        assert_eq!(
            aggregated_rules(&view, &chosen, &roles),
            [rule("get", "configmaps"), rule("get", "secrets")]
        );
        assert!(selectors(&roles[0]).is_none(), "no aggregation rule");
    }
}

//! `kargo grant` and `kargo revoke`.

use kargo_api::kargo::{
    GrantRequest, ResourceDetails, ServiceAccountReference, ServiceAccountReferences, UserClaims,
};

use super::{Context, Error, project};
use crate::api;
use crate::cli::{RoleChange, RoleChangeArgs};
use crate::output::{self, Kind};

/// Grant or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `kargo grant`
    Grant,
    /// `kargo revoke`
    Revoke,
}

/// The body of a grant or revocation.
pub fn request(project: &str, role: &str, change: RoleChange) -> GrantRequest {
    let mut request = GrantRequest {
        role: role.to_owned(),
        ..GrantRequest::default()
    };
    match change {
        RoleChange::ServiceAccounts(names) => {
            request.service_accounts = Some(ServiceAccountReferences {
                service_accounts: names
                    .into_iter()
                    .map(|name| ServiceAccountReference {
                        name,
                        namespace: project.to_owned(),
                    })
                    .collect(),
            });
        }
        RoleChange::Claims(claims) => request.user_claims = Some(UserClaims { claims }),
        RoleChange::Permission {
            resource_type,
            resource_name,
            verbs,
        } => {
            request.resource_details = Some(ResourceDetails {
                resource_type,
                resource_name: resource_name.unwrap_or_default(),
                verbs,
            });
        }
    }
    request
}

/// Runs `kargo grant` or `kargo revoke`: checks the flag rules, sends one request, prints
/// `role.rbac.kargo.akuity.io/ROLE updated` (or the role with `-o`).
pub fn change(
    ctx: &mut Context<'_>,
    args: &RoleChangeArgs,
    direction: Direction,
) -> Result<(), Error> {
    let (role, change) = args.validate()?;
    let format = args.output.for_object()?;
    let config = ctx.config()?;
    let project = project(&config, &args.project)?;
    let client = ctx.client(&config, &args.client)?;
    let body = request(&project, &role, change);
    let call = match direction {
        Direction::Grant => api::grant(&project, &body),
        Direction::Revoke => api::revoke(&project, &body),
    };
    let updated = client.send(&call)?;
    let text = output::render_changed(Kind::Role, &updated, &role, "updated", format)?;
    ctx.print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kargo_api::kargo::Claim;
    use serde_json::json;

    fn check(change: RoleChange, expected: serde_json::Value) {
        let body = serde_json::to_value(request("my-project", "developer", change)).unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn each_change_fills_exactly_one_part_of_the_body() {
        check(
            RoleChange::ServiceAccounts(vec!["my-sa".into()]),
            json!({"role": "developer", "serviceAccounts": {"serviceAccounts": [{"name": "my-sa", "namespace": "my-project"}]}}),
        );
        check(
            RoleChange::Claims(vec![Claim {
                name: "email".into(),
                values: vec!["a@b.c".into()],
            }]),
            json!({"role": "developer", "userClaims": {"claims": [{"name": "email", "values": ["a@b.c"]}]}}),
        );
        check(
            RoleChange::Permission {
                resource_type: "stages".into(),
                resource_name: Some("dev".into()),
                verbs: vec!["promote".into()],
            },
            json!({"role": "developer", "resourceDetails": {"resourceType": "stages", "resourceName": "dev", "verbs": ["promote"]}}),
        );
        check(
            RoleChange::Permission {
                resource_type: "stages".into(),
                resource_name: None,
                verbs: vec!["get".into()],
            },
            json!({"role": "developer", "resourceDetails": {"resourceType": "stages", "verbs": ["get"]}}),
        );
    }
}

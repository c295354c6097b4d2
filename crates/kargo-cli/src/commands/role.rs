//! `kargo grant` and `kargo revoke`.

use kargo_api::kargo::{
    Claim, GrantRequest, ResourceDetails, ServiceAccountReference, ServiceAccountReferences,
    UserClaims,
};

use serde_json::Value;

use super::{Context, Error, about, project};
use crate::api::{self, Scope};
use crate::cli::{RoleChange, RoleChangeArgs, UsageError};
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
    let config = ctx.logged_in_config()?;
    let project = project(&config, &args.project)?;
    let client = ctx.client(&config, &args.client)?;
    if direction == Direction::Revoke {
        let current = || {
            client
                .send(&api::get_role(&Scope::Project(project.clone()), &role))
                .map_err(|e| about(Kind::Role, &role, e))
        };
        match &change {
            RoleChange::ServiceAccounts(names) => {
                check_members(&current()?, &project, &role, names)?;
            }
            RoleChange::Claims(claims) => check_claims(&current()?, &project, &role, claims)?,
            RoleChange::Permission { .. } => {}
        }
    }
    let body = request(&project, &role, change);
    let call = match direction {
        Direction::Grant => api::grant(&project, &body),
        Direction::Revoke => api::revoke(&project, &body),
    };
    let updated = client
        .send(&call)
        .map_err(|e| about(Kind::Role, &role, e))?;
    let text = output::render_changed(Kind::Role, &updated, &role, "updated", format)?;
    ctx.print(&text)
}

/// Revoking a role from an account that does not have it is a mistake (a misspelt name, the
/// wrong role), not a success: the server takes it as a no-op, the CLI says so and exits 1
/// before anything is written.
fn check_members(
    role: &Value,
    project: &str,
    name: &str,
    accounts: &[String],
) -> Result<(), Error> {
    let members: Vec<&str> = role["serviceAccounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|sa| sa["namespace"].as_str() == Some(project))
        .filter_map(|sa| sa["name"].as_str())
        .collect();
    let missing: Vec<String> = accounts
        .iter()
        .filter(|a| !members.contains(&a.as_str()))
        .map(|a| format!("{a:?}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let (noun, verb) = match missing.len() {
        1 => ("ServiceAccount", "does"),
        _ => ("ServiceAccounts", "do"),
    };
    Err(UsageError(format!(
        "{noun} {} in project {project:?} {verb} not have role {name:?}: nothing to revoke (nothing was changed)",
        missing.join(", ")
    ))
    .into())
}

/// As [`check_members`], for revoking a role from users with claims: each `NAME=VALUE` must be
/// among the role's claims.
fn check_claims(role: &Value, project: &str, name: &str, claims: &[Claim]) -> Result<(), Error> {
    let has = |claim: &str, value: &str| {
        role["claims"].as_array().into_iter().flatten().any(|c| {
            c["name"].as_str() == Some(claim)
                && c["values"]
                    .as_array()
                    .is_some_and(|values| values.iter().any(|v| v.as_str() == Some(value)))
        })
    };
    let missing: Vec<String> = claims
        .iter()
        .flat_map(|c| c.values.iter().map(move |v| (c.name.as_str(), v.as_str())))
        .filter(|(claim, value)| !has(claim, value))
        .map(|(claim, value)| format!("{claim}={value}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let noun = if missing.len() == 1 {
        "claim"
    } else {
        "claims"
    };
    Err(UsageError(format!(
        "role {name:?} in project {project:?} is not granted to the {noun} {}: nothing to revoke (nothing was changed)",
        missing.join(", ")
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(change: RoleChange, expected: serde_json::Value) {
        let body = serde_json::to_value(request("my-project", "developer", change)).unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn revoking_from_a_non_member_names_every_account_that_lacks_the_role() {
        let role = json!({"serviceAccounts": [
            {"name": "dev", "namespace": "p"},
            {"name": "a", "namespace": "p"},
            {"name": "b", "namespace": "other"},
        ]});
        let check = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            check_members(&role, "p", "dev", &names).map_err(|e| e.to_string())
        };
        assert!(check(&["a"]).is_ok());
        assert_eq!(
            check(&["a", "b"]).unwrap_err(),
            "ServiceAccount \"b\" in project \"p\" does not have role \"dev\": nothing to revoke (nothing was changed)"
        );
        assert_eq!(
            check(&["x", "y"]).unwrap_err(),
            "ServiceAccounts \"x\", \"y\" in project \"p\" do not have role \"dev\": nothing to revoke (nothing was changed)"
        );
    }

    #[test]
    fn revoking_an_absent_claim_names_it() {
        let role = json!({"claims": [{"name": "email", "values": ["a@b.c"]}]});
        let claim = |name: &str, values: &[&str]| Claim {
            name: name.into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        };
        let check =
            |claims: &[Claim]| check_claims(&role, "p", "dev", claims).map_err(|e| e.to_string());
        assert!(check(&[claim("email", &["a@b.c"])]).is_ok());
        assert_eq!(
            check(&[claim("email", &["a@b.c", "x@y.z"])]).unwrap_err(),
            "role \"dev\" in project \"p\" is not granted to the claim email=x@y.z: nothing to revoke (nothing was changed)"
        );
        assert_eq!(
            check(&[claim("groups", &["a"]), claim("sub", &["b"])]).unwrap_err(),
            "role \"dev\" in project \"p\" is not granted to the claims groups=a, sub=b: nothing to revoke (nothing was changed)"
        );
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

//! Organization roles and their permissions, in the scope grammar.
//!
//! | role | may |
//! |---|---|
//! | owner, admin | everything in the organization (admins cannot touch owners) |
//! | developer | read everything but production keys; trigger and manage runs; manage errors; read and rotate development keys; read staging and preview keys |
//! | viewer | read runs, tasks, errors and the organization's structure; no keys |

use serde::{Deserialize, Serialize};

use crate::env::EnvType;
use crate::scope::{Ability, Resource};

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "developer" => Some(Role::Developer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Types everyone in the organization may read (never `all`, which would include keys).
const VIEWER_READS: &[&str] = &[
    "runs",
    "tasks",
    "tags",
    "batch",
    "errors",
    "environments",
    "project",
    "organization",
    "members",
    "queues",
    "deployments",
];
const DEVELOPER_EXTRA_READS: &[&str] = &[
    "waitpoints",
    "sessions",
    "query",
    "prompts",
    "inputStreams",
    "branches",
];
const DEVELOPER_WRITES: &[&str] = &[
    "write:runs",
    "write:tasks",
    "trigger:tasks",
    "batchTrigger:tasks",
    "write:errors",
    "write:inputStreams",
    "write:waitpoints",
    "write:branches",
];

/// The key resource of an environment tier: `apiKeys:<TYPE>` (upstream's `{type: apiKeys, envType}`).
pub fn api_key_resource(env_type: EnvType) -> Resource {
    Resource::with_id("apiKeys", env_type.as_str())
}

/// The built-in permissions of a role.
pub fn role_ability(role: Role) -> Ability {
    let mut scopes: Vec<String> = VIEWER_READS.iter().map(|t| format!("read:{t}")).collect();
    match role {
        Role::Owner | Role::Admin => return Ability::from_scopes(&["admin".to_string()]),
        Role::Viewer => {}
        Role::Developer => {
            scopes.extend(DEVELOPER_EXTRA_READS.iter().map(|t| format!("read:{t}")));
            scopes.extend(DEVELOPER_WRITES.iter().map(|s| s.to_string()));
            for t in [EnvType::Development, EnvType::Staging, EnvType::Preview] {
                scopes.push(format!("read:apiKeys:{}", t.as_str()));
            }
            scopes.push(format!("write:apiKeys:{}", EnvType::Development.as_str()));
        }
    }
    Ability::from_scopes(&scopes)
}

/// Whether `actor` may give a member whose role is `target_current` the role `target_new`
/// (`None`: remove them). Owners may do anything; admins may not touch owners nor make one;
/// developers and viewers manage no one.
pub fn can_manage_member(actor: Role, target_current: Role, target_new: Option<Role>) -> bool {
    match actor {
        Role::Owner => true,
        Role::Admin => target_current != Role::Owner && target_new != Some(Role::Owner),
        Role::Developer | Role::Viewer => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_matrix() {
        use EnvType::*;
        // (role, env, read key, write key)
        let keys = [
            (Role::Owner, [true; 4], [true; 4]),
            (Role::Admin, [true; 4], [true; 4]),
            (
                Role::Developer,
                [true, true, false, true],
                [true, false, false, false],
            ),
            (Role::Viewer, [false; 4], [false; 4]),
        ];
        for (role, reads, writes) in keys {
            let a = role_ability(role);
            for (i, env) in [Development, Staging, Production, Preview]
                .into_iter()
                .enumerate()
            {
                assert_eq!(
                    a.can("read", &[api_key_resource(env)]),
                    reads[i],
                    "{role:?} read {env:?}"
                );
                assert_eq!(
                    a.can("write", &[api_key_resource(env)]),
                    writes[i],
                    "{role:?} write {env:?}"
                );
            }
        }
        let run = Resource::with_id("runs", "run_1");
        let task = Resource::with_id("tasks", "t");
        let error = Resource::with_id("errors", "e");
        // (role, read runs, write runs, trigger, read errors, write errors)
        let actions = [
            (Role::Owner, [true, true, true, true, true]),
            (Role::Admin, [true, true, true, true, true]),
            (Role::Developer, [true, true, true, true, true]),
            (Role::Viewer, [true, false, false, true, false]),
        ];
        for (role, want) in actions {
            let a = role_ability(role);
            let got = [
                a.can("read", std::slice::from_ref(&run)),
                a.can("write", std::slice::from_ref(&run)),
                a.can("trigger", std::slice::from_ref(&task)),
                a.can("read", std::slice::from_ref(&error)),
                a.can("write", std::slice::from_ref(&error)),
            ];
            assert_eq!(got, want, "{role:?}");
        }
        assert!(!role_ability(Role::Developer).can("write", &[Resource::new("members")]));
        assert!(role_ability(Role::Admin).can("write", &[Resource::new("members")]));
    }

    #[test]
    fn member_management() {
        assert!(can_manage_member(Role::Owner, Role::Owner, None));
        assert!(can_manage_member(
            Role::Admin,
            Role::Developer,
            Some(Role::Admin)
        ));
        assert!(!can_manage_member(Role::Admin, Role::Owner, None));
        assert!(!can_manage_member(
            Role::Admin,
            Role::Viewer,
            Some(Role::Owner)
        ));
        assert!(!can_manage_member(
            Role::Developer,
            Role::Viewer,
            Some(Role::Viewer)
        ));
        for r in [Role::Owner, Role::Admin, Role::Developer, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}

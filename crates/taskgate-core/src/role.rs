//! Organization roles and what they permit, written in the scope grammar
//! so a role and a user-actor token's cap intersect with [`Ability::And`].
//!
//! | role | may |
//! |---|---|
//! | owner, admin | everything in the organization (admins cannot touch owners) |
//! | developer | read the work (runs, tasks, errors, queues, deployments, waitpoints, sessions, …) and the organization's structure; trigger, and change runs, errors, waitpoints, input streams and branches; read development, staging and preview keys; rotate development keys only |
//! | viewer | read runs, tasks, errors and the organization's structure; no keys, no writes |
//!
//! Environment keys are checked on `apiKeys:<TYPE>` ([`api_key_resource`]). Because `read:all`
//! would also match `apiKeys:PRODUCTION`, the developer and viewer abilities list the types they
//! read and never use `all`.

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
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::Viewer];

    /// The stored and wire name: `owner`, `admin`, `developer`, `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    /// Parses [`Self::as_str`] (exact, lower case).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Types a viewer reads: the work and the organization's structure, never keys.
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
    "alerts",
];
/// Types a developer reads on top of a viewer's (keys are granted per tier below).
const DEVELOPER_EXTRA_READS: &[&str] = &[
    "waitpoints",
    "sessions",
    "query",
    "prompts",
    "inputStreams",
    "branches",
];
/// What a developer changes: runs and their inputs, triggering, errors, and branches (creating
/// a preview or dev branch is everyday work).
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
/// Key tiers a developer may read: everything but production.
const DEVELOPER_KEY_READS: &[EnvType] = &[EnvType::Development, EnvType::Staging, EnvType::Preview];
/// Key tiers a developer may rotate: only their own development keys.
const DEVELOPER_KEY_WRITES: &[EnvType] = &[EnvType::Development];

/// The resource an environment's keys are checked on: `apiKeys` with the type as id (e.g.
/// `apiKeys:PRODUCTION`), upstream's `{type: "apiKeys", envType}`.
pub fn api_key_resource(env_type: EnvType) -> Resource {
    Resource::with_id("apiKeys", env_type.as_str())
}

/// The scopes of a role (see the module table).
pub fn role_scopes(role: Role) -> Vec<String> {
    let reads = |types: &[&str]| {
        types
            .iter()
            .map(|t| format!("read:{t}"))
            .collect::<Vec<_>>()
    };
    match role {
        Role::Owner | Role::Admin => vec!["admin".to_string()],
        Role::Viewer => reads(VIEWER_READS),
        Role::Developer => {
            let mut scopes = reads(VIEWER_READS);
            scopes.extend(reads(DEVELOPER_EXTRA_READS));
            scopes.extend(DEVELOPER_WRITES.iter().map(|s| s.to_string()));
            let key_scope = |action: &str, t: &EnvType| format!("{action}:apiKeys:{}", t.as_str());
            scopes.extend(DEVELOPER_KEY_READS.iter().map(|t| key_scope("read", t)));
            scopes.extend(DEVELOPER_KEY_WRITES.iter().map(|t| key_scope("write", t)));
            scopes
        }
    }
}

/// The built-in permissions of a role, as an ability.
pub fn role_ability(role: Role) -> Ability {
    Ability::from_scopes(&role_scopes(role))
}

/// Whether `actor` may change a member whose role is `target_current` to `target_new`
/// (`None`: remove them). Owners may do anything; admins may neither remove nor change an
/// owner, nor make anyone an owner; developers and viewers manage no one.
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
    fn key_matrix() {
        use EnvType::*;
        let envs = [Development, Staging, Production, Preview];
        // (role, read keys per env, write keys per env) in the order of `envs`.
        let table = [
            (Role::Owner, [true; 4], [true; 4]),
            (Role::Admin, [true; 4], [true; 4]),
            (
                Role::Developer,
                [true, true, false, true],
                [true, false, false, false],
            ),
            (Role::Viewer, [false; 4], [false; 4]),
        ];
        for (role, reads, writes) in table {
            let a = role_ability(role);
            for (i, env) in envs.into_iter().enumerate() {
                let key = [api_key_resource(env)];
                assert_eq!(a.can("read", &key), reads[i], "{role:?} read {env:?}");
                assert_eq!(a.can("write", &key), writes[i], "{role:?} write {env:?}");
                assert_eq!(a.can("update", &key), writes[i], "{role:?} update {env:?}");
            }
            // No role reaches production keys through an id-less check either.
            let all_keys = a.can("read", &[Resource::new("apiKeys")]);
            assert_eq!(
                all_keys,
                matches!(role, Role::Owner | Role::Admin),
                "{role:?}"
            );
        }
    }

    #[test]
    fn work_matrix() {
        let run = Resource::with_id("runs", "run_1");
        let task = Resource::with_id("tasks", "t");
        let error = Resource::with_id("errors", "e");
        // (role, [read runs, write runs, trigger task, batchTrigger task, read tasks,
        //         write tasks, read errors, write errors])
        let table = [
            (Role::Owner, [true; 8]),
            (Role::Admin, [true; 8]),
            (Role::Developer, [true; 8]),
            (
                Role::Viewer,
                [true, false, false, false, true, false, true, false],
            ),
        ];
        for (role, want) in table {
            let a = role_ability(role);
            let one = |r: &Resource| [r.clone()];
            let got = [
                a.can("read", &one(&run)),
                a.can("write", &one(&run)),
                a.can("trigger", &one(&task)),
                a.can("batchTrigger", &one(&task)),
                a.can("read", &one(&task)),
                a.can("write", &one(&task)),
                a.can("read", &one(&error)),
                a.can("write", &one(&error)),
            ];
            assert_eq!(got, want, "{role:?}");
        }
    }

    #[test]
    fn organization_matrix() {
        // (action, resource, [owner, admin, developer, viewer])
        let table = [
            ("read", "members", [true, true, true, true]),
            ("write", "members", [true, true, false, false]),
            ("write", "project", [true, true, false, false]),
            ("delete", "project", [true, true, false, false]),
            ("manage", "organization", [true, true, false, false]),
            ("write", "branches", [true, true, true, false]),
            ("read", "envvars", [true, true, false, false]),
            ("read", "waitpoints", [true, true, true, false]),
        ];
        for (action, kind, want) in table {
            for (role, expected) in Role::ALL.into_iter().zip(want) {
                let got = role_ability(role).can(action, &[Resource::new(kind)]);
                assert_eq!(got, expected, "{role:?} {action} {kind}");
            }
        }
    }

    #[test]
    fn no_limited_role_uses_read_all() {
        for role in [Role::Developer, Role::Viewer] {
            let scopes = role_scopes(role);
            assert!(
                scopes.iter().all(|s| !s.ends_with(":all") && s != "admin"),
                "{role:?}"
            );
        }
    }

    #[test]
    fn member_management() {
        use Role::*;
        // (actor, target now, target after, allowed)
        let table = [
            (Owner, Owner, None, true),
            (Owner, Owner, Some(Admin), true),
            (Owner, Viewer, Some(Owner), true),
            (Admin, Developer, Some(Admin), true),
            (Admin, Viewer, None, true),
            (Admin, Admin, Some(Viewer), true),
            (Admin, Owner, None, false),
            (Admin, Owner, Some(Admin), false),
            (Admin, Viewer, Some(Owner), false),
            (Developer, Viewer, Some(Viewer), false),
            (Developer, Viewer, None, false),
            (Viewer, Viewer, None, false),
        ];
        for (actor, now, after, allowed) in table {
            assert_eq!(
                can_manage_member(actor, now, after),
                allowed,
                "{actor:?} {now:?} {after:?}"
            );
        }
    }

    #[test]
    fn names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(Role::parse("Owner"), None);
        assert_eq!(Role::parse("member"), None);
    }
}

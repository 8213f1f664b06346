//! The scope grammar and abilities (spec/auth.md §3.7): what a public JWT, a role or a
//! user-actor token's cap permits.
//!
//! A scope is `action:type[:id]`; only the first two colons split, so ids may contain colons.
//! A scope matches a check `(action, {type, id?})` iff it is exactly `admin` (or `admin:`), or
//! its action equals the check's (or is `*`) and its type is `all`, or its type equals the
//! check's and it has no id or the same id. An id-scoped grant never matches an id-less check;
//! `admin:<type>` is not a wildcard. Checks for `trigger`, `batchTrigger` and `update` are
//! retried as `write`.

/// One parsed scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub action: String,
    pub type_: Option<String>,
    pub id: Option<String>,
}

impl Scope {
    /// Parses a scope; `None` when the action is empty.
    pub fn parse(s: &str) -> Option<Scope> {
        let mut parts = s.splitn(3, ':');
        let action = parts.next().filter(|a| !a.is_empty())?.to_string();
        let type_ = parts.next().filter(|t| !t.is_empty()).map(str::to_string);
        let id = parts.next().filter(|i| !i.is_empty()).map(str::to_string);
        Some(Scope { action, type_, id })
    }

    /// Whether this scope grants `action` on `resource` (rules 1–6 of §3.7).
    pub fn matches(&self, action: &str, resource: &Resource) -> bool {
        if self.action == "admin" && self.type_.is_none() {
            return true;
        }
        if self.action != action && self.action != "*" {
            return false;
        }
        match self.type_.as_deref() {
            Some("all") => true,
            Some(t) if t == resource.kind => match &self.id {
                None => true,
                Some(id) => resource.id.as_deref() == Some(id.as_str()),
            },
            _ => false,
        }
    }
}

/// What a check is about: a type and optionally one id of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: String,
    pub id: Option<String>,
}

impl Resource {
    /// The whole collection of a type (`runs`).
    pub fn new(kind: &str) -> Resource {
        Resource {
            kind: kind.to_string(),
            id: None,
        }
    }

    /// One item (`runs:run_123`).
    pub fn with_id(kind: &str, id: &str) -> Resource {
        Resource {
            kind: kind.to_string(),
            id: Some(id.to_string()),
        }
    }
}

/// What a credential may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ability {
    /// Everything (environment secret keys).
    Permissive,
    /// What the scopes grant (public JWTs, roles, caps).
    Scopes(Vec<Scope>),
    /// Both must grant: role ∩ cap.
    And(Box<Ability>, Box<Ability>),
}

/// Actions that a `write` grant also covers (upstream's action aliases).
const WRITE_ALIASES: &[&str] = &["trigger", "batchTrigger", "update"];

impl Ability {
    /// The ability of a list of scope strings; unparseable entries grant nothing.
    pub fn from_scopes(scopes: &[String]) -> Ability {
        Ability::Scopes(scopes.iter().filter_map(|s| Scope::parse(s)).collect())
    }

    /// Grants nothing.
    pub fn deny_all() -> Ability {
        Ability::Scopes(Vec::new())
    }

    fn can_exact(&self, action: &str, resource: &Resource) -> bool {
        match self {
            Ability::Permissive => true,
            Ability::Scopes(scopes) => scopes.iter().any(|s| s.matches(action, resource)),
            Ability::And(a, b) => a.can_one(action, resource) && b.can_one(action, resource),
        }
    }

    fn can_one(&self, action: &str, resource: &Resource) -> bool {
        self.can_exact(action, resource)
            || (WRITE_ALIASES.contains(&action) && self.can_exact("write", resource))
    }

    /// Whether `action` is granted on any of `resources`; an empty list is never granted.
    pub fn can(&self, action: &str, resources: &[Resource]) -> bool {
        resources.iter().any(|r| self.can_one(action, r))
    }
}

/// The requested scopes that `ability` does not cover (empty: all granted). A scope must have
/// a type or be bare `admin`; it is granted iff the ability can do its action on
/// `{type ?? "all", id}`. Malformed scopes (`read`) are denied.
pub fn scopes_within_ability(requested: &[String], ability: &Ability) -> Vec<String> {
    requested
        .iter()
        .filter(|raw| {
            let granted = match Scope::parse(raw) {
                Some(s) if s.type_.is_some() || (s.action == "admin" && s.id.is_none()) => {
                    let kind = s.type_.as_deref().unwrap_or("all");
                    let resource = Resource {
                        kind: kind.to_string(),
                        id: s.id.clone(),
                    };
                    ability.can(&s.action, &[resource])
                }
                _ => false,
            };
            !granted
        })
        .cloned()
        .collect()
}

/// Whether the scopes grant full access: they contain exactly `admin`.
pub fn scopes_grant_full_access(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == "admin")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ab(scopes: &[&str]) -> Ability {
        Ability::from_scopes(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_rule_of_the_grammar() {
        let run1 = Resource::with_id("runs", "run_1");
        let runs = Resource::new("runs");
        let task_t = Resource::with_id("tasks", "t");
        let task_y = Resource::with_id("tasks", "task_y");
        let prompts = Resource::new("prompts");
        let tag = Resource::with_id("tags", "env:staging");
        // (scopes, action, resource, expected)
        let table: Vec<(&[&str], &str, &Resource, bool)> = vec![
            (&["admin"], "write", &run1, true),           // 1: bare admin
            (&["admin:"], "delete", &runs, true),         // 1: admin with empty type
            (&["read:runs"], "write", &run1, false),      // 2: action must match
            (&["*:runs"], "write", &run1, true),          // 2: * action
            (&["read:all"], "read", &run1, true),         // 3: type all
            (&["*:all"], "anything", &runs, true),        // 3
            (&["read:tasks"], "read", &run1, false),      // 4: type must match
            (&["read:runs"], "read", &run1, true),        // 5: type-level covers ids
            (&["read:runs"], "read", &runs, true),        // 5: and the collection
            (&["read:runs:run_1"], "read", &run1, true),  // 6: same id
            (&["read:runs:run_2"], "read", &run1, false), // 6: other id
            (&["read:runs:run_1"], "read", &runs, false), // 6: id never covers the collection
            (&["admin:runs"], "read", &run1, false),      // admin:<type> is no wildcard
            (&["admin:runs"], "admin", &run1, true),      // ... it grants the admin action
            (&["admin:runs:run_2"], "admin", &run1, false),
            (&["write:tasks"], "trigger", &task_t, true), // alias
            (&["write:tasks"], "batchTrigger", &task_t, true),
            (&["write:prompts"], "update", &prompts, true),
            (&["read:tasks"], "trigger", &task_t, false),
            (&["write:tasks:task_x"], "trigger", &task_y, false),
            (&["read:tags:env:staging"], "read", &tag, true), // colon ids
            (&["read:tags:env"], "read", &tag, false),
            (&[], "read", &runs, false),       // empty: deny all
            (&["read"], "read", &runs, false), // no type: nothing
        ];
        for (scopes, action, resource, expected) in table {
            assert_eq!(
                ab(scopes).can(action, std::slice::from_ref(resource)),
                expected,
                "{scopes:?} {action} {resource:?}"
            );
        }
        assert!(
            !ab(&["read:all"]).can("read", &[]),
            "empty resource list is never granted"
        );
        assert!(ab(&["read:runs:a"]).can(
            "read",
            &[
                Resource::with_id("runs", "b"),
                Resource::with_id("runs", "a")
            ]
        ));
        assert!(Ability::Permissive.can("anything", std::slice::from_ref(&runs)));
        assert!(!Ability::Permissive.can("anything", &[]));
    }

    #[test]
    fn minting_ceilings() {
        let cap = ab(&["trigger:tasks:send-email"]);
        let denied = scopes_within_ability(
            &strings(&["trigger:tasks:send-email", "trigger:tasks", "read:runs"]),
            &cap,
        );
        assert_eq!(denied, strings(&["trigger:tasks", "read:runs"]));
        assert!(
            scopes_within_ability(&strings(&["read:runs", "admin"]), &Ability::Permissive)
                .is_empty()
        );
        assert_eq!(
            scopes_within_ability(&strings(&["read"]), &ab(&["read:all"])),
            strings(&["read"])
        );
        assert_eq!(
            scopes_within_ability(&strings(&["read:all"]), &ab(&["read:runs"])),
            strings(&["read:all"])
        );
        assert!(scopes_within_ability(&strings(&["read:all"]), &ab(&["*:all"])).is_empty());
        assert_eq!(
            scopes_within_ability(&strings(&["admin"]), &ab(&["read:all"])),
            strings(&["admin"])
        );
        let restricted = ab(&["read:runs", "trigger:tasks:send-email"]);
        assert!(scopes_within_ability(
            &strings(&["read:runs:run_123", "trigger:tasks:send-email"]),
            &restricted
        )
        .is_empty());
        assert_eq!(
            scopes_within_ability(
                &strings(&["read:runs", "write:runs", "trigger:tasks"]),
                &restricted
            ),
            strings(&["write:runs", "trigger:tasks"])
        );
        assert!(scopes_grant_full_access(&strings(&["read:runs", "admin"])));
        assert!(!scopes_grant_full_access(&strings(&[
            "*:all",
            "admin:runs"
        ])));
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-zA-Z_]{1,8}"
    }

    proptest! {
        #[test]
        fn admin_can_everything(action in word(), kind in word(), id in proptest::option::of("[a-z0-9:_]{1,12}")) {
            let r = Resource { kind, id };
            prop_assert!(ab(&["admin"]).can(&action, &[r]));
        }

        #[test]
        fn type_level_grants_cover_every_id(action in word(), kind in word(), id in "[a-z0-9:_]{1,12}") {
            let scope = format!("{action}:{kind}");
            prop_assert!(ab(&[scope.as_str()]).can(&action, &[Resource::with_id(&kind, &id)]));
        }

        #[test]
        fn id_grants_never_cover_the_collection(action in word(), kind in word(), id in "[a-z0-9_]{1,12}") {
            prop_assume!(kind != "all" && action != "admin");
            let scope = format!("{action}:{kind}:{id}");
            prop_assert!(!ab(&[scope.as_str()]).can(&action, &[Resource::new(&kind)]));
        }

        #[test]
        fn and_is_intersection(a in proptest::collection::vec("[a-z*]{1,5}:[a-z]{1,4}", 0..4),
                               b in proptest::collection::vec("[a-z*]{1,5}:[a-z]{1,4}", 0..4),
                               action in "[a-z]{1,5}", kind in "[a-z]{1,4}") {
            let (x, y) = (Ability::from_scopes(&a), Ability::from_scopes(&b));
            let r = [Resource::new(&kind)];
            let both = Ability::And(Box::new(x.clone()), Box::new(y.clone()));
            prop_assert_eq!(both.can(&action, &r), x.can(&action, &r) && y.can(&action, &r));
        }

        #[test]
        fn parsing_never_panics_and_round_trips(s in ".{0,40}", action in "[a-z]{1,6}", kind in "[a-z]{1,6}", id in "[a-z0-9:]{1,10}") {
            let _ = Scope::parse(&s);
            let parsed = Scope::parse(&format!("{action}:{kind}:{id}")).unwrap();
            prop_assert_eq!(parsed, Scope { action, type_: Some(kind), id: Some(id) });
        }
    }
}

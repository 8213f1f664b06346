//! The scope grammar and abilities: what a public JWT, an
//! additional key, a role or a user-actor token's cap permits.
//!
//! A scope is `action:type[:id]`; only the first two colons split, so ids may contain colons
//! (`read:tags:env:staging`). A scope matches a check `(action, {type, id?})` iff
//!
//! 1. it is bare `admin` (or `admin:`): everything;
//! 2. its action equals the check's or is `*`, and
//! 3. its type is `all`, or
//! 4. its type equals the check's, and
//! 5. it has no id (a type-level grant covers every id and the collection), or
//! 6. its id equals the check's id exactly (an id-scoped grant never covers the collection).
//!
//! `admin:<type>` is not a wildcard: it grants only the `admin` action on that type. A check for
//! `trigger`, `batchTrigger` or `update` that fails is retried as `write` (upstream's action
//! aliases, applied to every ability), so `write:tasks` authorises triggering and `read:*`
//! never does.

use std::fmt;

/// One parsed scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `read`, `write`, `trigger`, `batchTrigger`, `admin`, `*`, … (never empty).
    pub action: String,
    /// The resource type, `all`, or none (only meaningful for bare `admin`).
    pub type_: Option<String>,
    /// One resource id; may contain colons.
    pub id: Option<String>,
}

impl Scope {
    /// Parses a scope: split on `:`; the action is part 0 (empty ⇒ `None`, the scope is
    /// ignored); the type is part 1 (empty ⇒ none); the id is parts 2.. re-joined with `:`
    /// (empty ⇒ none).
    pub fn parse(s: &str) -> Option<Scope> {
        let mut parts = s.splitn(3, ':');
        let action = parts.next().filter(|a| !a.is_empty())?.to_string();
        let type_ = parts.next().filter(|t| !t.is_empty()).map(str::to_string);
        let id = parts.next().filter(|i| !i.is_empty()).map(str::to_string);
        Some(Scope { action, type_, id })
    }

    /// Whether this is bare `admin`, which grants everything (rule 1).
    pub fn is_full_access(&self) -> bool {
        self.action == "admin" && self.type_.is_none()
    }

    /// Whether this scope grants exactly `action` (no aliases) on `resource` (rules 1–6).
    pub fn matches(&self, action: &str, resource: &Resource) -> bool {
        if self.is_full_access() {
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

impl fmt::Display for Scope {
    /// The scope string [`Scope::parse`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.action)?;
        match (&self.type_, &self.id) {
            (None, None) => Ok(()),
            (Some(t), None) => write!(f, ":{t}"),
            (t, Some(id)) => write!(f, ":{}:{id}", t.as_deref().unwrap_or_default()),
        }
    }
}

/// What a check is about: a resource type and optionally one id of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `runs`, `tasks`, `apiKeys`, …
    pub kind: String,
    /// One item, or `None` for the whole collection.
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

    /// One item (`runs` / `run_123`).
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
    /// Everything (environment root keys, upstream's `permissiveAbility`).
    Permissive,
    /// What the scopes grant (public JWTs, additional keys, roles, caps).
    Scopes(Vec<Scope>),
    /// What both grant: a role narrowed by a cap. A resource is granted iff each side grants
    /// it (aliases applied per side), so for a list of resources some single resource must be
    /// granted by both, not one by each.
    And(Box<Ability>, Box<Ability>),
}

/// Actions that a `write` grant also covers (upstream's action aliases).
const WRITE_ALIASES: &[&str] = &["trigger", "batchTrigger", "update"];

/// The actions any route checks, plus `*`: a scope naming another action can never grant
/// anything.
pub const KNOWN_ACTIONS: &[&str] = &[
    "read",
    "write",
    "trigger",
    "batchTrigger",
    "update",
    "admin",
    "*",
];

/// Checks that `s` is a scope that can grant something, for caps a user writes (a typo in a
/// cap would otherwise silently grant nothing): bare `admin`, or `<action>:<type>[:<id>]` with
/// a known action and a type of ASCII letters (or `all`).
pub fn check_grammar(s: &str) -> Result<(), String> {
    let hint = || {
        format!(
            "{s:?} is not a scope: expected admin, or <action>:<type>[:<id>] with an action among {}",
            KNOWN_ACTIONS.join(", ")
        )
    };
    let scope = Scope::parse(s).ok_or_else(hint)?;
    if scope.is_full_access() && s.trim_end_matches(':') == "admin" {
        return Ok(());
    }
    let type_ok = scope
        .type_
        .as_deref()
        .is_some_and(|t| t.bytes().all(|b| b.is_ascii_alphabetic()));
    if !KNOWN_ACTIONS.contains(&scope.action.as_str()) || !type_ok {
        return Err(hint());
    }
    Ok(())
}

impl Ability {
    /// The ability of a list of scope strings; unparseable entries grant nothing.
    pub fn from_scopes(scopes: &[String]) -> Ability {
        Ability::Scopes(scopes.iter().filter_map(|s| Scope::parse(s)).collect())
    }

    /// Grants nothing (a JWT with `scopes: []`).
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

    /// Whether this ability grants every action on every resource: permissive, bare `admin`,
    /// or `*:all`.
    pub fn grants_everything(&self) -> bool {
        match self {
            Ability::Permissive => true,
            Ability::Scopes(scopes) => scopes.iter().any(|s| {
                s.is_full_access() || (s.action == "*" && s.type_.as_deref() == Some("all"))
            }),
            Ability::And(a, b) => a.grants_everything() && b.grants_everything(),
        }
    }

    /// Whether `action` is granted on any of `resources` (upstream's array form); an empty
    /// list is never granted, even for a permissive ability.
    pub fn can(&self, action: &str, resources: &[Resource]) -> bool {
        resources.iter().any(|r| self.can_one(action, r))
    }
}

/// The requested scopes that `ability` does not cover, in request order (empty: all granted).
///
/// Each scope must parse with a type, or be bare `admin`; it is granted iff the ability can do
/// its action on `{type, id}`. So malformed scopes (`read`) are denied and `read:all` is
/// grantable only by `read:all`, `*:all` or `admin`.
///
/// Bare `admin` is granted only by an ability that already grants everything (`admin`, `*:all`
/// or permissive), as §3.7 states. Upstream's code checks it as `can("admin", {type: "all"})`,
/// which would also let an `admin:all` holder mint an unrestricted token; taskgate refuses that
/// escalation.
pub fn scopes_within_ability(requested: &[String], ability: &Ability) -> Vec<String> {
    requested
        .iter()
        .filter(|raw| !scope_within_ability(raw, ability))
        .cloned()
        .collect()
}

fn scope_within_ability(raw: &str, ability: &Ability) -> bool {
    let Some(scope) = Scope::parse(raw) else {
        return false;
    };
    if scope.is_full_access() {
        return ability.grants_everything();
    }
    let Some(kind) = scope.type_ else {
        return false;
    };
    ability.can(&scope.action, &[Resource { kind, id: scope.id }])
}

/// Whether the scopes grant full access: they contain the exact string `admin` (`*:all` and
/// `admin:runs` do not count). Decides whether an additional key is "restricted".
pub fn scopes_grant_full_access(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == "admin")
}

#[cfg(test)]
mod tests;

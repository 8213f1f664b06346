//! The scope grammar's rules (§3.7) and upstream's test cases (§6.21) as tables, and its
//! properties with proptest.

use proptest::prelude::*;

use super::*;

fn ab(scopes: &[&str]) -> Ability {
    Ability::from_scopes(&strings(scopes))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn parsing() {
    let s = |a: &str, t: Option<&str>, i: Option<&str>| {
        Some(Scope {
            action: a.into(),
            type_: t.map(Into::into),
            id: i.map(Into::into),
        })
    };
    let cases = [
        ("read:runs", s("read", Some("runs"), None)),
        ("read:runs:run_1", s("read", Some("runs"), Some("run_1"))),
        (
            "read:tags:env:staging",
            s("read", Some("tags"), Some("env:staging")),
        ),
        ("read:runs:", s("read", Some("runs"), None)),
        ("admin", s("admin", None, None)),
        ("admin:", s("admin", None, None)),
        ("admin::x", s("admin", None, Some("x"))),
        ("read", s("read", None, None)),
        ("*:all", s("*", Some("all"), None)),
        ("", None),
        (":runs", None),
        (":", None),
    ];
    for (raw, want) in cases {
        assert_eq!(Scope::parse(raw), want, "{raw:?}");
    }
    assert_eq!(
        Scope::parse("read:tags:env:staging").unwrap().to_string(),
        "read:tags:env:staging"
    );
    assert_eq!(Scope::parse("admin::x").unwrap().to_string(), "admin::x");
    assert_eq!(Scope::parse("admin:").unwrap().to_string(), "admin");
}

#[test]
fn every_rule_of_the_grammar() {
    let run1 = Resource::with_id("runs", "run_1");
    let runs = Resource::new("runs");
    let task_t = Resource::with_id("tasks", "t");
    let task_x = Resource::with_id("tasks", "task_x");
    let task_y = Resource::with_id("tasks", "task_y");
    let prompts = Resource::new("prompts");
    let tag = Resource::with_id("tags", "env:staging");
    let session = Resource::with_id("sessions", "s1");
    // (scopes, action, resource, expected)
    let table: Vec<(&[&str], &str, &Resource, bool)> = vec![
        (&["admin"], "write", &run1, true),             // 1: bare admin
        (&["admin"], "anything", &runs, true),          // 1: any action, any type
        (&["admin:"], "delete", &runs, true),           // 1: admin with empty type
        (&["read:runs"], "write", &run1, false),        // 2: action must match
        (&["*:runs"], "write", &run1, true),            // 2: * action
        (&["*:runs"], "read", &task_t, false),          // 2+4: * still needs the type
        (&["read:all"], "read", &run1, true),           // 3: type all
        (&["read:all"], "read", &runs, true),           // 3: and collections
        (&["read:all"], "write", &runs, false),         // 3: but only its action
        (&["*:all"], "anything", &runs, true),          // 3
        (&["read:tasks"], "read", &run1, false),        // 4: type must match
        (&["read:Runs"], "read", &run1, false),         // 4: case-sensitive
        (&["read:runs"], "read", &run1, true),          // 5: type-level covers ids
        (&["read:runs"], "read", &runs, true),          // 5: and the collection
        (&["read:runs:run_1"], "read", &run1, true),    // 6: same id
        (&["read:runs:run_2"], "read", &run1, false),   // 6: other id
        (&["read:runs:run_1"], "read", &runs, false),   // 6: id never covers the collection
        (&["read:runs:RUN_1"], "read", &run1, false),   // 6: exact
        (&["admin:sessions"], "read", &session, false), // admin:<type> is no wildcard
        (&["admin:sessions"], "admin", &session, true), // it grants the admin action
        (&["admin:sessions:s2"], "admin", &session, false), // admin:<type>:<id>: that id only
        (&["admin:sessions:s1"], "admin", &session, true),
        (&["write:tasks"], "write", &task_t, true), // aliases
        (&["write:tasks"], "trigger", &task_t, true),
        (&["write:tasks"], "batchTrigger", &task_t, true),
        (&["write:prompts"], "update", &prompts, true),
        (&["write:tasks:task_x"], "trigger", &task_x, true),
        (&["write:tasks:task_x"], "trigger", &task_y, false),
        (&["read:tasks"], "trigger", &task_t, false), // read never aliases
        (&["write:runs"], "cancel", &run1, false),    // unknown actions are not aliased
        (&["write:all"], "trigger", &task_t, true),
        (&["read:tags:env:staging"], "read", &tag, true), // colon ids
        (&["read:tags:env"], "read", &tag, false),
        (&[], "read", &runs, false),            // empty: deny all
        (&["read"], "read", &runs, false),      // no type: nothing
        (&["", ":runs"], "read", &runs, false), // unparseable: nothing
        (&["read:tasks", "read:runs:run_1"], "read", &run1, true), // any scope
    ];
    for (scopes, action, resource, expected) in table {
        assert_eq!(
            ab(scopes).can(action, std::slice::from_ref(resource)),
            expected,
            "{scopes:?} {action} {resource:?}"
        );
    }
}

#[test]
fn resource_lists() {
    let a = ab(&["read:runs:a"]);
    assert!(a.can(
        "read",
        &[
            Resource::with_id("runs", "b"),
            Resource::with_id("runs", "a")
        ]
    ));
    assert!(!a.can(
        "read",
        &[Resource::with_id("runs", "b"), Resource::new("runs")]
    ));
    assert!(
        !ab(&["read:all"]).can("read", &[]),
        "an empty list is never granted"
    );
    assert!(!ab(&["admin"]).can("read", &[]));
    assert!(!Ability::Permissive.can("anything", &[]));
    assert!(Ability::Permissive.can("anything", &[Resource::new("runs")]));
    assert!(!Ability::deny_all().can("read", &[Resource::new("runs")]));
    // Alias over a list: write on any element covers trigger.
    let w = ab(&["write:tasks:t2"]);
    assert!(w.can(
        "trigger",
        &[
            Resource::with_id("tasks", "t1"),
            Resource::with_id("tasks", "t2")
        ]
    ));
}

#[test]
fn intersection_needs_one_resource_granted_by_both() {
    let role = ab(&["read:runs:r1", "write:tasks"]);
    let cap = ab(&["read:runs:r2", "trigger:tasks:t1"]);
    let both = Ability::And(Box::new(role), Box::new(cap));
    let (r1, r2) = (
        Resource::with_id("runs", "r1"),
        Resource::with_id("runs", "r2"),
    );
    assert!(
        !both.can("read", &[r1, r2]),
        "each side grants a different run"
    );
    // The role grants trigger through `write`, the cap directly.
    assert!(both.can("trigger", &[Resource::with_id("tasks", "t1")]));
    assert!(!both.can("trigger", &[Resource::with_id("tasks", "t2")]));
    let full = Ability::And(Box::new(Ability::Permissive), Box::new(ab(&["read:runs"])));
    assert!(full.can("read", &[Resource::new("runs")]));
    assert!(!full.can("write", &[Resource::new("runs")]));
}

#[test]
fn minting_ceilings() {
    let denied =
        |requested: &[&str], ability: &Ability| scopes_within_ability(&strings(requested), ability);
    assert_eq!(
        denied(
            &["trigger:tasks:send-email", "trigger:tasks", "read:runs"],
            &ab(&["trigger:tasks:send-email"])
        ),
        strings(&["trigger:tasks", "read:runs"])
    );
    assert!(denied(&["read:runs", "admin"], &Ability::Permissive).is_empty());
    assert_eq!(
        denied(&["read"], &ab(&["read:all"])),
        strings(&["read"]),
        "malformed"
    );
    assert_eq!(
        denied(&["", ":x"], &Ability::Permissive),
        strings(&["", ":x"])
    );
    assert_eq!(
        denied(&["read:all"], &ab(&["read:runs"])),
        strings(&["read:all"])
    );
    assert!(denied(&["read:all"], &ab(&["*:all"])).is_empty());
    assert!(denied(&["read:all"], &ab(&["admin"])).is_empty());
    assert_eq!(denied(&["admin"], &ab(&["read:all"])), strings(&["admin"]));
    // Bare `admin` needs an ability that already grants everything.
    assert!(denied(&["admin"], &ab(&["*:all"])).is_empty());
    assert!(
        denied(&["admin"], &ab(&["*:all:x"])).is_empty(),
        "rule 3 ignores the id"
    );
    assert_eq!(
        denied(&["admin"], &ab(&["admin:all"])),
        strings(&["admin"]),
        "no escalation"
    );
    assert_eq!(
        denied(&["admin"], &ab(&["admin:runs"])),
        strings(&["admin"])
    );
    assert_eq!(
        denied(&["admin::x"], &ab(&["read:all"])),
        strings(&["admin::x"])
    );
    assert!(denied(&["admin:runs"], &ab(&["admin:all"])).is_empty());
    let capped = Ability::And(Box::new(Ability::Permissive), Box::new(ab(&["read:all"])));
    assert_eq!(
        denied(&["admin", "read:runs"], &capped),
        strings(&["admin"])
    );
    assert!(denied(&["admin", "admin:"], &ab(&["admin"])).is_empty());
    assert!(denied(&["read:tags:env:staging"], &ab(&["read:tags"])).is_empty());
    assert!(denied(&["read:tags:env:staging"], &ab(&["read:tags:env:staging"])).is_empty());
    assert_eq!(
        denied(&["read:tags"], &ab(&["read:tags:env:staging"])),
        strings(&["read:tags"])
    );
    let restricted = ab(&["read:runs", "trigger:tasks:send-email"]);
    assert!(denied(
        &["read:runs:run_123", "trigger:tasks:send-email"],
        &restricted
    )
    .is_empty());
    assert_eq!(
        denied(&["read:runs", "write:runs", "trigger:tasks"], &restricted),
        strings(&["write:runs", "trigger:tasks"])
    );
    assert!(
        denied(&["trigger:tasks:a"], &ab(&["write:tasks"])).is_empty(),
        "aliases apply"
    );
    assert!(denied(&[], &Ability::deny_all()).is_empty());
}

#[test]
fn full_access_is_exactly_admin() {
    assert!(scopes_grant_full_access(&strings(&["read:runs", "admin"])));
    assert!(!scopes_grant_full_access(&strings(&[
        "*:all",
        "admin:runs"
    ])));
    assert!(!scopes_grant_full_access(&strings(&[
        "admin:", " admin", "Admin"
    ])));
    assert!(!scopes_grant_full_access(&[]));
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z_*]{1,8}"
}

fn scope_list() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("(admin|[a-z*]{1,5})(:[a-z]{1,4}(:[a-z0-9:]{1,4})?)?", 0..4)
}

fn resource() -> impl Strategy<Value = Resource> {
    ("[a-z]{1,4}", proptest::option::of("[a-z0-9:]{1,4}"))
        .prop_map(|(kind, id)| Resource { kind, id })
}

proptest! {
    #[test]
    fn admin_can_everything(action in word(), r in resource()) {
        prop_assert!(ab(&["admin"]).can(&action, &[r]));
    }

    #[test]
    fn type_level_grants_cover_every_id(action in word(), kind in "[a-zA-Z]{1,8}", id in "[a-z0-9:_]{1,12}") {
        let scope = format!("{action}:{kind}");
        prop_assert!(ab(&[scope.as_str()]).can(&action, &[Resource::with_id(&kind, &id)]));
        prop_assert!(ab(&[scope.as_str()]).can(&action, &[Resource::new(&kind)]));
    }

    #[test]
    fn id_grants_never_cover_the_collection(action in word(), kind in "[a-zA-Z]{1,8}", id in "[a-z0-9:_]{1,12}") {
        prop_assume!(kind != "all");
        let scope = format!("{action}:{kind}:{id}");
        prop_assert!(!ab(&[scope.as_str()]).can(&action, &[Resource::new(&kind)]));
        prop_assert!(ab(&[scope.as_str()]).can(&action, &[Resource::with_id(&kind, &id)]));
    }

    #[test]
    fn and_is_intersection(a in scope_list(), b in scope_list(), action in "[a-z*]{1,5}",
                           rs in proptest::collection::vec(resource(), 0..3)) {
        let (x, y) = (Ability::from_scopes(&a), Ability::from_scopes(&b));
        let both = Ability::And(Box::new(x.clone()), Box::new(y.clone()));
        for r in &rs {
            let one = std::slice::from_ref(r);
            prop_assert_eq!(both.can(&action, one), x.can(&action, one) && y.can(&action, one));
        }
        let per_resource = rs.iter().any(|r| {
            let one = std::slice::from_ref(r);
            x.can(&action, one) && y.can(&action, one)
        });
        prop_assert_eq!(both.can(&action, &rs), per_resource);
    }

    #[test]
    fn scopes_are_within_their_own_ability(scopes in scope_list()) {
        let well_formed: Vec<String> = scopes
            .into_iter()
            .filter(|s| Scope::parse(s).is_some_and(|p| p.type_.is_some() || p.action == "admin"))
            .collect();
        prop_assert!(scopes_within_ability(&well_formed, &Ability::from_scopes(&well_formed)).is_empty());
    }

    #[test]
    fn parsing_never_panics_and_round_trips(s in ".{0,40}", action in "[a-z*]{1,6}", kind in "[a-z]{1,6}", id in "[a-z0-9:]{1,10}") {
        if let Some(parsed) = Scope::parse(&s) {
            prop_assert_eq!(Scope::parse(&parsed.to_string()), Some(parsed));
        }
        let parsed = Scope::parse(&format!("{action}:{kind}:{id}")).unwrap();
        prop_assert_eq!(parsed.to_string(), format!("{action}:{kind}:{id}"));
        prop_assert_eq!(parsed, Scope { action, type_: Some(kind), id: Some(id) });
    }
}

#[test]
fn cap_grammar_accepts_what_can_grant_and_names_the_rest() {
    for ok in [
        "admin",
        "read:runs",
        "write:tasks",
        "trigger:tasks:send-email",
        "read:all",
        "*:runs",
        "read:tags:env:staging",
    ] {
        assert_eq!(check_grammar(ok), Ok(()), "{ok}");
    }
    for bad in [
        "bogus",
        "",
        "read",
        "reed:runs",
        "read:",
        "read:run s",
        ":runs",
    ] {
        let err = check_grammar(bad).unwrap_err();
        assert!(err.contains("is not a scope"), "{bad}: {err}");
    }
}

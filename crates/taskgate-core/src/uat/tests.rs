//! Tests of user-actor token signing, verification and TTL validation.

use serde_json::json;

use super::*;

const NOW: i64 = 1_770_000_000;
const SECRET: &[u8] = b"session-secret-session-secret-00";

fn claims() -> UatClaims {
    UatClaims {
        user_id: "u1".into(),
        client: Some("cli".into()),
        session_id: None,
        environment_id: Some("env_1".into()),
        pat: Some("pat1".into()),
        cap: Some(vec!["read:runs".into(), "read:apiKeys".into()]),
        expires_at: NOW + 60,
    }
}

/// A token over an arbitrary payload, signed with [`SECRET`].
fn signed(payload: Value) -> String {
    let mut p = jwt::standard_claims(NOW, NOW + 60);
    if let Value::Object(extra) = payload {
        p.extend(extra);
    }
    format!("{UAT_PREFIX}{}", jwt::sign_hs256(&p, SECRET))
}

fn payload_of(token: &str) -> Value {
    Value::Object(
        jwt::decode_unverified(&token[UAT_PREFIX.len()..])
            .unwrap()
            .1,
    )
}

#[test]
fn round_trip() {
    let t = sign_uat(&claims(), SECRET, NOW);
    assert!(t.starts_with("tr_uat_eyJhbGciOiJIUzI1NiJ9."));
    assert_eq!(verify_uat(&t, SECRET, NOW).unwrap(), claims());
    let minimal = UatClaims {
        client: None,
        environment_id: None,
        pat: None,
        cap: None,
        ..claims()
    };
    let t = sign_uat(&minimal, SECRET, NOW);
    assert_eq!(verify_uat(&t, SECRET, NOW).unwrap(), minimal);
}

#[test]
fn payload_has_upstreams_shape() {
    let t = sign_uat(&claims(), SECRET, NOW);
    assert_eq!(
        payload_of(&t),
        json!({
            "kind": "user_actor",
            "sub": "u1",
            "act": { "client": "cli", "environmentId": "env_1", "pat": "pat1" },
            "cap": ["read:runs", "read:apiKeys"],
            "iss": "https://id.trigger.dev",
            "aud": "https://api.trigger.dev",
            "iat": NOW,
            "exp": NOW + 60,
        })
    );
    let sparse = UatClaims {
        client: Some(String::new()),
        session_id: Some(String::new()),
        environment_id: None,
        pat: None,
        cap: Some(vec![]),
        ..claims()
    };
    let p = payload_of(&sign_uat(&sparse, SECRET, NOW));
    assert_eq!(p["act"], json!({}), "empty members are omitted");
    assert_eq!(p["cap"], json!([]), "an empty cap is stamped");
    assert_eq!(
        verify_uat(&sign_uat(&sparse, SECRET, NOW), SECRET, NOW)
            .unwrap()
            .cap,
        Some(vec![])
    );
    let capless = UatClaims {
        cap: None,
        ..claims()
    };
    assert!(payload_of(&sign_uat(&capless, SECRET, NOW))
        .get("cap")
        .is_none());
}

#[test]
fn refusals() {
    let t = sign_uat(&claims(), SECRET, NOW);
    assert_eq!(
        verify_uat(&t, b"other", NOW),
        Err(UatError::Jwt(JwtError::SignatureInvalid))
    );
    assert_eq!(
        verify_uat(&t, SECRET, NOW + 60),
        Err(UatError::Jwt(JwtError::Expired))
    );
    assert_eq!(
        verify_uat(&t[UAT_PREFIX.len()..], SECRET, NOW),
        Err(UatError::Prefix)
    );
    assert_eq!(
        verify_uat(&format!("tr_pat_{}", &t[7..]), SECRET, NOW),
        Err(UatError::Prefix)
    );
    assert_eq!(
        verify_uat("tr_uat_garbage", SECRET, NOW),
        Err(UatError::Jwt(JwtError::Malformed))
    );
    assert_eq!(verify_uat("", SECRET, NOW), Err(UatError::Prefix));
}

#[test]
fn payload_must_be_a_user_actors() {
    let cases = [
        (json!({ "sub": "u1" }), Err(UatError::Claims)), // no kind: e.g. an internal env JWT
        (
            json!({ "kind": "other", "sub": "u1" }),
            Err(UatError::Claims),
        ),
        (json!({ "kind": "user_actor" }), Err(UatError::Claims)),
        (
            json!({ "kind": "user_actor", "sub": 7 }),
            Err(UatError::Claims),
        ),
        (
            json!({ "kind": "user_actor", "sub": "u1", "cap": "read:runs" }),
            Err(UatError::Claims),
        ),
        (
            json!({ "kind": "user_actor", "sub": "u1", "cap": ["read:runs", 1] }),
            Err(UatError::Claims),
        ),
        (
            json!({ "kind": "user_actor", "sub": "u1", "cap": null }),
            Err(UatError::Claims),
        ),
        (
            json!({ "kind": "user_actor", "sub": "u1", "act": "cli" }),
            Ok(None),
        ),
        (
            json!({ "kind": "user_actor", "sub": "u1", "act": { "client": 3 } }),
            Ok(None),
        ),
        (
            json!({ "kind": "user_actor", "sub": "u1", "act": { "client": "agent" } }),
            Ok(Some("agent")),
        ),
    ];
    for (payload, want) in cases {
        let got = verify_uat(&signed(payload.clone()), SECRET, NOW);
        assert_eq!(
            got.as_ref().map(|c| c.client.as_deref()),
            want.as_ref().map(|c| *c),
            "{payload}"
        );
    }
    let mut eternal = jwt::standard_claims(NOW, NOW);
    eternal.remove("exp");
    eternal.insert("kind".into(), json!("user_actor"));
    eternal.insert("sub".into(), json!("u1"));
    let t = format!("{UAT_PREFIX}{}", jwt::sign_hs256(&eternal, SECRET));
    assert_eq!(
        verify_uat(&t, SECRET, NOW),
        Err(UatError::Claims),
        "exp is required"
    );
}

#[test]
fn ttl_rules() {
    let max = DEFAULT_MAX_UAT_TTL_SECONDS;
    assert_eq!(validate_ttl(None, max), Ok(3600));
    assert_eq!(validate_ttl(Some(&json!(1)), max), Ok(1));
    assert_eq!(validate_ttl(Some(&json!(600)), max), Ok(600));
    assert_eq!(validate_ttl(Some(&json!(600.0)), max), Ok(600));
    assert_eq!(validate_ttl(Some(&json!(max)), max), Ok(31_536_000));
    assert_eq!(validate_ttl(Some(&json!(604_800)), 604_800), Ok(604_800));
    let bad = [
        (json!(0), "greater than 0"),
        (json!(-1), "greater than 0"),
        (json!(max + 1), "at most 31536000"),
        (json!(u64::MAX), "at most"),
        (json!(1.5), "integer"),
        (json!("60"), "number"),
        (json!(true), "number"),
        (json!(null), "number"),
        (json!([60]), "number"),
    ];
    for (value, rule) in bad {
        let err = validate_ttl(Some(&value), max).unwrap_err();
        assert!(err.contains(rule), "{value}: {err}");
    }
    assert!(validate_ttl(Some(&json!(604_801)), 604_800)
        .unwrap_err()
        .contains("604800"));
}

#[test]
fn debug_and_errors_carry_no_token() {
    let t = sign_uat(&claims(), SECRET, NOW);
    let err = verify_uat(&t, b"other", NOW).unwrap_err();
    assert!(!err.to_string().contains(&t[7..20]));
    assert_eq!(
        err.to_string(),
        "invalid token: signature verification failed"
    );
}

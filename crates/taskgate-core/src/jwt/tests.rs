//! Tests of HS256 signing and verification, with a vector signed by jose.

use super::*;

const NOW: i64 = 1_770_000_000;

/// Signed by jose 5.10 (`new SignJWT({sub: "x", pub: true})`, iss/aud, `setIssuedAt(NOW)`,
/// `setExpirationTime(NOW + 900)`, key `k`): jose writes its own claims after the payload.
const JOSE_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwicHViIjp0cnVlLCJpc3MiOiJodHRwczovL2lkLnRyaWdnZXIuZGV2IiwiYXVkIjoiaHR0cHM6Ly9hcGkudHJpZ2dlci5kZXYiLCJpYXQiOjE3NzAwMDAwMDAsImV4cCI6MTc3MDAwMDkwMH0.gtxM-GEsQZwkKxBcEzMgqc35dw-ZW5NjD50OBY_IOAY";

fn payload(extra: Value) -> Claims {
    let mut m = standard_claims(NOW, NOW + 60);
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    m
}

fn segments(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

/// A token with `header`, signed over exactly that header with HMAC-SHA-256 under `k`.
fn with_header(header: &str, claims: &Claims) -> String {
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(Value::Object(claims.clone()).to_string().as_bytes())
    );
    let mut m = mac(b"k");
    m.update(input.as_bytes());
    format!("{input}.{}", b64(&m.finalize().into_bytes()))
}

#[test]
fn round_trip_with_upstreams_header() {
    let t = sign_hs256(&payload(json!({ "sub": "x", "pub": true })), b"k");
    assert!(t.starts_with("eyJhbGciOiJIUzI1NiJ9."));
    let p = verify_hs256(&t, b"k", NOW).unwrap();
    assert_eq!(p["sub"], "x");
    assert_eq!(p["pub"], true);
    let (header, body) = decode_unverified(&t).unwrap();
    assert_eq!(Value::Object(header), json!({ "alg": "HS256" }));
    assert_eq!(body, p);
}

#[test]
fn a_token_signed_by_jose_verifies() {
    let p = verify_hs256(JOSE_TOKEN, b"k", NOW + 100).unwrap();
    assert_eq!(
        Value::Object(p),
        json!({
            "sub": "x", "pub": true, "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 900
        })
    );
    assert_eq!(
        verify_hs256(JOSE_TOKEN, b"k", NOW + 900),
        Err(JwtError::Expired)
    );
    assert_eq!(
        verify_hs256(JOSE_TOKEN, b"K", NOW),
        Err(JwtError::SignatureInvalid)
    );
}

#[test]
fn signing_is_byte_for_byte_what_jose_verifies() {
    // Keys in sorted order, so the bytes do not depend on serde_json's map ordering. The
    // expected string was computed independently (HMAC-SHA-256 in Python) and accepted
    // by jose 5.10's `jwtVerify`.
    let mut m = Map::new();
    for (k, v) in [
        ("aud", json!(AUDIENCE)),
        ("exp", json!(NOW + 900)),
        ("iat", json!(NOW)),
        ("iss", json!(ISSUER)),
        ("pub", json!(true)),
        ("sub", json!("x")),
    ] {
        m.insert(k.into(), v);
    }
    assert_eq!(
        sign_hs256(&m, b"k"),
        "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJodHRwczovL2FwaS50cmlnZ2VyLmRldiIsImV4cCI6MTc3MDAwMDkwMCwiaWF0IjoxNzcwMDAwMDAwLCJpc3MiOiJodHRwczovL2lkLnRyaWdnZXIuZGV2IiwicHViIjp0cnVlLCJzdWIiOiJ4In0.o-7bf54j_cD7KkuzPgsDP0F_KYk1yJs_8OFEvo-sLAc"
    );
}

#[test]
fn hmac_keys_of_any_length_match_rfc_4231() {
    let tag = |key: &[u8], data: &[u8]| {
        let mut m = mac(key);
        m.update(data);
        hex::encode(m.finalize().into_bytes())
    };
    // Test case 2: a short key.
    assert_eq!(
        tag(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Test case 6: a key longer than the block is hashed first.
    assert_eq!(
        tag(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    // Exactly one block, and an empty key.
    let block_key = [0x0b; 64];
    let mut reference = <HmacSha256 as Mac>::new_from_slice(&block_key).unwrap();
    reference.update(b"x");
    assert_eq!(
        tag(&block_key, b"x"),
        hex::encode(reference.finalize().into_bytes())
    );
    let mut reference = <HmacSha256 as Mac>::new_from_slice(b"").unwrap();
    reference.update(b"x");
    assert_eq!(
        tag(b"", b"x"),
        hex::encode(reference.finalize().into_bytes())
    );
}

#[test]
fn signature_failures() {
    let good = sign_hs256(&payload(json!({ "sub": "x" })), b"k");
    assert_eq!(
        verify_hs256(&good, b"other", NOW),
        Err(JwtError::SignatureInvalid)
    );
    let s = segments(&good);
    let tampered = format!("{}.{}.{}", s[0], b64(br#"{"sub":"y"}"#), s[2]);
    assert_eq!(
        verify_hs256(&tampered, b"k", NOW),
        Err(JwtError::SignatureInvalid)
    );
    // Expired and signed with another key: the signature decides (and may be retried).
    assert_eq!(
        verify_hs256(&good, b"other", NOW + 3600),
        Err(JwtError::SignatureInvalid)
    );
    assert!(JwtError::SignatureInvalid.is_signature_failure());
    for e in [
        JwtError::Malformed,
        JwtError::UnsupportedAlgorithm,
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::ClaimInvalid,
    ] {
        assert!(!e.is_signature_failure(), "{e:?}");
    }
}

#[test]
fn only_hs256_is_accepted() {
    let claims = payload(json!({ "sub": "x" }));
    let s_good = sign_hs256(&claims, b"k");
    let body = segments(&s_good)[1].to_string();
    let none = format!("{}.{body}.", b64(br#"{"alg":"none"}"#));
    assert_eq!(
        verify_hs256(&none, b"k", NOW),
        Err(JwtError::UnsupportedAlgorithm)
    );
    let hs512 = {
        let input = format!("{}.{body}", b64(br#"{"alg":"HS512"}"#));
        let mut m = <Hmac<sha2::Sha512> as Mac>::new_from_slice(b"k").unwrap();
        m.update(input.as_bytes());
        format!("{input}.{}", b64(&m.finalize().into_bytes()))
    };
    assert_eq!(
        verify_hs256(&hs512, b"k", NOW),
        Err(JwtError::UnsupportedAlgorithm)
    );
    for header in [
        r#"{"alg":"RS256"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"typ":"JWT"}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
    ] {
        assert_eq!(
            verify_hs256(&with_header(header, &claims), b"k", NOW),
            Err(JwtError::UnsupportedAlgorithm),
            "{header}"
        );
    }
    // Another header spelling of HS256 is fine: the signature covers the bytes sent.
    let typ = with_header(r#"{"typ":"JWT","alg":"HS256"}"#, &claims);
    assert_eq!(verify_hs256(&typ, b"k", NOW), Ok(claims));
}

#[test]
fn claims_are_checked_after_the_signature() {
    let k = b"k";
    let signed = |edit: &dyn Fn(&mut Claims)| {
        let mut c = payload(json!({ "sub": "x" }));
        edit(&mut c);
        sign_hs256(&c, k)
    };
    let cases: Vec<(String, Result<(), JwtError>)> = vec![
        (
            signed(&|c| {
                c.insert("iss".into(), json!("https://evil"));
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.remove("iss");
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.insert("aud".into(), json!("https://other"));
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.remove("aud");
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.insert("aud".into(), json!(["x", AUDIENCE]));
            }),
            Ok(()),
        ),
        (
            signed(&|c| {
                c.insert("aud".into(), json!(["x"]));
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.insert("iat".into(), json!("now"));
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.remove("iat");
            }),
            Ok(()),
        ),
        (
            signed(&|c| {
                c.remove("exp");
            }),
            Ok(()),
        ), // no exp: accepted, as upstream
        (
            signed(&|c| {
                c.insert("exp".into(), json!("later"));
            }),
            Err(JwtError::ClaimInvalid),
        ),
        (
            signed(&|c| {
                c.insert("exp".into(), json!(NOW));
            }),
            Err(JwtError::Expired),
        ),
        (
            signed(&|c| {
                c.insert("exp".into(), json!(NOW + 1));
            }),
            Ok(()),
        ),
        (
            signed(&|c| {
                c.insert("exp".into(), json!(NOW as f64 + 0.5));
            }),
            Ok(()),
        ),
        (
            signed(&|c| {
                c.insert("nbf".into(), json!(NOW + 1));
            }),
            Err(JwtError::NotYetValid),
        ),
        (
            signed(&|c| {
                c.insert("nbf".into(), json!(NOW));
            }),
            Ok(()),
        ),
        (
            signed(&|c| {
                c.insert("nbf".into(), json!(null));
            }),
            Err(JwtError::ClaimInvalid),
        ),
    ];
    for (token, want) in cases {
        let payload = decode_unverified(&token).unwrap().1;
        assert_eq!(
            verify_hs256(&token, k, NOW).map(|_| ()),
            want,
            "{payload:?}"
        );
    }
    let expired = signed(&|_| {});
    assert_eq!(verify_hs256(&expired, k, NOW + 60), Err(JwtError::Expired));
    assert_eq!(
        verify_hs256(&expired, k, NOW + 59).map(|c| c["sub"].clone()),
        Ok(json!("x"))
    );
}

#[test]
fn malformed_tokens() {
    let good = sign_hs256(&payload(json!({ "sub": "x" })), b"k");
    let s = segments(&good);
    let not_object = format!("{}.{}.{}", s[0], b64(b"[1,2]"), s[2]);
    let not_json = format!("{}.{}.{}", s[0], b64(b"{nope"), s[2]);
    let short_sig = format!("{}.{}.{}", s[0], s[1], &s[2][..s[2].len() - 3]);
    let long_sig = format!("{}.{}.{}AAAA", s[0], s[1], s[2]);
    let huge = format!("{}.{}.{}", s[0], "A".repeat(MAX_JWT_LEN), s[2]);
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJIUzI1NiJ9.@@@notbase64@@@.signature",
        &good[..good.len() / 2],
        &format!("{}.{}", s[0], s[1]),
        &format!("{good}."),
        &not_object,
        &not_json,
        &short_sig,
        &long_sig,
        &huge,
    ] {
        assert_eq!(
            verify_hs256(bad, b"k", NOW),
            Err(JwtError::Malformed),
            "{bad}"
        );
    }
    assert_eq!(decode_unverified("a.b"), Err(JwtError::Malformed));
    assert_eq!(decode_unverified(&huge), Err(JwtError::Malformed));
}

#[test]
fn errors_say_nothing_about_the_token() {
    assert_eq!(
        JwtError::SignatureInvalid.to_string(),
        "signature verification failed"
    );
    assert_eq!(format!("{:?}", JwtError::Expired), "Expired");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn verification_never_panics(token in ".{0,300}", key in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = verify_hs256(&token, &key, NOW);
            let _ = decode_unverified(&token);
        }

        #[test]
        fn what_is_signed_verifies_only_under_its_key(
            sub in ".{0,40}",
            // No zero bytes: HMAC pads keys with zeros, so `k` and `k\0` are the same key.
            key in proptest::collection::vec(1u8.., 0..100),
            other in proptest::collection::vec(1u8.., 0..100),
        ) {
            let token = sign_hs256(&payload(json!({ "sub": sub })), &key);
            let verified = verify_hs256(&token, &key, NOW).unwrap();
            prop_assert_eq!(verified["sub"].as_str(), Some(sub.as_str()));
            if other != key {
                prop_assert_eq!(verify_hs256(&token, &other, NOW), Err(JwtError::SignatureInvalid));
            }
        }
    }
}

#[test]
fn one_decoded_token_is_tried_against_several_keys() {
    let t = sign_hs256(&payload(json!({ "sub": "env", "pub": true })), b"grace");
    let decoded = decode(&t).unwrap();
    assert_eq!(
        decoded.payload()["sub"],
        "env",
        "the payload is readable before any key is tried"
    );
    assert_eq!(
        decoded.verify(b"current", NOW),
        Err(JwtError::SignatureInvalid)
    );
    assert_eq!(decoded.verify(b"grace", NOW), Ok(()));
    assert_eq!(
        decoded.verify(b"grace", NOW + 61),
        Err(JwtError::Expired),
        "the right key does not make an expired token valid"
    );
    assert_eq!(
        decoded.into_payload(),
        verify_hs256(&t, b"grace", NOW).unwrap()
    );
}

#[test]
fn decoding_leaves_the_signature_to_verification() {
    let t = sign_hs256(&payload(json!({ "sub": "env" })), b"k");
    let [h, p, _] = split(&t).unwrap();
    let bad_signature = format!("{h}.{p}.%%%");
    let decoded = decode(&bad_signature).expect("header and payload decode");
    assert_eq!(decoded.payload()["sub"], "env");
    assert_eq!(decoded.verify(b"k", NOW), Err(JwtError::Malformed));
    assert!(matches!(decode("a.b"), Err(JwtError::Malformed)));
}

/// Every way of spelling a segment other than canonical unpadded base64url: padding (any amount),
/// the standard alphabet, and non-zero trailing bits in the last character.
fn respellings(segment: &str) -> Vec<String> {
    let mut out: Vec<String> = ["=", "==", "===", &"=".repeat(100)]
        .iter()
        .map(|pad| format!("{segment}{pad}"))
        .collect();
    let std_alphabet = segment.replace('-', "+").replace('_', "/");
    if std_alphabet != segment {
        out.push(std_alphabet);
    }
    // The last character of a segment whose length is not a multiple of 4 carries unused low
    // bits; canonical encoders write them as zero. Flip the lowest one.
    if !segment.len().is_multiple_of(4) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = segment.as_bytes()[segment.len() - 1];
        if let Some(i) = ALPHABET.iter().position(|&c| c == last) {
            let flipped = char::from(ALPHABET[i ^ 1]);
            out.push(format!("{}{flipped}", &segment[..segment.len() - 1]));
        }
    }
    out
}

#[test]
fn only_the_canonical_spelling_of_a_token_is_accepted() {
    // Payload and signature lengths that are not multiples of 3 bytes, so padding and
    // trailing bits both apply.
    let token = sign_hs256(
        &payload(json!({ "sub": "x", "pub": true, "otu": true })),
        b"k",
    );
    assert_eq!(
        verify_hs256(&token, b"k", NOW).map(|c| c["otu"].clone()),
        Ok(json!(true))
    );
    let parts = segments(&token);
    for i in 0..3 {
        let variants = respellings(parts[i]);
        assert!(
            variants.len() >= 4,
            "segment {i} has too few respellings to test"
        );
        for variant in variants {
            let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            p[i] = variant;
            let respelled = p.join(".");
            assert_eq!(
                verify_hs256(&respelled, b"k", NOW),
                Err(JwtError::Malformed),
                "segment {i}: {respelled}"
            );
        }
    }
}

#[test]
fn the_one_time_marker_is_fixed_by_the_signed_bytes() {
    let k = b"k";
    let a = sign_hs256(&payload(json!({ "sub": "x", "otu": true })), k);
    let b = sign_hs256(&payload(json!({ "sub": "y", "otu": true })), k);
    let marker = |t: &str| {
        let d = decode(t).unwrap();
        d.verify(k, NOW).unwrap();
        d.one_time_marker()
    };
    assert_eq!(marker(&a), marker(&a.clone()));
    assert_ne!(marker(&a), marker(&b));
    let [h, p, _] = split(&a).unwrap();
    assert_eq!(
        marker(&a),
        crate::hash::sha256_hex(&format!("{h}.{p}")),
        "the marker is the SHA-256 of header.payload"
    );
}

mod canonical_encoding {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever is signed, no respelling of any segment of it verifies.
        #[test]
        fn no_respelling_of_a_signed_token_verifies(sub in ".{0,40}", pad in 1usize..8, seg in 0usize..3) {
            let token = sign_hs256(&payload(json!({ "sub": sub, "otu": true })), b"k");
            let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
            parts[seg].push_str(&"=".repeat(pad));
            prop_assert_eq!(verify_hs256(&parts.join("."), b"k", NOW), Err(JwtError::Malformed));
        }
    }
}

#[test]
fn the_lifetime_ceiling_counts_from_iat() {
    const DAY: i64 = 86_400;
    let check = |claims: Value, now: i64| {
        let Value::Object(m) = claims else {
            unreachable!()
        };
        let t = sign_hs256(&m, b"k");
        decode(&t).unwrap().check_lifetime(now, DAY)
    };
    // An `exp` a century away counts for a day from `iat`.
    let long = json!({ "iat": NOW, "exp": NOW + 100 * 365 * DAY });
    assert_eq!(check(long.clone(), NOW + DAY - 1), Ok(()));
    assert_eq!(check(long, NOW + DAY), Err(JwtError::Expired));
    // No `exp`: alive until `iat` + the ceiling.
    assert_eq!(check(json!({ "iat": NOW }), NOW + 60), Ok(()));
    assert_eq!(
        check(json!({ "iat": NOW }), NOW + DAY),
        Err(JwtError::Expired)
    );
    // No `iat`: the `exp` must be within the ceiling.
    assert_eq!(check(json!({ "exp": NOW + 60 }), NOW), Ok(()));
    assert_eq!(
        check(json!({ "exp": NOW + 2 * DAY }), NOW),
        Err(JwtError::LifetimeTooLong)
    );
    // Neither: no bounded lifetime.
    assert_eq!(check(json!({}), NOW), Err(JwtError::LifetimeTooLong));
    assert_eq!(
        check(json!({ "iat": "yesterday" }), NOW),
        Err(JwtError::ClaimInvalid)
    );
}

#[test]
fn public_token_claims_sign_what_they_say_and_nothing_more() {
    let plain = PublicJwtClaims::new("env_1");
    let claims = verify_hs256(&plain.sign(b"k", NOW, NOW + 60), b"k", NOW).unwrap();
    assert_eq!(
        Value::Object(claims),
        json!({ "sub": "env_1", "pub": true, "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 60 }),
        "no scopes, otu, realtime or act claim unless set"
    );
    let full = PublicJwtClaims {
        one_time_use: true,
        realtime: Some(json!({ "skipColumns": ["payload"] })),
        act: Some(ActClaim {
            sub: "user_1".into(),
            client: "cli".into(),
            pat: Some("pat_1".into()),
        }),
        ..PublicJwtClaims::new("env_1").scopes(vec!["read:runs".into()])
    };
    let claims = verify_hs256(&full.sign(b"k", NOW, NOW + 60), b"k", NOW).unwrap();
    assert_eq!(claims["scopes"], json!(["read:runs"]));
    assert_eq!(claims["otu"], json!(true));
    assert_eq!(claims["realtime"], json!({ "skipColumns": ["payload"] }));
    assert_eq!(
        claims["act"],
        json!({ "sub": "user_1", "client": "cli", "pat": "pat_1" })
    );
    assert_eq!(Value::Object(full.to_map())["pub"], json!(true));
    assert!(verify_hs256(&full.sign(b"k", NOW, NOW + 60), b"other", NOW).is_err());
}

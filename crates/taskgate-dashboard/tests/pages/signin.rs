//! Signing in with a one-time link, sessions, sign-out and CSRF.

use axum::http::StatusCode;
use chrono::Duration;

use taskgate_core::time::Clock;

use crate::common::{Backend, TestApp};

async fn a_link_signs_in_once_with_an_http_only_cookie(b: Backend) {
    let app = TestApp::new(b).await;
    let link = app.link("admin@taskgate.local").await;
    let page = app.get(&link).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/");
    let cookie = page.set_cookie("tg_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "no Secure flag over plain HTTP");
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("admin@taskgate.local"));

    app.jar.lock().unwrap().clear();
    let again = app.get(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text.contains("expired or was already used"));
    assert!(app.jar.lock().unwrap().get("tg_session").is_none());
    app.cleanup().await;
}

async fn a_link_expires_after_fifteen_minutes(b: Backend) {
    let app = TestApp::new(b).await;
    let link = app.link("admin@taskgate.local").await;
    app.clock.advance(Duration::minutes(15));
    assert_eq!(app.get(&link).await.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn links_are_refused_to_strangers_and_rate_limited(b: Backend) {
    let app = TestApp::new(b).await;
    let err = taskgate_dashboard::issue_link(
        &*app.state.store,
        &app.state.config,
        "http://x",
        "stranger@example.com",
        app.clock.now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--sign-in-allow"), "{err}");
    for _ in 0..5 {
        app.link("admin@taskgate.local").await;
    }
    let err = taskgate_dashboard::issue_link(
        &*app.state.store,
        &app.state.config,
        "http://x",
        "admin@taskgate.local",
        app.clock.now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("wait before asking"), "{err}");
    app.clock.advance(Duration::minutes(16));
    app.link("admin@taskgate.local").await;
    app.cleanup().await;
}

async fn the_allow_list_admits_newcomers_and_admin_emails_make_admins(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.sign_in.allow = vec!["@example.com".into()];
        c.sign_in.admin_emails = vec!["boss@corp.example".into()];
    })
    .await;
    app.sign_in("new@example.com").await;
    let home = app.get("/").await;
    assert!(home.text.contains("new@example.com"));
    assert!(!home.text.contains("href=\"/admin\""));
    let user = app
        .state
        .store
        .find_user_by_email("new@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.admin);

    app.jar.lock().unwrap().clear();
    app.sign_in("boss@corp.example").await;
    let boss = app
        .state
        .store
        .find_user_by_email("boss@corp.example")
        .await
        .unwrap()
        .unwrap();
    assert!(boss.admin, "an admin email signs in as an administrator");
    app.cleanup().await;
}

async fn a_page_without_a_session_sends_to_sign_in_and_back(b: Backend) {
    let app = TestApp::new(b).await;
    let wanted = "/account/authorization-code/abc";
    let page = app.get(wanted).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        "/login?next=/account/authorization-code/abc"
    );
    let login = app.get(page.location()).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.text.contains("taskgate login-link --email"));
    let link = app.link("admin@taskgate.local").await;
    let signed = app.get(&link).await;
    assert_eq!(signed.location(), wanted);
    app.cleanup().await;
}

async fn sign_out_ends_the_session_on_the_server(b: Backend) {
    let app = TestApp::new(b).await;
    app.sign_in("admin@taskgate.local").await;
    let session = app.jar.lock().unwrap().get("tg_session").cloned().unwrap();
    let csrf = app.csrf("/").await;
    let out = app.post_form("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert!(app.jar.lock().unwrap().get("tg_session").is_none());
    // The old cookie, replayed, no longer signs anyone in.
    app.jar.lock().unwrap().insert("tg_session".into(), session);
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with("/login"));
    app.cleanup().await;
}

async fn a_form_without_the_csrf_token_is_refused(b: Backend) {
    let app = TestApp::new(b).await;
    app.sign_in("admin@taskgate.local").await;
    let csrf = app.csrf("/").await;
    let refused = app.post_form("/logout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let wrong = app
        .post_form("/logout", &[("_csrf", "not-the-token")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/").await.status, StatusCode::OK, "still signed in");
    assert_eq!(
        app.post_form("/logout", &[("_csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    app.cleanup().await;
}

async fn a_forged_cookie_is_not_a_session(b: Backend) {
    let app = TestApp::new(b).await;
    app.sign_in("admin@taskgate.local").await;
    let session = app.jar.lock().unwrap().get("tg_session").cloned().unwrap();
    let (token, _) = session.rsplit_once('.').unwrap();
    app.jar
        .lock()
        .unwrap()
        .insert("tg_session".into(), format!("{token}.forged"));
    assert_eq!(app.get("/").await.status, StatusCode::SEE_OTHER);
    app.cleanup().await;
}

async fn pages_carry_a_strict_policy_and_hashed_assets(b: Backend) {
    let app = TestApp::new(b).await;
    let login = app.get("/login").await;
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(login.headers["cache-control"], "no-store");
    assert_eq!(login.headers["referrer-policy"], "no-referrer");
    let css = login.attr("href").filter(|h| h.ends_with(".css")).unwrap();
    let asset = app.get(&css).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        app.get("/assets/app.000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

async fn an_emailed_link_signs_in_and_the_form_tells_nobody_who_has_an_account(b: Backend) {
    let (port, inbox) = crate::common::fake_smtp().await;
    let app = TestApp::with_config(b, |c| {
        c.sign_in.smtp = Some(taskgate_config::Smtp {
            url: format!("smtp://127.0.0.1:{port}").into(),
            from: "taskgate <noreply@example.com>".into(),
        });
    })
    .await;
    let login = app.get("/login").await;
    assert!(login.text.contains("Email me a sign-in link"));
    let sent = app
        .post_form("/login/magic", &[("email", "admin@taskgate.local")])
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert!(sent.text.contains("a sign-in link is on its way"));
    let stranger = app
        .post_form("/login/magic", &[("email", "stranger@example.com")])
        .await;
    assert_eq!(stranger.status, StatusCode::OK);
    assert_eq!(
        stranger.text.replace("stranger@example.com", "X"),
        sent.text.replace("admin@taskgate.local", "X"),
        "the same answer for an address that may not sign in"
    );
    // Mail leaves off the request path: wait for it, then for any mail that should not come.
    let mail = crate::common::wait_for_mail(&inbox, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(inbox.lock().unwrap().len(), 1, "only the user got an email");
    // Undo quoted-printable soft breaks and escapes, then find the link.
    let text = mail[0].replace("=\n", "").replace("=3D", "=");
    let at = text.find("/magic?token=").unwrap();
    let link: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(text.contains("To: admin@taskgate.local"), "{text}");
    let signed = app.get(&link).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/").await.status, StatusCode::OK);
    app.cleanup().await;
}

async fn a_failing_mail_server_answers_alike_and_no_email_means_no_form(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.sign_in.smtp = Some(taskgate_config::Smtp {
            url: "smtp://127.0.0.1:1".to_string().into(),
            from: "noreply@example.com".into(),
        });
    })
    .await;
    // The mail goes out after the answer, so a mail server that is down cannot be told from
    // an address that may not sign in: both read "check your email" (the failure is logged).
    let down = app
        .post_form("/login/magic", &[("email", "admin@taskgate.local")])
        .await;
    assert_eq!(down.status, StatusCode::OK, "{}", down.text);
    let stranger = app
        .post_form("/login/magic", &[("email", "stranger@example.com")])
        .await;
    assert_eq!(
        down.text.replace("admin@taskgate.local", "X"),
        stranger.text.replace("stranger@example.com", "X")
    );
    assert!(!down.text.contains("tgl_"), "no link in the answer");
    app.cleanup().await;
    let plain = TestApp::new(b).await;
    assert!(!plain.get("/login").await.text.contains("Email me"));
    let refused = plain
        .post_form("/login/magic", &[("email", "admin@taskgate.local")])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    plain.cleanup().await;
}

async fn a_slow_mail_server_does_not_slow_the_answer_for_a_known_address(b: Backend) {
    // A mail server that accepts the connection and never says a word: sending to it takes
    // as long as the SMTP timeout. The answer for a user must not wait for it, or its time
    // would tell who has an account.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::with_config(b, |c| {
        c.sign_in.smtp = Some(taskgate_config::Smtp {
            url: format!("smtp://127.0.0.1:{port}").into(),
            from: "noreply@example.com".into(),
        });
    })
    .await;
    let started = std::time::Instant::now();
    let known = app
        .post_form("/login/magic", &[("email", "admin@taskgate.local")])
        .await;
    let took = started.elapsed();
    assert_eq!(known.status, StatusCode::OK, "{}", known.text);
    assert!(
        took < std::time::Duration::from_secs(2),
        "the answer waited {took:?} for the mail server"
    );
    silent.abort();
    app.cleanup().await;
}

async fn a_signed_in_browser_is_asked_before_a_link_replaces_its_session(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, _) = app.user("bob@example.com").await;
    app.sign_in("admin@taskgate.local").await;
    let admin_session = app.jar.lock().unwrap().get("tg_session").cloned().unwrap();
    // Someone else's link, opened while signed in: a question, not a new session.
    let link = app.link("bob@example.com").await;
    let asked = app.get(&link).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    assert!(
        asked.text.contains("You are already signed in"),
        "{}",
        asked.text
    );
    assert!(asked.text.contains("admin@taskgate.local"));
    assert!(
        asked.set_cookie("tg_session").is_none(),
        "the session is untouched"
    );
    let home = app.get("/").await;
    assert!(home.text.contains("admin@taskgate.local"));
    // The question's form without this session's CSRF token is refused, and spends nothing.
    let token = asked.input_value("token").unwrap();
    let forged = app.post_form("/magic", &[("token", &token)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(app.get("/").await.text.contains("admin@taskgate.local"));
    // Answered from the page, the link signs bob in and ends the admin's session.
    let csrf = asked.input_value("_csrf").unwrap();
    let switched = app
        .post_form("/magic", &[("token", &token), ("_csrf", &csrf)])
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER, "{}", switched.text);
    let home = app.get("/").await;
    assert!(home.text.contains("bob@example.com"), "{}", home.text);
    app.jar
        .lock()
        .unwrap()
        .insert("tg_session".into(), admin_session);
    assert_eq!(
        app.get("/").await.status,
        StatusCode::SEE_OTHER,
        "the replaced session has ended on the server"
    );
    app.cleanup().await;
}

async fn pages_are_not_readable_by_other_origins(b: Backend) {
    let app = TestApp::new(b).await;
    let login = app.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login.headers.get("access-control-allow-origin").is_none(),
        "a page has no CORS grant"
    );
    app.sign_in("admin@taskgate.local").await;
    let home = app.get("/").await;
    assert!(home.headers.get("access-control-allow-origin").is_none());
    // The API beside it still answers browsers of any origin.
    let api = app.get("/healthz").await;
    assert_eq!(api.headers["access-control-allow-origin"], "*");
    app.cleanup().await;
}

/// Every `next` a browser would read as another origin, as it reaches `/login` in a query.
const OFF_ORIGIN_NEXT: &[&str] = &[
    "/%09/evil.example/",
    "/%0A/evil.example/",
    "/%0D%0A/evil.example/",
    "%09//evil.example/",
    "%20//evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/%5Cevil.example/",
    "%5C%5Cevil.example/",
    "/%5C/evil.example/",
    "/%2F/evil.example/",
    "/%252F/evil.example/",
    "/%255C/evil.example/",
    "/%2509/evil.example/",
    "/%EF%BC%8F/evil.example/",
    "%EF%BC%8F%EF%BC%8Fevil.example/",
    "https://evil.example/",
    "https:%2F%2Fevil.example/",
    "javascript:alert(1)",
];

async fn sign_in_never_returns_to_another_origin(b: Backend) {
    let app = TestApp::new(b).await;
    for next in OFF_ORIGIN_NEXT {
        app.jar.lock().unwrap().clear();
        let login = app.get(&format!("/login?next={next}")).await;
        assert_eq!(login.status, StatusCode::OK, "{next}");
        assert!(
            login.set_cookie("tg_next").is_none(),
            "{next}: a refused path is not remembered"
        );
        let link = app.link("admin@taskgate.local").await;
        let signed = app.get(&link).await;
        assert_eq!(signed.location(), "/", "{next}");
        // Signed in, `/login?next=` redirects at once: to this origin too.
        let again = app.get(&format!("/login?next={next}")).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(again.location(), "/", "{next}");
        app.clock.advance(Duration::minutes(16));
    }
    // A forged `tg_next` cookie (it is not signed) is held to the same rule.
    for next in [
        "/%09/evil.example/",
        "%2F%2Fevil.example%2F",
        "%5C%5Cevil.example",
    ] {
        app.jar.lock().unwrap().clear();
        app.jar
            .lock()
            .unwrap()
            .insert("tg_next".into(), next.to_string());
        let link = app.link("admin@taskgate.local").await;
        assert_eq!(app.get(&link).await.location(), "/", "cookie {next}");
        app.clock.advance(Duration::minutes(16));
    }
    // A path of the dashboard is still where sign-in returns.
    app.jar.lock().unwrap().clear();
    app.get("/login?next=/account/tokens%3Ftab%3Dpat").await;
    let link = app.link("admin@taskgate.local").await;
    assert_eq!(app.get(&link).await.location(), "/account/tokens?tab=pat");
    app.cleanup().await;
}

async fn one_address_may_ask_for_only_so_many_links(b: Backend) {
    let (port, _inbox) = crate::common::fake_smtp().await;
    let app = TestApp::with_config(b, |c| {
        c.sign_in.smtp = Some(taskgate_config::Smtp {
            url: format!("smtp://127.0.0.1:{port}").into(),
            from: "noreply@example.com".into(),
        });
        c.server.client_ip_header = Some(axum::http::HeaderName::from_static("x-forwarded-for"));
    })
    .await;
    let ask = |from: &'static str, email: String| {
        let app = &app;
        async move {
            let req = axum::http::Request::builder()
                .method(axum::http::Method::POST)
                .uri("/login/magic")
                .header("content-type", "application/x-www-form-urlencoded")
                // The proxy appends the address it saw; what the client claimed comes first.
                .header("x-forwarded-for", format!("198.51.100.1, {from}"));
            app.send(req, axum::body::Body::from(format!("email={email}")))
                .await
        }
    };
    // Strangers' addresses: no mail goes out, and the per-email limit never applies.
    for i in 0..taskgate_core::signin::SIGN_IN_REQUESTS_PER_ADDRESS {
        let r = ask("203.0.113.7", format!("s{i}%40example.com")).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.text);
    }
    let refused = ask("203.0.113.7", "s99%40example.com".into()).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("Try again in 15 minutes"),
        "{}",
        refused.text
    );
    let other = ask("203.0.113.8", "s0%40example.com".into()).await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "another address has its own count"
    );
    app.clock.advance(Duration::minutes(15));
    let later = ask("203.0.113.7", "s0%40example.com".into()).await;
    assert_eq!(later.status, StatusCode::OK, "a new window");
    app.cleanup().await;
}

crate::on_both!(
    one_address_may_ask_for_only_so_many_links,
    an_emailed_link_signs_in_and_the_form_tells_nobody_who_has_an_account,
    a_failing_mail_server_answers_alike_and_no_email_means_no_form,
    a_slow_mail_server_does_not_slow_the_answer_for_a_known_address,
    a_signed_in_browser_is_asked_before_a_link_replaces_its_session,
    sign_in_never_returns_to_another_origin,
    pages_are_not_readable_by_other_origins,
    a_link_signs_in_once_with_an_http_only_cookie,
    a_link_expires_after_fifteen_minutes,
    links_are_refused_to_strangers_and_rate_limited,
    the_allow_list_admits_newcomers_and_admin_emails_make_admins,
    a_page_without_a_session_sends_to_sign_in_and_back,
    sign_out_ends_the_session_on_the_server,
    a_form_without_the_csrf_token_is_refused,
    a_forged_cookie_is_not_a_session,
    pages_carry_a_strict_policy_and_hashed_assets,
);

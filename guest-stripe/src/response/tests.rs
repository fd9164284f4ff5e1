use super::*;

fn response(status: u16, body: &[u8]) -> Outcome {
    Outcome::Response(HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_vec(),
    })
}

fn with_request_id(outcome: Outcome, id: &str) -> Outcome {
    match outcome {
        Outcome::Response(mut r) => {
            r.headers.push(("request-id".into(), id.into()));
            Outcome::Response(r)
        }
        other => other,
    }
}

fn failure(outcome: Outcome) -> Json {
    match parse_response("payment_intent", "create", outcome) {
        Payload::Failure(text) => serde_json::from_str(&text).expect("failure payload is JSON"),
        Payload::Success(text) => panic!("expected a failure, got success {text}"),
    }
}

#[test]
fn success_keeps_body_text() {
    let body = "{\n  \"id\": \"pi_1\",\n  \"object\": \"payment_intent\",\n  \"amount\": 2000\n}\n";
    assert_eq!(
        parse_response("payment_intent", "create", response(200, body.as_bytes())),
        Payload::Success(body.to_string())
    );
    let body = "  {\"id\":\"cus_1\",\"deleted\":true}";
    assert_eq!(
        parse_response("customer", "delete", response(200, body.as_bytes())),
        Payload::Success(body.to_string())
    );
}

#[test]
fn success_status_with_bad_body_is_an_error() {
    let e = failure(response(200, b"[1,2]"));
    assert_eq!(e["error"]["type"], "api_error");
    assert_eq!(e["error"]["raw_body"], "[1,2]");
    assert_eq!(e["http_status"], 200);
    let e = failure(response(200, b"{\"id\": "));
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let e = failure(response(204, b""));
    assert!(e["error"]["message"].as_str().unwrap().contains("empty"));
    assert_eq!(e["http_status"], 204);
}

#[test]
fn stripe_404_error_kept_as_is() {
    let body = br#"{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such customer: 'cus_customer123'","param":"customer","request_log_url":"https://dashboard.stripe.com/test/logs/req_1","type":"invalid_request_error"}}"#;
    let e = failure(with_request_id(response(404, body), "req_abc"));
    let error = e["error"].as_object().unwrap();
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["param"], "customer");
    assert_eq!(error["message"], "No such customer: 'cus_customer123'");
    assert_eq!(
        error["request_log_url"],
        "https://dashboard.stripe.com/test/logs/req_1"
    );
    assert_eq!(error["request_id"], "req_abc");
    assert_eq!(e["http_status"], 404);
    // Field order is kept, added fields come last, http_status after error.
    let Payload::Failure(text) = parse_response("customer", "retrieve", response(404, body)) else {
        panic!()
    };
    assert!(
        text.starts_with(r#"{"error":{"code":"resource_missing","doc_url""#),
        "{text}"
    );
    assert!(
        text.ends_with(r#""type":"invalid_request_error"},"http_status":404}"#),
        "{text}"
    );
}

#[test]
fn card_error_with_decline_code() {
    let body = br#"{"error":{"charge":"ch_1","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","type":"card_error"}}"#;
    let e = failure(response(402, body));
    assert_eq!(e["error"]["type"], "card_error");
    assert_eq!(e["error"]["decline_code"], "insufficient_funds");
    assert_eq!(e["error"]["charge"], "ch_1");
    assert_eq!(e["http_status"], 402);
}

#[test]
fn missing_type_and_message_are_added() {
    for (status, expected) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "card_error"),
        (403, "permission_error"),
        (404, "invalid_request_error"),
        (409, "api_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
    ] {
        let e = failure(response(status, br#"{"error":{"message":"nope"}}"#));
        assert_eq!(e["error"]["type"], expected, "status {status}");
        assert_eq!(e["error"]["message"], "nope");
    }
    let e = failure(response(
        400,
        br#"{"error":{"code":"rate_limit","message":"slow down"}}"#,
    ));
    assert_eq!(e["error"]["type"], "rate_limit_error");
    let e = failure(response(401, br#"{"error":{}}"#));
    assert_eq!(e["error"]["type"], "authentication_error");
    assert!(e["error"]["message"].as_str().unwrap().contains("401"));
}

#[test]
fn oauth_style_error() {
    let e = failure(response(
        400,
        br#"{"error":"invalid_grant","error_description":"Authorization code expired"}"#,
    ));
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(e["error"]["code"], "invalid_grant");
    assert_eq!(e["error"]["message"], "Authorization code expired");
}

#[test]
fn html_500() {
    let body = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
    let e = failure(with_request_id(response(500, body), "req_x"));
    assert_eq!(e["error"]["type"], "api_error");
    assert_eq!(e["error"]["raw_body"], std::str::from_utf8(body).unwrap());
    assert_eq!(e["error"]["request_id"], "req_x");
    assert!(e["error"]["message"].as_str().unwrap().contains("HTTP 500"));
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(e["http_status"], 500);
    assert!(e["error"].get("raw_body_truncated").is_none());
}

#[test]
fn json_without_error_object() {
    let e = failure(response(404, br#"{"message":"not found"}"#));
    assert_eq!(e["error"]["type"], "api_error");
    assert_eq!(e["error"]["raw_body"], r#"{"message":"not found"}"#);
    let e = failure(response(500, b"\"oops\""));
    assert_eq!(e["error"]["type"], "api_error");
    let e = failure(response(302, b"{}"));
    assert_eq!(e["http_status"], 302);
}

#[test]
fn non_utf8_body() {
    let e = failure(response(500, b"caf\xe9 \xff\xfe"));
    assert_eq!(e["error"]["type"], "api_error");
    assert!(e["error"]["message"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(e["error"]["raw_body"], "caf\u{fffd} \u{fffd}\u{fffd}");
    // Even on a 200.
    let e = failure(response(200, b"{\"a\":\"\xff\"}"));
    assert_eq!(e["error"]["type"], "api_error");
}

#[test]
fn empty_body() {
    let e = failure(response(500, b""));
    assert_eq!(e["error"]["type"], "api_error");
    assert_eq!(e["error"]["raw_body"], "");
    assert!(e["error"]["message"].as_str().unwrap().contains("empty"));
    let e = failure(response(404, b"  \r\n"));
    assert!(e["error"]["message"].as_str().unwrap().contains("empty"));
}

#[test]
fn huge_body_is_truncated() {
    let mut body = vec![b'x'; MAX_RAW_BODY - 1];
    body.extend_from_slice("é".repeat(1000).as_bytes());
    let e = failure(response(500, &body));
    let raw = e["error"]["raw_body"].as_str().unwrap();
    assert!(raw.len() <= MAX_RAW_BODY);
    assert!(!raw.contains('\u{fffd}'), "cut inside a character");
    assert_eq!(e["error"]["raw_body_truncated"], true);
    assert!(e["error"]["message"].as_str().unwrap().contains("bytes"));
}

#[test]
fn transport_failures() {
    let fail = |kind, status, message: &str| {
        failure(Outcome::Failed(TransportFailure {
            kind,
            status,
            message: message.into(),
        }))
    };
    let e = fail(FailureKind::Timeout, None, "operation timed out after 30s");
    assert_eq!(e["error"]["type"], "api_connection_error");
    assert_eq!(e["error"]["message"], "operation timed out after 30s");
    assert_eq!(e["error"]["failure_kind"], "timeout");
    assert_eq!(e["http_status"], 0);
    let e = fail(FailureKind::Connect, None, "");
    assert_eq!(e["error"]["type"], "api_connection_error");
    assert_eq!(e["error"]["message"], "could not connect to the API");
    let e = fail(FailureKind::Io, Some(200), "connection reset mid-body");
    assert_eq!(e["error"]["type"], "api_connection_error");
    assert_eq!(e["http_status"], 200);
    let e = fail(FailureKind::BodyTooLarge, Some(200), "body exceeds 16 MiB");
    assert_eq!(e["error"]["type"], "api_error");
    assert_eq!(e["error"]["failure_kind"], "body_too_large");
    assert_eq!(e["http_status"], 200);
}

#[test]
fn never_panics_on_odd_bytes() {
    let samples: &[&[u8]] = &[
        b"",
        b"{",
        b"}",
        b"null",
        b"{\"error\":null}",
        b"{\"error\":[1]}",
        b"{\"error\":{\"type\":null}}",
        b"\xef\xbb\xbf{}",
        b"{\"a\":1}{\"b\":2}",
        b"\x00\x01\x02",
        &[0xff; 100],
    ];
    for status in [
        0, 100, 200, 201, 299, 301, 400, 402, 409, 418, 500, 599, 65535,
    ] {
        for body in samples {
            let _ = parse_response("x", "y", response(status, body));
        }
    }
    let deep = "[".repeat(100_000);
    let _ = parse_response("x", "y", response(200, deep.as_bytes()));
    let _ = parse_response("x", "y", response(500, deep.as_bytes()));
}

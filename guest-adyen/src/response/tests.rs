use super::*;

fn response(status: u16, body: &[u8]) -> Outcome {
    Outcome::Response(HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_vec(),
    })
}

fn failure(outcome: Outcome) -> Json {
    match parse_response(outcome) {
        Payload::Failure(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_2xx_json_object_is_passed_through() {
    let body = br#"{"pspReference":"993617894906488A","status":"received","amount":{"value":2000,"currency":"EUR"}}"#;
    assert_eq!(
        parse_response(response(201, body)),
        Payload::Success(String::from_utf8(body.to_vec()).unwrap())
    );
    // A delete's 204 has no body.
    assert_eq!(
        parse_response(response(204, b"")),
        Payload::Success("{}".into())
    );
    // Any other empty answer is not Adyen's.
    let e = failure(response(200, b""));
    assert_eq!(e["errorType"], "invalid_response");
    assert!(e["message"].as_str().unwrap().contains("empty"), "{e}");
}

/// What the plugin declares to the host (`responses:
/// json-object-is-success`): every 2xx JSON object, whatever the status,
/// the headers and the whitespace around it, is a success as it is, even
/// one holding what an error body would (`errorCode`, `status`).
#[test]
fn every_2xx_json_object_is_a_success_as_it_is() {
    let bodies = [
        "{}",
        r#"{"pspReference":"993617894906488A","resultCode":"Refused","refusalReason":"Not enough balance"}"#,
        "\r\n {\"status\": 422, \"errorCode\": \"14_030\", \"errorType\": \"validation\"}\n",
        "{\n  \"amount\": {\"value\": 1e3, \"currency\": \"EUR\"},\n  \"note\": \"caf\\u00e9\"\n}",
    ];
    for status in [200, 201, 202, 204, 206, 299] {
        for body in bodies {
            let outcome = Outcome::Response(HttpResponse {
                status,
                headers: vec![("pspreference".into(), "881".into())],
                body: body.as_bytes().to_vec(),
            });
            assert_eq!(
                parse_response(outcome),
                Payload::Success(body.to_string()),
                "{status} {body}"
            );
        }
    }
}

#[test]
fn adyen_errors_keep_their_fields_and_gain_http_status_and_retryable() {
    let body = br#"{"status":422,"errorCode":"14_030","message":"Return URL is missing.","errorType":"validation","pspReference":"8816178914079738"}"#;
    let e = failure(response(422, body));
    assert_eq!(e["status"], 422);
    assert_eq!(e["errorCode"], "14_030");
    assert_eq!(e["message"], "Return URL is missing.");
    assert_eq!(e["errorType"], "validation");
    assert_eq!(e["pspReference"], "8816178914079738");
    assert_eq!(e["http_status"], 422);
    assert_eq!(e["retryable"], false);

    let e = failure(response(
        401,
        br#"{"status":401,"errorCode":"000","message":"HTTP Status Response - Unauthorized","errorType":"security"}"#,
    ));
    assert_eq!(
        (e["http_status"].clone(), e["retryable"].clone()),
        (401.into(), false.into())
    );
    assert_eq!(e["pspReference"], Json::Null);

    let e = failure(response(
        500,
        br#"{"status":500,"errorCode":"905","message":"x","errorType":"internal"}"#,
    ));
    assert_eq!(e["retryable"], true);
    let e = failure(response(429, br#"{}"#));
    assert_eq!(e["retryable"], true);
}

#[test]
fn missing_or_mistyped_fields_are_filled_in() {
    let e = failure(response(403, br#"{"message": 5, "extra": [1]}"#));
    assert_eq!(e["status"], 403);
    assert_eq!(e["errorCode"], "");
    assert_eq!(e["errorType"], "security");
    assert!(e["message"].as_str().unwrap().contains("HTTP 403"));
    assert_eq!(
        e["extra"],
        serde_json::json!([1]),
        "Adyen's other fields stay"
    );
    assert_eq!(failure(response(404, b"{}"))["errorType"], "validation");
    assert_eq!(failure(response(503, b"{}"))["errorType"], "internal");
}

#[test]
fn bodies_that_are_not_json_objects_are_invalid_responses() {
    for (status, body, what) in [
        (502, &b"<html>Bad Gateway</html>"[..], "not valid JSON"),
        (200, &b"not json"[..], "not valid JSON"),
        (200, &b"[1,2]"[..], "not an object"),
        (500, &b""[..], "empty"),
        (422, &b"\xff\xfe"[..], "UTF-8"),
    ] {
        let e = failure(response(status, body));
        assert_eq!(e["errorType"], "invalid_response", "{status} {body:?}");
        assert_eq!(e["errorCode"], "invalid_response");
        assert_eq!(e["status"], status);
        assert_eq!(e["http_status"], status);
        assert!(e["message"].as_str().unwrap().contains(what), "{e}");
        assert!(e["raw_body"].is_string());
        assert_eq!(e["retryable"], retryable_status(status));
    }
}

#[test]
fn huge_unusable_bodies_are_cut_on_a_character_boundary() {
    let mut body = vec![b'x'; MAX_RAW_BODY - 1];
    body.extend("€".repeat(10).as_bytes());
    let e = failure(response(500, &body));
    assert_eq!(e["raw_body_truncated"], true);
    let raw = e["raw_body"].as_str().unwrap();
    assert!(raw.len() <= MAX_RAW_BODY && !raw.contains('\u{FFFD}'));
}

#[test]
fn transport_failures_have_the_same_shape() {
    for (kind, code, retryable) in [
        (FailureKind::Connect, "connect", true),
        (FailureKind::Timeout, "timeout", true),
        (FailureKind::Io, "io", true),
        (FailureKind::BodyTooLarge, "body_too_large", false),
    ] {
        let e = failure(Outcome::Failed(TransportFailure {
            kind,
            status: None,
            message: String::new(),
        }));
        assert_eq!(e["errorType"], "transport");
        assert_eq!(e["errorCode"], code);
        assert_eq!(e["status"], 0);
        assert_eq!(e["http_status"], 0);
        assert_eq!(e["retryable"], retryable);
        assert!(!e["message"].as_str().unwrap().is_empty());
        assert_eq!(e["pspReference"], Json::Null);
    }
    let e = failure(Outcome::Failed(TransportFailure {
        kind: FailureKind::BodyTooLarge,
        status: Some(200),
        message: "body over 1 MiB".into(),
    }));
    assert_eq!(
        (e["http_status"].clone(), e["message"].clone()),
        (200.into(), "body over 1 MiB".into())
    );
}

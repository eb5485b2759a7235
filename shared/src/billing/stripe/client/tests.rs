use super::*;
use crate::platform::config::Secret;
use crate::platform::error::ApiError;
use reqwest::StatusCode;

#[test]
fn forms_encode_nested_keys_and_reserved_characters() {
    let form = Form::new()
        .field("line_items[0][price]", "price_123")
        .field(
            "success_url",
            "https://app.test/profile?checkout=success&session_id={CHECKOUT_SESSION_ID}",
        )
        .field("email", "a+b c@exämple.com");
    assert_eq!(
        form.encode(),
        "line_items%5B0%5D%5Bprice%5D=price_123\
         &success_url=https%3A%2F%2Fapp.test%2Fprofile%3Fcheckout%3Dsuccess%26session_id%3D%7BCHECKOUT_SESSION_ID%7D\
         &email=a%2Bb%20c%40ex%C3%A4mple.com"
    );
    let decoded: Vec<(String, String)> = url::form_urlencoded::parse(form.encode().as_bytes())
        .into_owned()
        .collect();
    assert_eq!(decoded, form.fields());
    assert_eq!(Form::new().encode(), "");
}

#[test]
fn derived_keys_depend_on_the_body_and_fresh_keys_never_repeat() {
    let key = IdempotencyKey::derived("checkout", &["user", "pro", "123"]);
    let a = key.header_value("a=1");
    assert!(a.starts_with("checkout:user:pro:123:"), "{a}");
    assert_eq!(a, key.header_value("a=1"));
    assert_ne!(a, key.header_value("a=2"));
    let fresh = IdempotencyKey::fresh("cancel");
    assert_eq!(fresh.header_value("x"), fresh.header_value("y"));
    assert_ne!(
        fresh.header_value("x"),
        IdempotencyKey::fresh("cancel").header_value("x")
    );
    let long = IdempotencyKey::derived(&"x".repeat(300), &[]).header_value("");
    assert!(long.len() <= MAX_IDEMPOTENCY_KEY_LEN && long.starts_with("hashed:"));
}

#[test]
fn ids_are_checked_before_they_reach_a_path() {
    assert!(checked_id("sub_1AbC").is_ok());
    for bad in ["", "../customers", "sub_1/../x", "sub 1", "sub%2F"] {
        assert!(checked_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn errors_map_to_safe_answers() {
    let api = |status: u16, kind: &str, code: Option<&str>| StripeError::Api {
        status,
        kind: kind.into(),
        code: code.map(str::to_string),
        decline_code: None,
        param: None,
        message: "raw detail from stripe sk_test_secret".into(),
    };
    let cases = [
        (api(402, "card_error", Some("card_declined")), 409),
        (api(400, "invalid_request_error", Some("parameter_invalid")), 400),
        (api(404, "invalid_request_error", Some("resource_missing")), 409),
        (api(409, "idempotency_error", None), 409),
        (api(401, "invalid_request_error", None), 503),
        (api(403, "invalid_request_error", None), 503),
        (api(429, "invalid_request_error", Some("rate_limit")), 503),
        (api(500, "api_error", None), 502),
    ];
    for (err, status) in cases {
        let response = ApiError::from(err).into_response();
        assert_eq!(response.status().as_u16(), status);
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(!text.contains("raw detail") && !text.contains("sk_test"), "{text}");
    }
    let odd_code = api(400, "invalid_request_error", Some("<script>alert(1)</script>"));
    let text = String::from_utf8(ApiError::from(odd_code).into_response().body().to_vec()).unwrap();
    assert!(!text.contains("script"), "{text}");
}

#[test]
fn error_bodies_are_parsed_and_others_dropped() {
    let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","param":""}}"#;
    match api_error(StatusCode::PAYMENT_REQUIRED, body) {
        StripeError::Api {
            status,
            kind,
            decline_code,
            ..
        } => {
            assert_eq!((status, kind.as_str()), (402, "card_error"));
            assert_eq!(decline_code.as_deref(), Some("insufficient_funds"));
        }
        other => panic!("{other:?}"),
    }
    let html = api_error(StatusCode::BAD_GATEWAY, b"<html>secret internals</html>");
    assert!(!html.to_string().contains("secret internals"));
}

#[test]
fn subscriptions_read_the_period_from_items_on_new_api_versions() {
    let raw: RawSubscription = serde_json::from_str(
        r#"{"id":"sub_1","object":"subscription","status":"active","customer":"cus_1","cancel_at_period_end":false,
            "items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro","object":"price"},"current_period_end":1800000000}]}}"#,
    )
    .unwrap();
    let sub = Subscription::from(raw);
    assert_eq!(sub.current_period_end, Some(1_800_000_000));
    assert_eq!(sub.items[0].price_id, "price_pro");
    assert!(sub.is_current());
}

#[test]
fn debug_never_shows_the_key() {
    let stripe = Stripe::new(
        StripeConfig {
            secret_key: Secret::new("sk_test_very_secret"),
            api_base: Url::parse("https://api.stripe.com/v1").unwrap(),
        },
        reqwest::Client::new(),
    );
    assert!(!format!("{stripe:?}").contains("very_secret"));
}

use super::*;
use reqwest::header::RETRY_AFTER;

#[test]
fn config_reads_the_token_and_an_optional_base() {
    use std::collections::HashMap;
    let read = |vars: &[(&'static str, &'static str)]| {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        ReplicateConfig::from_env(&Env(&vars))
    };
    assert!(read(&[]).unwrap().is_none());
    assert!(read(&[("REPLICATE_API_TOKEN", "  ")]).unwrap().is_none());
    let config = read(&[("REPLICATE_API_TOKEN", "r8_abc")]).unwrap().unwrap();
    assert_eq!(config.base_url.as_str(), DEFAULT_BASE_URL);
    assert_eq!(config.token.expose(), "r8_abc");
    let local = read(&[
        ("REPLICATE_API_TOKEN", "r8_abc"),
        ("REPLICATE_API_BASE", "http://127.0.0.1:9/v1/"),
    ]);
    assert_eq!(local.unwrap().unwrap().base_url.as_str(), "http://127.0.0.1:9/v1/");
    for bad in ["not a url", "ftp://x/v1", "mailto:a@b.c"] {
        let vars = [("REPLICATE_API_TOKEN", "r8_abc"), ("REPLICATE_API_BASE", bad)];
        assert!(read(&vars).is_err(), "{bad}");
    }
}

#[test]
fn cancel_after_uses_replicate_duration_syntax() {
    let cases = [
        (Duration::from_secs(900), "15m"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(60), "1m"),
        (Duration::from_secs(45), "45s"),
        (Duration::from_secs(3600), "1h"),
        (Duration::from_secs(5400), "1h30m"),
        (Duration::from_secs(3661), "1h1m1s"),
        (Duration::ZERO, "1s"),
        (Duration::from_millis(1500), "2s"),
    ];
    for (duration, expected) in cases {
        assert_eq!(format_cancel_after(duration), expected, "{duration:?}");
    }
}

#[test]
fn prefer_wait_is_clamped_to_what_replicate_allows() {
    assert_eq!(prefer_wait_seconds(Duration::ZERO), 1);
    assert_eq!(prefer_wait_seconds(Duration::from_secs(5)), 5);
    assert_eq!(prefer_wait_seconds(Duration::from_secs(600)), 60);
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_747); // Sun, 06 Nov 1994 08:49:07 GMT
    let header = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        retry_after_of(&headers, now)
    };
    assert_eq!(header("7"), Some(Duration::from_secs(7)));
    assert_eq!(header(" 0 "), Some(Duration::ZERO));
    assert_eq!(header("99999999999999999999999"), Some(RETRY_AFTER_CAP));
    assert_eq!(header("3600"), Some(RETRY_AFTER_CAP));
    assert_eq!(header("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::from_secs(30)));
    assert_eq!(header("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
    assert_eq!(header("soon"), None);
    assert_eq!(header("-5"), None);
    assert_eq!(retry_after_of(&HeaderMap::new(), now), None);
}

#[test]
fn model_ids_are_owner_slash_name() {
    assert_eq!(
        split_model_id("qwen/qwen-image-edit").unwrap(),
        ("qwen", "qwen-image-edit")
    );
    assert_eq!(
        split_model_id("black-forest-labs/flux-1.1_pro").unwrap(),
        ("black-forest-labs", "flux-1.1_pro")
    );
    for bad in [
        "", "qwen", "/x", "x/", "a/b/c", "../x", "a/..", "a/.", "a b/c", "a/b?c", "a/b#c", "a/%2e", "ä/b",
    ] {
        assert!(split_model_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn prediction_ids_are_lowercase_alphanumerics() {
    assert!(PredictionId::parse("gm3qorzdhgbfurvjtvhg6dckhu").is_ok());
    let too_long = "a".repeat(65);
    for bad in ["", "ABC", "abc-def", "abc/def", "../x", "abc def", too_long.as_str()] {
        assert!(PredictionId::parse(bad).is_err(), "{bad}");
    }
    let id: PredictionId = serde_json::from_str("\"abc123\"").unwrap();
    assert_eq!(id.to_string(), "abc123");
    assert!(serde_json::from_str::<PredictionId>("\"ABC\"").is_err());
}

#[test]
fn backoff_grows_is_capped_and_jittered() {
    let policy = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
    };
    for retry in 1..12 {
        let full = Duration::from_millis(100 * (1u64 << (retry - 1).min(10))).min(Duration::from_millis(1000));
        let delay = policy.backoff(retry);
        assert!(
            delay >= full / 2 && delay <= full,
            "retry {retry}: {delay:?} vs {full:?}"
        );
    }
}

#[test]
fn account_faults_and_ambiguous_outcomes_are_told_apart() {
    let rejected = |status| ReplicateError::Rejected {
        status,
        detail: "x".into(),
    };
    for status in [401, 402, 403, 404] {
        assert!(rejected(status).is_account_fault(), "{status}");
        assert!(!rejected(status).is_ambiguous(), "{status}");
    }
    for status in [400, 409, 422] {
        assert!(!rejected(status).is_account_fault(), "{status}");
    }
    let unreadable = ReplicateError::InvalidResponse(serde_json::from_str::<Value>("<html>").unwrap_err());
    for ambiguous in [
        ReplicateError::Server { status: 502 },
        ReplicateError::TimedOut {
            after: Duration::from_secs(45),
        },
        unreadable,
        ReplicateError::TooLarge { limit: 1 },
    ] {
        assert!(ambiguous.is_ambiguous(), "{ambiguous}");
        assert!(!ambiguous.is_account_fault(), "{ambiguous}");
    }
    // A 429 proves nothing was created: not ambiguous.
    assert!(!ReplicateError::Throttled { retry_after: None }.is_ambiguous());
}

#[test]
fn one_line_collapses_and_cuts() {
    assert_eq!(one_line("  a\n\tb  c ", 10), "a b c");
    assert_eq!(one_line("abcdef", 4), "abc…");
    assert_eq!(one_line("ééééé", 5), "ééééé");
}

#[test]
fn error_message_reads_strings_and_objects() {
    let prediction = |error: Value| Prediction {
        id: PredictionId::parse("abc").unwrap(),
        status: PredictionStatus::Failed,
        output: None,
        error: Some(error),
        metrics: None,
        input: None,
        created_at: None,
    };
    assert_eq!(
        prediction(Value::from("CUDA out of memory")).error_message().unwrap(),
        "CUDA out of memory"
    );
    let object = serde_json::json!({"detail": "NSFW content detected"});
    assert_eq!(prediction(object).error_message().unwrap(), "NSFW content detected");
    assert_eq!(prediction(Value::from("")).error_message(), None);
}

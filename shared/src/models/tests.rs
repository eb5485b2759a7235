use std::collections::HashSet;

use serde_json::json;

use super::registry::SEEDREAM_FIELDS;
use super::*;

const IMAGE_URL: &str = "https://bucket.example.com/uploads/u/room.jpg?X-Amz-Signature=abc";

fn model(id: &str) -> &'static ModelSpec {
    find(id).unwrap()
}

fn job(seed: Option<u32>) -> StagingInput<'static> {
    StagingInput {
        image_url: IMAGE_URL,
        prompt: "Stage this room.",
        seed,
    }
}

fn errors_by_field(errors: &[FieldError]) -> Vec<(&str, &str)> {
    errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect()
}

#[test]
fn the_default_model_is_registered_first() {
    assert_eq!(default_model().id, DEFAULT_MODEL_ID);
    assert_eq!(find(DEFAULT_MODEL_ID).unwrap().slug, "qwen-image-edit");
}

#[test]
fn ids_fit_the_database_check_and_slugs_are_unique_and_url_safe() {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut ids = HashSet::new();
    let mut slugs = HashSet::new();
    for spec in registry() {
        // ^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$
        let (owner, name) = spec.id.split_once('/').unwrap();
        assert!(!owner.is_empty() && owner.chars().all(is_id_char), "{}", spec.id);
        assert!(!name.is_empty() && name.chars().all(is_id_char), "{}", spec.id);
        assert!(!spec.slug.is_empty(), "{}", spec.id);
        assert!(
            spec.slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{}",
            spec.slug
        );
        assert!(!spec.slug.starts_with('-') && !spec.slug.ends_with('-'));
        assert!(ids.insert(spec.id), "duplicate id {}", spec.id);
        assert!(slugs.insert(spec.slug), "duplicate slug {}", spec.slug);
        assert!(!spec.display_name.is_empty());
    }
}

#[test]
fn find_and_find_by_slug() {
    for spec in registry() {
        assert!(std::ptr::eq(find(spec.id).unwrap(), spec));
        assert!(std::ptr::eq(find_by_slug(spec.slug).unwrap(), spec));
    }
    assert_eq!(
        find("black-forest-labs/flux-kontext-max").unwrap().slug,
        "flux-kontext-max"
    );
    assert_eq!(find_by_slug("gpt-image-1").unwrap().id, "openai/gpt-image-1");
    assert!(find("qwen/qwen-image-edit-plus").is_none());
    assert!(find("QWEN/QWEN-IMAGE-EDIT").is_none());
    assert!(find("").is_none());
    assert!(find_by_slug("qwen/qwen-image-edit").is_none());
}

#[test]
fn schemas_are_well_formed() {
    for spec in registry() {
        let mut names = HashSet::new();
        for field in spec.fields {
            assert!(names.insert(field.name), "{}: duplicate field {}", spec.id, field.name);
            assert_ne!(field.name, "prompt", "{}: the prompt comes from the job", spec.id);
            assert_ne!(
                field.name, spec.input.image_field,
                "{}: the image comes from the job",
                spec.id
            );
            assert!(!field.description.is_empty(), "{}.{}", spec.id, field.name);
            if field.secret {
                assert!(
                    field.default.is_none(),
                    "{}.{}: a secret has no default",
                    spec.id,
                    field.name
                );
            }
            // Every default passes its own field's validation.
            if let Some(default) = field.default {
                assert_eq!(check_value(field, &default.to_json()), Ok(Some(default.to_json())));
            }
            if let FieldKind::Choice(options) = field.kind {
                assert!(!options.is_empty());
            }
        }
        for (name, _) in spec.input.fixed {
            assert!(
                !names.contains(name),
                "{}: {name} is both fixed and configurable",
                spec.id
            );
        }
        match spec.input.seed_field {
            Some(seed) => assert!(spec.field(seed).is_some(), "{}: seed field not configurable", spec.id),
            None => assert!(spec.field("seed").is_none(), "{}", spec.id),
        }
    }
}

#[test]
fn prices_display_in_ten_thousandths() {
    assert_eq!(UsdPrice(300).to_string(), "0.0300");
    assert_eq!(UsdPrice(10).to_string(), "0.0010");
    assert_eq!(UsdPrice(0).to_string(), "0.0000");
    assert_eq!(UsdPrice(123_456).to_string(), "12.3456");
    assert_eq!(serde_json::to_value(UsdPrice(800)).unwrap(), json!("0.0800"));
    assert_eq!(model(DEFAULT_MODEL_ID).price(Operation::Stage), Some(UsdPrice(300)));
    assert_eq!(
        model("black-forest-labs/flux-kontext-pro").price(Operation::Stage),
        Some(UsdPrice(400))
    );
    assert_eq!(
        model("black-forest-labs/flux-kontext-max").price(Operation::Stage),
        Some(UsdPrice(800))
    );
    assert_eq!(
        model("bytedance/seedream-4").price(Operation::Stage),
        Some(UsdPrice(300))
    );
    assert_eq!(model("openai/gpt-image-1").price(Operation::Stage), Some(UsdPrice(10)));
}

#[test]
fn qwen_input_with_defaults() {
    let spec = model(DEFAULT_MODEL_ID);
    let input = spec.build_input(&spec.default_config(), &job(None)).unwrap();
    assert_eq!(
        input,
        json!({
            "image": IMAGE_URL,
            "prompt": "Stage this room.",
            "aspect_ratio": "match_input_image",
            "output_format": "jpg",
            "output_quality": 90,
            "go_fast": true,
        })
    );
}

#[test]
fn the_image_seed_wins_over_a_configured_seed() {
    let spec = model(DEFAULT_MODEL_ID);
    let config = spec.validate_config(&json!({"seed": 7, "go_fast": false})).unwrap();
    let with_configured_seed = spec.build_input(&config, &job(None)).unwrap();
    assert_eq!(with_configured_seed["seed"], json!(7));
    assert_eq!(with_configured_seed["go_fast"], json!(false));
    let with_image_seed = spec.build_input(&config, &job(Some(4_294_967_295))).unwrap();
    assert_eq!(with_image_seed["seed"], json!(4_294_967_295_u32));
    let unseeded = spec.build_input(&spec.default_config(), &job(Some(42))).unwrap();
    assert_eq!(unseeded["seed"], json!(42));
}

#[test]
fn flux_kontext_inputs() {
    for id in [
        "black-forest-labs/flux-kontext-pro",
        "black-forest-labs/flux-kontext-max",
    ] {
        let spec = model(id);
        let input = spec.build_input(&spec.default_config(), &job(Some(5))).unwrap();
        assert_eq!(
            input,
            json!({
                "input_image": IMAGE_URL,
                "prompt": "Stage this room.",
                "aspect_ratio": "match_input_image",
                "output_format": "jpg",
                "safety_tolerance": 2,
                "prompt_upsampling": false,
                "seed": 5,
            }),
            "{id}"
        );
    }
    let spec = model("black-forest-labs/flux-kontext-pro");
    assert_eq!(
        errors_by_field(&spec.validate_config(&json!({"safety_tolerance": 3})).unwrap_err()),
        [("safety_tolerance", "must be an integer from 0 to 2")]
    );
    let config = spec
        .validate_config(&json!({"aspect_ratio": "21:9", "output_format": "png"}))
        .unwrap();
    let input = spec.build_input(&config, &job(None)).unwrap();
    assert_eq!(input["aspect_ratio"], json!("21:9"));
    assert_eq!(input["output_format"], json!("png"));
    assert!(input.get("seed").is_none());
}

#[test]
fn seedream_input_takes_an_image_array_and_no_seed() {
    let spec = model("bytedance/seedream-4");
    let input = spec.build_input(&spec.default_config(), &job(Some(9))).unwrap();
    assert_eq!(
        input,
        json!({
            "image_input": [IMAGE_URL],
            "prompt": "Stage this room.",
            "size": "2K",
            "aspect_ratio": "match_input_image",
            "enhance_prompt": false,
            "max_images": 1,
            "sequential_image_generation": "disabled",
        })
    );
    let refused = spec
        .validate_config(&json!({"max_images": 4, "seed": 1, "size": "custom"}))
        .unwrap_err();
    assert_eq!(
        errors_by_field(&refused),
        [
            ("max_images", "unknown field"),
            ("seed", "unknown field"),
            ("size", "must be one of: 1K, 2K, 4K"),
        ]
    );
}

#[test]
fn gpt_image_input_carries_the_key_and_no_seed() {
    let spec = model("openai/gpt-image-1");
    let config = spec
        .validate_config(&json!({"openai_api_key": "  sk-test-123  ", "quality": "high"}))
        .unwrap();
    let input = spec.build_input(&config, &job(Some(3))).unwrap();
    assert_eq!(
        input,
        json!({
            "input_images": [IMAGE_URL],
            "prompt": "Stage this room.",
            "openai_api_key": "sk-test-123",
            "aspect_ratio": "3:2",
            "quality": "high",
            "input_fidelity": "high",
            "background": "opaque",
            "output_format": "jpeg",
            "output_compression": 90,
            "moderation": "auto",
            "number_of_images": 1,
        })
    );
}

#[test]
fn a_missing_required_secret_fails_the_job_not_the_save() {
    let spec = model("openai/gpt-image-1");
    let missing = ModelError::MissingSetting {
        model: "openai/gpt-image-1",
        field: "openai_api_key",
    };
    assert_eq!(
        spec.build_input(&spec.default_config(), &job(None)),
        Err(missing.clone())
    );
    for blank in [
        json!({}),
        json!({"openai_api_key": ""}),
        json!({"openai_api_key": "   "}),
        json!({"openai_api_key": null}),
    ] {
        let config = spec.validate_config(&blank).unwrap();
        assert!(config.get("openai_api_key").is_none(), "{blank}");
        assert_eq!(spec.build_input(&config, &job(None)), Err(missing.clone()), "{blank}");
    }
    assert!(missing.to_string().contains("openai_api_key"));
}

#[test]
fn secrets_are_left_out_of_the_public_json_and_debug() {
    let spec = model("openai/gpt-image-1");
    let config = spec
        .validate_config(&json!({"openai_api_key": "sk-very-secret"}))
        .unwrap();
    let public = config.as_json_without_secrets();
    assert!(public.get("openai_api_key").is_none());
    assert_eq!(public["quality"], json!("auto"));
    assert!(!public.to_string().contains("sk-very-secret"));
    assert!(!format!("{config:?}").contains("sk-very-secret"));
    assert_eq!(config.get("openai_api_key"), Some(&json!("sk-very-secret")));
    // The stored shape round-trips, secrets included.
    let stored = config.as_json_with_secrets();
    assert_eq!(stored["openai_api_key"], json!("sk-very-secret"));
    assert_eq!(spec.validate_config(&stored).unwrap(), config);
}

#[test]
fn missing_fields_take_their_defaults() {
    for spec in registry() {
        let config = spec.validate_config(&json!({})).unwrap();
        assert_eq!(config, spec.default_config(), "{}", spec.id);
        assert_eq!(config.model_id(), spec.id);
        let public = config.as_json_without_secrets();
        for field in spec.fields.iter().filter(|field| !field.secret) {
            let expected = field.default.map_or(Value::Null, FieldDefault::to_json);
            assert_eq!(public[field.name], expected, "{}.{}", spec.id, field.name);
        }
    }
    let qwen = model(DEFAULT_MODEL_ID).default_config();
    assert_eq!(qwen.as_json_without_secrets()["seed"], Value::Null);
    assert!(qwen.get("seed").is_none());
    assert!(qwen.get("no_such_field").is_none());
}

#[test]
fn validation_reports_every_bad_field() {
    let spec = model(DEFAULT_MODEL_ID);
    let config = json!({
        "aspect_ratio": "2:1",
        "output_format": "gif",
        "output_quality": 101,
        "go_fast": "yes",
        "seed": -1,
        "num_outputs": 2,
        "Seed": 1,
    });
    let errors = spec.validate_config(&config).unwrap_err();
    assert_eq!(
        errors_by_field(&errors),
        [
            ("Seed", "unknown field"),
            ("num_outputs", "unknown field"),
            (
                "aspect_ratio",
                "must be one of: match_input_image, 1:1, 16:9, 9:16, 4:3, 3:4"
            ),
            ("output_format", "must be one of: jpg, png, webp"),
            ("output_quality", "must be an integer from 0 to 100"),
            ("go_fast", "must be true or false"),
            ("seed", "must be an integer from 0 to 4294967295"),
        ]
    );
}

#[test]
fn wrong_json_types_are_refused() {
    let spec = model(DEFAULT_MODEL_ID);
    for bad in [
        json!({"output_quality": 90.5}),
        json!({"output_quality": "90"}),
        json!({"output_quality": true}),
    ] {
        let errors = spec.validate_config(&bad).unwrap_err();
        assert_eq!(
            errors_by_field(&errors),
            [("output_quality", "must be an integer from 0 to 100")],
            "{bad}"
        );
    }
    for not_object in [json!(null), json!([]), json!("x"), json!(1)] {
        let errors = spec.validate_config(&not_object).unwrap_err();
        assert_eq!(errors_by_field(&errors), [("config", "must be a JSON object")]);
    }
    let gpt = model("openai/gpt-image-1");
    let errors = gpt.validate_config(&json!({"openai_api_key": 12345})).unwrap_err();
    assert_eq!(
        errors_by_field(&errors),
        [("openai_api_key", "must be text of at most 512 characters")]
    );
    let long_key = "k".repeat(513);
    let errors = gpt.validate_config(&json!({ "openai_api_key": long_key })).unwrap_err();
    assert!(!errors[0].message.contains("kkk"), "the value is never echoed");
}

#[test]
fn seed_bounds() {
    let spec = model(DEFAULT_MODEL_ID);
    for ok in [json!(0), json!(1), json!(4_294_967_295_u64), Value::Null] {
        let config = spec.validate_config(&json!({ "seed": ok })).unwrap();
        assert_eq!(config.get("seed"), if ok.is_null() { None } else { Some(&ok) });
    }
    for bad in [
        json!(4_294_967_296_u64),
        json!(-1),
        json!(u64::MAX),
        json!(1.5),
        json!("1"),
    ] {
        assert!(spec.validate_config(&json!({ "seed": bad })).is_err(), "{bad}");
    }
}

#[test]
fn number_fields_check_their_bounds() {
    let field = ConfigField {
        name: "guidance",
        kind: FieldKind::Number { min: 1.0, max: 20.0 },
        default: Some(FieldDefault::Number(7.5)),
        required: false,
        secret: false,
        description: "Guidance scale.",
    };
    assert_eq!(check_value(&field, &json!(2.5)), Ok(Some(json!(2.5))));
    assert_eq!(check_value(&field, &json!(20)), Ok(Some(json!(20.0))));
    assert_eq!(
        check_value(&field, &json!(0.5)),
        Err("must be a number from 1 to 20".to_owned())
    );
    assert!(check_value(&field, &json!("3")).is_err());
}

#[test]
fn build_input_refuses_a_foreign_config_a_bad_url_and_an_empty_prompt() {
    let qwen = model(DEFAULT_MODEL_ID);
    let flux = model("black-forest-labs/flux-kontext-pro");
    assert_eq!(
        flux.build_input(&qwen.default_config(), &job(None)),
        Err(ModelError::ConfigForOtherModel {
            model: "black-forest-labs/flux-kontext-pro",
            config_model: DEFAULT_MODEL_ID,
        })
    );
    for url in [
        "",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "/relative/path.jpg",
        "ftp://x/y",
    ] {
        let input = StagingInput {
            image_url: url,
            prompt: "Stage this room.",
            seed: None,
        };
        assert_eq!(
            qwen.build_input(&qwen.default_config(), &input),
            Err(ModelError::InvalidImageUrl)
        );
    }
    let input = StagingInput {
        image_url: IMAGE_URL,
        prompt: "  ",
        seed: None,
    };
    assert_eq!(
        qwen.build_input(&qwen.default_config(), &input),
        Err(ModelError::EmptyPrompt)
    );
    assert!(!ModelError::InvalidImageUrl.to_string().contains("Signature"));
}

#[test]
fn the_prompt_is_sent_trimmed() {
    let spec = model(DEFAULT_MODEL_ID);
    let input = StagingInput {
        image_url: IMAGE_URL,
        prompt: "\n Add a sofa. ",
        seed: None,
    };
    assert_eq!(
        spec.build_input(&spec.default_config(), &input).unwrap()["prompt"],
        json!("Add a sofa.")
    );
}

#[test]
fn output_url_takes_the_first_http_url() {
    let first = "https://replicate.delivery/xezq/abc/out-0.jpg";
    assert_eq!(output_url(&json!(first)).unwrap().as_str(), first);
    assert_eq!(
        output_url(&json!([first, "https://replicate.delivery/b.jpg"]))
            .unwrap()
            .as_str(),
        first
    );
    assert_eq!(output_url(&json!([null, "data:x", 3, first])).unwrap().as_str(), first);
    assert_eq!(
        output_url(&json!("http://localhost:9000/out.png")).unwrap().scheme(),
        "http"
    );
    for none in [
        json!(null),
        json!([]),
        json!(""),
        json!("not a url"),
        json!("file:///tmp/out.jpg"),
        json!("data:image/png;base64,AAAA"),
        json!({"url": first}),
        json!(42),
    ] {
        assert!(output_url(&none).is_none(), "{none}");
    }
}

#[test]
fn schema_json_shape() {
    let spec = model(DEFAULT_MODEL_ID);
    let quality = serde_json::to_value(spec.field("output_quality").unwrap()).unwrap();
    assert_eq!(
        quality,
        json!({
            "name": "output_quality",
            "type": "integer",
            "default": 90,
            "min": 0,
            "max": 100,
            "max_length": null,
            "options": null,
            "required": false,
            "secret": false,
            "description": "Quality of jpg/webp output, 0 (lowest) to 100 (best). Ignored for png.",
        })
    );
    let format = serde_json::to_value(spec.field("output_format").unwrap()).unwrap();
    assert_eq!(format["type"], json!("choice"));
    assert_eq!(format["options"], json!(["jpg", "png", "webp"]));
    assert_eq!(format["default"], json!("jpg"));
    assert_eq!(format["min"], Value::Null);
    let seed = serde_json::to_value(spec.field("seed").unwrap()).unwrap();
    assert_eq!(seed["default"], Value::Null);
    assert_eq!(seed["max"], json!(4_294_967_295_u64));
    let go_fast = serde_json::to_value(spec.field("go_fast").unwrap()).unwrap();
    assert_eq!(
        (go_fast["type"].clone(), go_fast["default"].clone()),
        (json!("bool"), json!(true))
    );

    let key = serde_json::to_value(model("openai/gpt-image-1").field("openai_api_key").unwrap()).unwrap();
    assert_eq!(
        key,
        json!({
            "name": "openai_api_key",
            "type": "text",
            "default": null,
            "min": null,
            "max": null,
            "max_length": 512,
            "options": null,
            "required": true,
            "secret": true,
            "description": "The operator's OpenAI API key (from a verified organisation); OpenAI bills that account.",
        })
    );
    let number = serde_json::to_value(FieldKind::Number { min: 1.0, max: 2.5 }).unwrap();
    assert_eq!(
        number,
        json!({"type": "number", "min": 1.0, "max": 2.5, "max_length": null, "options": null})
    );
}

#[test]
fn the_registry_serializes_without_its_input_builder() {
    let value = serde_json::to_value(model("bytedance/seedream-4")).unwrap();
    assert_eq!(value["id"], json!("bytedance/seedream-4"));
    assert_eq!(value["slug"], json!("seedream-4"));
    assert_eq!(value["display_name"], json!("Seedream 4"));
    assert_eq!(
        value["operations"],
        json!({"stage": "0.0300", "declutter": "0.0300", "declutter_and_stage": "0.0300", "twilight": "0.0300"})
    );
    assert_eq!(value["fields"].as_array().unwrap().len(), SEEDREAM_FIELDS.len());
    assert_eq!(value.as_object().unwrap().len(), 5);
    assert!(value.get("input").is_none());
}

#[test]
fn every_operation_has_a_model_and_the_default_model_does_them_all() {
    for operation in Operation::ALL {
        assert!(registry().iter().any(|spec| spec.can(*operation)), "{operation}");
        assert!(model(DEFAULT_MODEL_ID).can(*operation), "{operation}");
    }
    // gpt-image-1 re-renders the whole frame: it furnishes, but does not empty or relight.
    let gpt = model("openai/gpt-image-1");
    assert!(gpt.can(Operation::Stage) && gpt.can(Operation::DeclutterAndStage));
    assert!(!gpt.can(Operation::Declutter) && !gpt.can(Operation::Twilight));
    assert_eq!(gpt.price(Operation::Twilight), None);
}

//! The registered models: their settings and input shapes, checked against each model's API page
//! on replicate.com (see the notes on each). Adding a model: docs/architecture.md.

use super::schema::{ConfigField, FieldDefault, FieldKind};
use super::{DEFAULT_MODEL_ID, InputShape, ModelSpec, UsdPrice};
use crate::staging::vocabulary::Operation;

/// Any 32-bit seed; unset means a random one per prediction.
const SEED_FIELD: ConfigField = ConfigField {
    name: "seed",
    kind: FieldKind::Integer {
        min: 0,
        max: 4_294_967_295,
    },
    default: None,
    required: false,
    secret: false,
    description: "Fixed random seed for every job, for reproducible results. An image's own seed takes precedence. \
                  Leave unset for a random seed per job.",
};

const QUALITY_0_TO_100: FieldKind = FieldKind::Integer { min: 0, max: 100 };

// UNCONFIRMED for `qwen/qwen-image-edit` itself: fields and options follow the sibling official
// model `qwen/qwen-image-edit-plus` (which takes `image` as an array) and a catalog listing of this
// one with a single `image` string (anchors.md §4a). `disable_safety_checker` exists upstream but is
// deliberately not offered: listing photos have no reason to bypass it.
const QWEN_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(&["match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4"]),
        default: Some(FieldDefault::Text("match_input_image")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image. match_input_image keeps the listing photo's framing.",
    },
    ConfigField {
        name: "output_format",
        kind: FieldKind::Choice(&["jpg", "png", "webp"]),
        default: Some(FieldDefault::Text("jpg")),
        required: false,
        secret: false,
        description: "File format the model returns (the stored result is always re-encoded as JPEG).",
    },
    ConfigField {
        name: "output_quality",
        kind: QUALITY_0_TO_100,
        default: Some(FieldDefault::Integer(90)),
        required: false,
        secret: false,
        description: "Quality of jpg/webp output, 0 (lowest) to 100 (best). Ignored for png.",
    },
    ConfigField {
        name: "go_fast",
        kind: FieldKind::Bool,
        default: Some(FieldDefault::Bool(true)),
        required: false,
        secret: false,
        description: "Run with extra speed optimisations.",
    },
    SEED_FIELD,
];

/// Replicate's flux-kontext aspect ratios (version 569705b3 api page and API catalogs).
const FLUX_ASPECT_RATIOS: &[&str] = &[
    "match_input_image",
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "21:9",
    "9:21",
    "2:1",
    "1:2",
];

const FLUX_KONTEXT_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(FLUX_ASPECT_RATIOS),
        default: Some(FieldDefault::Text("match_input_image")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image. match_input_image keeps the listing photo's framing.",
    },
    ConfigField {
        name: "output_format",
        kind: FieldKind::Choice(&["jpg", "png"]),
        default: Some(FieldDefault::Text("jpg")),
        required: false,
        secret: false,
        description: "File format the model returns (the stored result is always re-encoded as JPEG).",
    },
    ConfigField {
        name: "safety_tolerance",
        // The model accepts 0–6, but Replicate caps it at 2 when an input image is given, and a
        // staging job always gives one: a higher value would only fail the prediction.
        kind: FieldKind::Integer { min: 0, max: 2 },
        default: Some(FieldDefault::Integer(2)),
        required: false,
        secret: false,
        description: "Content moderation, 0 (strictest) to 2 (the most Replicate allows with an input image).",
    },
    ConfigField {
        name: "prompt_upsampling",
        kind: FieldKind::Bool,
        // Off: the rewrite may drop the structural-preservation instructions.
        default: Some(FieldDefault::Bool(false)),
        required: false,
        secret: false,
        description: "Let the model rewrite the prompt. May weaken the instructions to keep the room unchanged.",
    },
    SEED_FIELD,
];

// bytedance/seedream-4 takes no seed input (checked on versions e6cff243 and 3ee3b70d), so an
// image's seed cannot be passed on. `size: custom` is not offered: it needs width/height, which
// would override the photo's own aspect ratio.
pub(super) const SEEDREAM_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "size",
        kind: FieldKind::Choice(&["1K", "2K", "4K"]),
        default: Some(FieldDefault::Text("2K")),
        required: false,
        secret: false,
        description: "Output resolution: 1K (1024 px), 2K (2048 px) or 4K (4096 px) on the long side.",
    },
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(&[
            "match_input_image",
            "1:1",
            "4:3",
            "3:4",
            "16:9",
            "9:16",
            "3:2",
            "2:3",
            "21:9",
        ]),
        default: Some(FieldDefault::Text("match_input_image")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image. match_input_image keeps the listing photo's framing.",
    },
    // UNCONFIRMED on older versions: present on the current version's schema (default true there).
    ConfigField {
        name: "enhance_prompt",
        kind: FieldKind::Bool,
        default: Some(FieldDefault::Bool(false)),
        required: false,
        secret: false,
        description: "Let the model enhance the prompt (slower). May weaken the instructions to keep the room \
                      unchanged.",
    },
];

// openai/gpt-image-1 takes no seed and has no match_input_image aspect ratio. `user_id` is not
// offered (no end-user identifiers are sent to OpenAI) and `background: transparent` is left out
// (a room photo has no transparent background, and the result is flattened into a JPEG anyway).
const GPT_IMAGE_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "openai_api_key",
        kind: FieldKind::Text { max_len: 512 },
        default: None,
        required: true,
        secret: true,
        description: "The operator's OpenAI API key (from a verified organisation); OpenAI bills that account.",
    },
    ConfigField {
        name: "aspect_ratio",
        kind: FieldKind::Choice(&["1:1", "3:2", "2:3"]),
        // Most listing photos are landscape; the model cannot match the input's ratio.
        default: Some(FieldDefault::Text("3:2")),
        required: false,
        secret: false,
        description: "Aspect ratio of the staged image (this model cannot match the photo's own ratio).",
    },
    ConfigField {
        name: "quality",
        kind: FieldKind::Choice(&["auto", "low", "medium", "high"]),
        default: Some(FieldDefault::Text("auto")),
        required: false,
        secret: false,
        description: "Rendering quality; higher costs more on the OpenAI account.",
    },
    ConfigField {
        name: "input_fidelity",
        kind: FieldKind::Choice(&["low", "high"]),
        // High: staging must keep the photographed room's details.
        default: Some(FieldDefault::Text("high")),
        required: false,
        secret: false,
        description: "How closely the result follows the input photo's details.",
    },
    ConfigField {
        name: "background",
        kind: FieldKind::Choice(&["auto", "opaque"]),
        default: Some(FieldDefault::Text("opaque")),
        required: false,
        secret: false,
        description: "Background handling of the generated image.",
    },
    ConfigField {
        name: "output_format",
        kind: FieldKind::Choice(&["jpeg", "png", "webp"]),
        default: Some(FieldDefault::Text("jpeg")),
        required: false,
        secret: false,
        description: "File format the model returns (the stored result is always re-encoded as JPEG).",
    },
    ConfigField {
        name: "output_compression",
        kind: QUALITY_0_TO_100,
        default: Some(FieldDefault::Integer(90)),
        required: false,
        secret: false,
        description: "Compression level of jpeg/webp output, 0 to 100 percent.",
    },
    ConfigField {
        name: "moderation",
        kind: FieldKind::Choice(&["auto", "low"]),
        default: Some(FieldDefault::Text("auto")),
        required: false,
        secret: false,
        description: "OpenAI content moderation level.",
    },
];

// Prices are estimates per staged image, to verify on replicate.com (model pages, "Pricing"):
// qwen-image-edit $0.03, flux-kontext-pro $0.04, flux-kontext-max $0.08, seedream-4 $0.03.
// gpt-image-1: Replicate charges $0.001 per output image; OpenAI bills the rest to the operator's key.
//
// Operations: every operation is one prediction, billed per output image whatever the prompt, so
// a model's operations share its price today; they are listed per operation so one that needs a
// second pass or a pricier setting can say so. Declutter and twilight promise an unchanged room
// apart from what they remove or relight, so they are offered only on the instruction-edit models
// that keep untouched pixels in place (Qwen, FLUX Kontext, Seedream). gpt-image-1 re-renders the
// whole frame, which shifts fine geometry: it stages, and re-furnishes, but does not empty rooms
// or relight exteriors (docs/architecture.md "Models and operations").

/// Every operation at one price.
macro_rules! all_operations {
    ($price:expr) => {
        &[
            (Operation::Stage, $price),
            (Operation::Declutter, $price),
            (Operation::DeclutterAndStage, $price),
            (Operation::Twilight, $price),
        ]
    };
}
pub(super) static REGISTRY: [ModelSpec; 5] = [
    ModelSpec {
        id: DEFAULT_MODEL_ID,
        slug: "qwen-image-edit",
        display_name: "Qwen Image Edit",
        operations: all_operations!(UsdPrice(300)),
        fields: QWEN_FIELDS,
        input: InputShape {
            image_field: "image",
            image_as_array: false,
            seed_field: Some("seed"),
            fixed: &[],
        },
    },
    ModelSpec {
        id: "black-forest-labs/flux-kontext-pro",
        slug: "flux-kontext-pro",
        display_name: "FLUX.1 Kontext Pro",
        operations: all_operations!(UsdPrice(400)),
        fields: FLUX_KONTEXT_FIELDS,
        input: InputShape {
            image_field: "input_image",
            image_as_array: false,
            seed_field: Some("seed"),
            fixed: &[],
        },
    },
    ModelSpec {
        id: "black-forest-labs/flux-kontext-max",
        slug: "flux-kontext-max",
        display_name: "FLUX.1 Kontext Max",
        operations: all_operations!(UsdPrice(800)),
        fields: FLUX_KONTEXT_FIELDS,
        input: InputShape {
            image_field: "input_image",
            image_as_array: false,
            seed_field: Some("seed"),
            fixed: &[],
        },
    },
    ModelSpec {
        id: "bytedance/seedream-4",
        slug: "seedream-4",
        display_name: "Seedream 4",
        operations: all_operations!(UsdPrice(300)),
        fields: SEEDREAM_FIELDS,
        input: InputShape {
            image_field: "image_input",
            image_as_array: true,
            seed_field: None,
            fixed: &[
                ("max_images", FieldDefault::Integer(1)),
                ("sequential_image_generation", FieldDefault::Text("disabled")),
            ],
        },
    },
    ModelSpec {
        id: "openai/gpt-image-1",
        slug: "gpt-image-1",
        display_name: "GPT Image 1",
        operations: &[
            (Operation::Stage, UsdPrice(10)),
            (Operation::DeclutterAndStage, UsdPrice(10)),
        ],
        fields: GPT_IMAGE_FIELDS,
        input: InputShape {
            image_field: "input_images",
            image_as_array: true,
            seed_field: None,
            fixed: &[("number_of_images", FieldDefault::Integer(1))],
        },
    },
];

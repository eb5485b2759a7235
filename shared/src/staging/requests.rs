//! Staging requests as the client sends them (`POST /api/v1/images`, `POST /api/v1/images/batch`),
//! parsed into [`ImageRequest`]s.
//!
//! Bodies are parsed leniently (every field optional, text as text) and then validated field by
//! field, so a 422 lists every problem at once instead of serde's first one.

use serde::Deserialize;
use uuid::Uuid;

use crate::clients::storage::UploadKey;
use crate::platform::error::{ApiError, FieldError};
use crate::staging::vocabulary::{Operation, RoomType, Style, Treatment};

/// At most this many images per request, variations included.
pub const MAX_BATCH: usize = 50;
pub const MAX_SEED: i64 = 4_294_967_295;
/// At most this many variations of one photo per request (item).
pub const MAX_VARIATIONS: u8 = 4;

/// One image to stage, as sent by the client (`POST /api/v1/images`, and each batch item).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateImageBody {
    pub project_id: Option<String>,
    pub file_key: Option<String>,
    pub room_type: Option<String>,
    /// `stage` (default), `declutter`, `declutter_and_stage` or `twilight`.
    pub operation: Option<String>,
    /// Required when the operation furnishes the room (stage, declutter_and_stage), refused otherwise.
    pub style: Option<String>,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    /// How many images to make of this photo, 1–4 (default 1), each with its own seed.
    pub variations: Option<i64>,
}

/// Body of `POST /api/v1/images/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateImagesBatchBody {
    pub images: Vec<CreateImageBody>,
}

/// A create request whose fields are well-formed; ownership and storage are checked next.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub project_id: Uuid,
    pub file_key: UploadKey,
    pub room_type: RoomType,
    pub treatment: Treatment,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    /// 1–[`MAX_VARIATIONS`]: the images this request makes (see [`ImageRequest::seeds`]).
    pub variations: u8,
}

impl ImageRequest {
    /// The seed of each variation. One image keeps the request's seed (or none: the model picks).
    /// Several get distinct seeds, recorded on each image so any one can be made again: the
    /// request's seed and the ones after it (wrapping within 1..=MAX_SEED), or random ones.
    pub fn seeds(&self) -> Vec<Option<i64>> {
        let count = i64::from(self.variations.max(1));
        match self.seed {
            _ if count == 1 => vec![self.seed],
            Some(first) => (0..count).map(|i| Some((first - 1 + i) % MAX_SEED + 1)).collect(),
            None => {
                let mut seeds: Vec<Option<i64>> = Vec::new();
                while seeds.len() < count as usize {
                    let seed = random_seed();
                    if !seeds.contains(&Some(seed)) {
                        seeds.push(Some(seed));
                    }
                }
                seeds
            }
        }
    }
}

/// A random seed in 1..=[`MAX_SEED`].
pub fn random_seed() -> i64 {
    // v4 UUIDs carry 122 random bits; 32 of them make a seed.
    (Uuid::new_v4().as_u128() % MAX_SEED as u128) as i64 + 1
}

impl CreateImageBody {
    /// Validates every field; errors are named with `prefix` (e.g. `images[3].`).
    pub fn validate(self, owner: Uuid, prefix: &str, errors: &mut Vec<FieldError>) -> Option<ImageRequest> {
        let field = |name: &str| format!("{prefix}{name}");
        let project_id = match self.project_id.as_deref() {
            None => {
                errors.push(FieldError::new(field("project_id"), "is required"));
                None
            }
            Some(raw) => Uuid::parse_str(raw.trim()).ok().or_else(|| {
                errors.push(FieldError::new(field("project_id"), "must be a UUID"));
                None
            }),
        };
        let file_key = match self.file_key.as_deref() {
            None => {
                errors.push(FieldError::new(field("file_key"), "is required"));
                None
            }
            Some(raw) => match UploadKey::parse(raw) {
                Some(key) if key.user_id == owner => Some(key),
                _ => {
                    errors.push(FieldError::new(
                        field("file_key"),
                        "must be a file_key returned to you by POST /api/v1/uploads/presign",
                    ));
                    None
                }
            },
        };
        let room_type = match self.room_type.as_deref() {
            None => {
                errors.push(FieldError::new(field("room_type"), "is required"));
                None
            }
            Some(raw) => raw
                .parse::<RoomType>()
                .map_err(|m| errors.push(FieldError::new(field("room_type"), m)))
                .ok(),
        };
        let operation = match self.operation.as_deref() {
            None => Some(Operation::Stage),
            Some(raw) => raw
                .parse::<Operation>()
                .map_err(|m| errors.push(FieldError::new(field("operation"), m)))
                .ok(),
        };
        let style = match self.style.as_deref() {
            None => Some(None),
            Some(raw) => raw
                .parse::<Style>()
                .map(Some)
                .map_err(|m| errors.push(FieldError::new(field("style"), m)))
                .ok(),
        };
        // The pair is judged only when both parts parsed: one message per field.
        let treatment = match (operation, style) {
            (Some(operation), Some(style)) => Treatment::new(operation, style)
                .map_err(|(name, m)| errors.push(FieldError::new(field(name), m)))
                .ok(),
            _ => None,
        };
        if let (Some(treatment), Some(room)) = (treatment, room_type)
            && let Err(m) = treatment.operation().check_room(room)
        {
            errors.push(FieldError::new(field("operation"), m));
        }
        if let Some(seed) = self.seed
            && !(1..=MAX_SEED).contains(&seed)
        {
            errors.push(FieldError::new(
                field("seed"),
                format!("must be between 1 and {MAX_SEED}"),
            ));
        }
        let variations = match self.variations {
            None => Some(1),
            Some(n) if (1..=i64::from(MAX_VARIATIONS)).contains(&n) => Some(n as u8),
            Some(_) => {
                errors.push(FieldError::new(
                    field("variations"),
                    format!("must be between 1 and {MAX_VARIATIONS}"),
                ));
                None
            }
        };
        let prompt = match self.prompt.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if !(10..=2000).contains(&p.chars().count()) => {
                errors.push(FieldError::new(
                    field("prompt"),
                    "must be between 10 and 2000 characters",
                ));
                None
            }
            Some(p) if p.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                errors.push(FieldError::new(field("prompt"), "must not contain control characters"));
                None
            }
            Some(p) => Some(p.to_string()),
        };
        Some(ImageRequest {
            project_id: project_id?,
            file_key: file_key?,
            room_type: room_type?,
            treatment: treatment?,
            seed: self.seed,
            prompt,
            variations: variations?,
        })
    }
}

impl CreateImageBody {
    /// The one request of `POST /api/v1/images`, or a 422 naming every bad field.
    pub fn into_request(self, owner: Uuid) -> Result<ImageRequest, ApiError> {
        let mut errors = Vec::new();
        match self.validate(owner, "", &mut errors) {
            Some(request) if errors.is_empty() => Ok(request),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

impl CreateImagesBatchBody {
    /// The 1–[`MAX_BATCH`] requests of a batch, or a 422 naming every bad field of every item
    /// (`images[i].<field>`, see [`batch_field`]).
    pub fn into_requests(self, owner: Uuid) -> Result<Vec<ImageRequest>, ApiError> {
        if self.images.is_empty() || self.images.len() > MAX_BATCH {
            return Err(ApiError::validation(
                "images",
                format!("must contain between 1 and {MAX_BATCH} images"),
            ));
        }
        let mut errors = Vec::new();
        let mut requests = Vec::with_capacity(self.images.len());
        for (i, item) in self.images.into_iter().enumerate() {
            if let Some(request) = item.validate(owner, &batch_field(i), &mut errors) {
                requests.push(request);
            }
        }
        if errors.is_empty() {
            let images: usize = requests.iter().map(|r| usize::from(r.variations)).sum();
            if images > MAX_BATCH {
                return Err(ApiError::validation(
                    "images",
                    format!("must make at most {MAX_BATCH} images, variations included ({images} asked for)"),
                ));
            }
            Ok(requests)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// How a batch names the fields of its `i`th item in a 422: `images[i].`.
pub fn batch_field(i: usize) -> String {
    format!("images[{i}].")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::storage::ImageFormat;

    #[test]
    fn image_requests_are_validated_field_by_field() {
        let owner = Uuid::new_v4();
        let key = UploadKey::generate(owner, ImageFormat::Jpeg).to_string();
        let foreign = UploadKey::generate(Uuid::new_v4(), ImageFormat::Jpeg).to_string();
        let mut errors = Vec::new();
        let ok = CreateImageBody {
            project_id: Some(Uuid::new_v4().to_string()),
            file_key: Some(key),
            room_type: Some("bedroom".into()),
            operation: None,
            style: Some("modern".into()),
            seed: Some(42),
            prompt: None,
            variations: Some(4),
        };
        assert!(ok.validate(owner, "", &mut errors).is_some());
        assert!(errors.is_empty());
        let bad = CreateImageBody {
            project_id: Some("nope".into()),
            file_key: Some(foreign),
            room_type: Some("garage".into()),
            operation: Some("repaint".into()),
            style: Some("baroque".into()),
            seed: Some(0),
            prompt: Some("short".into()),
            variations: Some(5),
        };
        assert!(bad.validate(owner, &batch_field(2), &mut errors).is_none());
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "images[2].project_id",
                "images[2].file_key",
                "images[2].room_type",
                "images[2].operation",
                "images[2].style",
                "images[2].seed",
                "images[2].variations",
                "images[2].prompt"
            ]
        );
    }

    fn request(seed: Option<i64>, variations: u8) -> ImageRequest {
        let owner = Uuid::new_v4();
        ImageRequest {
            project_id: Uuid::new_v4(),
            file_key: UploadKey::generate(owner, ImageFormat::Jpeg),
            room_type: RoomType::Bedroom,
            treatment: Treatment::Stage(Style::Modern),
            seed,
            prompt: None,
            variations,
        }
    }

    fn body(operation: Option<&str>, room: &str, style: Option<&str>) -> CreateImageBody {
        let owner = Uuid::nil();
        CreateImageBody {
            project_id: Some(Uuid::new_v4().to_string()),
            file_key: Some(UploadKey::generate(owner, ImageFormat::Jpeg).to_string()),
            room_type: Some(room.into()),
            operation: operation.map(Into::into),
            style: style.map(Into::into),
            ..CreateImageBody::default()
        }
    }

    #[test]
    fn operations_take_a_style_only_when_they_furnish() {
        let check = |operation: Option<&str>, room: &str, style: Option<&str>| {
            let mut errors = Vec::new();
            let request = body(operation, room, style).validate(Uuid::nil(), "", &mut errors);
            (
                request.map(|r| r.treatment),
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            check(None, "bedroom", Some("modern")).0,
            Some(Treatment::Stage(Style::Modern))
        );
        assert_eq!(check(Some("declutter"), "bedroom", None).0, Some(Treatment::Declutter));
        assert_eq!(
            check(Some("declutter_and_stage"), "living_room", Some("industrial")).0,
            Some(Treatment::DeclutterAndStage(Style::Industrial))
        );
        assert_eq!(check(Some("twilight"), "outdoor", None).0, Some(Treatment::Twilight));
        assert_eq!(check(None, "bedroom", None).1, vec!["style: is required for stage"]);
        assert_eq!(
            check(Some("declutter_and_stage"), "bedroom", None).1,
            vec!["style: is required for declutter_and_stage"]
        );
        assert_eq!(
            check(Some("declutter"), "bedroom", Some("modern")).1,
            vec!["style: does not apply to declutter (only stage and declutter_and_stage furnish a room)"]
        );
        assert_eq!(
            check(Some("twilight"), "kitchen", None).1,
            vec!["operation: twilight is for exterior photos: use room_type outdoor"]
        );
        assert!(
            check(Some("Declutter"), "bedroom", None).1[0].starts_with("operation: must be one of: stage, declutter")
        );
    }

    #[test]
    fn each_variation_has_its_own_seed() {
        assert_eq!(request(None, 1).seeds(), vec![None]);
        assert_eq!(request(Some(7), 1).seeds(), vec![Some(7)]);
        assert_eq!(request(Some(7), 3).seeds(), vec![Some(7), Some(8), Some(9)]);
        // The range wraps instead of leaving it.
        assert_eq!(
            request(Some(MAX_SEED - 1), 3).seeds(),
            vec![Some(MAX_SEED - 1), Some(MAX_SEED), Some(1)]
        );
        let random = request(None, 4).seeds();
        let distinct: std::collections::HashSet<_> = random.iter().collect();
        assert_eq!(distinct.len(), 4);
        assert!(random.iter().all(|s| s.is_some_and(|s| (1..=MAX_SEED).contains(&s))));
    }
}

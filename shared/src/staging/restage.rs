//! `POST /api/v1/images/{id}/restage`: a new image from an existing image's original photo, with
//! another operation, style, room type or seed. The photo is not uploaded again: the new image
//! points at the same original (checked in storage like any create), and the allowance, the job
//! and the queue work exactly as for `POST /api/v1/images`.
//!
//! Omitted fields keep the source image's values, except the seed: a restage without one gets a
//! fresh random seed (recorded, so that take can be made again), because "the same again" is what
//! a restage with no changes is for. `prompt: ""` clears a custom prompt back to the library's.

use serde::Deserialize;
use uuid::Uuid;

use crate::db::images::Image;
use crate::platform::error::ApiError;
use crate::staging::requests::{CreateImageBody, ImageRequest, random_seed};

/// Body of `POST /api/v1/images/{id}/restage`; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestageBody {
    pub room_type: Option<String>,
    pub operation: Option<String>,
    pub style: Option<String>,
    pub seed: Option<i64>,
    pub prompt: Option<String>,
    pub variations: Option<i64>,
}

impl RestageBody {
    /// The create request this restage amounts to, validated like a create (422 naming every bad
    /// field). `source` is the caller's live image (the caller looked it up by owner).
    pub fn into_request(self, owner: Uuid, source: &Image) -> Result<ImageRequest, ApiError> {
        let operation = self.operation.unwrap_or_else(|| source.operation.as_str().to_owned());
        // The source's style carries over only to an operation that furnishes; asking for one
        // that does not furnish with an explicit style is refused by the validation below.
        let furnishes = operation
            .parse::<crate::staging::vocabulary::Operation>()
            .is_ok_and(|op| op.furnishes());
        let style = self
            .style
            .or_else(|| furnishes.then(|| source.style.map(|s| s.as_str().to_owned())).flatten());
        let prompt = match self.prompt {
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(text),
            None => source.prompt.clone(),
        };
        let seed = self.seed.or_else(|| Some(fresh_seed(source.seed)));
        CreateImageBody {
            project_id: Some(source.project_id.to_string()),
            file_key: Some(source.original_key.clone()),
            room_type: Some(self.room_type.unwrap_or_else(|| source.room_type.as_str().to_owned())),
            operation: Some(operation),
            style,
            seed,
            prompt,
            variations: self.variations,
        }
        .into_request(owner)
    }
}

/// A random seed other than the source's.
fn fresh_seed(source: Option<i64>) -> i64 {
    loop {
        let seed = random_seed();
        if Some(seed) != source {
            return seed;
        }
    }
}

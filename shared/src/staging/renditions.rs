//! Where renditions live and how they are stored: four objects per image, under server-chosen
//! keys (`renditions/<user>/<image>/<original|staged>-<preview|web>.jpg`), written by the worker
//! (the original's when its photo is checked, the result's when it is stored) or by the
//! reconciler for images staged before renditions existed; `images.renditions_at` records that
//! all four exist. Deleted with the image by the purge.

use uuid::Uuid;

use crate::clients::storage::Storage;
use crate::staging::imaging::{RenditionSize, Renditions};

/// Renditions never change once written (a new result is a new image).
const RENDITION_CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// Which photo of an image a rendition is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photo {
    Original,
    Staged,
}

impl Photo {
    pub fn as_str(self) -> &'static str {
        match self {
            Photo::Original => "original",
            Photo::Staged => "staged",
        }
    }
}

pub fn key(user_id: Uuid, image_id: Uuid, photo: Photo, size: RenditionSize) -> String {
    format!(
        "renditions/{user_id}/{image_id}/{}-{}.jpg",
        photo.as_str(),
        size.as_str()
    )
}

/// Every rendition key of an image.
pub fn all_keys(user_id: Uuid, image_id: Uuid) -> Vec<String> {
    [Photo::Original, Photo::Staged]
        .into_iter()
        .flat_map(|photo| RenditionSize::ALL.map(|size| key(user_id, image_id, photo, size)))
        .collect()
}

/// Stores both renditions of one photo (the same keys on every attempt: harmless to repeat).
pub async fn store(
    storage: &Storage,
    user_id: Uuid,
    image_id: Uuid,
    photo: Photo,
    renditions: Renditions,
) -> anyhow::Result<()> {
    for (size, jpeg) in renditions.into_parts() {
        storage
            .put(
                &key(user_id, image_id, photo, size),
                jpeg.bytes,
                "image/jpeg",
                RENDITION_CACHE_CONTROL,
            )
            .await?;
    }
    Ok(())
}

//! Renditions: smaller copies of a photo, made from pixels that are already decoded (never a
//! second decode): a **preview** of at most 480 px on the long side for grids and the share page,
//! and a **web** size of at most 1600 px for listing sites that refuse huge files. Never larger
//! than the photo itself. Resized with `fast_image_resize` (SIMD: NEON on arm64, AVX2/SSE4.1 on
//! x86) and a Lanczos3 filter, as libvips' thumbnail does; encoded as baseline JPEGs without
//! metadata, like every JPEG this service writes.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::{HuffmanTables, ImageProblem, Jpeg, encode_jpeg};
use crate::clients::storage::ImageFormat;

/// A rendition's size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenditionSize {
    /// At most 480 px on the long side: grids and the share page.
    Preview,
    /// At most 1600 px on the long side: listing sites.
    Web,
}

impl RenditionSize {
    pub const ALL: [RenditionSize; 2] = [RenditionSize::Preview, RenditionSize::Web];

    pub fn long_side(self) -> u32 {
        match self {
            RenditionSize::Preview => 480,
            RenditionSize::Web => 1600,
        }
    }

    /// Small files first: a preview is looked at small; the web size is what a listing shows.
    pub fn quality(self) -> u8 {
        match self {
            RenditionSize::Preview => 78,
            RenditionSize::Web => 85,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RenditionSize::Preview => "preview",
            RenditionSize::Web => "web",
        }
    }
}

/// Both renditions of one photo.
#[derive(Debug, Clone)]
pub struct Renditions {
    pub preview: Jpeg,
    pub web: Jpeg,
}

impl Renditions {
    /// Made from `rgb` (oriented, alpha flattened: as displayed).
    pub fn of(rgb: &RgbImage, source_format: ImageFormat) -> Result<Renditions, ImageProblem> {
        let mut resizer = Resizer::new();
        // The web size first; the preview from it when it is smaller: fewer pixels to filter.
        let web = fit(&mut resizer, rgb, RenditionSize::Web.long_side());
        let web_ref = web.as_ref().unwrap_or(rgb);
        let preview = fit(&mut resizer, web_ref, RenditionSize::Preview.long_side());
        Ok(Renditions {
            preview: encode_jpeg(
                preview.as_ref().unwrap_or(web_ref),
                RenditionSize::Preview.quality(),
                HuffmanTables::Optimized,
                source_format,
            )?,
            web: encode_jpeg(
                web_ref,
                RenditionSize::Web.quality(),
                HuffmanTables::Optimized,
                source_format,
            )?,
        })
    }

    pub fn get(&self, size: RenditionSize) -> &Jpeg {
        match size {
            RenditionSize::Preview => &self.preview,
            RenditionSize::Web => &self.web,
        }
    }

    pub fn into_parts(self) -> [(RenditionSize, Jpeg); 2] {
        [(RenditionSize::Preview, self.preview), (RenditionSize::Web, self.web)]
    }
}

/// The dimensions of `width`×`height` scaled so the long side is at most `long_side` (aspect kept,
/// never upscaled, never below 1 px).
pub fn fitted_dimensions(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= long_side {
        return (width, height);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(long_side) + u64::from(longest) / 2) / u64::from(longest)).max(1) as u32
    };
    (scale(width), scale(height))
}

/// `rgb` resized to fit `long_side`, or `None` when it already fits.
fn fit(resizer: &mut Resizer, rgb: &RgbImage, long_side: u32) -> Option<RgbImage> {
    let (width, height) = rgb.dimensions();
    let (to_width, to_height) = fitted_dimensions(width, height, long_side);
    if (to_width, to_height) == (width, height) {
        return None;
    }
    let simd = ImageRef::new(width, height, rgb.as_raw(), PixelType::U8x3)
        .ok()
        .and_then(|source| {
            let mut target = Image::new(to_width, to_height, PixelType::U8x3);
            let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
            resizer.resize(&source, &mut target, &options).ok()?;
            RgbImage::from_raw(to_width, to_height, target.into_vec())
        });
    // The buffers always match their dimensions, so the fallback is for the impossible case only:
    // a rendition must never come out at the wrong size.
    Some(
        simd.unwrap_or_else(|| {
            image::imageops::resize(rgb, to_width, to_height, image::imageops::FilterType::Lanczos3)
        }),
    )
}

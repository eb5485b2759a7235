//! Image checks and conversions for the staging pipeline, all synchronous CPU work (callers on
//! the async runtime run them in `spawn_blocking`):
//! - [`inspect_original`]: is an uploaded original a photo we can stage, before a model sees it
//! - [`reencode_as_jpeg`]: a model's output (JPEG, PNG or WebP) as a clean baseline JPEG
//! - [`simulated_staging`]: the offline simulator's visibly labelled stand-in result
//! - [`disclosed_variant`]: a staged photo with its burned-in disclosure label
//! - [`Renditions`]: the preview and web sizes of a photo, from the pixels each step above
//!   already decoded (`*_with_renditions`, [`renditions_of`])
//! - [`samples`]: generated test and demo images, good and bad
//!
//! Every input goes through the same gate: magic bytes in the allowlist (never the name or the
//! declared content type), the byte size, the dimensions read from the header and bounded before
//! any pixel buffer exists (a 100 000 × 100 000 PNG is a few dozen bytes), the JPEG end marker
//! (the JPEG decoder quietly fills in a truncated file), and then a full decode under
//! [`image::Limits`], which catches truncated or corrupt data in any format.

mod font;
mod jpeg;
mod renditions;
pub mod samples;
mod simulate;
mod sniff;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage};

use crate::clients::storage::ImageFormat;
use crate::staging::vocabulary::{RoomType, Treatment};
use jpeg::HuffmanTables;
pub use renditions::{RenditionSize, Renditions, fitted_dimensions};
use sniff::JpegEnd;

const MIB: usize = 1024 * 1024;

/// The decode budget allows 8-bit RGBA at the pixel limit; 16-bit images decode when they have
/// proportionally fewer pixels.
const BUDGET_BYTES_PER_PIXEL: u64 = 4;
/// Room for decoder bookkeeping beyond the output buffer (PNG row buffers, metadata chunks).
const DECODER_HEADROOM: u64 = 16 * MIB as u64;

/// The simulator works on at most this many pixels on the long side: it only has to look right,
/// and it runs on every local staging.
const SIMULATION_MAX_SIDE: u32 = 2048;
const SIMULATION_JPEG_QUALITY: u8 = 85;

/// What an image may be, checked before and while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: usize,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

impl ImageLimits {
    /// An uploaded photo: 10 MiB, at most 12 000 px on a side and 40 megapixels.
    pub const ORIGINAL: ImageLimits = ImageLimits {
        max_bytes: 10 * MIB,
        max_width: 12_000,
        max_height: 12_000,
        max_pixels: 40_000_000,
    };

    /// A model's output: larger files (PNG output is big), same pixel bounds.
    pub const MODEL_OUTPUT: ImageLimits = ImageLimits {
        max_bytes: 25 * MIB,
        max_width: 12_000,
        max_height: 12_000,
        max_pixels: 40_000_000,
    };

    /// The most the decoder may allocate, in bytes.
    fn decode_budget(&self) -> u64 {
        self.max_pixels
            .saturating_mul(BUDGET_BYTES_PER_PIXEL)
            .saturating_add(DECODER_HEADROOM)
    }
}

/// An image that passed every check and decoded completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedImage {
    pub format: ImageFormat,
    /// As displayed: the EXIF orientation is applied, so a portrait phone photo is portrait.
    pub width: u32,
    pub height: u32,
}

/// A freshly encoded baseline JPEG without metadata (no EXIF, XMP or ICC profile).
#[derive(Clone, PartialEq, Eq)]
pub struct Jpeg {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The format of the image it was made from.
    pub source_format: ImageFormat,
}

impl fmt::Debug for Jpeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jpeg")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("source_format", &self.source_format)
            .finish()
    }
}

/// Why an image was refused. The message tells the person who uploaded it what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImageProblem {
    #[error("the file is empty; upload the photo again")]
    Empty,

    #[error(
        "the file is not a JPEG, PNG or WebP image{}; save or export the photo as a JPEG and upload it again",
        LooksLike(*.looks_like)
    )]
    NotAnImage { looks_like: Option<&'static str> },

    #[error("the file is {}; the limit is {}; export a smaller JPEG and upload it again", Megabytes::over(*.size), Megabytes::limit(*.limit))]
    TooManyBytes { size: usize, limit: usize },

    #[error(
        "the image is {width}×{height} pixels; the limit is {max_width}×{max_height} pixels; resize it and upload it again"
    )]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },

    #[error("the image is {width}×{height} pixels; the limit is {} megapixels; resize it and upload it again", Megapixels(*.max_pixels))]
    TooManyPixels { width: u32, height: u32, max_pixels: u64 },

    #[error(
        "the image is {width}×{height} pixels, so there is no picture to stage; export the photo again and upload it"
    )]
    NoPixels { width: u32, height: u32 },

    #[error(
        "the image file is truncated: the {} data ends before the picture does; upload the photo again",
        format_name(*.format)
    )]
    Truncated { format: ImageFormat },

    #[error(
        "the image file is truncated or corrupt: the {} data cannot be decoded; check that the photo opens in an image viewer, export it again and upload it",
        format_name(*.format)
    )]
    Corrupt { format: ImageFormat },

    #[error(
        "the {} file uses an encoding this service cannot read; save it again as a standard {} and upload it",
        format_name(*.format),
        format_name(*.format)
    )]
    UnsupportedEncoding { format: ImageFormat },

    #[error(
        "the image needs more memory to decode than allowed (for example a 16-bit image this large); save it as an 8-bit JPEG or make it smaller, and upload it again"
    )]
    TooMuchMemory,

    #[error("the picture could not be written as a JPEG")]
    EncodeFailed(#[source] jpeg::EncodeError),
}

impl ImageProblem {
    /// A stable machine-readable name for logs, metrics and stored error codes.
    pub fn code(&self) -> &'static str {
        match self {
            ImageProblem::Empty => "empty_file",
            ImageProblem::NotAnImage { .. } => "not_an_image",
            ImageProblem::TooManyBytes { .. } => "file_too_large",
            ImageProblem::DimensionsTooLarge { .. } => "dimensions_too_large",
            ImageProblem::TooManyPixels { .. } => "too_many_pixels",
            ImageProblem::NoPixels { .. } => "no_pixels",
            ImageProblem::Truncated { .. } => "truncated",
            ImageProblem::Corrupt { .. } => "corrupt",
            ImageProblem::UnsupportedEncoding { .. } => "unsupported_encoding",
            ImageProblem::TooMuchMemory => "too_much_memory",
            ImageProblem::EncodeFailed(_) => "encode_failed",
        }
    }
}

/// Checks an uploaded original: magic bytes in the allowlist, size, dimensions read from the
/// header and bounded before decoding, then a full decode under [`image::Limits`] so truncated and
/// corrupt files are caught here rather than by the model. Never panics.
pub fn inspect_original(bytes: &[u8], limits: &ImageLimits) -> Result<CheckedImage, ImageProblem> {
    let decoded = decode(bytes, limits)?;
    let (width, height) = decoded.oriented_dimensions();
    Ok(CheckedImage {
        format: decoded.format,
        width,
        height,
    })
}

/// [`inspect_original`], with the photo's renditions made from the same decoded pixels.
pub fn inspect_original_with_renditions(
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<(CheckedImage, Renditions), ImageProblem> {
    let decoded = decode(bytes, limits)?;
    let format = decoded.format;
    let rgb = flatten_onto_white(decoded.into_oriented_image());
    let checked = CheckedImage {
        format,
        width: rgb.width(),
        height: rgb.height(),
    };
    Ok((checked, Renditions::of(&rgb, format)?))
}

/// The renditions of a stored photo (checked and decoded once, like an original): what the
/// reconciler uses for photos stored before renditions existed.
pub fn renditions_of(bytes: &[u8], limits: &ImageLimits) -> Result<Renditions, ImageProblem> {
    inspect_original_with_renditions(bytes, limits).map(|(_, renditions)| renditions)
}

/// [`reencode_as_jpeg`], with the result's renditions made from the same pixels.
pub fn reencode_with_renditions(
    bytes: &[u8],
    limits: &ImageLimits,
    quality: u8,
) -> Result<(Jpeg, Renditions), ImageProblem> {
    let decoded = decode(bytes, limits)?;
    let format = decoded.format;
    let rgb = flatten_onto_white(decoded.into_oriented_image());
    Ok((
        encode_jpeg(&rgb, quality, HuffmanTables::Standard, format)?,
        Renditions::of(&rgb, format)?,
    ))
}

/// A model's output (JPEG, PNG or WebP, checked like an original) as a clean baseline JPEG at
/// `quality` (1..=100): EXIF orientation applied, then every metadata segment dropped, and any
/// transparency flattened onto white.
pub fn reencode_as_jpeg(bytes: &[u8], limits: &ImageLimits, quality: u8) -> Result<Jpeg, ImageProblem> {
    let decoded = decode(bytes, limits)?;
    let format = decoded.format;
    let rgb = flatten_onto_white(decoded.into_oriented_image());
    encode_jpeg(&rgb, quality, HuffmanTables::Standard, format)
}

/// The offline simulator's result: the original (checked like any original, at most 2048 px on
/// the long side) with a style tint, a few flat furniture shapes for the room, and a banner that
/// reads "SIMULATED STAGING" and the operation, room and style, e.g. "LIVING ROOM / MODERN".
/// The job's seed arranges the furniture, so variations differ; the same seed, the same picture.
pub fn simulated_staging(
    original: &[u8],
    room: RoomType,
    treatment: Treatment,
    seed: Option<i64>,
    limits: &ImageLimits,
) -> Result<Jpeg, ImageProblem> {
    simulated_staging_with_renditions(original, room, treatment, seed, limits).map(|(jpeg, _)| jpeg)
}

/// [`simulated_staging`], with the result's renditions made from the same pixels.
pub fn simulated_staging_with_renditions(
    original: &[u8],
    room: RoomType,
    treatment: Treatment,
    seed: Option<i64>,
    limits: &ImageLimits,
) -> Result<(Jpeg, Renditions), ImageProblem> {
    let decoded = decode(original, limits)?;
    let format = decoded.format;
    let mut image = decoded.into_oriented_image();
    if image.width().max(image.height()) > SIMULATION_MAX_SIDE {
        image = image.thumbnail(SIMULATION_MAX_SIDE, SIMULATION_MAX_SIDE);
    }
    let mut rgb = flatten_onto_white(image);
    simulate::stage(&mut rgb, room, treatment, seed);
    Ok((
        encode_jpeg(&rgb, SIMULATION_JPEG_QUALITY, HuffmanTables::Standard, format)?,
        Renditions::of(&rgb, format)?,
    ))
}

/// The staged photo with its disclosure label burned in (`text`, see
/// [`crate::sharing::label`]): the same pixels and dimensions, checked and decoded like a model's
/// output, re-encoded at the staged photo's quality.
pub fn disclosed_variant(staged: &[u8], text: &str, limits: &ImageLimits, quality: u8) -> Result<Jpeg, ImageProblem> {
    let decoded = decode(staged, limits)?;
    let format = decoded.format;
    let mut rgb = flatten_onto_white(decoded.into_oriented_image());
    crate::sharing::label::burn_label(&mut rgb, text);
    encode_jpeg(&rgb, quality, HuffmanTables::Standard, format)
}

struct Decoded {
    format: ImageFormat,
    image: DynamicImage,
    orientation: Orientation,
}

impl Decoded {
    fn oriented_dimensions(&self) -> (u32, u32) {
        let (width, height) = (self.image.width(), self.image.height());
        match self.orientation {
            Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH => (height, width),
            _ => (width, height),
        }
    }

    fn into_oriented_image(self) -> DynamicImage {
        let mut image = self.image;
        image.apply_orientation(self.orientation);
        image
    }
}

/// The gate every input goes through; see the module documentation for the order and why.
fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<Decoded, ImageProblem> {
    if bytes.is_empty() {
        return Err(ImageProblem::Empty);
    }
    let Some(format) = sniff::sniff(bytes) else {
        return Err(ImageProblem::NotAnImage {
            looks_like: sniff::looks_like(bytes),
        });
    };
    if bytes.len() > limits.max_bytes {
        return Err(ImageProblem::TooManyBytes {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }

    // Opening a decoder parses the header only; no pixel buffer exists yet. Only the allocation
    // budget applies here (metadata chunks), so oversized dimensions are reported with numbers
    // below rather than as the decoder's anonymous limit error.
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(limits.decode_budget());
    let mut reader = ImageReader::with_format(Cursor::new(bytes), codec_format(format));
    reader.limits(header_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|error| match sniff::png_claimed_dimensions(bytes) {
            // The PNG decoder refuses a zero side with a generic error; name the problem instead.
            Some((width, height)) if format == ImageFormat::Png && (width == 0 || height == 0) => {
                ImageProblem::NoPixels { width, height }
            }
            _ => problem_from_decoder(error, format),
        })?;

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    if format == ImageFormat::Jpeg {
        match sniff::jpeg_end(bytes) {
            JpegEnd::Complete => {}
            JpegEnd::Truncated => return Err(ImageProblem::Truncated { format }),
            JpegEnd::Malformed => return Err(ImageProblem::Corrupt { format }),
        }
    }
    if decoder.total_bytes() > limits.decode_budget() {
        return Err(ImageProblem::TooMuchMemory);
    }

    let mut strict_limits = Limits::default();
    strict_limits.max_image_width = Some(limits.max_width);
    strict_limits.max_image_height = Some(limits.max_height);
    strict_limits.max_alloc = Some(limits.decode_budget());
    decoder
        .set_limits(strict_limits)
        .map_err(|error| problem_from_decoder(error, format))?;
    // Orientation lives in metadata; unreadable metadata must not sink a decodable photo.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);

    let image = DynamicImage::from_decoder(decoder).map_err(|error| problem_from_decoder(error, format))?;
    if (image.width(), image.height()) != (width, height) {
        return Err(ImageProblem::Corrupt { format });
    }
    Ok(Decoded {
        format,
        image,
        orientation,
    })
}

fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ImageProblem> {
    if width == 0 || height == 0 {
        return Err(ImageProblem::NoPixels { width, height });
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(ImageProblem::DimensionsTooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageProblem::TooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn problem_from_decoder(error: ImageError, format: ImageFormat) -> ImageProblem {
    match error {
        ImageError::Limits(_) => ImageProblem::TooMuchMemory,
        ImageError::Unsupported(_) => ImageProblem::UnsupportedEncoding { format },
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => ImageProblem::Truncated { format },
        _ => ImageProblem::Corrupt { format },
    }
}

/// Composites any alpha channel over white (JPEG has none; black would be the default).
fn flatten_onto_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let (c, a) = (u32::from(c), u32::from(a));
            // A weighted mean of c and 255, rounded: never above 255.
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn encode_jpeg(
    rgb: &RgbImage,
    quality: u8,
    huffman: HuffmanTables,
    source_format: ImageFormat,
) -> Result<Jpeg, ImageProblem> {
    Ok(Jpeg {
        bytes: jpeg::encode(rgb, quality, huffman).map_err(ImageProblem::EncodeFailed)?,
        width: rgb.width(),
        height: rgb.height(),
        source_format,
    })
}

fn codec_format(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Webp => image::ImageFormat::WebP,
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::Webp => "WebP",
    }
}

/// " (it looks like an HTML page)" or nothing.
struct LooksLike(Option<&'static str>);

impl fmt::Display for LooksLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(what) => write!(f, " (it looks like {what})"),
            None => Ok(()),
        }
    }
}

/// A byte count in MB (MiB) with one decimal, rounded so a file over a limit never reads as
/// equal to it.
struct Megabytes {
    tenths: u64,
}

impl Megabytes {
    fn over(bytes: usize) -> Megabytes {
        Megabytes {
            tenths: (bytes as u64).saturating_mul(10).div_ceil(MIB as u64),
        }
    }

    fn limit(bytes: usize) -> Megabytes {
        Megabytes {
            tenths: (bytes as u64).saturating_mul(10) / MIB as u64,
        }
    }
}

impl fmt::Display for Megabytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tenths(f, self.tenths)?;
        f.write_str(" MB")
    }
}

/// A pixel count in megapixels with at most one decimal.
struct Megapixels(u64);

impl fmt::Display for Megapixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tenths(f, self.0 / 100_000)
    }
}

fn write_tenths(f: &mut fmt::Formatter<'_>, tenths: u64) -> fmt::Result {
    match tenths % 10 {
        0 => write!(f, "{}", tenths / 10),
        fraction => write!(f, "{}.{fraction}", tenths / 10),
    }
}

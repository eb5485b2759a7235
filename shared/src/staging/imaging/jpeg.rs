//! JPEG encoding with mozjpeg's libjpeg-turbo core: SIMD colour conversion, downsampling and DCT
//! (NASM on x86_64, NEON on arm64), 3–5× faster than the pure-Rust encoder it replaced at the
//! same quality (docs/benchmarks.md).
//!
//! Settings are libjpeg-turbo's (`set_fastest_defaults`), which is also what libvips writes:
//! baseline, 4:2:0 chroma, the standard quantisation tables scaled by quality. Huffman tables are
//! the standard ones unless the caller asks for [`HuffmanTables::Optimized`]: an extra pass that
//! makes a detailed photo 1–17 % smaller but its encode 3–4× slower (docs/benchmarks.md), worth
//! it only for the small renditions that grids download again and again. Only SOI, the JFIF APP0
//! segment and the frame are written: no EXIF, XMP or ICC segment, which is how metadata stays
//! stripped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::RgbImage;
use mozjpeg::{ColorSpace, Compress};

/// The largest side libjpeg can write (JPEG_MAX_DIMENSION).
const MAX_SIDE: u32 = 65_500;

/// Why a picture could not be written; only a bug or an exhausted allocator gets here, since
/// every image is bounded by [`super::ImageLimits`] long before it is encoded.
#[derive(Debug, thiserror::Error)]
#[error("JPEG encoder: {0}")]
pub struct EncodeError(String);

/// Which Huffman tables a JPEG is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HuffmanTables {
    /// The JPEG standard's example tables: one pass, the fastest.
    Standard,
    /// Tables computed for this picture: smaller files, a slower encode.
    Optimized,
}

pub(super) fn encode(rgb: &RgbImage, quality: u8, huffman: HuffmanTables) -> Result<Vec<u8>, EncodeError> {
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(EncodeError(format!(
            "a JPEG is 1 to {MAX_SIDE} pixels a side, not {width}×{height}"
        )));
    }
    // libjpeg reports errors by calling an error handler that must not return; mozjpeg's
    // unwinds (a panic through the C frames, built with "C-unwind"), so the panic is caught here
    // and becomes an error of this one picture. The buffers inside are dropped with it.
    let written = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut compress = Compress::new(ColorSpace::JCS_RGB);
        compress.set_fastest_defaults();
        compress.set_size(width as usize, height as usize);
        compress.set_quality(f32::from(quality.clamp(1, 100)));
        compress.set_optimize_coding(huffman == HuffmanTables::Optimized);
        let expected = (width as usize * height as usize) / 4;
        let mut started = compress.start_compress(Vec::with_capacity(expected))?;
        started.write_scanlines(rgb.as_raw())?;
        started.finish()
    }));
    match written {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(io)) => Err(EncodeError(io.to_string())),
        Err(panic) => Err(EncodeError(
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg stopped with an error")
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_baseline_jfif_without_metadata_that_decodes_to_the_same_size() {
        let rgb = RgbImage::from_fn(37, 23, |x, y| image::Rgb([(x * 6) as u8, (y * 11) as u8, 128]));
        let bytes = encode(&rgb, 85, HuffmanTables::Standard).unwrap();
        assert_eq!(&bytes[..4], &[0xFF, 0xD8, 0xFF, 0xE0], "SOI then JFIF APP0");
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9]);
        // Every marker segment before the scan: only APP0, DQT, SOF0 (baseline), DHT, SOS.
        let mut at = 2;
        let mut markers = Vec::new();
        while bytes[at] == 0xFF && bytes[at + 1] != 0xDA {
            markers.push(bytes[at + 1]);
            at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        }
        assert!(
            markers.iter().all(|m| [0xE0, 0xDB, 0xC0, 0xC4].contains(m)),
            "{markers:x?}"
        );
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (37, 23));
        let centre = back.to_rgb8().get_pixel(18, 11).0;
        let expected = rgb.get_pixel(18, 11).0;
        for (got, want) in centre.iter().zip(expected) {
            assert!(got.abs_diff(want) < 12, "{centre:?} vs {expected:?}");
        }
    }

    #[test]
    fn quality_changes_the_size_and_is_clamped() {
        let rgb = RgbImage::from_fn(256, 256, |x, y| {
            image::Rgb([(x ^ y) as u8, (x * y) as u8, (x + y) as u8])
        });
        let low = encode(&rgb, 30, HuffmanTables::Standard).unwrap().len();
        let high = encode(&rgb, 95, HuffmanTables::Standard).unwrap().len();
        assert!(low * 2 < high, "{low} vs {high}");
        assert_eq!(
            encode(&rgb, 0, HuffmanTables::Standard).unwrap(),
            encode(&rgb, 1, HuffmanTables::Standard).unwrap()
        );
    }

    #[test]
    fn optimized_huffman_tables_make_a_smaller_file_of_the_same_picture() {
        let rgb = RgbImage::from_fn(320, 240, |x, y| {
            let v = (x * 7 + y * 13) ^ (x * y);
            image::Rgb([v as u8, (v >> 2) as u8, (x + y) as u8])
        });
        let standard = encode(&rgb, 80, HuffmanTables::Standard).unwrap();
        let optimized = encode(&rgb, 80, HuffmanTables::Optimized).unwrap();
        assert!(
            optimized.len() < standard.len(),
            "{} vs {}",
            optimized.len(),
            standard.len()
        );
        // Only the entropy coding differs: both decode to the same pixels.
        let decode = |bytes: &[u8]| image::load_from_memory(bytes).unwrap().to_rgb8().into_raw();
        assert_eq!(decode(&standard), decode(&optimized));
    }

    #[test]
    fn an_empty_or_oversized_picture_is_an_error_not_a_panic() {
        for (width, height) in [(0, 0), (0, 5), (5, 0), (65_501, 1), (1, 65_501)] {
            let error = encode(&RgbImage::new(width, height), 80, HuffmanTables::Optimized).unwrap_err();
            assert!(error.to_string().contains("pixels a side"), "{error}");
        }
    }
}

//! The image path's tests: every check before decoding (magic bytes, header dimensions, pixel
//! floods, truncation), orientation, alpha, metadata stripping and re-encoding, on real files.
//! Long because each hostile input is its own case; they share the fixtures below.

use std::path::PathBuf;

use image::{GenericImageView, ImageEncoder, Rgba, RgbaImage};

use super::samples::{
    html_named_jpeg, pixel_flood_png, png_with_claimed_size, room_jpeg, room_png, room_webp, truncated_jpeg,
};
use super::sniff::jpeg_header_markers;
use super::*;
use crate::staging::vocabulary::Style;

/// The demo photo the README uses; regenerate with
/// `cargo test --workspace --lib -- --ignored imaging::tests::write_sample_photo`.
const SAMPLE_PHOTO: &str = "dev/sample/empty-living-room.jpg";
const SAMPLE_PHOTO_SIZE: (u32, u32) = (1280, 854);
const SAMPLE_PHOTO_MAX_BYTES: usize = 300 * 1024;

const ORIGINAL: &ImageLimits = &ImageLimits::ORIGINAL;
const MODEL_OUTPUT: &ImageLimits = &ImageLimits::MODEL_OUTPUT;

fn sample_photo_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(SAMPLE_PHOTO)
}

fn decode_jpeg(bytes: &[u8]) -> DynamicImage {
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "not a JPEG");
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap()
}

/// `jpeg` with one more segment right after SOI.
fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An APP1 Exif payload with one IFD entry: the orientation tag.
fn exif_with_orientation(orientation: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0II*\0".to_vec();
    payload.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    payload.extend_from_slice(&1u16.to_le_bytes()); // one entry
    payload.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    payload.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    payload.extend_from_slice(&1u32.to_le_bytes()); // count
    payload.extend_from_slice(&orientation.to_le_bytes());
    payload.extend_from_slice(&[0, 0]);
    payload.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    payload
}

fn rgba_png(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgba8,
        )
        .unwrap();
    out
}

#[test]
fn every_sample_format_passes_inspection() {
    for (bytes, format) in [
        (room_jpeg(320, 240), ImageFormat::Jpeg),
        (room_png(320, 240), ImageFormat::Png),
        (room_webp(320, 240), ImageFormat::Webp),
    ] {
        let checked = inspect_original(&bytes, ORIGINAL).unwrap();
        assert_eq!(
            checked,
            CheckedImage {
                format,
                width: 320,
                height: 240
            }
        );
    }
}

#[test]
fn the_committed_sample_photo_passes_inspection() {
    let bytes = std::fs::read(sample_photo_path()).unwrap();
    assert!(bytes.len() <= SAMPLE_PHOTO_MAX_BYTES, "{} bytes", bytes.len());
    let checked = inspect_original(&bytes, ORIGINAL).unwrap();
    assert_eq!(
        checked,
        CheckedImage {
            format: ImageFormat::Jpeg,
            width: SAMPLE_PHOTO_SIZE.0,
            height: SAMPLE_PHOTO_SIZE.1
        }
    );
}

/// Writes the README's demo photo. Run after changing the sample room:
/// `cargo test --workspace --lib -- --ignored imaging::tests::write_sample_photo`
#[test]
#[ignore = "writes dev/sample/empty-living-room.jpg"]
fn write_sample_photo() {
    let bytes = room_jpeg(SAMPLE_PHOTO_SIZE.0, SAMPLE_PHOTO_SIZE.1);
    assert!(bytes.len() <= SAMPLE_PHOTO_MAX_BYTES, "{} bytes", bytes.len());
    let path = sample_photo_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_pixel_flood_is_refused_from_its_header() {
    let bomb = pixel_flood_png();
    let problem = inspect_original(&bomb, ORIGINAL).unwrap_err();
    assert!(
        matches!(
            problem,
            ImageProblem::DimensionsTooLarge {
                width: 100_000,
                height: 100_000,
                max_width: 12_000,
                max_height: 12_000
            }
        ),
        "{problem:?}"
    );
    assert_eq!(
        problem.to_string(),
        "the image is 100000×100000 pixels; the limit is 12000×12000 pixels; resize it and upload it again"
    );
    assert!(matches!(
        reencode_as_jpeg(&bomb, MODEL_OUTPUT, 90),
        Err(ImageProblem::DimensionsTooLarge { .. })
    ));
}

#[test]
fn too_many_pixels_within_the_side_limits_is_refused_from_the_header() {
    let problem = inspect_original(&png_with_claimed_size(10_000, 10_000), ORIGINAL).unwrap_err();
    assert!(
        matches!(
            problem,
            ImageProblem::TooManyPixels {
                width: 10_000,
                height: 10_000,
                ..
            }
        ),
        "{problem:?}"
    );
    assert_eq!(
        problem.to_string(),
        "the image is 10000×10000 pixels; the limit is 40 megapixels; resize it and upload it again"
    );
}

#[test]
fn a_zero_sized_image_is_refused() {
    for (width, height) in [(0, 100), (100, 0), (0, 0)] {
        let problem = inspect_original(&png_with_claimed_size(width, height), ORIGINAL).unwrap_err();
        assert!(matches!(problem, ImageProblem::NoPixels { width: w, height: h } if (w, h) == (width, height)));
        assert!(
            problem
                .to_string()
                .starts_with(&format!("the image is {width}×{height} pixels")),
            "{problem}"
        );
    }
}

#[test]
fn a_claimed_size_without_the_data_is_corrupt() {
    let problem = inspect_original(&png_with_claimed_size(64, 64), ORIGINAL).unwrap_err();
    assert!(
        matches!(problem, ImageProblem::Truncated { .. } | ImageProblem::Corrupt { .. }),
        "{problem:?}"
    );
}

#[test]
fn a_truncated_jpeg_is_refused_although_the_decoder_would_fill_it_in() {
    let problem = inspect_original(&truncated_jpeg(), ORIGINAL).unwrap_err();
    assert!(
        matches!(
            problem,
            ImageProblem::Truncated {
                format: ImageFormat::Jpeg
            }
        ),
        "{problem:?}"
    );
    assert!(
        problem.to_string().starts_with("the image file is truncated"),
        "{problem}"
    );
    assert!(matches!(
        reencode_as_jpeg(&truncated_jpeg(), MODEL_OUTPUT, 90),
        Err(ImageProblem::Truncated { .. })
    ));
}

#[test]
fn truncated_png_and_webp_are_refused() {
    // A PNG cut inside its 12-byte IEND trailer still holds every pixel and is accepted, as by
    // image viewers; any cut into the image data is refused.
    for bytes in [room_png(320, 240), room_webp(320, 240)] {
        for cut in [
            40,
            bytes.len() / 2,
            bytes.len() - 100,
            bytes.len() - 20,
            bytes.len() - 14,
        ] {
            let problem = inspect_original(&bytes[..cut], ORIGINAL).unwrap_err();
            assert!(
                matches!(problem, ImageProblem::Truncated { .. } | ImageProblem::Corrupt { .. }),
                "cut at {cut}: {problem:?}"
            );
        }
    }
}

#[test]
fn an_html_page_named_jpg_is_not_an_image() {
    let problem = inspect_original(&html_named_jpeg(), ORIGINAL).unwrap_err();
    assert!(
        matches!(
            problem,
            ImageProblem::NotAnImage {
                looks_like: Some("an HTML page")
            }
        ),
        "{problem:?}"
    );
    assert_eq!(
        problem.to_string(),
        "the file is not a JPEG, PNG or WebP image (it looks like an HTML page); save or export the photo as a JPEG \
         and upload it again"
    );
    assert!(matches!(
        reencode_as_jpeg(&html_named_jpeg(), MODEL_OUTPUT, 90),
        Err(ImageProblem::NotAnImage { .. })
    ));
}

#[test]
fn other_formats_and_empty_files_are_refused() {
    assert!(matches!(inspect_original(b"", ORIGINAL), Err(ImageProblem::Empty)));
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    let problem = inspect_original(gif, ORIGINAL).unwrap_err();
    assert!(
        matches!(
            problem,
            ImageProblem::NotAnImage {
                looks_like: Some("a GIF image")
            }
        ),
        "{problem:?}"
    );
    let unknown = inspect_original(&[0u8; 64], ORIGINAL).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "the file is not a JPEG, PNG or WebP image; save or export the photo as a JPEG and upload it again"
    );
    // Magic bytes alone are not enough.
    assert!(matches!(
        inspect_original(&[0xFF, 0xD8, 0xFF], ORIGINAL),
        Err(ImageProblem::Corrupt { .. } | ImageProblem::Truncated { .. })
    ));
}

#[test]
fn files_over_the_byte_limit_are_refused_before_decoding() {
    // Bytes after the end marker are ignored by decoders, so this is a valid 1.5 MiB JPEG.
    let mut padded = room_jpeg(64, 48);
    padded.resize(3 * MIB / 2, 0);
    let limits = ImageLimits {
        max_bytes: MIB,
        ..ImageLimits::ORIGINAL
    };
    let problem = inspect_original(&padded, &limits).unwrap_err();
    assert!(matches!(problem, ImageProblem::TooManyBytes { size, limit } if size == 3 * MIB / 2 && limit == MIB));
    assert_eq!(
        problem.to_string(),
        "the file is 1.5 MB; the limit is 1 MB; export a smaller JPEG and upload it again"
    );
    assert!(inspect_original(&padded, ORIGINAL).is_ok());
}

#[test]
fn side_limits_apply_to_width_and_height() {
    let limits = ImageLimits {
        max_width: 300,
        max_height: 300,
        ..ImageLimits::ORIGINAL
    };
    let wide = inspect_original(&room_png(320, 100), &limits).unwrap_err();
    assert!(
        matches!(
            wide,
            ImageProblem::DimensionsTooLarge {
                width: 320,
                height: 100,
                ..
            }
        ),
        "{wide:?}"
    );
    let tall = inspect_original(&room_webp(100, 320), &limits).unwrap_err();
    assert!(
        matches!(
            tall,
            ImageProblem::DimensionsTooLarge {
                width: 100,
                height: 320,
                ..
            }
        ),
        "{tall:?}"
    );
    assert!(inspect_original(&room_jpeg(300, 300), &limits).is_ok());
}

#[test]
fn png_and_webp_output_become_valid_jpegs() {
    for (bytes, format) in [
        (room_png(200, 150), ImageFormat::Png),
        (room_webp(200, 150), ImageFormat::Webp),
        (room_jpeg(200, 150), ImageFormat::Jpeg),
    ] {
        let jpeg = reencode_as_jpeg(&bytes, MODEL_OUTPUT, 90).unwrap();
        assert_eq!((jpeg.width, jpeg.height, jpeg.source_format), (200, 150, format));
        let decoded = decode_jpeg(&jpeg.bytes);
        assert_eq!(decoded.dimensions(), (200, 150));
        assert_eq!(
            inspect_original(&jpeg.bytes, ORIGINAL).unwrap().format,
            ImageFormat::Jpeg
        );
        // The picture survives: the floor stays brown.
        let floor = decoded.get_pixel(100, 145).0;
        assert!(floor[0] > floor[2] + 30, "{floor:?}");
    }
}

#[test]
fn reencoding_strips_exif_and_icc_segments_and_writes_a_baseline_frame() {
    let original = room_jpeg(64, 48);
    let with_exif = with_segment(&original, 0xE1, &exif_with_orientation(1));
    let with_metadata = with_segment(&with_exif, 0xE2, b"ICC_PROFILE\0\x01\x01not really a profile");
    let markers_in = jpeg_header_markers(&with_metadata);
    assert!(
        markers_in.contains(&0xE1) && markers_in.contains(&0xE2),
        "{markers_in:x?}"
    );

    let jpeg = reencode_as_jpeg(&with_metadata, MODEL_OUTPUT, 90).unwrap();
    let markers_out = jpeg_header_markers(&jpeg.bytes);
    assert!(
        !markers_out.contains(&0xE1),
        "APP1 (EXIF/XMP) left in: {markers_out:x?}"
    );
    assert!(!markers_out.contains(&0xE2), "APP2 (ICC) left in: {markers_out:x?}");
    assert!(markers_out.contains(&0xC0), "no baseline SOF0: {markers_out:x?}");
    assert!(
        !markers_out
            .iter()
            .any(|m| matches!(m, 0xC1..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF))
    );
    assert_eq!(decode_jpeg(&jpeg.bytes).dimensions(), (64, 48));
}

#[test]
fn exif_orientation_is_applied_before_it_is_stripped() {
    let portrait_on_its_side = with_segment(&room_jpeg(64, 48), 0xE1, &exif_with_orientation(6));
    let checked = inspect_original(&portrait_on_its_side, ORIGINAL).unwrap();
    assert_eq!((checked.width, checked.height), (48, 64));
    let jpeg = reencode_as_jpeg(&portrait_on_its_side, MODEL_OUTPUT, 90).unwrap();
    assert_eq!((jpeg.width, jpeg.height), (48, 64));
    assert_eq!(decode_jpeg(&jpeg.bytes).dimensions(), (48, 64));
}

#[test]
fn transparency_is_flattened_onto_white() {
    let mut rgba = RgbaImage::new(16, 16);
    for (x, _, pixel) in rgba.enumerate_pixels_mut() {
        *pixel = if x < 8 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([220, 20, 20, 255])
        };
    }
    let jpeg = reencode_as_jpeg(&rgba_png(&rgba), MODEL_OUTPUT, 95).unwrap();
    assert_eq!(jpeg.source_format, ImageFormat::Png);
    let decoded = decode_jpeg(&jpeg.bytes).to_rgb8();
    let clear = decoded.get_pixel(2, 8).0;
    let red = decoded.get_pixel(13, 8).0;
    assert!(clear.iter().all(|&c| c > 240), "transparent became {clear:?}");
    assert!(red[0] > 190 && red[1] < 60 && red[2] < 60, "opaque red became {red:?}");

    let half = flatten_onto_white(DynamicImage::ImageRgba8(RgbaImage::from_pixel(
        1,
        1,
        Rgba([0, 0, 0, 128]),
    )));
    assert_eq!(half.get_pixel(0, 0).0, [127, 127, 127]);
}

#[test]
fn quality_trades_size_and_is_clamped() {
    let png = room_png(320, 240);
    let low = reencode_as_jpeg(&png, MODEL_OUTPUT, 30).unwrap();
    let high = reencode_as_jpeg(&png, MODEL_OUTPUT, 95).unwrap();
    assert!(
        low.bytes.len() < high.bytes.len(),
        "{} vs {}",
        low.bytes.len(),
        high.bytes.len()
    );
    for quality in [0, 1, 100, 255] {
        let jpeg = reencode_as_jpeg(&png, MODEL_OUTPUT, quality).unwrap();
        assert_eq!(decode_jpeg(&jpeg.bytes).dimensions(), (320, 240));
    }
}

#[test]
fn simulated_staging_labels_the_original() {
    for (original, format) in [
        (room_jpeg(640, 427), ImageFormat::Jpeg),
        (room_png(640, 427), ImageFormat::Png),
        (room_webp(640, 427), ImageFormat::Webp),
    ] {
        let staged = simulated_staging(
            &original,
            RoomType::LivingRoom,
            Treatment::Stage(Style::Modern),
            None,
            ORIGINAL,
        )
        .unwrap();
        assert_eq!((staged.width, staged.height, staged.source_format), (640, 427, format));
        let staged_pixels = decode_jpeg(&staged.bytes).to_rgb8();
        let original_pixels = image::load_from_memory(&original).unwrap().to_rgb8();
        assert_eq!(staged_pixels.dimensions(), original_pixels.dimensions());
        let changed = staged_pixels
            .pixels()
            .zip(original_pixels.pixels())
            .filter(|(a, b)| a.0.iter().zip(b.0.iter()).any(|(x, y)| x.abs_diff(*y) > 24))
            .count();
        assert!(changed > 640 * 427 / 5, "only {changed} pixels changed");
        // The banner across the top is dark, where the sample's ceiling is near white.
        let banner = staged_pixels.get_pixel(2, 2).0;
        assert!(banner.iter().all(|&c| c < 60), "{banner:?}");
    }
}

#[test]
fn simulated_staging_downscales_large_originals() {
    let staged = simulated_staging(
        &room_jpeg(2200, 550),
        RoomType::Bedroom,
        Treatment::Stage(Style::Scandinavian),
        Some(7),
        ORIGINAL,
    )
    .unwrap();
    assert_eq!((staged.width, staged.height), (2048, 512));
    assert_eq!(staged.source_format, ImageFormat::Jpeg);
    assert_eq!(decode_jpeg(&staged.bytes).dimensions(), (2048, 512));
}

#[test]
fn simulated_staging_checks_its_input_like_an_original() {
    let simulate = |bytes: &[u8]| {
        simulated_staging(
            bytes,
            RoomType::Kitchen,
            Treatment::Stage(Style::Industrial),
            None,
            ORIGINAL,
        )
    };
    assert!(matches!(
        simulate(&pixel_flood_png()),
        Err(ImageProblem::DimensionsTooLarge { .. })
    ));
    assert!(matches!(
        simulate(&truncated_jpeg()),
        Err(ImageProblem::Truncated { .. })
    ));
    assert!(matches!(
        simulate(&html_named_jpeg()),
        Err(ImageProblem::NotAnImage { .. })
    ));
    let portrait = with_segment(&room_jpeg(64, 48), 0xE1, &exif_with_orientation(8));
    let staged = simulate(&portrait).unwrap();
    assert_eq!((staged.width, staged.height), (48, 64));
}

fn every_problem() -> Vec<ImageProblem> {
    let encode_error = super::jpeg::encode(&RgbImage::new(0, 0), 90, super::jpeg::HuffmanTables::Standard).unwrap_err();
    vec![
        ImageProblem::Empty,
        ImageProblem::NotAnImage { looks_like: None },
        ImageProblem::NotAnImage {
            looks_like: Some("a HEIC photo"),
        },
        ImageProblem::TooManyBytes {
            size: 10 * MIB + 1,
            limit: 10 * MIB,
        },
        ImageProblem::DimensionsTooLarge {
            width: 50_000,
            height: 300,
            max_width: 12_000,
            max_height: 12_000,
        },
        ImageProblem::TooManyPixels {
            width: 8_000,
            height: 8_000,
            max_pixels: 40_000_000,
        },
        ImageProblem::NoPixels { width: 0, height: 10 },
        ImageProblem::Truncated {
            format: ImageFormat::Jpeg,
        },
        ImageProblem::Corrupt {
            format: ImageFormat::Png,
        },
        ImageProblem::UnsupportedEncoding {
            format: ImageFormat::Jpeg,
        },
        ImageProblem::TooMuchMemory,
        ImageProblem::EncodeFailed(encode_error),
    ]
}

#[test]
fn messages_say_what_is_wrong_and_what_to_do() {
    for problem in every_problem() {
        let message = problem.to_string();
        assert!(message.starts_with("the "), "{message}");
        assert!(
            !message.contains("Some(") && !message.contains("Jpeg") && !message.contains("Webp"),
            "{message}"
        );
        if !matches!(problem, ImageProblem::EncodeFailed(_)) {
            assert!(message.contains("upload"), "no action in: {message}");
        }
    }
    let over = ImageProblem::TooManyBytes {
        size: 10 * MIB + 1,
        limit: 10 * MIB,
    }
    .to_string();
    assert!(over.starts_with("the file is 10.1 MB; the limit is 10 MB"), "{over}");
    let heic = ImageProblem::NotAnImage {
        looks_like: Some("a HEIC photo"),
    }
    .to_string();
    assert!(heic.contains("(it looks like a HEIC photo)"), "{heic}");
    assert_eq!(
        ImageProblem::UnsupportedEncoding {
            format: ImageFormat::Jpeg
        }
        .to_string(),
        "the JPEG file uses an encoding this service cannot read; save it again as a standard JPEG and upload it"
    );
    assert!(
        ImageProblem::TooManyPixels {
            width: 1,
            height: 1,
            max_pixels: 2_500_000
        }
        .to_string()
        .contains("2.5 megapixels")
    );
}

#[test]
fn problem_codes_are_distinct() {
    let problems = every_problem();
    let mut codes: Vec<&str> = problems.iter().map(ImageProblem::code).collect();
    codes.dedup(); // the two NotAnImage entries are adjacent
    let unique: std::collections::HashSet<&str> = codes.iter().copied().collect();
    assert_eq!(unique.len(), codes.len());
}

#[test]
fn jpeg_debug_does_not_dump_bytes() {
    let jpeg = reencode_as_jpeg(&room_png(8, 8), MODEL_OUTPUT, 80).unwrap();
    let debug = format!("{jpeg:?}");
    assert!(debug.contains(&format!("<{} bytes>", jpeg.bytes.len())), "{debug}");
    assert!(debug.len() < 120, "{debug}");
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    // Half the mutations hit the first 100 bytes, where the headers the checks rely on live.
    let span = if rng.next().is_multiple_of(2) {
        bytes.len().min(100)
    } else {
        bytes.len()
    };
    match rng.next() % 5 {
        0 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(span);
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            let at = rng.below(span);
            for byte in bytes.iter_mut().skip(at).take(1 + rng.below(16)) {
                *byte = rng.next() as u8;
            }
        }
        3 => {
            let at = rng.below(span);
            let insert: Vec<u8> = (0..1 + rng.below(32)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, insert);
        }
        _ => {
            // Valid magic, garbage after it.
            let keep = 4 + rng.below(12);
            bytes.truncate(keep);
            bytes.extend((0..rng.below(2048)).map(|_| rng.next() as u8));
        }
    }
    bytes
}

#[test]
fn mutated_and_garbage_inputs_never_panic() {
    let seeds = [
        room_jpeg(48, 32),
        room_png(48, 32),
        room_webp(48, 32),
        pixel_flood_png(),
        {
            let mut rgba = RgbaImage::from_pixel(24, 16, Rgba([10, 200, 30, 128]));
            rgba.put_pixel(0, 0, Rgba([0, 0, 0, 0]));
            rgba_png(&rgba)
        },
    ];
    let mut rng = Rng(0x5EED_1234_ABCD_0042);
    let mut accepted = 0;
    for seed in &seeds {
        for round in 0..100 {
            let bytes = mutate(seed, &mut rng);
            if inspect_original(&bytes, ORIGINAL).is_ok() {
                accepted += 1;
            }
            let _ = reencode_as_jpeg(&bytes, MODEL_OUTPUT, 80);
            if round % 10 == 0 {
                let _ = simulated_staging(
                    &bytes,
                    RoomType::Outdoor,
                    Treatment::Stage(Style::Traditional),
                    Some(round),
                    ORIGINAL,
                );
            }
        }
    }
    // Some bit flips land in pixel data and still decode; most mutations must be refused.
    assert!(accepted < 500, "{accepted} of 500 mutated inputs accepted");
}

#[test]
fn renditions_fit_the_long_side_keep_the_aspect_and_never_upscale() {
    for (width, height, preview, web) in [
        (2000, 1500, (480, 360), (1600, 1200)),
        (1500, 2000, (360, 480), (1200, 1600)),
        (1000, 500, (480, 240), (1000, 500)),
        (320, 240, (320, 240), (320, 240)),
    ] {
        let (checked, renditions) = inspect_original_with_renditions(&room_jpeg(width, height), ORIGINAL).unwrap();
        assert_eq!((checked.width, checked.height), (width, height));
        assert_eq!(
            (renditions.preview.width, renditions.preview.height),
            preview,
            "{width}x{height}"
        );
        assert_eq!((renditions.web.width, renditions.web.height), web, "{width}x{height}");
        assert_eq!(decode_jpeg(&renditions.preview.bytes).dimensions(), preview);
        assert_eq!(decode_jpeg(&renditions.web.bytes).dimensions(), web);
        assert!(renditions.preview.bytes.len() < renditions.web.bytes.len() || preview == web);
    }
    assert_eq!(fitted_dimensions(1, 10_000, 480), (1, 480));
    assert_eq!(fitted_dimensions(10_000, 1, 480), (480, 1));
    assert_eq!(fitted_dimensions(4032, 3024, 1600), (1600, 1200));
}

#[test]
fn renditions_are_oriented_flattened_and_carry_no_metadata() {
    let portrait_on_its_side = with_segment(&room_jpeg(640, 480), 0xE1, &exif_with_orientation(6));
    let (_, renditions) = inspect_original_with_renditions(&portrait_on_its_side, ORIGINAL).unwrap();
    assert_eq!((renditions.preview.width, renditions.preview.height), (360, 480));
    for jpeg in [&renditions.preview, &renditions.web] {
        let markers = jpeg_header_markers(&jpeg.bytes);
        assert!(!markers.contains(&0xE1) && !markers.contains(&0xE2), "{markers:x?}");
    }
    // A result's renditions come from the same decode as its re-encode.
    let (jpeg, renditions) = reencode_with_renditions(&room_png(2000, 1000), MODEL_OUTPUT, 90).unwrap();
    assert_eq!((jpeg.width, jpeg.height), (2000, 1000));
    assert_eq!(jpeg.source_format, ImageFormat::Png);
    assert_eq!((renditions.web.width, renditions.web.height), (1600, 800));
    // The preview still looks like the photo: its mean colour is close to the full size's.
    let mean = |bytes: &[u8]| {
        let image = decode_jpeg(bytes).to_rgb8();
        let sum: u64 = image
            .pixels()
            .map(|p| u64::from(p.0[0]) + u64::from(p.0[1]) + u64::from(p.0[2]))
            .sum();
        sum / (u64::from(image.width()) * u64::from(image.height()) * 3)
    };
    assert!(mean(&jpeg.bytes).abs_diff(mean(&renditions.preview.bytes)) <= 4);
}

#[test]
fn renditions_refuse_what_originals_refuse() {
    assert!(matches!(
        renditions_of(&pixel_flood_png(), ORIGINAL),
        Err(ImageProblem::DimensionsTooLarge { .. })
    ));
    assert!(renditions_of(&truncated_jpeg(), ORIGINAL).is_err());
    assert!(matches!(
        renditions_of(b"<html>", ORIGINAL),
        Err(ImageProblem::NotAnImage { .. })
    ));
}

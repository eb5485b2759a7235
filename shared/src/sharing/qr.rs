//! The share link as a QR code (AB 723 accepts a QR code to the page with the original; print
//! flyers use it): black modules on white, the standard quiet zone of 4 modules, error correction
//! level M (15 %). The PNG is 300 to 600 pixels wide whatever the URL's length; the SVG has the same
//! size and scales freely.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// The quiet zone around the code, in modules (the standard's minimum for QR codes).
pub const QUIET_ZONE_MODULES: u32 = 4;
/// The smallest PNG side, in pixels; modules are whole pixels, so the side is below twice this.
pub const MIN_SIDE_PX: u32 = 300;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the URL is too long for a QR code ({len} bytes)")]
    TooLong { len: usize },
    #[error("the URL cannot be encoded as a QR code: {0}")]
    Encode(qrcode::types::QrError),
    #[error("the QR code's PNG could not be encoded: {0}")]
    Png(#[from] image::ImageError),
}

fn encode(url: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).map_err(|error| match error {
        qrcode::types::QrError::DataTooLong => QrError::TooLong { len: url.len() },
        other => QrError::Encode(other),
    })
}

/// Pixels per module for a code `modules` wide (quiet zone excluded): the smallest whole number
/// that makes the picture at least [`MIN_SIDE_PX`].
fn module_px(modules: usize) -> u32 {
    let side = modules as u32 + 2 * QUIET_ZONE_MODULES;
    MIN_SIDE_PX.div_ceil(side).max(1)
}

/// The URL as a QR code in a greyscale PNG, black on white.
pub fn qr_png(url: &str) -> Result<Vec<u8>, QrError> {
    let code = encode(url)?;
    let modules = code.width();
    let unit = module_px(modules);
    let colors = code.to_colors();
    let side = (modules as u32 + 2 * QUIET_ZONE_MODULES) * unit;
    let picture = GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (
            (x / unit) as i64 - QUIET_ZONE_MODULES as i64,
            (y / unit) as i64 - QUIET_ZONE_MODULES as i64,
        );
        let inside = (0..modules as i64).contains(&mx) && (0..modules as i64).contains(&my);
        let dark = inside && colors[my as usize * modules + mx as usize] == Color::Dark;
        Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(picture.as_raw(), side, side, ExtendedColorType::L8)?;
    Ok(png)
}

/// The URL as a QR code in a standalone SVG document (`<?xml …?><svg …>`), black on white, the same
/// size as [`qr_png`]'s picture.
pub fn qr_svg(url: &str) -> Result<String, QrError> {
    let code = encode(url)?;
    let unit = module_px(code.width());
    Ok(code
        .render::<svg::Color>()
        .quiet_zone(true)
        .module_dimensions(unit, unit)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://realstaging.ai/s/Q2hhbmdlIHRoaXMgdG9rZW4gaWYgeW91IGNhbg";

    /// Reads the one QR code in a PNG: its version and its text.
    fn read_png(png: &[u8]) -> (usize, String, (u32, u32)) {
        let picture = image::load_from_memory(png).expect("the PNG decodes").to_luma8();
        let (w, h) = picture.dimensions();
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            picture.get_pixel(x as u32, y as u32).0[0]
        });
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        let (meta, text) = grids[0].decode().expect("the QR code decodes");
        (meta.version.0, text, (w, h))
    }

    /// The SVG's dark modules, from its `M{x} {y}h{w}v{h}H{x}V{y}` rectangles, as a square grid of
    /// `side` modules of `unit` pixels.
    fn svg_modules(svg: &str, unit: u32, side: usize) -> Vec<bool> {
        let d = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a path");
        let mut grid = vec![false; side * side];
        for rect in d.split('M').filter(|r| !r.is_empty()) {
            let numbers: Vec<u32> = rect
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect();
            let [x, y, w, h, ..] = numbers[..] else {
                panic!("rectangle {rect}")
            };
            for my in y / unit..(y + h) / unit {
                for mx in x / unit..(x + w) / unit {
                    grid[my as usize * side + mx as usize] = true;
                }
            }
        }
        grid
    }

    #[test]
    fn png_reads_back_as_the_url() {
        for url in [
            URL,
            "http://localhost:9000/s/x",
            &format!("https://realstaging.ai/s/{}", "a".repeat(600)),
        ] {
            let png = qr_png(url).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let code = encode(url).unwrap();
            let (version, text, (w, h)) = read_png(&png);
            assert_eq!(text, url);
            assert_eq!(qrcode::Version::Normal(version as i16), code.version());
            assert_eq!(w, h);
            assert!((300..=600).contains(&w), "{w} px");
            // The quiet zone: the outer 4 modules are white.
            let picture = image::load_from_memory(&png).unwrap().to_luma8();
            let margin = QUIET_ZONE_MODULES * module_px(code.width());
            for i in 0..w {
                for j in 0..margin {
                    for (x, y) in [(i, j), (j, i), (i, w - 1 - j), (w - 1 - j, i)] {
                        assert_eq!(picture.get_pixel(x, y).0[0], 255, "({x},{y}) in the quiet zone");
                    }
                }
            }
        }
    }

    #[test]
    fn svg_has_the_same_modules_as_the_png() {
        let svg = qr_svg(URL).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<rect") && svg.contains("<path"));

        let code = encode(URL).unwrap();
        let unit = module_px(code.width());
        let side = code.width() + 2 * QUIET_ZONE_MODULES as usize;
        let px = side as u32 * unit;
        assert!(svg.contains(&format!("width=\"{px}\" height=\"{px}\" viewBox=\"0 0 {px} {px}\"")));

        let (_, _, (png_side, _)) = read_png(&qr_png(URL).unwrap());
        assert_eq!(png_side, px, "the SVG and the PNG have the same size");

        let grid = svg_modules(&svg, unit, side);
        let q = QUIET_ZONE_MODULES as usize;
        let colors = code.to_colors();
        for y in 0..side {
            for x in 0..side {
                let inside = (q..q + code.width()).contains(&x) && (q..q + code.width()).contains(&y);
                let expected = inside && colors[(y - q) * code.width() + (x - q)] == Color::Dark;
                assert_eq!(grid[y * side + x], expected, "module ({x},{y})");
            }
        }
    }

    #[test]
    fn too_long_a_url_is_an_error() {
        let url = format!("https://realstaging.ai/s/{}", "a".repeat(3000));
        assert!(matches!(qr_png(&url), Err(QrError::TooLong { len }) if len == url.len()));
        assert!(matches!(qr_svg(&url), Err(QrError::TooLong { .. })));
        assert_eq!(
            qr_png(&url).unwrap_err().to_string(),
            format!("the URL is too long for a QR code ({} bytes)", url.len())
        );
    }

    #[test]
    fn module_size_keeps_the_picture_between_300_and_600_px() {
        for version in 1..=40usize {
            let modules = 17 + 4 * version;
            let side = (modules as u32 + 8) * module_px(modules);
            assert!((300..600).contains(&side), "version {version}: {side} px");
        }
    }
}

//! The disclosure label burned into a staged photo (California AB 723, the MLS watermark rules;
//! docs/disclosure.md): an opaque black band across the bottom of the picture with the statement
//! that the image is virtually staged and the short URL of the page showing the original, in white.
//!
//! The band and the text are sized to the picture, so the label reads the same on a phone preview
//! and a print: the band is [`BAND_FRACTION`] of the shorter side (at least [`MIN_BAND_PX`], never
//! taller than the image), the text fills most of the band and shrinks to fit the width down to
//! [`MIN_TEXT_PX`]; text still too wide at that size is cut with an ellipsis. Nothing is drawn
//! outside the band, and the picture keeps its dimensions.
//!
//! The font is DejaVu Sans Bold, embedded (shared/assets/fonts, Bitstream Vera licence beside it).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, GlyphId, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};

/// The band's height as a fraction of the image's shorter side.
pub const BAND_FRACTION: f32 = 0.045;
/// The smallest band, in pixels (unless the image itself is lower).
pub const MIN_BAND_PX: u32 = 24;
/// The smallest text line height (ascent to descent), in pixels, before the text is cut instead of
/// shrunk further: a 12 px font (capitals about 9 px tall), what the smallest band holds.
pub const MIN_TEXT_PX: f32 = 14.0;
/// The text's line height as a fraction of the band's height.
const TEXT_FRACTION: f32 = 0.62;
/// The band's colour (opaque) and the text's.
const BAND_COLOR: Rgb<u8> = Rgb([0, 0, 0]);
const TEXT_COLOR: [f32; 3] = [255.0, 255.0, 255.0];
const ELLIPSIS: char = '\u{2026}';

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("the embedded DejaVu Sans Bold parses"))
}

/// Where the label goes in an image of the given size: the rows `top..top + height`, full width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelBand {
    pub top: u32,
    pub height: u32,
}

impl LabelBand {
    /// Whether row `y` is in the band.
    pub fn contains_row(&self, y: u32) -> bool {
        y >= self.top && y - self.top < self.height
    }
}

/// The band [`burn_label`] draws on an image of `width` × `height` pixels (an empty band for an
/// empty image).
pub fn label_band(width: u32, height: u32) -> LabelBand {
    if width == 0 || height == 0 {
        return LabelBand { top: height, height: 0 };
    }
    let shorter = width.min(height) as f32;
    let band = ((shorter * BAND_FRACTION).round() as u32).max(MIN_BAND_PX).min(height);
    LabelBand {
        top: height - band,
        height: band,
    }
}

/// The label's text for a share link: `Virtually staged · original: <URL without its scheme>`.
pub fn disclosure_text(share_url: &str) -> String {
    let url = share_url.trim();
    let short = ["https://", "http://"]
        .iter()
        .find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|head| head.eq_ignore_ascii_case(scheme))
                .map(|_| &url[scheme.len()..])
        })
        .unwrap_or(url);
    format!("Virtually staged \u{b7} original: {short}")
}

/// Draws the disclosure label onto `image`, in place: the band of [`label_band`] painted black and
/// `text` in white on it, centred, as large as the band allows and no wider than the image. Any
/// size is accepted, down to 1×1 (then only what fits is drawn).
pub fn burn_label(image: &mut RgbImage, text: &str) {
    let (width, height) = image.dimensions();
    let band = label_band(width, height);
    if band.height == 0 {
        return;
    }
    for y in band.top..band.top + band.height {
        for x in 0..width {
            image.put_pixel(x, y, BAND_COLOR);
        }
    }

    let font = font();
    let padding = (band.height as f32 * 0.5).max(2.0);
    let available = width as f32 - 2.0 * padding;
    if available <= 0.0 {
        return;
    }
    let nominal = band.height as f32 * TEXT_FRACTION;
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let nominal_width = line_width(font, PxScale::from(nominal), &text);
    // Widths scale linearly with the size; a hair smaller so rounding cannot make it not fit.
    let fitted = if nominal_width > available {
        nominal * available / nominal_width * 0.999
    } else {
        nominal
    };
    // Shrunk to the minimum at most (the nominal size when the band itself is smaller), then cut.
    let size = fitted.max(MIN_TEXT_PX.min(nominal));
    let scale = PxScale::from(size);
    let line = fit_line(font, scale, &text, available);
    if line.is_empty() {
        return;
    }

    let scaled = font.as_scaled(scale);
    let line_width = line_width(font, scale, &line);
    let left = ((width as f32 - line_width) / 2.0).max(padding).floor();
    let line_height = scaled.ascent() - scaled.descent();
    let baseline = (band.top as f32 + (band.height as f32 - line_height) / 2.0 + scaled.ascent()).round();

    let mut caret = left;
    let mut previous: Option<GlyphId> = None;
    for c in line.chars() {
        let id = glyph_id(font, c);
        if let Some(previous) = previous {
            caret += scaled.kern(previous, id);
        }
        let glyph: Glyph = id.with_scale_and_position(scale, point(caret, baseline));
        caret += scaled.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        let (x0, y0) = (bounds.min.x as i64, bounds.min.y as i64);
        outline.draw(|gx, gy, coverage| {
            let (x, y) = (x0 + i64::from(gx), y0 + i64::from(gy));
            if x < 0 || y < 0 || x >= i64::from(width) || !band.contains_row(y as u32) {
                return;
            }
            let alpha = coverage.clamp(0.0, 1.0);
            if alpha <= 0.0 {
                return;
            }
            let pixel = image.get_pixel_mut(x as u32, y as u32);
            for (channel, text) in pixel.0.iter_mut().zip(TEXT_COLOR) {
                *channel = (f32::from(*channel) * (1.0 - alpha) + text * alpha).round() as u8;
            }
        });
    }
}

/// The font's glyph for `c`, or the one for `?` when the font has none.
fn glyph_id(font: &FontRef<'static>, c: char) -> GlyphId {
    match font.glyph_id(c) {
        GlyphId(0) if !c.is_whitespace() => font.glyph_id('?'),
        id => id,
    }
}

/// The advance width of `text` on one line, kerning included.
fn line_width(font: &FontRef<'static>, scale: PxScale, text: &str) -> f32 {
    let scaled = font.as_scaled(scale);
    let mut width = 0.0;
    let mut previous: Option<GlyphId> = None;
    for c in text.chars() {
        let id = glyph_id(font, c);
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// `text` when it fits in `available` pixels, else its longest prefix that fits with an ellipsis
/// after it, else nothing.
fn fit_line(font: &FontRef<'static>, scale: PxScale, text: &str, available: f32) -> String {
    if line_width(font, scale, text) <= available {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |keep: usize| {
        let mut line = chars[..keep].iter().collect::<String>().trim_end().to_owned();
        line.push(ELLIPSIS);
        line
    };
    // The longest prefix that fits (binary search: widths grow with the prefix).
    let (mut fits, mut too_long) = (0usize, chars.len());
    while too_long - fits > 1 {
        let middle = (fits + too_long) / 2;
        if line_width(font, scale, &cut(middle)) <= available {
            fits = middle
        } else {
            too_long = middle
        }
    }
    let line = cut(fits);
    if line.trim_end_matches(ELLIPSIS).trim().is_empty() || line_width(font, scale, &line) > available {
        return String::new();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;

    const URL: &str = "https://realstaging.ai/s/Q2hhbmdlIHRoaXMgdG9rZW4";

    /// A photo-like test picture: smooth colours, no pure white or black anywhere.
    fn picture(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([
                (40 + (x * 150 / width.max(1))) as u8,
                (60 + (y * 120 / height.max(1))) as u8,
                (90 + ((x + y) % 70)) as u8,
            ])
        })
    }

    fn is_whiteish(p: &Rgb<u8>) -> bool {
        p.0.iter().all(|&c| c >= 200)
    }

    /// Burns the label into a fresh picture and checks everything a label must be; returns the
    /// labelled picture and the number of text rows (rows of the band with white-ish pixels).
    fn check(width: u32, height: u32) -> (RgbImage, u32) {
        let before = picture(width, height);
        let mut after = before.clone();
        burn_label(&mut after, &disclosure_text(URL));
        assert_eq!(after.dimensions(), (width, height));

        let band = label_band(width, height);
        assert!(band.height >= 1 && band.height <= height, "{band:?}");
        assert_eq!(band.top + band.height, height, "the band is at the bottom");

        let mut whiteish = 0u32;
        let mut dark = 0u32;
        let mut text_rows = 0u32;
        for y in 0..height {
            let mut row_has_text = false;
            for x in 0..width {
                let (b, a) = (before.get_pixel(x, y), after.get_pixel(x, y));
                if band.contains_row(y) {
                    // Black band, white text, and antialiasing in between: grey, never the photo.
                    assert!(
                        a.0[0] == a.0[1] && a.0[1] == a.0[2],
                        "({x},{y}) is {a:?}, not black/white/grey"
                    );
                    if is_whiteish(a) {
                        whiteish += 1;
                        row_has_text = true;
                    }
                    if a.0[0] < 40 {
                        dark += 1;
                    }
                } else {
                    assert_eq!(a, b, "({x},{y}) above the band changed");
                }
            }
            text_rows += u32::from(row_has_text);
        }
        let band_pixels = band.height * width;
        assert!(
            dark * 2 > band_pixels,
            "the band is mostly dark: {dark} of {band_pixels}"
        );
        if width >= 200 && band.height >= MIN_BAND_PX {
            assert!(whiteish > 100, "text drawn: {whiteish} white pixels");
        }

        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&after)
            .expect("JPEG encoding");
        let decoded = image::load_from_memory(&jpeg).expect("the JPEG decodes");
        assert_eq!((decoded.width(), decoded.height()), (width, height));
        (after, text_rows)
    }

    #[test]
    fn disclosure_text_drops_the_scheme() {
        assert_eq!(
            disclosure_text(URL),
            "Virtually staged \u{b7} original: realstaging.ai/s/Q2hhbmdlIHRoaXMgdG9rZW4"
        );
        assert_eq!(
            disclosure_text("http://localhost:9000/s/abc"),
            "Virtually staged · original: localhost:9000/s/abc"
        );
        assert_eq!(
            disclosure_text("HTTPS://x.ai/s/t"),
            "Virtually staged · original: x.ai/s/t"
        );
        assert_eq!(disclosure_text("x.ai/s/t"), "Virtually staged · original: x.ai/s/t");
    }

    #[test]
    fn band_is_sized_to_the_picture() {
        assert_eq!(
            label_band(1600, 1067),
            LabelBand {
                top: 1067 - 48,
                height: 48
            }
        );
        assert_eq!(
            label_band(600, 900),
            LabelBand {
                top: 900 - 27,
                height: 27
            }
        );
        assert_eq!(
            label_band(4000, 3000),
            LabelBand {
                top: 3000 - 135,
                height: 135
            }
        );
        assert_eq!(
            label_band(40, 30),
            LabelBand {
                top: 6,
                height: MIN_BAND_PX
            }
        );
        assert_eq!(label_band(300, 12), LabelBand { top: 0, height: 12 });
        assert_eq!(label_band(1, 1), LabelBand { top: 0, height: 1 });
        assert_eq!(label_band(0, 5), LabelBand { top: 5, height: 0 });
    }

    #[test]
    fn landscape_label_is_legible_and_whole() {
        let (_, text_rows) = check(1600, 1067);
        assert!(text_rows >= 20, "text {text_rows} px tall");
        // The whole text fits at this size: it ends with the token, not an ellipsis.
        let band = label_band(1600, 1067);
        let size = band.height as f32 * TEXT_FRACTION;
        let text = disclosure_text(URL);
        assert_eq!(
            fit_line(font(), PxScale::from(size), &text, 1600.0 - band.height as f32),
            text
        );
    }

    #[test]
    fn portrait_label_shrinks_to_fit() {
        let (_, text_rows) = check(600, 900);
        assert!(text_rows >= 10, "text {text_rows} px tall");
    }

    #[test]
    fn narrow_picture_cuts_the_text_instead_of_overflowing() {
        let (labelled, text_rows) = check(240, 400);
        assert!(text_rows >= 9, "text {text_rows} px tall (minimum size)");
        // Left and right margins stay black: the text did not run off the edges.
        let band = label_band(240, 400);
        for y in band.top..band.top + band.height {
            for x in [0, 1, 238, 239] {
                assert_eq!(labelled.get_pixel(x, y), &BAND_COLOR);
            }
        }
        let available = 240.0 - band.height as f32;
        let cut = fit_line(font(), PxScale::from(MIN_TEXT_PX), &disclosure_text(URL), available);
        assert!(cut.ends_with(ELLIPSIS), "{cut}");
    }

    #[test]
    fn tiny_pictures_do_not_panic() {
        for (w, h) in [(40, 30), (1, 1), (1, 300), (300, 1), (2, 2), (19, 21), (5, 60)] {
            check(w, h);
        }
        let mut empty = RgbImage::new(0, 0);
        burn_label(&mut empty, "text");
        let mut thin = RgbImage::new(0, 10);
        burn_label(&mut thin, "text");
    }

    #[test]
    fn odd_text_is_drawn_without_panicking() {
        for text in [
            "",
            " ",
            "\u{1F3E0} \u{4E2D}\u{6587}",
            "tab\tand\nnewline",
            &"x".repeat(5000),
        ] {
            let mut image = picture(800, 600);
            burn_label(&mut image, text);
            assert_eq!(image.dimensions(), (800, 600));
        }
    }
}

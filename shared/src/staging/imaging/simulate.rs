//! The offline simulator's picture: the original with a style tint, a few flat "furniture"
//! shapes for the room type, and a banner that says it is simulated, so a simulated result can
//! never pass for a real staging.

use image::{Rgb, RgbImage};

use super::font::{self, GLYPH_HEIGHT};
use crate::staging::vocabulary::{RoomType, Style, Treatment};

/// The first banner line, always present.
pub(super) const LABEL: &str = "SIMULATED STAGING";

/// The second banner line: "LIVING ROOM / MODERN" for a staging, otherwise the operation first,
/// e.g. "DECLUTTER / BEDROOM" or "DECLUTTER AND STAGE / BEDROOM / MODERN".
pub(super) fn subtitle(room: RoomType, treatment: Treatment) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !matches!(treatment, Treatment::Stage(_)) {
        parts.push(treatment.operation().as_str());
    }
    parts.push(room.as_str());
    if let Some(style) = treatment.style() {
        parts.push(style.as_str());
    }
    parts.join(" / ").replace('_', " ").to_ascii_uppercase()
}

/// Stagings get furniture shapes in the style's palette; a declutter only a neutral tint and a
/// twilight a dusk-blue one, so each operation's stand-in looks different. The job's seed
/// arranges the furniture (mirrored, moved sideways), so variations of one photo differ offline
/// as they do from a model; the same seed always draws the same picture.
pub(super) fn stage(image: &mut RgbImage, room: RoomType, treatment: Treatment, seed: Option<i64>) {
    match treatment.style() {
        Some(style) => {
            let palette = Palette::of(style);
            let arrangement = Arrangement::of(seed);
            tint(image, palette.tint, 0.14);
            for piece in furniture(room) {
                draw_piece(image, arrangement.place(piece.0), piece.1, &palette);
            }
            draw_banner(image, &subtitle(room, treatment), palette.accent);
        }
        None if treatment == Treatment::Twilight => {
            tint(image, [40, 50, 110], 0.45);
            draw_banner(image, &subtitle(room, treatment), [240, 150, 60]);
        }
        None => {
            tint(image, [235, 235, 230], 0.2);
            draw_banner(image, &subtitle(room, treatment), [150, 150, 150]);
        }
    }
}

/// Where a seed puts the furniture: mirrored left to right or not, then moved sideways by up to
/// 6 % of the width. No seed: as drawn in [`furniture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arrangement {
    mirrored: bool,
    shift_percent: i16,
}

impl Arrangement {
    const MAX_SHIFT: i16 = 6;

    fn of(seed: Option<i64>) -> Arrangement {
        let Some(seed) = seed else {
            return Arrangement {
                mirrored: false,
                shift_percent: 0,
            };
        };
        // Seeds are often consecutive: spread them before taking bits (splitmix64's finaliser).
        let mut z = seed as u64;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let span = (2 * Self::MAX_SHIFT + 1) as u64;
        Arrangement {
            mirrored: z & 1 == 1,
            shift_percent: ((z >> 1) % span) as i16 - Self::MAX_SHIFT,
        }
    }

    /// A piece's box (percent: x0, y0, x1, y1) as this arrangement places it.
    fn place(self, [x0, y0, x1, y1]: [u8; 4]) -> [u8; 4] {
        let (x0, x1) = if self.mirrored { (100 - x1, 100 - x0) } else { (x0, x1) };
        let moved = |x: u8| (i16::from(x) + self.shift_percent).clamp(0, 100) as u8;
        [moved(x0), y0, moved(x1), y1]
    }
}

struct Palette {
    tint: [u8; 3],
    primary: [u8; 3],
    secondary: [u8; 3],
    accent: [u8; 3],
}

impl Palette {
    fn of(style: Style) -> Palette {
        match style {
            Style::Modern => Palette {
                tint: [90, 120, 160],
                primary: [62, 66, 74],
                secondary: [200, 200, 196],
                accent: [230, 180, 60],
            },
            Style::Contemporary => Palette {
                tint: [80, 150, 150],
                primary: [120, 132, 140],
                secondary: [226, 222, 214],
                accent: [40, 140, 140],
            },
            Style::Traditional => Palette {
                tint: [170, 120, 70],
                primary: [110, 40, 36],
                secondary: [196, 168, 120],
                accent: [150, 110, 50],
            },
            Style::Industrial => Palette {
                tint: [120, 110, 100],
                primary: [60, 52, 48],
                secondary: [150, 100, 60],
                accent: [200, 90, 40],
            },
            Style::Scandinavian => Palette {
                tint: [220, 205, 175],
                primary: [236, 232, 224],
                secondary: [196, 160, 116],
                accent: [110, 150, 120],
            },
        }
    }

    fn color(&self, tone: Tone) -> [u8; 3] {
        match tone {
            Tone::Primary => self.primary,
            Tone::Secondary => self.secondary,
            Tone::Accent => self.accent,
            Tone::Light => [244, 242, 236],
            Tone::Dark => [40, 38, 36],
        }
    }
}

#[derive(Clone, Copy)]
enum Tone {
    Primary,
    Secondary,
    Accent,
    Light,
    Dark,
}

/// A flat shape in percent of the picture's width and height: x0, y0, x1, y1.
struct Piece([u8; 4], Tone);

fn furniture(room: RoomType) -> &'static [Piece] {
    use Tone::*;
    match room {
        RoomType::LivingRoom => &[
            Piece([18, 84, 82, 95], Secondary), // rug
            Piece([28, 58, 72, 68], Primary),   // sofa back
            Piece([26, 66, 74, 80], Primary),   // sofa seat
            Piece([24, 62, 29, 81], Dark),      // arms
            Piece([71, 62, 76, 81], Dark),
            Piece([40, 83, 60, 88], Accent), // coffee table
            Piece([84, 50, 85, 80], Dark),   // floor lamp
            Piece([81, 44, 88, 51], Light),
        ],
        RoomType::Bedroom => &[
            Piece([24, 50, 76, 66], Accent),  // headboard
            Piece([24, 64, 76, 90], Primary), // bed
            Piece([26, 64, 74, 72], Light),   // duvet fold
            Piece([29, 60, 46, 66], Light),   // pillows
            Piece([54, 60, 71, 66], Light),
            Piece([12, 68, 21, 82], Secondary), // nightstands
            Piece([79, 68, 88, 82], Secondary),
        ],
        RoomType::Kitchen => &[
            Piece([22, 64, 78, 68], Secondary), // island top
            Piece([24, 68, 76, 86], Primary),   // island
            Piece([30, 74, 34, 94], Dark),      // stools
            Piece([48, 74, 52, 94], Dark),
            Piece([66, 74, 70, 94], Dark),
            Piece([44, 20, 56, 24], Accent), // pendant
        ],
        RoomType::Bathroom => &[
            Piece([14, 60, 40, 64], Light),     // vanity top
            Piece([15, 64, 39, 84], Primary),   // vanity
            Piece([18, 36, 36, 56], Secondary), // mirror
            Piece([54, 68, 90, 86], Light),     // tub
            Piece([42, 86, 58, 93], Accent),    // bath mat
        ],
        RoomType::DiningRoom => &[
            Piece([16, 86, 84, 96], Secondary), // rug
            Piece([24, 66, 76, 71], Primary),   // table top
            Piece([27, 71, 30, 90], Primary),   // legs
            Piece([70, 71, 73, 90], Primary),
            Piece([17, 58, 22, 90], Dark), // chairs
            Piece([78, 58, 83, 90], Dark),
            Piece([46, 16, 54, 22], Accent), // pendant
        ],
        RoomType::Office => &[
            Piece([22, 64, 70, 68], Secondary), // desk top
            Piece([24, 68, 27, 88], Primary),   // legs
            Piece([65, 68, 68, 88], Primary),
            Piece([38, 50, 54, 62], Dark),    // monitor
            Piece([42, 70, 52, 90], Accent),  // chair
            Piece([78, 30, 92, 88], Primary), // bookcase
        ],
        RoomType::Entryway => &[
            Piece([30, 84, 70, 95], Accent),    // runner
            Piece([20, 68, 60, 73], Secondary), // bench
            Piece([22, 73, 25, 84], Dark),
            Piece([55, 73, 58, 84], Dark),
            Piece([68, 58, 88, 62], Primary), // console
            Piece([72, 34, 84, 54], Light),   // mirror
        ],
        RoomType::Outdoor => &[
            Piece([14, 70, 38, 78], Secondary), // lounge chairs
            Piece([62, 70, 86, 78], Secondary),
            Piece([44, 72, 56, 80], Primary), // table
            Piece([49, 40, 51, 72], Dark),    // umbrella pole
            Piece([34, 34, 66, 40], Accent),  // canopy
            Piece([4, 74, 10, 92], Primary),  // planters
            Piece([90, 74, 96, 92], Primary),
        ],
    }
}

fn tint(image: &mut RgbImage, color: [u8; 3], amount: f32) {
    for pixel in image.pixels_mut() {
        pixel.0 = blend(pixel.0, color, amount);
    }
}

fn blend(under: [u8; 3], over: [u8; 3], amount: f32) -> [u8; 3] {
    let mut out = [0; 3];
    for ((out, &under), &over) in out.iter_mut().zip(&under).zip(&over) {
        *out = (f32::from(under) * (1.0 - amount) + f32::from(over) * amount)
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    out
}

fn draw_piece(image: &mut RgbImage, [x0, y0, x1, y1]: [u8; 4], tone: Tone, palette: &Palette) {
    let (width, height) = image.dimensions();
    let at = |percent: u8, of: u32| (u64::from(percent) * u64::from(of) / 100) as u32;
    let (x0, y0, x1, y1) = (at(x0, width), at(y0, height), at(x1, width), at(y1, height));
    let fill = palette.color(tone);
    let edge = blend(fill, [0, 0, 0], 0.35);
    let outline = (width.min(height) / 300).max(1);
    for y in y0..y1.min(height) {
        for x in x0..x1.min(width) {
            let on_edge = x < x0 + outline || x + outline >= x1 || y < y0 + outline || y + outline >= y1;
            let pixel = image.get_pixel_mut(x, y);
            // Mostly opaque, so the shapes read as furniture but keep a hint of the floor.
            pixel.0 = blend(pixel.0, if on_edge { edge } else { fill }, 0.9);
        }
    }
}

/// A solid banner across the top with two lines of text, as large as fits.
fn draw_banner(image: &mut RgbImage, subtitle: &str, accent: [u8; 3]) {
    let (width, height) = image.dimensions();
    // Banner layout in font units: padding, line, gap, line, padding.
    let (padding, gap) = (4, 3);
    let banner_units = 2 * padding + gap + 2 * GLYPH_HEIGHT;
    let widest = font::text_width(LABEL, 1).max(font::text_width(subtitle, 1)).max(1);
    let scale = (width / 10 * 9 / widest).min(height / 4 / banner_units).clamp(1, 12);
    let banner_height = (banner_units * scale).min(height);

    for y in 0..banner_height {
        for x in 0..width {
            image.put_pixel(x, y, Rgb([22, 22, 26]));
        }
    }
    // A stripe in the style's accent colour under the banner.
    for y in banner_height..(banner_height + scale).min(height) {
        for x in 0..width {
            image.put_pixel(x, y, Rgb(accent));
        }
    }
    let centred = |text: &str| width.saturating_sub(font::text_width(text, scale)) / 2;
    let first_line = padding * scale;
    let second_line = (padding + GLYPH_HEIGHT + gap) * scale;
    font::draw_text(image, centred(LABEL), first_line, scale, LABEL, Rgb([255, 255, 255]));
    font::draw_text(
        image,
        centred(subtitle),
        second_line,
        scale,
        subtitle,
        Rgb(blend(accent, [255, 255, 255], 0.4)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_treatments() -> Vec<Treatment> {
        let mut all = vec![Treatment::Declutter, Treatment::Twilight];
        all.extend(
            Style::ALL
                .iter()
                .flat_map(|s| [Treatment::Stage(*s), Treatment::DeclutterAndStage(*s)]),
        );
        all
    }

    #[test]
    fn subtitle_names_room_and_style_in_the_font_alphabet() {
        assert_eq!(
            subtitle(RoomType::LivingRoom, Treatment::Stage(Style::Modern)),
            "LIVING ROOM / MODERN"
        );
        assert_eq!(
            subtitle(RoomType::DiningRoom, Treatment::Stage(Style::Scandinavian)),
            "DINING ROOM / SCANDINAVIAN"
        );
        assert_eq!(subtitle(RoomType::Bedroom, Treatment::Declutter), "DECLUTTER / BEDROOM");
        assert_eq!(
            subtitle(RoomType::Bedroom, Treatment::DeclutterAndStage(Style::Modern)),
            "DECLUTTER AND STAGE / BEDROOM / MODERN"
        );
        for room in RoomType::ALL {
            for treatment in all_treatments() {
                let text = subtitle(*room, treatment);
                assert!(
                    text.chars().all(|c| c.is_ascii_uppercase() || c == ' ' || c == '/'),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn every_room_and_style_draws_on_any_size() {
        for (width, height) in [(1, 1), (7, 300), (300, 7), (64, 48), (200, 133)] {
            for room in RoomType::ALL {
                for treatment in all_treatments() {
                    let mut image = RgbImage::from_pixel(width, height, Rgb([128, 128, 128]));
                    stage(&mut image, *room, treatment, Some(i64::from(width) - 100));
                }
            }
        }
    }

    #[test]
    fn banner_is_dark_with_light_text_and_pieces_change_the_floor() {
        let mut image = RgbImage::from_pixel(640, 427, Rgb([200, 200, 200]));
        stage(&mut image, RoomType::LivingRoom, Treatment::Stage(Style::Modern), None);
        assert_eq!(image.get_pixel(1, 1), &Rgb([22, 22, 26]));
        let banner_height = (0..427).find(|&y| image.get_pixel(1, y) != &Rgb([22, 22, 26])).unwrap();
        let white_text = (0..banner_height).any(|y| (0..640).any(|x| image.get_pixel(x, y) == &Rgb([255, 255, 255])));
        assert!(white_text);
        let tinted_only = blend([200, 200, 200], Palette::of(Style::Modern).tint, 0.14);
        assert_eq!(image.get_pixel(320, 200).0, tinted_only);
        assert_ne!(
            image.get_pixel(320, 300).0,
            tinted_only,
            "the sofa should cover the middle"
        );
    }

    #[test]
    fn seeds_arrange_the_furniture_and_the_same_seed_draws_the_same_picture() {
        let draw = |seed: Option<i64>| {
            let mut image = RgbImage::from_pixel(400, 300, Rgb([200, 200, 200]));
            stage(&mut image, RoomType::Bedroom, Treatment::Stage(Style::Modern), seed);
            image
        };
        assert_eq!(draw(Some(42)), draw(Some(42)));
        assert_eq!(draw(None), draw(None));
        // Variations get consecutive or random seeds: most pairs must look different.
        let pictures: Vec<RgbImage> = (1..=8).map(|seed| draw(Some(seed))).collect();
        let distinct = (0..pictures.len())
            .flat_map(|a| (a + 1..pictures.len()).map(move |b| (a, b)))
            .filter(|&(a, b)| pictures[a] != pictures[b])
            .count();
        assert!(distinct >= 24, "only {distinct} of 28 pairs differ");
        let arrangements: Vec<Arrangement> = (1..=8).map(|seed| Arrangement::of(Some(seed))).collect();
        assert!(arrangements.iter().any(|a| a.mirrored) && arrangements.iter().any(|a| !a.mirrored));
        for seed in [i64::MIN, -1, 0, 1, i64::MAX] {
            let a = Arrangement::of(Some(seed));
            assert!(a.shift_percent.abs() <= Arrangement::MAX_SHIFT, "{a:?}");
            for piece in [[0, 0, 100, 100], [18, 84, 82, 95], [84, 50, 85, 80]] {
                let [x0, _, x1, _] = a.place(piece);
                assert!(x0 <= x1 && x1 <= 100, "{a:?} {piece:?}");
            }
        }
    }
}

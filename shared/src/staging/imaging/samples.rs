//! Test and demo material generated in code, so tests need no binary fixtures and the demo photo
//! can be regenerated: a synthetic empty room in each accepted format, and the classic bad inputs
//! (a pixel flood, a truncated JPEG, an HTML page saved as .jpg).
//!
//! Everything here is deterministic. Dimensions are clamped to 1..=[`MAX_SAMPLE_SIDE`].

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};

/// The largest side a generated sample room may have.
pub const MAX_SAMPLE_SIDE: u32 = 8192;

const SAMPLE_JPEG_QUALITY: u8 = 88;

/// A synthetic empty room (walls, wooden floor, window, door) as a baseline JPEG.
pub fn room_jpeg(width: u32, height: u32) -> Vec<u8> {
    let room = draw_room(width, height);
    let mut out = Vec::new();
    // Encoding into memory only fails for dimensions JPEG cannot hold, which the clamp rules out.
    match JpegEncoder::new_with_quality(&mut out, SAMPLE_JPEG_QUALITY).encode_image(&room) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// The same room as an RGB PNG.
pub fn room_png(width: u32, height: u32) -> Vec<u8> {
    let room = draw_room(width, height);
    let mut out = Vec::new();
    match PngEncoder::new(&mut out).write_image(room.as_raw(), room.width(), room.height(), ExtendedColorType::Rgb8) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// The same room as a lossless WebP.
pub fn room_webp(width: u32, height: u32) -> Vec<u8> {
    let room = draw_room(width, height);
    let mut out = Vec::new();
    match WebPEncoder::new_lossless(&mut out).encode(
        room.as_raw(),
        room.width(),
        room.height(),
        ExtendedColorType::Rgb8,
    ) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// A decompression bomb: a tiny, well-formed PNG whose header claims 100 000 × 100 000 pixels
/// (30 GB decoded). Only a header check stops it before allocation.
pub fn pixel_flood_png() -> Vec<u8> {
    png_with_claimed_size(100_000, 100_000)
}

/// A well-formed PNG (correct CRCs) whose header claims `width` × `height` RGB pixels but whose
/// image data holds a single byte: tests header checks for any claimed size, including zero.
pub fn png_with_claimed_size(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    // A zlib stream with one final stored block holding one zero byte, and its Adler-32.
    let idat = [0x78, 0x01, 0x01, 0x01, 0x00, 0xFE, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x01];

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    push_png_chunk(&mut png, *b"IHDR", &ihdr);
    push_png_chunk(&mut png, *b"IDAT", &idat);
    push_png_chunk(&mut png, *b"IEND", &[]);
    png
}

/// A real JPEG of a room cut off halfway, like an interrupted upload.
pub fn truncated_jpeg() -> Vec<u8> {
    let mut jpeg = room_jpeg(320, 240);
    jpeg.truncate(jpeg.len() / 2);
    jpeg
}

/// An HTML page's bytes, as when a sign-in or error page is saved under a .jpg name.
pub fn html_named_jpeg() -> Vec<u8> {
    b"<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Sign in</title></head>\n\
      <body><p>Please sign in to view this photo.</p></body>\n</html>\n"
        .to_vec()
}

fn push_png_chunk(png: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    png.extend_from_slice(&length.to_be_bytes());
    let crc_start = png.len();
    png.extend_from_slice(&kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[crc_start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE 802.3, reflected, as PNG uses), bit by bit: samples are tiny, so no table.
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[derive(Clone, Copy)]
enum Surface {
    Ceiling,
    BackWall,
    LeftWall,
    RightWall,
    Floor,
}

/// The room in one-point perspective: a back wall rectangle, and the ceiling, side walls and
/// floor between it and the picture's edges.
pub(super) fn draw_room(width: u32, height: u32) -> RgbImage {
    let width = width.clamp(1, MAX_SAMPLE_SIDE);
    let height = height.clamp(1, MAX_SAMPLE_SIDE);
    let (w, h) = (width as f32, height as f32);
    let back = Rect {
        x0: 0.22 * w,
        y0: 0.16 * h,
        x1: 0.78 * w,
        y1: 0.66 * h,
    };
    let window = Rect {
        x0: 0.30 * w,
        y0: 0.25 * h,
        x1: 0.52 * w,
        y1: 0.50 * h,
    };
    let door = Rect {
        x0: 0.60 * w,
        y0: 0.31 * h,
        x1: 0.71 * w,
        y1: back.y1,
    };
    let vanishing = ((back.x0 + back.x1) / 2.0, (back.y0 + back.y1) / 2.0);
    let trim = (0.006 * w).max(1.0);

    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        let (surface, depth) = surface_at(fx, fy, w, h, &back);
        let color = match surface {
            Surface::BackWall => {
                if window.contains(fx, fy) {
                    window_pixel(fx, fy, &window, trim)
                } else if door.grown(trim).contains(fx, fy) {
                    door_pixel(fx, fy, &door, trim)
                } else if fy > back.y1 - 0.02 * h {
                    [236.0, 234.0, 228.0] // baseboard
                } else {
                    let light = 1.0 + 0.04 * (1.0 - (fy - back.y0) / (back.y1 - back.y0));
                    scale([224.0, 216.0, 201.0], light)
                }
            }
            Surface::LeftWall | Surface::RightWall => {
                let base = if matches!(surface, Surface::LeftWall) {
                    [210.0, 202.0, 187.0]
                } else {
                    [204.0, 196.0, 181.0]
                };
                scale(base, 0.94 + 0.06 * depth)
            }
            Surface::Ceiling => scale([243.0, 241.0, 236.0], 0.97 + 0.03 * (1.0 - depth)),
            Surface::Floor => floor_pixel(fx, fy, vanishing, depth),
        };
        // A little deterministic grain, as in a photo, so the JPEG is not all flat blocks.
        let grain = (hash(x, y) % 5) as f32 - 2.0;
        Rgb(color.map(|c| (c + grain).clamp(0.0, 255.0) as u8))
    })
}

/// Which surface a point lies on, and how deep into the room it is (0 at the picture's edge,
/// 1 at the back wall).
fn surface_at(fx: f32, fy: f32, w: f32, h: f32, back: &Rect) -> (Surface, f32) {
    if back.contains(fx, fy) {
        return (Surface::BackWall, 1.0);
    }
    let side = if fx < back.x0 {
        Some((Surface::LeftWall, fx / back.x0))
    } else if fx > back.x1 {
        Some((Surface::RightWall, (w - fx) / (w - back.x1)))
    } else {
        None
    };
    match side {
        Some((wall, t)) => {
            let ceiling_line = back.y0 * t;
            let floor_line = h - (h - back.y1) * t;
            if fy < ceiling_line {
                (Surface::Ceiling, fy / back.y0)
            } else if fy > floor_line {
                (Surface::Floor, (h - fy) / (h - back.y1))
            } else {
                (wall, t)
            }
        }
        None if fy < back.y0 => (Surface::Ceiling, fy / back.y0),
        None => (Surface::Floor, (h - fy) / (h - back.y1)),
    }
}

fn window_pixel(fx: f32, fy: f32, window: &Rect, trim: f32) -> [f32; 3] {
    let frame = [240.0, 240.0, 238.0];
    let mid_x = (window.x0 + window.x1) / 2.0;
    let mid_y = (window.y0 + window.y1) / 2.0;
    let on_frame = !window.shrunk(trim * 1.5).contains(fx, fy)
        || (fx - mid_x).abs() < trim / 2.0
        || (fy - mid_y).abs() < trim / 2.0;
    if on_frame {
        return frame;
    }
    let t = (fy - window.y0) / (window.y1 - window.y0);
    [150.0 + 55.0 * t, 192.0 + 35.0 * t, 232.0 + 14.0 * t]
}

fn door_pixel(fx: f32, fy: f32, door: &Rect, trim: f32) -> [f32; 3] {
    if !door.contains(fx, fy) {
        return [236.0, 234.0, 228.0]; // casing
    }
    let knob = (door.x1 - 3.0 * trim, door.y0 + 0.55 * (door.y1 - door.y0));
    if (fx - knob.0).powi(2) + (fy - knob.1).powi(2) < (trim * 1.2).powi(2) {
        return [70.0, 64.0, 58.0];
    }
    // Two recessed panels.
    let inner = door.shrunk(3.0 * trim);
    let split = door.y0 + 0.45 * (door.y1 - door.y0);
    let in_panel = inner.contains(fx, fy) && (fy - split).abs() > 1.5 * trim;
    if in_panel {
        [140.0, 102.0, 70.0]
    } else {
        [156.0, 115.0, 80.0]
    }
}

/// Wooden boards converging on the vanishing point, lighter toward the window.
fn floor_pixel(fx: f32, fy: f32, vanishing: (f32, f32), depth: f32) -> [f32; 3] {
    let spread = (fx - vanishing.0) / (fy - vanishing.1).max(1.0);
    let boards = spread * 7.0;
    let board = boards.floor();
    let seam = boards - board < 0.05;
    let tone = ((hash(board as i32 as u32, 17) % 17) as f32 - 8.0) / 255.0;
    let base = [178.0, 136.0, 96.0];
    let shade = 0.9 + 0.1 * depth + tone;
    if seam {
        scale(base, shade * 0.78)
    } else {
        scale(base, shade)
    }
}

fn scale(color: [f32; 3], factor: f32) -> [f32; 3] {
    color.map(|c| c * factor)
}

fn hash(x: u32, y: u32) -> u32 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^ (h >> 12)
}

#[derive(Clone, Copy)]
struct Rect {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Rect {
    fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }

    fn grown(&self, by: f32) -> Rect {
        Rect {
            x0: self.x0 - by,
            y0: self.y0 - by,
            x1: self.x1 + by,
            y1: self.y1,
        }
    }

    fn shrunk(&self, by: f32) -> Rect {
        Rect {
            x0: self.x0 + by,
            y0: self.y0 + by,
            x1: self.x1 - by,
            y1: self.y1 - by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn pixel_flood_png_is_tiny_and_claims_a_huge_size() {
        let png = pixel_flood_png();
        assert!(png.len() < 100, "{} bytes", png.len());
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes([png[16], png[17], png[18], png[19]]), 100_000);
        assert_eq!(u32::from_be_bytes([png[20], png[21], png[22], png[23]]), 100_000);
        // IHDR's CRC covers type and data.
        assert_eq!(
            u32::from_be_bytes([png[29], png[30], png[31], png[32]]),
            crc32(&png[12..29])
        );
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
    }

    #[test]
    fn samples_are_deterministic_and_clamped() {
        assert_eq!(room_jpeg(64, 48), room_jpeg(64, 48));
        assert_eq!(draw_room(0, 0).dimensions(), (1, 1));
        assert_eq!(draw_room(3, 100_000).dimensions(), (3, MAX_SAMPLE_SIDE));
        assert!(room_jpeg(1, 1).starts_with(&[0xFF, 0xD8, 0xFF]));
        assert!(room_png(2, 1).starts_with(b"\x89PNG"));
        assert!(room_webp(1, 2).starts_with(b"RIFF"));
    }

    #[test]
    fn the_room_has_distinct_surfaces() {
        let room = draw_room(400, 300);
        let ceiling = room.get_pixel(200, 10).0;
        let window = room.get_pixel(150, 100).0;
        let floor = room.get_pixel(200, 290).0;
        // Sky-blue glass, brown floor, near-white ceiling.
        assert!(window[2] > window[0] + 30, "{window:?}");
        assert!(floor[0] > floor[2] + 40, "{floor:?}");
        assert!(ceiling.iter().all(|&c| c > 225), "{ceiling:?}");
    }

    #[test]
    fn truncated_and_html_samples_are_what_they_claim() {
        let full = room_jpeg(320, 240);
        let cut = truncated_jpeg();
        assert_eq!(cut.len(), full.len() / 2);
        assert!(full.starts_with(&cut));
        assert!(html_named_jpeg().starts_with(b"<!DOCTYPE html>"));
    }
}

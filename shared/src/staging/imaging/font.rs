//! A 5×7 bitmap font (A-Z, 0-9, space, '/', '-') for the simulator's label, so drawing text needs
//! no font file or extra crate. Glyphs are drawn scaled up as solid squares.

use image::{Rgb, RgbImage};

pub(super) const GLYPH_WIDTH: u32 = 5;
pub(super) const GLYPH_HEIGHT: u32 = 7;
/// Glyph width plus one column of spacing.
pub(super) const ADVANCE: u32 = GLYPH_WIDTH + 1;

type Glyph = [&'static str; 7];

const BLANK: Glyph = ["     "; 7];

fn glyph(c: char) -> Glyph {
    match c.to_ascii_uppercase() {
        'A' => [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
        'B' => ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "],
        'C' => [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "],
        'D' => ["#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "],
        'E' => ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
        'F' => ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
        'G' => [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"],
        'H' => ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
        'I' => [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
        'J' => ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
        'K' => ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"],
        'L' => ["#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"],
        'M' => ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"],
        'N' => ["#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"],
        'O' => [" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
        'P' => ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "],
        'Q' => [" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"],
        'R' => ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"],
        'S' => [" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "],
        'T' => ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
        'U' => ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
        'V' => ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "],
        'W' => ["#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "],
        'X' => ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"],
        'Y' => ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "],
        'Z' => ["#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"],
        '0' => [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
        '1' => ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
        '2' => [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
        '3' => ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
        '4' => ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
        '5' => ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
        '6' => ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
        '7' => ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
        '8' => [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
        '9' => [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
        '/' => ["    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    "],
        '-' => ["     ", "     ", "     ", "#####", "     ", "     ", "     "],
        // Space, and anything the font lacks, advances without ink.
        _ => BLANK,
    }
}

/// The width in pixels of `text` drawn at `scale` (no trailing spacing column).
pub(super) fn text_width(text: &str, scale: u32) -> u32 {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.saturating_mul(ADVANCE).saturating_sub(1).saturating_mul(scale)
}

/// Draws `text` with its top-left corner at (x, y); pixels outside the image are skipped.
pub(super) fn draw_text(canvas: &mut RgbImage, x: u32, y: u32, scale: u32, text: &str, color: Rgb<u8>) {
    let scale = scale.max(1);
    let mut left = u64::from(x);
    for c in text.chars() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for (column, bit) in bits.bytes().enumerate() {
                if bit == b'#' {
                    let cell_x = left + column as u64 * u64::from(scale);
                    let cell_y = u64::from(y) + row as u64 * u64::from(scale);
                    fill_square(canvas, cell_x, cell_y, scale, color);
                }
            }
        }
        left += u64::from(ADVANCE) * u64::from(scale);
    }
}

fn fill_square(canvas: &mut RgbImage, x: u64, y: u64, size: u32, color: Rgb<u8>) {
    let (width, height) = (u64::from(canvas.width()), u64::from(canvas.height()));
    for py in y..(y + u64::from(size)).min(height) {
        for px in x..(x + u64::from(size)).min(width) {
            // In bounds by the loop ranges, which stay below the u32 dimensions.
            canvas.put_pixel(px as u32, py as u32, color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPPORTED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-";

    #[test]
    fn every_glyph_is_five_by_seven_and_inked() {
        for c in SUPPORTED.chars() {
            let rows = glyph(c);
            assert!(
                rows.iter()
                    .all(|row| row.len() == 5 && row.bytes().all(|b| b == b'#' || b == b' ')),
                "{c}"
            );
            assert_ne!(rows, BLANK, "{c} has no ink");
        }
        assert_eq!(glyph(' '), BLANK);
        assert_eq!(glyph('a'), glyph('A'));
    }

    #[test]
    fn glyphs_are_distinct() {
        let glyphs: Vec<Glyph> = SUPPORTED.chars().map(glyph).collect();
        for (i, a) in glyphs.iter().enumerate() {
            for b in &glyphs[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn draws_scaled_glyphs_and_clips_at_the_edges() {
        let mut canvas = RgbImage::new(40, 20);
        let ink = Rgb([255, 255, 255]);
        draw_text(&mut canvas, 1, 1, 2, "-", ink);
        // The '-' bar is row 3 (scaled: y 7..9) across columns 0..5 (scaled: x 1..11).
        assert_eq!(canvas.get_pixel(1, 7), &ink);
        assert_eq!(canvas.get_pixel(10, 8), &ink);
        assert_eq!(canvas.get_pixel(11, 8), &Rgb([0, 0, 0]));
        assert_eq!(canvas.get_pixel(5, 6), &Rgb([0, 0, 0]));

        // Far past the edges: no panic, nothing drawn out of range.
        draw_text(&mut canvas, 35, 15, 9, "SIMULATED", ink);
        draw_text(&mut canvas, u32::MAX - 3, u32::MAX - 3, u32::MAX, "X", ink);
    }

    #[test]
    fn text_width_counts_advances_without_the_trailing_gap() {
        assert_eq!(text_width("", 3), 0);
        assert_eq!(text_width("A", 1), 5);
        assert_eq!(text_width("AB", 2), 22);
    }
}

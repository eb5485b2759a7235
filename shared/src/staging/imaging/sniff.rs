//! Byte-level checks that run before any decoder sees the file: the format allowlist by magic
//! bytes (never by name or declared content type), a hint for common wrong uploads, and the JPEG
//! end-of-image check the lenient JPEG decoder does not make.

use crate::clients::storage::ImageFormat;

const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const PNG_MAGIC: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The allowed format the leading bytes announce, if any.
pub(super) fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(JPEG_MAGIC) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(PNG_MAGIC) {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

/// What a refused file most likely is, phrased to follow "it looks like". Only a hint for the
/// message: the decision itself is [`sniff`]'s.
pub(super) fn looks_like(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some("a GIF image");
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some(match &bytes[8..12] {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => "a HEIC photo",
            b"avif" | b"avis" => "an AVIF image",
            _ => "a video",
        });
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Some("a TIFF image");
    }
    if bytes.starts_with(b"%PDF") {
        return Some("a PDF document");
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Some("a ZIP archive");
    }
    if bytes.starts_with(b"BM") && bytes.len() >= 26 {
        return Some("a BMP image");
    }
    looks_like_text(bytes)
}

fn looks_like_text(bytes: &[u8]) -> Option<&'static str> {
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = head[start..].to_ascii_lowercase();
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|window| window == needle);
    if head.starts_with(b"<!doctype html") || head.starts_with(b"<html") || contains(b"<body") {
        Some("an HTML page")
    } else if head.starts_with(b"<svg") || (head.starts_with(b"<?xml") && contains(b"<svg")) {
        Some("an SVG drawing")
    } else if head.starts_with(b"<?xml") {
        Some("an XML document")
    } else if head.starts_with(b"{") || head.starts_with(b"[") {
        Some("a JSON document")
    } else if head.starts_with(b"<") {
        Some("an HTML page")
    } else {
        None
    }
}

/// The width and height a PNG's IHDR chunk claims, read without a decoder: the PNG decoder
/// refuses a zero dimension with a generic error, and this names it.
pub(super) fn png_claimed_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let height = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((width, height))
}

/// How a JPEG's marker structure ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JpegEnd {
    /// An end-of-image marker closes the last scan (anything after it is ignored, as decoders do).
    Complete,
    /// The data stops before the end-of-image marker: a cut-off upload or download.
    Truncated,
    /// A segment length that cannot be right.
    Malformed,
}

/// Walks the JPEG marker segments and entropy-coded scans up to the end-of-image marker.
///
/// Needed because the JPEG decoder is lenient: a file cut in half decodes "successfully" with the
/// missing rows filled in, which would stage a half-grey photo. Segment lengths are followed (so an
/// EXIF thumbnail's own end marker is skipped), stray bytes between segments are skipped like
/// libjpeg does, and inside a scan only a marker other than a stuffed 0xFF00 or a restart marker
/// ends it.
pub(super) fn jpeg_end(bytes: &[u8]) -> JpegEnd {
    let mut pos = 2; // after SOI
    loop {
        // Find the next marker: 0xFF followed by something other than fill bytes (0xFF).
        while pos < bytes.len() && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos + 1 < bytes.len() && bytes[pos + 1] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos + 1) else {
            return JpegEnd::Truncated;
        };
        pos += 2;
        match marker {
            0xD9 => return JpegEnd::Complete,
            // Standalone markers without a length (TEM, RSTn); 0x00 is a stray stuffed byte.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(length) = segment_length(bytes, pos) else {
            return JpegEnd::Truncated;
        };
        if length < 2 {
            return JpegEnd::Malformed;
        }
        pos += length;
        if pos > bytes.len() {
            return JpegEnd::Truncated;
        }
        if marker == 0xDA {
            pos = skip_entropy_coded_data(bytes, pos);
        }
    }
}

fn segment_length(bytes: &[u8], pos: usize) -> Option<usize> {
    let high = *bytes.get(pos)?;
    let low = *bytes.get(pos + 1)?;
    Some(usize::from(u16::from_be_bytes([high, low])))
}

/// The position of the marker that ends a scan (or the end of the data).
fn skip_entropy_coded_data(bytes: &[u8], mut pos: usize) -> usize {
    while pos + 1 < bytes.len() {
        if bytes[pos] == 0xFF && !matches!(bytes[pos + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
            return pos;
        }
        pos += 1;
    }
    bytes.len()
}

/// The segment markers in a JPEG's header, up to the first scan (tests check for metadata).
#[cfg(test)]
pub(super) fn jpeg_header_markers(bytes: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while let (Some(0xFF), Some(&marker)) = (bytes.get(pos), bytes.get(pos + 1)) {
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        let Some(length) = segment_length(bytes, pos + 2) else {
            break;
        };
        pos += 2 + length;
    }
    markers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_three_allowed_formats_only() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(ImageFormat::Png));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8L"), Some(ImageFormat::Webp));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        assert_eq!(sniff(b"\x89PNG"), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn hints_name_common_wrong_uploads() {
        assert_eq!(looks_like(b"  \n<!DOCTYPE html><html>"), Some("an HTML page"));
        assert_eq!(looks_like(b"\xEF\xBB\xBF<HTML><BODY>"), Some("an HTML page"));
        assert_eq!(
            looks_like(b"<?xml version=\"1.0\"?><svg xmlns="),
            Some("an SVG drawing")
        );
        assert_eq!(looks_like(b"{\"error\":\"forbidden\"}"), Some("a JSON document"));
        assert_eq!(looks_like(b"GIF89a\x01\0\x01\0"), Some("a GIF image"));
        assert_eq!(looks_like(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("a HEIC photo"));
        assert_eq!(looks_like(b"\0\0\0\x18ftypavif\0\0\0\0"), Some("an AVIF image"));
        assert_eq!(looks_like(b"%PDF-1.7"), Some("a PDF document"));
        assert_eq!(looks_like(b"II*\0\x08\0\0\0"), Some("a TIFF image"));
        assert_eq!(looks_like(b"\x00\x01\x02"), None);
        assert_eq!(looks_like(b""), None);
    }

    #[test]
    fn png_claimed_dimensions_reads_ihdr_only() {
        let png = super::super::samples::png_with_claimed_size(7, 0);
        assert_eq!(png_claimed_dimensions(&png), Some((7, 0)));
        assert_eq!(png_claimed_dimensions(&png[..23]), None);
        assert_eq!(
            png_claimed_dimensions(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIDAT\0\0\0\0\0\0\0\0"),
            None
        );
    }

    #[test]
    fn jpeg_end_follows_segments_and_scans() {
        // SOI, APP1 whose payload holds a fake EOI (must be skipped), SOS with stuffed and restart
        // bytes, EOI.
        let complete = [
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34,
            0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert_eq!(jpeg_end(&complete), JpegEnd::Complete);
        for cut in 2..complete.len() - 1 {
            assert_eq!(jpeg_end(&complete[..cut]), JpegEnd::Truncated, "cut at {cut}");
        }
        let with_trailer = [&complete[..], b"trailing vendor data"].concat();
        assert_eq!(jpeg_end(&with_trailer), JpegEnd::Complete);
        assert_eq!(jpeg_end(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]), JpegEnd::Malformed);
    }

    #[test]
    fn header_markers_stop_at_the_first_scan() {
        let bytes = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0xFF, 0xDB, 0x00, 0x02, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9,
        ];
        assert_eq!(jpeg_header_markers(&bytes), vec![0xE0, 0xDB, 0xDA]);
    }
}

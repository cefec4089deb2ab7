//! JPEG: keeps the segments that decode and colour the picture (frame, tables, scans,
//! JFIF, the ICC profile, Adobe's colour-transform flag) and stops at the first
//! end-of-image marker. Drops EXIF and XMP (APP1), MPF and FlashPix (APP2), IPTC (APP13),
//! every other APPn, comments, and whatever follows the image (motion-photo videos,
//! secondary images, vendor trailers).

use super::{take, Stripped};
use crate::files::picture::PictureError;

/// Start of image.
const SOI: u8 = 0xD8;
/// End of image.
const EOI: u8 = 0xD9;
/// Start of scan: entropy-coded data follows its header.
const SOS: u8 = 0xDA;

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, PictureError> {
    if !bytes.starts_with(&[0xFF, SOI]) {
        return Err(PictureError::corrupt("no JPEG start-of-image marker"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, SOI]);
    let mut at = 2;
    let mut scanned = false;
    loop {
        if at >= bytes.len() && scanned {
            // Cut after a scan: decoders show what is there, so close it properly.
            out.extend_from_slice(&[0xFF, EOI]);
            break;
        }
        if take(bytes, at, 1)? != [0xFF] {
            return Err(PictureError::corrupt("JPEG: expected a marker"));
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = take(bytes, at, 1)?[0];
        at += 1;
        match marker {
            EOI => {
                out.extend_from_slice(&[0xFF, EOI]);
                break;
            }
            // Markers without a length: restart markers and TEM.
            0xD0..=0xD7 | 0x01 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            0x00 | SOI => return Err(PictureError::corrupt("JPEG: invalid marker")),
            _ => {}
        }
        let length = take(bytes, at, 2)?;
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 {
            return Err(PictureError::corrupt("JPEG: segment length below 2"));
        }
        let segment = take(bytes, at, length)?;
        at += length;
        if keeps(marker, &segment[2..]) {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(segment);
        }
        if marker == SOS {
            scanned = true;
            let end = scan_end(bytes, at);
            out.extend_from_slice(&bytes[at..end]);
            at = end;
        }
    }
    Ok(Stripped {
        bytes: out,
        animated: false,
    })
}

/// Whether a segment is needed to show the picture as it was meant to look.
fn keeps(marker: u8, payload: &[u8]) -> bool {
    match marker {
        // APP0: JFIF only; JFXX carries a thumbnail, which may show what was cropped out.
        0xE0 => payload.starts_with(b"JFIF\0"),
        // APP2: the ICC profile (wide-gamut phone photos need it); not MPF or FlashPix.
        0xE2 => payload.starts_with(b"ICC_PROFILE\0"),
        // APP14: Adobe's transform flag decides how CMYK/YCCK data is decoded.
        0xEE => payload.starts_with(b"Adobe"),
        // Every other APPn (EXIF, XMP, IPTC, vendor data) and comments.
        0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
        // Frames, tables, scans, restart intervals: the picture itself.
        _ => true,
    }
}

/// Where the entropy-coded data starting at `from` ends: at the 0xFF of the next marker
/// (0xFF 0x00 is an escaped data byte and 0xFF 0xD0..0xD7 a restart inside the scan), or
/// at the end of the file.
fn scan_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == 0xFF) {
        let p = i + offset;
        match bytes.get(p + 1) {
            Some(0x00) | Some(0xD0..=0xD7) => i = p + 2,
            _ => return p,
        }
    }
    bytes.len()
}

//! PNG: keeps the critical chunks, the ones that change how pixels look (transparency,
//! gamma, chromaticities, colour profile, HDR signalling, pixel aspect) and APNG's
//! animation chunks, and stops at IEND. Drops eXIf, tEXt, zTXt, iTXt (where EXIF and XMP
//! hide), tIME, and every private or unknown chunk.

use super::{take, Stripped};
use crate::files::picture::PictureError;

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// A whole IEND chunk: zero length, type, CRC.
const IEND_CHUNK: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

/// Chunks copied to the cleaned file; any other is dropped.
const KEEP: [&[u8; 4]; 22] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"bKGD", b"hIST", b"pHYs", b"sPLT", b"acTL",
    b"fcTL", b"fdAT",
];

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, PictureError> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(PictureError::corrupt("no PNG signature"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    let mut at = SIGNATURE.len();
    let mut animated = false;
    let mut seen_data = false;
    loop {
        if at == bytes.len() && seen_data {
            // Ends cleanly after the image data without IEND: decoders accept it; close it.
            out.extend_from_slice(&IEND_CHUNK);
            break;
        }
        let head = take(bytes, at, 8)?;
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if length > i32::MAX as u32 {
            return Err(PictureError::corrupt("PNG: chunk length above 2^31-1"));
        }
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        // Length, type, data and CRC, copied as they are (the CRC stays valid).
        let chunk = take(bytes, at, 12 + length as usize)?;
        at += chunk.len();
        match &kind {
            b"acTL" => animated = true,
            b"IDAT" => seen_data = true,
            _ => {}
        }
        if KEEP.contains(&&kind) {
            out.extend_from_slice(chunk);
        }
        if &kind == b"IEND" {
            break;
        }
    }
    Ok(Stripped {
        bytes: out,
        animated,
    })
}

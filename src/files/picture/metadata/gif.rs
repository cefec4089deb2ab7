//! GIF: keeps the screen descriptor, colour tables, every frame with its graphic control
//! (so animations play as uploaded), plain-text blocks and the looping extension; drops
//! comments and every other application extension (XMP lives in one).

use super::{take, Stripped};
use crate::files::picture::PictureError;

/// Logical screen descriptor after the six-byte signature: width, height, flags,
/// background colour, aspect.
const SCREEN_DESCRIPTOR: usize = 7;
/// Image descriptor after its 0x2C introducer: left, top, width, height, flags.
const IMAGE_DESCRIPTOR: usize = 9;

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, PictureError> {
    let signature = take(bytes, 0, 6)?;
    if signature != b"GIF87a" && signature != b"GIF89a" {
        return Err(PictureError::corrupt("no GIF signature"));
    }
    let screen = take(bytes, 6, SCREEN_DESCRIPTOR)?;
    let mut at = 6 + SCREEN_DESCRIPTOR;
    at += color_table_len(screen[4]);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(take(bytes, 0, at)?);
    let mut frames = 0usize;
    loop {
        let Some(&introducer) = bytes.get(at) else {
            if frames == 0 {
                return Err(PictureError::corrupt("GIF: no image"));
            }
            // Ends cleanly between blocks without the trailer: close it.
            out.push(0x3B);
            break;
        };
        match introducer {
            0x3B => {
                out.push(0x3B);
                break;
            }
            0x2C => {
                let descriptor = take(bytes, at + 1, IMAGE_DESCRIPTOR)?;
                // Introducer, descriptor, local colour table, LZW minimum code size.
                let head = 1 + IMAGE_DESCRIPTOR + color_table_len(descriptor[8]) + 1;
                take(bytes, at, head)?;
                let end = sub_blocks_end(bytes, at + head)?;
                out.extend_from_slice(&bytes[at..end]);
                at = end;
                frames += 1;
            }
            0x21 => {
                let label = take(bytes, at + 1, 1)?[0];
                let end = sub_blocks_end(bytes, at + 2)?;
                if keeps_extension(label, &bytes[at + 2..end]) {
                    out.extend_from_slice(&bytes[at..end]);
                }
                at = end;
            }
            _ => return Err(PictureError::corrupt("GIF: unknown block")),
        }
    }
    Ok(Stripped {
        bytes: out,
        animated: frames > 1,
    })
}

/// Bytes of the colour table a descriptor's flags announce.
fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// Where a chain of data sub-blocks starting at `at` ends (after its zero terminator).
fn sub_blocks_end(bytes: &[u8], mut at: usize) -> Result<usize, PictureError> {
    loop {
        let len = usize::from(take(bytes, at, 1)?[0]);
        take(bytes, at + 1, len)?;
        at += 1 + len;
        if len == 0 {
            return Ok(at);
        }
    }
}

/// Graphic control and plain text shape the frames; of the application extensions only
/// the loop count (NETSCAPE2.0, ANIMEXTS1.0) does.
fn keeps_extension(label: u8, sub_blocks: &[u8]) -> bool {
    match label {
        0xF9 | 0x01 => true,
        0xFF => {
            let identifier = sub_blocks.get(1..12).unwrap_or_default();
            sub_blocks.first() == Some(&11)
                && (identifier == b"NETSCAPE2.0" || identifier == b"ANIMEXTS1.0")
        }
        _ => false,
    }
}

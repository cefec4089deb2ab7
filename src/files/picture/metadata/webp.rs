//! WebP: keeps the bitstream chunks (VP8, VP8L, ALPH), the extended header (VP8X, with
//! its EXIF and XMP flags cleared), the colour profile and the animation (ANIM, and ANMF
//! frames, themselves filtered); drops EXIF, XMP and unknown chunks, inside frames too,
//! and anything after the RIFF container.

use super::{take, Stripped};
use crate::files::picture::PictureError;

/// VP8X flag bits that announce EXIF and XMP chunks.
const EXIF_FLAG: u8 = 0x08;
const XMP_FLAG: u8 = 0x04;
/// An ANMF chunk's frame header (position, size, duration, flags) before its sub-chunks.
const ANMF_HEADER: usize = 16;

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, PictureError> {
    let header = take(bytes, 0, 12)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WEBP" {
        return Err(PictureError::corrupt("no RIFF WEBP header"));
    }
    let riff_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    // The RIFF size counts from after its own field; the "WEBP" tag is part of it.
    let body = take(bytes, 12, riff_len.saturating_sub(4))?;
    let mut animated = false;
    let chunks = filter_chunks(body, &mut animated, false)?;
    let mut out = Vec::with_capacity(12 + chunks.len());
    out.extend_from_slice(b"RIFF");
    let size = u32::try_from(4 + chunks.len())
        .map_err(|_| PictureError::corrupt("WebP: larger than RIFF allows"))?;
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    Ok(Stripped {
        bytes: out,
        animated,
    })
}

/// Copies the chunks of `body` worth keeping (inside an ANMF frame only the bitstream
/// ones), padded to even lengths.
fn filter_chunks(
    body: &[u8],
    animated: &mut bool,
    in_frame: bool,
) -> Result<Vec<u8>, PictureError> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    while at < body.len() {
        let head = take(body, at, 8)?;
        let id: [u8; 4] = [head[0], head[1], head[2], head[3]];
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let data = take(body, at + 8, size)?;
        // The pad byte after an odd chunk may be missing at the very end of a file.
        at = (at + 8 + size + (size & 1)).min(body.len());
        let kept: Option<Vec<u8>> = match &id {
            b"VP8 " | b"VP8L" | b"ALPH" => Some(data.to_vec()),
            b"VP8X" | b"ICCP" | b"ANIM" if in_frame => None,
            b"VP8X" => {
                let mut flags = data.to_vec();
                if let Some(first) = flags.first_mut() {
                    *first &= !(EXIF_FLAG | XMP_FLAG);
                }
                Some(flags)
            }
            b"ICCP" => Some(data.to_vec()),
            b"ANIM" => {
                *animated = true;
                Some(data.to_vec())
            }
            b"ANMF" if !in_frame => {
                *animated = true;
                let frame_header = take(data, 0, ANMF_HEADER)?;
                let mut frame = frame_header.to_vec();
                frame.extend(filter_chunks(&data[ANMF_HEADER..], animated, true)?);
                Some(frame)
            }
            _ => None,
        };
        if let Some(kept) = kept {
            let size = u32::try_from(kept.len())
                .map_err(|_| PictureError::corrupt("WebP: chunk too large"))?;
            out.extend_from_slice(&id);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&kept);
            if kept.len() % 2 == 1 {
                out.push(0);
            }
        }
    }
    Ok(out)
}

//! Test pictures made in the test: small images encoded with `image`, and hand-built
//! blocks (EXIF with GPS and an orientation, XMP, PNG chunks with their CRC, WebP chunks,
//! GIF extensions, a deflate bomb) spliced into them.

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, Rgba};
use std::io::Cursor;

/// A picture whose pixels tell its corners apart: red top-left, so a test can see which
/// way it was turned.
pub fn marked_rgb(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        if x < width / 4 && y < height / 4 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, (x * 255 / width) as u8, (y * 255 / height) as u8])
        }
    }))
}

/// A picture with real transparency: its right half is clear.
pub fn half_clear(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(ImageBuffer::from_fn(width, height, |x, _| {
        Rgba([10, 200, 30, if x < width / 2 { 255 } else { 0 }])
    }))
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encode fixture");
    bytes.into_inner()
}

/// Latitude 23°33'S, the marker a test looks for to prove GPS is gone.
pub const GPS_MARKER: &[u8] = b"GPSMARK!";

/// A little-endian TIFF/EXIF block with IFD0 {Orientation, Make, GPS IFD pointer} and a
/// GPS IFD {LatitudeRef "S", Latitude 23/1 33/1 0/1}; `GPS_MARKER` sits in Make.
pub fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    // IFD0 at 8: 3 entries (12 bytes each), next-IFD offset.
    let ifd0_len = 2 + 3 * 12 + 4;
    let make_at = 8 + ifd0_len; // 9 bytes "GPSMARK!\0"
    let gps_at = make_at + 10; // even
    t.extend_from_slice(&3u16.to_le_bytes());
    entry(&mut t, 0x010F, 2, 9, make_at as u32); // Make, ASCII, at make_at
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation)); // Orientation, SHORT
    entry(&mut t, 0x8825, 4, 1, gps_at as u32); // GPS IFD pointer
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), make_at);
    t.extend_from_slice(GPS_MARKER);
    t.extend_from_slice(b"\0\0");
    assert_eq!(t.len(), gps_at);
    // GPS IFD: 2 entries.
    let rationals_at = gps_at + 2 + 2 * 12 + 4;
    t.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"S\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, rationals_at as u32);
    t.extend_from_slice(&0u32.to_le_bytes());
    for (num, den) in [(23u32, 1u32), (33, 1), (0, 1)] {
        t.extend_from_slice(&num.to_le_bytes());
        t.extend_from_slice(&den.to_le_bytes());
    }
    t
}

fn entry(t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
    t.extend_from_slice(&tag.to_le_bytes());
    t.extend_from_slice(&kind.to_le_bytes());
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&value.to_le_bytes());
}

/// An XMP packet with a location in it.
pub const XMP: &[u8] = b"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><exif:GPSLatitude>23,33S XMPGPS</exif:GPSLatitude></x:xmpmeta>";

fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// A JPEG of `image` with, after SOI: EXIF (orientation, GPS), XMP, an ICC profile, a
/// comment; and a "motion photo" appended after EOI.
pub fn jpeg_with_metadata(image: &DynamicImage, orientation: u16) -> Vec<u8> {
    splice_jpeg_metadata(&encode(image, ImageFormat::Jpeg), orientation)
}

/// `jpeg_with_metadata` for a JPEG already encoded (`plain`, without metadata).
pub fn splice_jpeg_metadata(plain: &[u8], orientation: u16) -> Vec<u8> {
    let mut out = plain[..2].to_vec();
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(exif_tiff(orientation));
    out.extend(jpeg_segment(0xE1, &exif));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(XMP);
    out.extend(jpeg_segment(0xE1, &xmp));
    let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc.extend(fake_icc());
    out.extend(jpeg_segment(0xE2, &icc));
    out.extend(jpeg_segment(0xFE, b"shot at GPSMARK! home"));
    out.extend_from_slice(&plain[2..]);
    out.extend_from_slice(b"\0\0\0\x18ftypmp42 motion photo GPSMARK! trailer");
    out
}

/// Bytes shaped like an ICC profile header for an RGB space (what `upright` checks).
pub fn fake_icc() -> Vec<u8> {
    let mut icc = vec![0u8; 132];
    icc[16..20].copy_from_slice(b"RGB ");
    icc[36..40].copy_from_slice(b"acsp");
    icc
}

/// CRC-32 as PNG uses it.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    c.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    c
}

/// A PNG of `image` with eXIf (orientation, GPS), tEXt, an iTXt XMP packet and a private
/// chunk inserted after IHDR, and junk after IEND.
pub fn png_with_metadata(image: &DynamicImage, orientation: u16) -> Vec<u8> {
    let plain = encode(image, ImageFormat::Png);
    let after_ihdr = 8 + 25;
    let mut out = plain[..after_ihdr].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_tiff(orientation)));
    out.extend(png_chunk(b"tEXt", b"Comment\0GPSMARK!"));
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend_from_slice(XMP);
    out.extend(png_chunk(b"iTXt", &itxt));
    out.extend(png_chunk(b"prVt", b"GPSMARK!"));
    out.extend_from_slice(&plain[after_ihdr..]);
    out.extend_from_slice(b"junk GPSMARK!");
    out
}

/// A PNG made of a signature, an IHDR declaring `width`×`height` at `depth` bits per
/// sample of `color` type, the given IDAT payload, and IEND.
pub fn png_raw(width: u32, height: u32, depth: u8, color: u8, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", idat));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// A zlib stream that inflates to `len` zero bytes: fixed-Huffman matches of 258 bytes at
/// distance 1, 13 bits each, so about 1/1300 of the size it claims.
pub fn zlib_of_zeros(len: u64) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.push(1, 1); // BFINAL
    bits.push(1, 2); // BTYPE = fixed Huffman
    let literal_zero = |bits: &mut BitWriter| bits.push_code(0b0011_0000, 8);
    literal_zero(&mut bits);
    let mut left = len - 1;
    while left >= 258 {
        bits.push_code(0b1100_0101, 8); // length symbol 285 = 258 bytes
        bits.push_code(0, 5); // distance code 0 = 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut bits);
    }
    bits.push_code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(bits.finish());
    // Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    let b = (len % 65_521) as u32;
    out.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    out
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bit: u32,
    acc: u32,
}

impl BitWriter {
    /// Pushes `count` bits of `value`, least significant first (deflate's header fields).
    fn push(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.acc |= ((value >> i) & 1) << self.bit;
            self.bit += 1;
            if self.bit == 8 {
                self.bytes.push(self.acc as u8);
                self.acc = 0;
                self.bit = 0;
            }
        }
    }

    /// Pushes a Huffman code, most significant bit first.
    fn push_code(&mut self, code: u32, count: u32) {
        for i in (0..count).rev() {
            self.push((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bit > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

fn riff_chunk(id: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = id.to_vec();
    c.extend_from_slice(&(data.len() as u32).to_le_bytes());
    c.extend_from_slice(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// An extended WebP of `image` (lossless bitstream from `image`): VP8X with the EXIF and
/// XMP flags, ICCP, the bitstream, EXIF (orientation, GPS) and XMP, and junk after it.
pub fn webp_with_metadata(image: &DynamicImage, orientation: u16) -> Vec<u8> {
    let plain = encode(image, ImageFormat::WebP);
    // A simple lossless file: RIFF, size, WEBP, then one VP8L chunk.
    assert_eq!(&plain[12..16], b"VP8L");
    let bitstream = &plain[12..];
    let mut vp8x = vec![
        0x20 | 0x08 | 0x04 | if image.color().has_alpha() { 0x10 } else { 0 },
        0,
        0,
        0,
    ];
    vp8x.extend_from_slice(&(image.width() - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(image.height() - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(riff_chunk(b"ICCP", &fake_icc()));
    body.extend_from_slice(bitstream);
    body.extend(riff_chunk(b"EXIF", &exif_tiff(orientation)));
    body.extend(riff_chunk(b"XMP ", XMP));
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out.extend_from_slice(b"junk GPSMARK!");
    out
}

/// A two-frame animated GIF with a comment and an XMP application extension.
pub fn animated_gif_with_metadata() -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, RgbaImage};
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        encoder.set_repeat(Repeat::Infinite).expect("repeat");
        for shade in [40u8, 220] {
            let frame = RgbaImage::from_pixel(40, 30, Rgba([shade, 0, 255 - shade, 255]));
            encoder
                .encode_frame(Frame::from_parts(
                    frame,
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                ))
                .expect("frame");
        }
    }
    assert_eq!(bytes.last(), Some(&0x3B));
    bytes.pop();
    bytes.extend_from_slice(b"\x21\xFE\x08GPSMARK!\x00");
    bytes.extend_from_slice(b"\x21\xFF\x0BXMP DataXMP");
    for piece in XMP.chunks(255) {
        bytes.push(piece.len() as u8);
        bytes.extend_from_slice(piece);
    }
    bytes.push(0);
    bytes.push(0x3B);
    bytes
}

/// True if `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A small deterministic generator (xorshift64*), so fuzz-ish tests repeat exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

//! The picture work on real pictures made in the test: sizes, cleaning, turning,
//! previews, the limits, and damaged input of every kind never panicking.

use super::fixtures::*;
use super::*;
use crate::files::sniff::{sniff, ImageKind};
use image::{DynamicImage, GenericImageView, ImageFormat};

fn run(bytes: &[u8], kind: ImageKind) -> Result<(Processed, Vec<u8>), PictureError> {
    let mut cleaned = Vec::new();
    let processed = process_bytes(bytes, kind, &mut cleaned)?;
    Ok((processed, cleaned))
}

fn decode(bytes: &[u8], format: ImageFormat) -> DynamicImage {
    image::load_from_memory_with_format(bytes, format).expect("decodes")
}

/// No trace of the EXIF, GPS, XMP or comments the fixtures plant.
fn assert_clean(bytes: &[u8]) {
    for needle in [
        GPS_MARKER,
        b"Exif\0\0",
        b"II*\0",
        b"XMPGPS",
        b"xmpmeta",
        b"eXIf",
        b"tEXt",
        b"iTXt",
    ] {
        assert!(
            !contains(bytes, needle),
            "{:?} left in the cleaned file",
            String::from_utf8_lossy(needle)
        );
    }
}

fn is_red(pixel: image::Rgba<u8>) -> bool {
    pixel.0[0] > 200 && pixel.0[1] < 60 && pixel.0[2] < 60
}

#[test]
fn plain_png_keeps_its_pixels_and_gets_a_jpeg_preview() {
    let original = marked_rgb(1000, 600);
    let bytes = encode(&original, ImageFormat::Png);
    assert_eq!(sniff(&bytes).image(), Some(ImageKind::Png));
    let (done, cleaned) = run(&bytes, ImageKind::Png).unwrap();
    assert_eq!((done.width, done.height), (1000, 600));
    assert!(!done.reencoded && !done.animated);
    assert_eq!(
        cleaned, bytes,
        "a PNG with nothing to remove is copied as is"
    );
    assert_eq!(done.preview.kind, ImageKind::Jpeg);
    assert_eq!((done.preview.width, done.preview.height), (480, 288));
    let preview = decode(&done.preview.bytes, ImageFormat::Jpeg);
    assert_eq!(preview.dimensions(), (480, 288));
}

#[test]
fn png_metadata_is_removed_losslessly() {
    let original = marked_rgb(300, 200);
    let bytes = png_with_metadata(&original, 1);
    assert!(contains(&bytes, GPS_MARKER));
    let (done, cleaned) = run(&bytes, ImageKind::Png).unwrap();
    assert!(!done.reencoded);
    assert_clean(&cleaned);
    assert!(
        cleaned.ends_with(&png_chunk(b"IEND", b"")),
        "nothing after IEND"
    );
    assert_eq!(
        decode(&cleaned, ImageFormat::Png).to_rgb8(),
        original.to_rgb8()
    );
    // Small pictures are not enlarged for their preview.
    assert_eq!((done.preview.width, done.preview.height), (300, 200));
}

#[test]
fn png_with_exif_orientation_is_turned_upright() {
    let original = marked_rgb(300, 200);
    let bytes = png_with_metadata(&original, 6);
    let (done, cleaned) = run(&bytes, ImageKind::Png).unwrap();
    assert!(done.reencoded);
    assert_eq!((done.width, done.height), (200, 300));
    assert_clean(&cleaned);
    let upright = decode(&cleaned, ImageFormat::Png);
    assert_eq!(upright.dimensions(), (200, 300));
    // Rotated 90° clockwise: the red top-left corner is now top-right.
    assert!(is_red(upright.get_pixel(199, 0)));
    assert!(!is_red(upright.get_pixel(0, 0)));
}

#[test]
fn transparent_png_gets_a_png_preview() {
    let bytes = encode(&half_clear(900, 900), ImageFormat::Png);
    let (done, _) = run(&bytes, ImageKind::Png).unwrap();
    assert_eq!(done.preview.kind, ImageKind::Png);
    let preview = decode(&done.preview.bytes, ImageFormat::Png);
    assert_eq!(preview.dimensions(), (480, 480));
    assert_eq!(preview.get_pixel(10, 10).0[3], 255);
    assert_eq!(preview.get_pixel(470, 10).0[3], 0);
    // An alpha channel that is opaque everywhere still gets a JPEG.
    let opaque = DynamicImage::ImageRgba8(marked_rgb(600, 600).to_rgba8());
    let (done, _) = run(&encode(&opaque, ImageFormat::Png), ImageKind::Png).unwrap();
    assert_eq!(done.preview.kind, ImageKind::Jpeg);
}

#[test]
fn jpeg_with_gps_and_orientation_6_is_cleaned_and_turned() {
    let original = marked_rgb(640, 320);
    let bytes = jpeg_with_metadata(&original, 6);
    assert!(contains(&bytes, GPS_MARKER));
    assert_eq!(sniff(&bytes).image(), Some(ImageKind::Jpeg));
    let (done, cleaned) = run(&bytes, ImageKind::Jpeg).unwrap();
    assert!(done.reencoded);
    assert_eq!((done.width, done.height), (320, 640), "as displayed");
    assert_clean(&cleaned);
    assert!(cleaned.ends_with(&[0xFF, 0xD9]), "nothing after EOI");
    // Re-read: no EXIF at all, so no orientation to apply, and the pixels are upright.
    let mut decoder =
        image::ImageReader::with_format(std::io::Cursor::new(&cleaned), ImageFormat::Jpeg)
            .into_decoder()
            .unwrap();
    use image::ImageDecoder;
    assert_eq!(decoder.exif_metadata().unwrap(), None);
    assert_eq!(
        decoder.orientation().unwrap(),
        image::metadata::Orientation::NoTransforms
    );
    assert!(
        decoder.icc_profile().unwrap().is_some(),
        "the colour profile is carried over"
    );
    let upright = DynamicImage::from_decoder(decoder).unwrap();
    assert_eq!(upright.dimensions(), (320, 640));
    assert!(
        is_red(upright.get_pixel(315, 5)),
        "red corner now top-right"
    );
    assert!(!is_red(upright.get_pixel(5, 5)));
    let preview = decode(&done.preview.bytes, ImageFormat::Jpeg);
    assert_eq!(preview.dimensions(), (240, 480));
    assert!(is_red(preview.get_pixel(236, 3)));
}

#[test]
fn upright_jpeg_metadata_is_removed_without_re_encoding() {
    let original = marked_rgb(640, 320);
    let bytes = jpeg_with_metadata(&original, 1);
    let (done, cleaned) = run(&bytes, ImageKind::Jpeg).unwrap();
    assert!(!done.reencoded);
    assert_eq!((done.width, done.height), (640, 320));
    assert_clean(&cleaned);
    assert!(!contains(&cleaned, b"motion photo"));
    assert!(
        contains(&cleaned, b"ICC_PROFILE\0"),
        "the colour profile stays"
    );
    // Lossless: the same pixels as the JPEG without any metadata.
    let plain = encode(&original, ImageFormat::Jpeg);
    assert_eq!(
        decode(&cleaned, ImageFormat::Jpeg).to_rgb8(),
        decode(&plain, ImageFormat::Jpeg).to_rgb8()
    );
    assert!(cleaned.len() < bytes.len());
}

#[test]
fn every_jpeg_orientation_displays_upright() {
    // Orientation n applied to a picture stored so that it looks right after n.
    let original = marked_rgb(60, 40);
    for (tag, swapped) in [
        (2, false),
        (3, false),
        (4, false),
        (5, true),
        (6, true),
        (7, true),
        (8, true),
    ] {
        let bytes = jpeg_with_metadata(&original, tag);
        let (done, cleaned) = run(&bytes, ImageKind::Jpeg).unwrap();
        let expected = if swapped { (40, 60) } else { (60, 40) };
        assert_eq!((done.width, done.height), expected, "orientation {tag}");
        assert_eq!(decode(&cleaned, ImageFormat::Jpeg).dimensions(), expected);
        assert_eq!((done.preview.width, done.preview.height), expected);
        assert_clean(&cleaned);
    }
}

#[test]
fn webp_metadata_is_removed_and_flags_cleared() {
    let original = marked_rgb(120, 80);
    let bytes = webp_with_metadata(&original, 1);
    assert_eq!(sniff(&bytes).image(), Some(ImageKind::WebP));
    let (done, cleaned) = run(&bytes, ImageKind::WebP).unwrap();
    assert!(!done.reencoded);
    assert_eq!((done.width, done.height), (120, 80));
    assert_clean(&cleaned);
    assert!(!contains(&cleaned, b"EXIF") && !contains(&cleaned, b"XMP "));
    assert!(contains(&cleaned, b"ICCP"));
    let vp8x_flags = cleaned[20];
    assert_eq!(vp8x_flags & 0x0C, 0, "EXIF and XMP flags cleared");
    assert_eq!(vp8x_flags & 0x20, 0x20, "ICC flag kept");
    let size = u32::from_le_bytes(cleaned[4..8].try_into().unwrap()) as usize;
    assert_eq!(size + 8, cleaned.len(), "RIFF size rewritten");
    assert_eq!(
        decode(&cleaned, ImageFormat::WebP).to_rgb8(),
        original.to_rgb8()
    );
}

#[test]
fn webp_with_orientation_6_is_turned_upright() {
    let original = marked_rgb(120, 80);
    let bytes = webp_with_metadata(&original, 6);
    let (done, cleaned) = run(&bytes, ImageKind::WebP).unwrap();
    assert!(done.reencoded);
    assert_eq!((done.width, done.height), (80, 120));
    assert_clean(&cleaned);
    let upright = decode(&cleaned, ImageFormat::WebP);
    assert_eq!(upright.dimensions(), (80, 120));
    assert!(is_red(upright.get_pixel(79, 0)));
}

#[test]
fn animated_gif_keeps_its_frames_and_loses_its_metadata() {
    let bytes = animated_gif_with_metadata();
    assert_eq!(sniff(&bytes).image(), Some(ImageKind::Gif));
    let (done, cleaned) = run(&bytes, ImageKind::Gif).unwrap();
    assert!(done.animated && !done.reencoded);
    assert_eq!((done.width, done.height), (40, 30));
    assert_clean(&cleaned);
    assert!(contains(&cleaned, b"NETSCAPE2.0"), "the loop count stays");
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&cleaned))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 2);
    // The preview is the first frame (the dark one).
    let preview = decode(&done.preview.bytes, ImageFormat::Jpeg);
    assert_eq!(preview.dimensions(), (40, 30));
    assert!(preview.get_pixel(20, 15).0[0] < 100);
}

#[test]
fn still_gif_is_not_animated() {
    let bytes = encode(&marked_rgb(50, 50), ImageFormat::Gif);
    let (done, cleaned) = run(&bytes, ImageKind::Gif).unwrap();
    assert!(!done.animated);
    assert_eq!(decode(&cleaned, ImageFormat::Gif).dimensions(), (50, 50));
}

#[test]
fn a_30000_square_png_is_refused_from_its_header() {
    // The IDAT is garbage: had it been decoded, the answer would be Corrupt.
    let bytes = png_raw(30_000, 30_000, 8, 6, b"not even zlib");
    match run(&bytes, ImageKind::Png) {
        Err(PictureError::TooLarge {
            width: 30_000,
            height: 30_000,
        }) => {}
        other => panic!("expected TooLarge, got {:?}", other.map(|(p, _)| p)),
    }
    // Past MAX_PIXELS with both sides within MAX_SIDE.
    let bytes = png_raw(16_000, 16_000, 8, 2, b"");
    assert!(matches!(
        run(&bytes, ImageKind::Png),
        Err(PictureError::TooLarge { .. })
    ));
}

#[test]
fn a_deflate_bomb_png_is_refused_by_max_alloc() {
    // 16-bit RGBA 5800×5800: within MAX_SIDE and MAX_PIXELS, but 269 MB of pixels from
    // a 1.7 MB file; MAX_DECODE_BYTES stops it before the buffer is allocated.
    let (side, bytes_per_pixel) = (5800u32, 8u64);
    assert!(u64::from(side) * u64::from(side) <= MAX_PIXELS);
    let inflated = u64::from(side) * (1 + u64::from(side) * bytes_per_pixel);
    assert!(inflated > MAX_DECODE_BYTES);
    let bomb = png_raw(side, side, 16, 6, &zlib_of_zeros(inflated));
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    assert!(matches!(
        run(&bomb, ImageKind::Png),
        Err(PictureError::TooMuchMemory)
    ));
}

#[test]
fn the_bomb_fixture_is_a_real_deflate_stream() {
    // A small one decodes, so the bomb above is refused for its size, not its bytes.
    let side = 64u32;
    let inflated = u64::from(side) * (1 + u64::from(side) * 8);
    let bytes = png_raw(side, side, 16, 6, &zlib_of_zeros(inflated));
    let (done, _) = run(&bytes, ImageKind::Png).unwrap();
    assert_eq!((done.width, done.height), (64, 64));
}

#[test]
fn damaged_pictures_give_errors() {
    let jpeg = jpeg_with_metadata(&marked_rgb(64, 64), 1);
    let png = encode(&marked_rgb(64, 64), ImageFormat::Png);
    for (bytes, kind) in [
        (&b"<svg onload=alert(1)>"[..], ImageKind::Png),
        (b"", ImageKind::Jpeg),
        (&png[..40], ImageKind::Png),
        (&png[..8], ImageKind::Png),
        (&jpeg[..30], ImageKind::Jpeg),
        (b"GIF89a", ImageKind::Gif),
        (b"RIFF\x04\0\0\0WEBP", ImageKind::WebP),
    ] {
        match run(bytes, kind) {
            Err(PictureError::Corrupt(_)) | Err(PictureError::Unsupported(_)) => {}
            other => panic!(
                "{kind:?} {:?}: {:?}",
                &bytes[..bytes.len().min(12)],
                other.map(|(p, _)| p)
            ),
        }
    }
}

#[test]
fn process_reads_from_a_path() {
    let dir = std::env::temp_dir().join(format!("papo-picture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upload");
    std::fs::write(&path, jpeg_with_metadata(&marked_rgb(64, 32), 6)).unwrap();
    let mut cleaned = Vec::new();
    let done = process(&path, ImageKind::Jpeg, &mut cleaned).unwrap();
    assert_eq!((done.width, done.height), (32, 64));
    assert_clean(&cleaned);
    assert!(matches!(
        process(&dir.join("missing"), ImageKind::Jpeg, &mut Vec::new()),
        Err(PictureError::Io(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_read_well() {
    let text = PictureError::TooLarge {
        width: 30_000,
        height: 30_000,
    }
    .to_string();
    assert!(
        text.contains("30000×30000") && text.contains("16384"),
        "{text}"
    );
    assert!(PictureError::TooMuchMemory.to_string().contains("192 MiB"));
}

/// Random truncations, byte flips and pure noise, through sniff and process: an answer
/// every time, never a panic.
#[test]
fn random_damage_never_panics() {
    let valid = [
        (jpeg_with_metadata(&marked_rgb(48, 32), 6), ImageKind::Jpeg),
        (png_with_metadata(&marked_rgb(48, 32), 6), ImageKind::Png),
        (
            encode(&half_clear(32, 32), ImageFormat::Png),
            ImageKind::Png,
        ),
        (webp_with_metadata(&marked_rgb(48, 32), 6), ImageKind::WebP),
        (animated_gif_with_metadata(), ImageKind::Gif),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sink = Vec::new();
    for (bytes, kind) in &valid {
        for round in 0..150 {
            let mut damaged = bytes.clone();
            if round % 3 == 0 {
                damaged.truncate(rng.below(bytes.len()));
            } else {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(damaged.len());
                    damaged[at] = rng.next() as u8;
                }
            }
            let _ = sniff(&damaged);
            sink.clear();
            let _ = process_bytes(&damaged, *kind, &mut sink);
        }
    }
    for _ in 0..200 {
        let noise: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
        let _ = sniff(&noise);
        for kind in [
            ImageKind::Png,
            ImageKind::Jpeg,
            ImageKind::Gif,
            ImageKind::WebP,
        ] {
            let _ = process_bytes(&noise, kind, &mut sink);
        }
    }
}

//! The type of an uploaded file, decided by its own first bytes and never by the name or
//! the `Content-Type` the client sent. Only PNG, JPEG, GIF and WebP are ever inline image
//! kinds; everything else (SVG and HTML included) is a download, whatever it claims.

/// How many leading bytes `sniff` wants: enough for every signature `infer` knows
/// (the Office formats look a little way into their zip), small enough to hold while
/// the rest of the upload streams to disk.
pub const SNIFF_LEN: usize = 8192;

/// The generic type of a file we cannot or need not name more precisely.
const OCTET_STREAM: &str = "application/octet-stream";

/// The four picture formats papo decodes, cleans, previews and serves inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    WebP,
}

impl ImageKind {
    /// The MIME type it is served with (inline).
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Gif => "image/gif",
            ImageKind::WebP => "image/webp",
        }
    }

    /// The `image` crate's name for the format, to pick its decoder without guessing.
    pub(crate) fn format(self) -> image::ImageFormat {
        match self {
            ImageKind::Png => image::ImageFormat::Png,
            ImageKind::Jpeg => image::ImageFormat::Jpeg,
            ImageKind::Gif => image::ImageFormat::Gif,
            ImageKind::WebP => image::ImageFormat::WebP,
        }
    }

    /// The kind whose signature `head` starts with, if any.
    fn from_signature(head: &[u8]) -> Option<ImageKind> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(ImageKind::Gif)
        } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
            Some(ImageKind::WebP)
        } else {
            None
        }
    }
}

/// What a file is, as far as its bytes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileType {
    /// The descriptive MIME type, for the `type` field clients see ("application/pdf").
    mime: &'static str,
    /// Set only for the four inline kinds: the one thing that lets a file be shown inline.
    image: Option<ImageKind>,
}

impl FileType {
    /// A file nothing more is known about.
    pub const OCTET_STREAM: FileType = FileType {
        mime: OCTET_STREAM,
        image: None,
    };

    /// The descriptive MIME type (for `type` in the API). Not necessarily what to serve:
    /// see `served_content_type`.
    pub fn mime(&self) -> &'static str {
        self.mime
    }

    /// Which of the four inline picture kinds this is, if it is one.
    pub fn image(&self) -> Option<ImageKind> {
        self.image
    }

    /// True only for PNG, JPEG, GIF and WebP, the kinds served inline.
    pub fn is_inline_image(&self) -> bool {
        self.image.is_some()
    }

    /// The `Content-Type` to serve the file with: the image type for the four inline
    /// kinds, `application/octet-stream` (with `Content-Disposition: attachment`) for
    /// everything else, so no upload is ever rendered as a page or a script.
    pub fn served_content_type(&self) -> &'static str {
        match self.image {
            Some(kind) => kind.mime(),
            None => OCTET_STREAM,
        }
    }
}

/// The type of a file from its first bytes (pass up to `SNIFF_LEN`; fewer if the file
/// is shorter). Never fails: unknown bytes are `application/octet-stream`.
pub fn sniff(head: &[u8]) -> FileType {
    if let Some(kind) = ImageKind::from_signature(head) {
        return FileType {
            mime: kind.mime(),
            image: Some(kind),
        };
    }
    let mime = match infer::get(head).map(|found| found.mime_type()) {
        // Without `infer`'s std feature (which pulls a compound-file parser that a head
        // of a few KiB rarely satisfies) every OLE2 file reads as Word: say only what we
        // know, an OLE2 compound file (old .doc, .xls, .ppt, .msi).
        Some("application/msword") => "application/x-ole-storage",
        Some(mime) => mime,
        None if is_plain_text(head) => "text/plain",
        None => OCTET_STREAM,
    };
    FileType { mime, image: None }
}

/// UTF-8 without the control bytes binary formats are full of. A head cut in the middle
/// of a character still counts: the rest is in the part we were not shown.
fn is_plain_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        // error_len() is None only for a sequence cut short by the end of the head.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    valid
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_inline_kinds_are_known_by_their_signatures() {
        let png = sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert_eq!(png.image(), Some(ImageKind::Png));
        assert_eq!(png.mime(), "image/png");
        assert_eq!(png.served_content_type(), "image/png");
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0]).image(),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0").image(), Some(ImageKind::Gif));
        assert_eq!(sniff(b"GIF87a\x01\0\x01\0").image(), Some(ImageKind::Gif));
        assert_eq!(
            sniff(b"RIFF\x24\0\0\0WEBPVP8 ").image(),
            Some(ImageKind::WebP)
        );
        // A RIFF that is not WebP (a WAV) is no picture.
        let wav = sniff(b"RIFF\x24\0\0\0WAVEfmt ");
        assert!(!wav.is_inline_image());
        assert_eq!(wav.served_content_type(), OCTET_STREAM);
    }

    #[test]
    fn svg_and_html_are_never_inline_images() {
        for text in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>",
            b"<html><body onload=alert(1)>",
            b"  <script>alert(1)</script>",
        ] {
            let found = sniff(text);
            assert!(!found.is_inline_image(), "{:?}", found);
            assert!(!found.mime().starts_with("image/"), "{:?}", found);
            assert_eq!(found.served_content_type(), OCTET_STREAM);
        }
        // Even when it is named .png by the client: the name is never read.
        assert!(!sniff(b"<svg onload=alert(1)>").is_inline_image());
    }

    #[test]
    fn other_files_get_a_sensible_type() {
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n").mime(),
            "application/pdf"
        );
        assert_eq!(
            sniff(b"PK\x03\x04\x14\0\0\0\x08\0").mime(),
            "application/zip"
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom").mime(),
            "video/mp4"
        );
        assert_eq!(sniff(b"bora jogar hoje?\n").mime(), "text/plain");
        assert_eq!(sniff("ol\u{e1}, tudo bem?".as_bytes()).mime(), "text/plain");
        // Cut inside a two-byte character: still text.
        assert_eq!(sniff(&"ol\u{e1}".as_bytes()[..3]).mime(), "text/plain");
        assert_eq!(sniff(b"\0\x01\x02\x03binary").mime(), OCTET_STREAM);
        assert_eq!(sniff(b"").mime(), OCTET_STREAM);
        assert_eq!(
            sniff(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0]).mime(),
            "application/x-ole-storage"
        );
        assert_eq!(sniff(b"%PDF-1.7").served_content_type(), OCTET_STREAM);
    }
}

//! Pictures on upload, over real TCP: the type and size come from the bytes, location
//! metadata goes, and a picture whose decoding would be unbounded (a decompression bomb,
//! 30,000 × 30,000 pixels) is refused, not decoded; a damaged one is refused too.

mod common;

use common::files::*;
use common::*;

fn server(dir: &TempDir) -> (TestServer, String) {
    let server = TestServer::start(files_config(dir));
    let ana = account(server.addr, "Ana");
    (server, ana)
}

#[test]
fn a_png_has_its_type_and_size_whatever_its_name() {
    let dir = TempDir::new("pictures-png");
    let (server, ana) = server(&dir);
    let file = uploaded(
        server.addr,
        &ana,
        "not-a-picture.pdf",
        &zero_png(640, 320, 8),
    );
    assert_eq!(file["type"], "image/png");
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(640), Some(320))
    );
    let id = file["id"].as_str().unwrap();
    let mut stored = listing(&dir.file("files"));
    stored.sort();
    assert_eq!(
        stored,
        [id.to_string(), format!("{id}.thumb")],
        "the file and its preview"
    );
    let kept = std::fs::read(format!("{}/{id}", dir.file("files"))).unwrap();
    assert_eq!(kept.len() as u64, file["size"].as_u64().unwrap());
    assert!(kept.starts_with(b"\x89PNG"));
}

#[test]
fn a_picture_leaves_without_its_metadata() {
    let dir = TempDir::new("pictures-metadata");
    let (server, ana) = server(&dir);
    let png = with_text_chunk(&zero_png(32, 16, 8), "Location", "-23.5505, -46.6333");
    assert!(find(&png, b"-46.6333").is_some());
    let file = uploaded(server.addr, &ana, "casa.png", &png);
    assert_eq!(file["width"], 32);
    let kept = std::fs::read(format!(
        "{}/{}",
        dir.file("files"),
        file["id"].as_str().unwrap()
    ))
    .unwrap();
    assert!(find(&kept, b"-46.6333").is_none(), "the location is gone");
    assert!(find(&kept, b"IDAT").is_some(), "the pixels stay");
}

#[test]
fn a_damaged_picture_is_refused_415() {
    let dir = TempDir::new("pictures-damaged");
    let (server, ana) = server(&dir);
    let mut png = zero_png(64, 64, 8);
    png.truncate(40);
    let r = upload(server.addr, &ana, "broken.png", &png);
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "bad_request"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(listing(&dir.file("files")).is_empty());
}

#[test]
fn a_decompression_bomb_and_a_huge_picture_are_refused_not_decoded() {
    let dir = TempDir::new("serve-bomb");
    let (server, ana) = server(&dir);
    // 7,000 × 7,000 RGBA at 16 bits: 392 MB of pixels in a file of 2.5 MB.
    let bomb = zero_png(7_000, 7_000, 16);
    assert!(bomb.len() < 3 << 20, "{}", bomb.len());
    let r = upload(server.addr, &ana, "bomb.png", &bomb);
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "too_large"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let huge = claiming_png(30_000, 30_000);
    let r = upload(server.addr, &ana, "huge.png", &huge);
    assert_eq!((r.status, r.code().as_str()), (413, "too_large"));
    assert!(
        listing(&dir.file("files")).is_empty(),
        "nothing of them is kept"
    );
    // The server is fine afterwards.
    let ok = uploaded(server.addr, &ana, "small.png", &zero_png(4, 3, 8));
    assert_eq!(ok["width"], 4);
}

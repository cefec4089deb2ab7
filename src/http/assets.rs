//! The web page, compiled into the binary and prepared once (at start-up): each asset's
//! strong ETag from its SHA-256, a gzip copy of each text asset for browsers that accept it,
//! and fingerprinted URLs so a second visit downloads only a revalidation of the page.
//!
//! Why fingerprints: with `no-cache` and an ETag on every asset, a second visit still asks
//! for each of the page's ~15 files, and the 304s alone (status line, `Date`, `ETag`,
//! `Cache-Control`, `Vary`: what RFC 9110 asks a 304 to repeat) come to more than 2 KB.
//! Instead the page itself (`index.html`, always revalidated) names every asset as
//! `/NAME?v=HASH`, and an import map sends the modules' own `import './x.js'` to
//! `/x.js?v=HASH` too. An asset asked for by its current hash is cached for good
//! (`immutable`), so the browser does not ask again until the page names a new hash; the
//! bare name (an old page, a bookmark, a browser without import maps) is still served, with
//! `no-cache` and its ETag.

use super::respond::{self, After, Body, Entity};
use crate::head::Head;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::OnceLock;

/// The web page's files as they are in `ui/`.
#[derive(RustEmbed)]
#[folder = "ui/"]
struct Embedded;

/// The page may load only its own files and talk only to its own server; the hash admits
/// the one inline script, the import map this module writes into the page.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' {IMPORT_MAP}; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Caching of an asset asked for by its current fingerprint: its bytes never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Caching of everything else: kept, but revalidated (ETag → 304) on every use.
const REVALIDATE: &str = "no-cache";

/// One file of the page, ready to send.
struct Asset {
    /// Its `Content-Type`.
    content_type: &'static str,
    /// The bytes (for `index.html`, with the fingerprinted URLs and the import map).
    identity: Vec<u8>,
    /// The gzip of `identity`, for text assets where it is smaller.
    gzip: Option<Vec<u8>>,
    /// Strong ETag of `identity`: `"` + 16 hex digits of its SHA-256 + `"`.
    etag: String,
    /// Strong ETag of `gzip` (another representation, so another tag).
    etag_gzip: String,
    /// The hash in `?v=` that marks a request for exactly these bytes.
    version: String,
}

/// Every asset, and the page's security policy.
struct Assets {
    /// By path without the leading slash (`index.html` is also `/`).
    by_name: HashMap<String, Asset>,
    /// The `Content-Security-Policy` of every asset, with the import map's hash.
    csp: String,
}

static ASSETS: OnceLock<Assets> = OnceLock::new();

/// Prepares the assets now rather than on the first request (hashing and gzipping the
/// page takes a few milliseconds, once).
pub fn prepare() {
    assets();
}

fn assets() -> &'static Assets {
    ASSETS.get_or_init(build)
}

/// Whether `path` names an embedded asset.
pub fn exists(path: &str) -> bool {
    assets().by_name.contains_key(name_of(path))
}

fn name_of(path: &str) -> &str {
    match path {
        "/" => "index.html",
        other => other.trim_start_matches('/'),
    }
}

/// Answers a GET or HEAD for the asset at `path` (which `exists`), gzipped if the client
/// accepts it, immutable if the query names its current hash.
pub fn serve(stream: &TcpStream, request: &Head, path: &str, after: After) -> io::Result<()> {
    let all = assets();
    let Some(asset) = all.by_name.get(name_of(path)) else {
        return Err(io::ErrorKind::NotFound.into());
    };
    let fingerprinted = request.query == format!("v={}", asset.version);
    let cache_control = if fingerprinted { IMMUTABLE } else { REVALIDATE };
    let (body, etag, encoding) = match &asset.gzip {
        Some(gzip) if accepts_gzip(request) => (&gzip[..], &asset.etag_gzip, Some("gzip")),
        _ => (&asset.identity[..], &asset.etag, None),
    };
    let vary = [
        ("Cache-Control", cache_control),
        ("Vary", "Accept-Encoding"),
    ];
    let cache_headers = match asset.gzip {
        Some(_) => &vary[..],
        None => &vary[..1],
    };
    let mut headers = vec![
        ("Content-Type", asset.content_type),
        ("Content-Security-Policy", all.csp.as_str()),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ];
    if let Some(encoding) = encoding {
        headers.push(("Content-Encoding", encoding));
    }
    let entity = Entity {
        etag,
        cache_headers,
        headers: &headers,
        body: Body::Bytes(body),
    };
    respond::entity(stream, request, &entity, after)
}

/// Whether `Accept-Encoding` allows gzip: listed (or `*`) with a q-value above 0.
fn accepts_gzip(request: &Head) -> bool {
    let Some(accepted) = request.header("accept-encoding") else {
        return false;
    };
    let mut star = false;
    for item in accepted.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = q > 0.0;
        }
    }
    star
}

fn build() -> Assets {
    let mut by_name = HashMap::new();
    for name in Embedded::iter() {
        let Some(file) = Embedded::get(&name) else {
            continue;
        };
        if name == "index.html" {
            continue;
        }
        by_name.insert(name.to_string(), asset(&name, file.data.into_owned()));
    }
    let (page, import_map) = match Embedded::get("index.html") {
        Some(file) => fingerprinted_page(&String::from_utf8_lossy(&file.data), &by_name),
        None => (String::new(), String::new()),
    };
    let map_hash = base64(&Sha256::digest(import_map.as_bytes()));
    let csp = CONTENT_SECURITY_POLICY.replace("{IMPORT_MAP}", &format!("'sha256-{map_hash}'"));
    by_name.insert("index.html".into(), asset("index.html", page.into_bytes()));
    Assets { by_name, csp }
}

/// `index.html` with every `="/NAME"` attribute naming an asset (but the manifest) turned into
/// `="/NAME?v=HASH"`, and an import map (returned too, for its CSP hash) before its first
/// script that does the same for the modules' imports.
fn fingerprinted_page(page: &str, assets: &HashMap<String, Asset>) -> (String, String) {
    let mut page = page.to_string();
    let mut names: Vec<&String> = assets.keys().collect();
    names.sort();
    let mut imports = serde_json::Map::new();
    // The manifest keeps its plain URL: an installed app is tied to it, and the browser
    // fetches it only to install or update the app, not on each visit.
    for name in names.into_iter().filter(|n| *n != "manifest.webmanifest") {
        let versioned = format!("/{name}?v={}", assets[name].version);
        page = page.replace(&format!("=\"/{name}\""), &format!("=\"{versioned}\""));
        if name.ends_with(".js") {
            imports.insert(format!("/{name}"), versioned.into());
        }
    }
    let import_map = serde_json::json!({ "imports": imports }).to_string();
    if let Some(at) = page.find("<script") {
        let tag = format!("<script type=\"importmap\">{import_map}</script>\n  ");
        page.insert_str(at, &tag);
    }
    (page, import_map)
}

fn asset(name: &str, identity: Vec<u8>) -> Asset {
    let hash = hex16(&Sha256::digest(&identity));
    let gzip = compressible(name)
        .then(|| gzip(&identity))
        .filter(|gzip| gzip.len() < identity.len());
    Asset {
        content_type: content_type(name),
        etag: format!("\"{hash}\""),
        etag_gzip: format!("\"{hash}-gz\""),
        version: hash,
        gzip,
        identity,
    }
}

/// Text formats, which gzip shrinks; images and fonts are compressed already.
fn compressible(name: &str) -> bool {
    matches!(
        name.rsplit('.').next().unwrap_or(""),
        "html" | "js" | "mjs" | "css" | "json" | "webmanifest" | "svg"
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The first 8 bytes of a hash as 16 hex digits: 64 bits tell versions of a file apart.
fn hex16(hash: &[u8]) -> String {
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (CSP hash sources are written so).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        // The type the Web App Manifest spec registers; browsers accept it for <link rel=manifest>.
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_and_icons_have_their_types() {
        assert_eq!(
            content_type("manifest.webmanifest"),
            "application/manifest+json"
        );
        assert_eq!(content_type("icon-192.png"), "image/png");
        for name in [
            "manifest.webmanifest",
            "icon-192.png",
            "icon-512.png",
            "icon-maskable-512.png",
            "apple-touch-icon.png",
        ] {
            assert!(exists(&format!("/{name}")), "{name} is not embedded");
        }
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn the_page_names_its_assets_by_hash_and_maps_its_modules() {
        let all = assets();
        let page = String::from_utf8_lossy(&all.by_name["index.html"].identity).to_string();
        let app = &all.by_name["app.js"];
        assert!(page.contains(&format!("src=\"/app.js?v={}\"", app.version)));
        let i18n = &all.by_name["i18n.js"].version;
        assert!(page.contains(&format!("\"/i18n.js\":\"/i18n.js?v={i18n}\"")));
        let map_at = page.find("type=\"importmap\"").expect("an import map");
        assert!(map_at < page.find("type=\"module\"").expect("the app's script"));
        assert!(
            all.csp.contains("script-src 'self' 'sha256-"),
            "{}",
            all.csp
        );
    }

    #[test]
    fn text_assets_have_a_smaller_gzip_copy_that_unzips_to_them() {
        let app = &assets().by_name["app.js"];
        let gzip = app.gzip.as_ref().expect("app.js is gzipped");
        let mut unzipped = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut unzipped).unwrap();
        assert_eq!(unzipped, app.identity);
        assert!(assets().by_name["icon-192.png"].gzip.is_none());
    }
}

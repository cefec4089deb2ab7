//! Attachments on the page (PROTOCOL 1.1 "Attachments"), in real headless Chromium: two
//! accounts, Ana (pt-BR) and Beto (en), in separate browser contexts, share room "fotos". Ana
//! attaches a PNG through the file input, pastes one, drops one on the conversation, and
//! attaches a text file; Beto sees the pictures appear as loaded previews (space kept from the
//! message's width and height), opens one full size and closes it with Esc, gets a download chip
//! for the text file, and finds everything again after a reload (history). A file over the
//! server's `--max-upload-mb` says so with the limit, one past `--upload-quota-mb` with the wait;
//! a slow upload shows its progress bar, can be cancelled, and a message sent meanwhile waits
//! for it; an upload cut off by the network says so and a retry finishes it; a DM carries files
//! too; a guest sees why the paperclip does not open. Screenshots at desktop (light and dark)
//! and phone widths (390 and 320 px) land in `target/test-artifacts/files-*.png`.
//!
//! Without Chromium the test prints SKIPPED and passes, unless `CI=true` or
//! `PAPO_REQUIRE_BROWSER=1`, where a missing browser is a failure (as tests/browser.rs).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use serde_json::json;

#[macro_use]
#[path = "common/chromium.rs"]
mod chromium;
use chromium::*;

const SIGNED_IN: &str =
    "document.body.dataset.view === 'app' && document.body.dataset.conn === 'online'";
/// The size limit the server runs with here, so a file just over it is small to make.
const MAX_UPLOAD_MB: u64 = 1;
/// Each account's daily quota here: the test uploads a little over 1 MiB before it tries to
/// pass it on purpose.
const QUOTA_MB: u64 = 4;

/// A temporary directory for the run: the database, its files, and the files the browser
/// uploads from. Removed when the test ends, pass or fail.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("papo-browser-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test's directory");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server as an operator starts it, from its flags (the upload limit is the point here).
/// `None` when this server has no attachments at all (no `--max-upload-mb`): the page's side
/// was written before the server's, and until they meet there is nothing to drive.
fn start_server(dir: &TempDir) -> papo::Server {
    let db = dir.join("papo.db").display().to_string();
    let args = [
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--db",
        db.as_str(),
        "--rate-limit",
        "0",
        "--registrations-per-hour",
        "0",
        "--max-upload-mb",
        &MAX_UPLOAD_MB.to_string(),
        "--upload-quota-mb",
        &QUOTA_MB.to_string(),
    ]
    .map(String::from);
    let config = match papo::config::parse(args, |_| None) {
        Ok(papo::config::Invocation::Serve(config)) => config,
        Err(e) => panic!("the flags do not parse: {e}"),
        Ok(_) => panic!("the flags ask to serve"),
    };
    papo::start(config).expect("start papo")
}

/// Signs up through the page's form, as a person does.
fn sign_up(tab: &Tab, name: &str) {
    tab.wait_for(
        "!document.getElementById('auth-tabs').hidden && document.body.dataset.view === 'login'",
        "the ways in: guest, sign in, sign up",
    );
    tab.click("#tab-signup");
    tab.fill("#signup-name", name);
    tab.fill("#signup-password", "uma senha comprida");
    tab.enter();
    tab.wait_for(SIGNED_IN, &format!("{name} signed up and in"));
}

/// A picture drawn in the page (a gradient with a word on it), as PNG bytes.
fn draw_png(tab: &Tab, width: u32, height: u32, word: &str) -> Vec<u8> {
    let data = tab.eval(&format!(
        "(() => {{ const c = document.createElement('canvas'); c.width = {width}; c.height = {height};
           const g = c.getContext('2d'); const grad = g.createLinearGradient(0, 0, {width}, {height});
           grad.addColorStop(0, '#0f766e'); grad.addColorStop(1, '#f59e0b'); g.fillStyle = grad;
           g.fillRect(0, 0, {width}, {height}); g.fillStyle = '#fff'; g.font = 'bold ' + Math.round({height} / 4) + 'px sans-serif';
           g.textAlign = 'center'; g.textBaseline = 'middle'; g.fillText({word}, {width} / 2, {height} / 2);
           return c.toDataURL('image/png').split(',')[1]; }})()",
        word = js(word)
    ));
    base64_decode(data.as_str().expect("a data URL"))
}

/// Picks files in the composer's file input, as the file chooser the paperclip opens does.
fn pick_files(tab: &Tab, paths: &[&Path]) {
    let input = tab.call(
        "Runtime.evaluate",
        json!({ "expression": "document.getElementById('attach-input')" }),
    );
    let object_id = input["result"]["objectId"]
        .as_str()
        .expect("the file input exists");
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    tab.call(
        "DOM.setFileInputFiles",
        json!({ "files": files, "objectId": object_id }),
    );
}

/// A File made in the page from a PNG drawn there, for the synthetic paste and drop events.
fn png_file_js(name: &str, width: u32, height: u32) -> String {
    format!(
        "await new Promise((resolve) => {{ const c = document.createElement('canvas'); c.width = {width}; c.height = {height};
           const g = c.getContext('2d'); g.fillStyle = '#1d4ed8'; g.fillRect(0, 0, {width}, {height});
           g.fillStyle = '#fde047'; g.beginPath(); g.arc({width} / 2, {height} / 2, Math.min({width}, {height}) / 3, 0, 7); g.fill();
           c.toBlob((b) => resolve(new File([b], {name}, {{ type: 'image/png' }})), 'image/png'); }})",
        name = js(name)
    )
}

/// Every upload in the tray finished, and the tray shows them.
fn wait_uploaded(tab: &Tab, n: usize) {
    tab.wait_for(
        &format!(
            "document.querySelectorAll('#upload-tray .upload.is-done').length === {n} && !document.getElementById('upload-tray').hidden"
        ),
        &format!("{n} upload(s) done in the tray"),
    );
}

/// Sends what the composer holds with Enter and waits for the tray to empty (the message went).
fn send_composer(tab: &Tab) {
    tab.focus("#composer-input");
    tab.enter();
    tab.wait_for(
        "document.getElementById('upload-tray').hidden && document.getElementById('composer-error').hidden",
        "the message with its files to go",
    );
}

/// What of attachments the server gets wrong, asked by the signed-in page itself: a PNG
/// upload must come back as `image/png` with its size, and its preview must be served. ""
/// when whole.
const SERVER_PROBE: &str = r#"(async () => {
  const canvas = document.createElement('canvas'); canvas.width = 8; canvas.height = 4;
  canvas.getContext('2d').fillRect(0, 0, 8, 4);
  const png = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  const up = await fetch('/api/files?name=probe.png', { method: 'POST', body: png });
  if (up.status !== 201) return `POST /api/files answered ${up.status}`;
  const file = await up.json();
  if (file.type !== 'image/png' || file.width !== 8) return `a PNG came back as ${file.type}`;
  const thumb = await fetch(`/files/${file.id}/thumb`);
  return thumb.ok ? '' : `GET /files/ID/thumb answered ${thumb.status}`;
})()"#;

/// How many pictures of the open conversation have loaded (a decoded preview, not a broken icon).
const LOADED_PICTURES: &str = "[...document.querySelectorAll('#messages .att-picture img')].filter((i) => i.complete && i.naturalWidth > 0).length";

fn wait_pictures(tab: &Tab, n: usize) {
    tab.wait_for(
        &format!("{LOADED_PICTURES} === {n}"),
        &format!("{n} loaded picture(s) in the conversation"),
    );
}

/// The page is no wider than the screen (nothing pushes it sideways on a phone).
const NO_SIDEWAYS: &str = "document.documentElement.scrollWidth <= window.innerWidth && document.getElementById('scroller').scrollWidth <= document.getElementById('scroller').clientWidth";

#[test]
fn pictures_and_files_in_chromium() {
    let Some(binary) = chromium_or_skip("tests/browser_files.rs", "Attachments on the page were")
    else {
        return;
    };
    let started = Instant::now();
    let dir = TempDir::new();
    let server = start_server(&dir);
    let url = format!("http://{}/", server.local_addr());

    let (_chromium, ws_url) = launch_chromium(&binary);
    let cdp = Rc::new(RefCell::new(Cdp::connect(&ws_url)));
    let ana = Tab::open(&cdp, "ana", "pt-BR");
    let beto = Tab::open(&cdp, "beto", "en-US");
    let mut shots = Vec::new();
    for tab in [&ana, &beto] {
        tab.navigate(&url);
    }
    sign_up(&ana, "Ana");
    // The server's side first, asked by the signed-in page itself: a failure here is the
    // server's, not the page's.
    let missing = ana.eval(SERVER_PROBE);
    assert_eq!(missing, json!(""), "the server's attachments are not whole");
    sign_up(&beto, "Beto");

    // Ana makes "fotos"; Beto finds it in the directory and joins.
    ana.fill("#create-name", "fotos");
    ana.enter();
    ana.wait_for("document.body.dataset.pane === 'room'", "Ana inside fotos");
    beto.click("#refresh-rooms");
    beto.click("#room-dir [data-room='fotos']");
    beto.wait_for("document.body.dataset.pane === 'room'", "Beto inside fotos");
    ana.wait_for(
        "document.getElementById('member-count').textContent === '2'",
        "Beto in Ana's member list",
    );

    // The paperclip, for an account: labelled, enabled, in the message box.
    assert_eq!(
        ana.eval("document.getElementById('attach').getAttribute('aria-label')"),
        json!("Anexar arquivos")
    );
    assert_eq!(
        beto.eval("document.getElementById('attach').getAttribute('aria-disabled')"),
        json!("false")
    );

    // 1. A PNG through the file input, with words: Beto sees it as a loaded picture whose space was
    // kept from the message (640×360 fits the 320 px preview box as 320×180).
    let beach = dir.join("praia.png");
    std::fs::write(&beach, draw_png(&ana, 640, 360, "praia")).unwrap();
    pick_files(&ana, &[&beach]);
    wait_uploaded(&ana, 1);
    ana.wait_for(
        "document.querySelector('#upload-tray .upload-thumb img')?.naturalWidth > 0",
        "the tray's preview of the uploaded picture",
    );
    ana.focus("#composer-input");
    ana.type_text("olha a praia");
    send_composer(&ana);
    beto.wait_for(
        "[...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === 'olha a praia')",
        "Ana's words with the picture",
    );
    wait_pictures(&beto, 1);
    let picture = beto.eval(
        "(() => { const a = document.querySelector('#messages .att-picture'); const i = a.querySelector('img');
           return { href: a.getAttribute('href'), src: i.getAttribute('src'), w: i.getAttribute('width'), h: i.getAttribute('height'),
                    lazy: i.loading, alt: i.alt, label: a.getAttribute('aria-label') }; })()",
    );
    let href = picture["href"].as_str().unwrap().to_string();
    assert!(
        href.starts_with("/files/") && href.len() > "/files/".len() + 16,
        "{picture}"
    );
    assert_eq!(picture["src"], json!(format!("{href}/thumb")), "{picture}");
    assert_eq!(
        (picture["w"].clone(), picture["h"].clone()),
        (json!("320"), json!("180")),
        "{picture}"
    );
    assert_eq!(picture["lazy"], json!("lazy"));
    assert_eq!(picture["alt"], json!("praia.png"));
    assert_eq!(picture["label"], json!("View praia.png full size"));
    wait_pictures(&ana, 1); // her own message shows it too

    // Opening it: the overlay with the picture full size (640 px wide), closed by Esc, focus back.
    beto.click("#messages .att-picture");
    beto.wait_for(
        "document.getElementById('lightbox')?.open && document.querySelector('#lightbox .lightbox-img').naturalWidth === 640",
        "the picture full size in the overlay",
    );
    shots.push(beto.screenshot("files-lightbox-desktop"));
    beto.press("Escape", "Escape", 27, "", 0);
    beto.wait_for(
        "!document.getElementById('lightbox').open",
        "Esc to close the overlay",
    );
    assert_eq!(
        beto.eval("document.activeElement?.classList.contains('att-picture')"),
        json!(true),
        "focus goes back to the picture"
    );
    // A click anywhere closes it too (on a phone there is no Esc).
    beto.click("#messages .att-picture");
    beto.wait_for(
        "document.getElementById('lightbox').open",
        "the overlay again",
    );
    beto.click("#lightbox .lightbox-img");
    beto.wait_for(
        "!document.getElementById('lightbox').open",
        "a click to close the overlay",
    );

    // 2. A text file with no words: a download chip with its name and size, fetched as a download.
    let notes = dir.join("notas da viagem.txt");
    std::fs::write(&notes, "levar protetor solar\n".repeat(100)).unwrap();
    pick_files(&ana, &[&notes]);
    wait_uploaded(&ana, 1);
    send_composer(&ana);
    beto.wait_for(
        "document.querySelector('#messages .att-file .att-file-name')?.textContent === 'notas da viagem.txt'",
        "the download chip",
    );
    let chip = beto.eval(
        "(async () => { const a = document.querySelector('#messages .att-file');
           const r = await fetch(a.href, { method: 'HEAD' });
           return { size: a.querySelector('.att-file-size').textContent, download: a.getAttribute('download'),
                    status: r.status, disposition: r.headers.get('content-disposition') || '' }; })()",
    );
    assert_eq!(chip["size"], json!("2.1 kB"), "{chip}");
    assert_eq!(chip["download"], json!("notas da viagem.txt"));
    assert_eq!(chip["status"], json!(200), "{chip}");
    assert!(
        chip["disposition"]
            .as_str()
            .unwrap()
            .starts_with("attachment"),
        "{chip}"
    );
    assert_eq!(
        ana.eval("document.querySelector('#messages .att-file .att-file-size').textContent"),
        json!("2,1 kB"),
        "sizes in Portuguese"
    );

    // 3. A screenshot pasted into the message box, 4. a picture dropped on the conversation.
    ana.eval(&format!(
        "(async () => {{ const file = {}; const data = new DataTransfer(); data.items.add(file);
           document.getElementById('composer-input').dispatchEvent(new ClipboardEvent('paste', {{ clipboardData: data, bubbles: true, cancelable: true }}));
           return true; }})()",
        png_file_js("image.png", 400, 300)
    ));
    wait_uploaded(&ana, 1);
    send_composer(&ana);
    wait_pictures(&beto, 2);
    ana.eval(&format!(
        "(async () => {{ const file = {}; window.papoDrop = new DataTransfer(); window.papoDrop.items.add(file);
           document.querySelector('#messages .msg').dispatchEvent(new DragEvent('dragenter', {{ dataTransfer: window.papoDrop, bubbles: true, cancelable: true }}));
           return true; }})()",
        png_file_js("desenho.png", 300, 600)
    ));
    assert_eq!(
        ana.eval("(() => { const zone = document.getElementById('conversation'); return zone.classList.contains('drop-target') && getComputedStyle(zone, '::after').content; })()"),
        json!("\"Solte os arquivos para anexar\""),
        "the conversation says where dropped files go"
    );
    shots.push(ana.screenshot("files-drop-desktop"));
    ana.eval(
        "document.querySelector('#messages .msg').dispatchEvent(new DragEvent('drop', { dataTransfer: window.papoDrop, bubbles: true, cancelable: true }))",
    );
    assert_eq!(
        ana.eval("document.getElementById('conversation').classList.contains('drop-target')"),
        json!(false)
    );
    wait_uploaded(&ana, 1);
    send_composer(&ana);
    wait_pictures(&beto, 3);
    // A tall picture keeps its shape in the box: 300×600 shows as 160×320.
    assert_eq!(
        beto.eval("(() => { const i = [...document.querySelectorAll('#messages .att-picture img')].pop(); return [i.width, i.height]; })()"),
        json!([160, 320])
    );
    shots.push(beto.screenshot("files-conversation-desktop"));

    // 5. Too large for the server: the item says so, with the limit, and the message cannot go until
    // it is retried or taken out.
    let big = dir.join("video.bin");
    std::fs::write(
        &big,
        vec![7u8; (MAX_UPLOAD_MB as usize) * 1024 * 1024 + 300 * 1024],
    )
    .unwrap();
    pick_files(&ana, &[&big]);
    ana.wait_for(
        "document.querySelector('#upload-tray .upload.is-failed')",
        "the too-large upload to fail",
    );
    assert_eq!(
        ana.text_of("#upload-tray .upload.is-failed .upload-state"),
        "Grande demais: o limite é 1 MB."
    );
    ana.focus("#composer-input");
    ana.type_text("vai?");
    ana.enter();
    ana.wait_for(
        "!document.getElementById('composer-error').hidden",
        "the reason the message waits",
    );
    assert!(ana
        .text_of("#composer-error")
        .starts_with("Um arquivo não subiu"));
    shots.push(ana.screenshot("files-too-large-desktop"));
    ana.click("#upload-tray .upload.is-failed .upload-cancel");
    ana.wait_for(
        "document.getElementById('upload-tray').hidden && document.getElementById('composer-error').hidden",
        "the failed file taken out, and the error about it gone",
    );
    ana.eval("document.getElementById('composer-input').value = ''");

    // 6. A slow upload: its progress bar moves, cancel stops it; a message sent while one runs waits
    // for it and then goes with it.
    ana.call("Network.enable", json!({}));
    let slow = json!({ "offline": false, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 150 * 1024 });
    ana.call("Network.emulateNetworkConditions", slow.clone());
    let medium = dir.join("planilha.csv");
    std::fs::write(&medium, "dia;praia;sol\n".repeat(40_000)).unwrap();
    pick_files(&ana, &[&medium]);
    ana.wait_for(
        "(() => { const b = document.querySelector('#upload-tray .upload.is-uploading progress'); return b && b.value > 0 && b.value < 100; })()",
        "the progress bar to move",
    );
    shots.push(ana.screenshot("files-progress-desktop"));
    ana.click("#upload-tray .upload.is-uploading .upload-cancel");
    ana.wait_for(
        "document.getElementById('upload-tray').hidden",
        "the cancelled upload gone",
    );
    pick_files(&ana, &[&medium]);
    ana.wait_for(
        "document.querySelector('#upload-tray .upload.is-uploading')",
        "the second slow upload",
    );
    ana.focus("#composer-input");
    ana.type_text("a planilha");
    ana.enter();
    ana.wait_for(
        "!document.querySelector('#upload-tray .upload-waiting').hidden",
        "the message waiting for its file",
    );
    ana.call(
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
    );
    beto.wait_for(
        "[...document.querySelectorAll('#messages .att-file-name')].some((e) => e.textContent === 'planilha.csv')",
        "the message that waited for its file",
    );
    assert_eq!(
        ana.eval("document.getElementById('composer-input').value"),
        json!("")
    );

    // No network: the upload says so, and retrying once it is back finishes it.
    ana.call(
        "Network.emulateNetworkConditions",
        json!({ "offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
    );
    pick_files(&ana, &[&notes]);
    ana.wait_for(
        "document.querySelector('#upload-tray .upload.is-failed')",
        "the upload to fail offline",
    );
    assert_eq!(
        ana.text_of("#upload-tray .upload.is-failed .upload-state"),
        "A conexão falhou no meio do envio. Tente de novo."
    );
    ana.call(
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
    );
    ana.click("#upload-tray .upload.is-failed .upload-retry");
    wait_uploaded(&ana, 1);
    ana.click("#upload-tray .upload-cancel");
    ana.wait_for(
        "document.getElementById('upload-tray').hidden",
        "the retried file taken out",
    );

    // A DM with a picture (an account's DMs are kept: they come back with their files too).
    ana.click("#member-list [data-dm='Beto']");
    ana.wait_for(
        "document.body.dataset.pane === 'dm'",
        "Ana's DM with Beto open",
    );
    pick_files(&ana, &[&beach, &notes]);
    wait_uploaded(&ana, 2);
    send_composer(&ana);
    beto.click("#dm-convs [data-conv='dm:ana']");
    beto.wait_for("document.body.dataset.pane === 'dm'", "Beto in the DM");
    wait_pictures(&beto, 1);
    beto.wait_for(
        "document.querySelector('#messages .att-file')",
        "the chip in the DM",
    );
    beto.color_scheme("dark");
    shots.push(beto.screenshot("files-dm-desktop-dark"));
    beto.color_scheme("light");
    beto.click("#room-convs [data-conv='room:fotos']");
    wait_pictures(&beto, 3);

    // The message box on a narrow phone: a picture ready, a file refused, side by side in the tray.
    ana.viewport(320, 640, true);
    pick_files(&ana, &[&beach, &big]);
    ana.wait_for(
        "document.querySelectorAll('#upload-tray .upload.is-done').length === 1 && document.querySelector('#upload-tray .upload.is-failed') && document.querySelector('#upload-tray .upload-thumb img')?.naturalWidth > 0",
        "one upload done and one refused",
    );
    ana.wait_for(NO_SIDEWAYS, "the tray to fit a 320 px screen");
    shots.push(ana.screenshot("files-tray-phone-320"));
    for _ in 0..2 {
        ana.click("#upload-tray .upload-cancel");
    }
    ana.wait_for(
        "document.getElementById('upload-tray').hidden",
        "the tray emptied",
    );
    ana.viewport(1280, 800, false);

    // Phone: the same conversation, nothing wider than the screen, the overlay fills it.
    beto.viewport(390, 844, true);
    beto.wait_for(NO_SIDEWAYS, "the phone layout to fit its width");
    beto.eval("document.getElementById('scroller').scrollTop = 1e6");
    shots.push(beto.screenshot("files-conversation-phone"));
    beto.click("#messages .att-picture");
    beto.wait_for(
        "document.getElementById('lightbox').open && document.querySelector('#lightbox .lightbox-img').naturalWidth > 0",
        "the overlay on a phone",
    );
    assert_eq!(
        beto.eval("(() => { const r = document.querySelector('#lightbox .lightbox-img').getBoundingClientRect(); return r.width <= 390 && r.height <= 844; })()"),
        json!(true),
        "the picture fits the phone's screen"
    );
    shots.push(beto.screenshot("files-lightbox-phone"));
    beto.press("Escape", "Escape", 27, "", 0);
    beto.wait_for(
        "!document.getElementById('lightbox').open",
        "Esc to close the overlay",
    );

    // History: after a reload everything is drawn again from what the server kept.
    beto.navigate(&url);
    beto.wait_for(SIGNED_IN, "Beto back, signed in");
    beto.click("#sidebar-open"); // on a phone the rooms are in the drawer
    beto.click("#room-convs [data-conv='room:fotos']");
    wait_pictures(&beto, 3);
    assert_eq!(
        beto.eval("document.querySelectorAll('#messages .att-file').length"),
        json!(2)
    );
    beto.wait_for(NO_SIDEWAYS, "the phone layout after the reload");

    // A guest: sees the pictures, and why the paperclip does not open (a tooltip, and words on a press).
    let caio = Tab::open(&cdp, "caio", "pt-BR");
    caio.viewport(390, 844, true);
    caio.navigate(&url);
    caio.fill("#login-name", "Caio");
    caio.enter();
    caio.wait_for(SIGNED_IN, "Caio in as a guest");
    caio.click("#room-dir [data-room='fotos']");
    caio.wait_for("document.body.dataset.pane === 'room'", "Caio inside fotos");
    assert_eq!(
        caio.eval("document.getElementById('attach').getAttribute('aria-disabled')"),
        json!("true")
    );
    assert_eq!(
        caio.eval("document.getElementById('attach').title"),
        json!("Só quem entra com uma conta pode enviar arquivos.")
    );
    caio.click("#attach");
    caio.wait_for(
        "!document.getElementById('composer-error').hidden",
        "why a guest cannot attach",
    );
    assert_eq!(
        caio.text_of("#composer-error"),
        "Só quem entra com uma conta pode enviar arquivos."
    );
    shots.push(caio.screenshot("files-guest-phone"));

    // Over the daily quota: files just under the size limit until the server says the day's
    // allowance is spent (what came before counts too), and the item says so with the wait.
    let near_limit = dir.join("quase.bin");
    std::fs::write(
        &near_limit,
        vec![3u8; (MAX_UPLOAD_MB as usize) * 1024 * 1024 - 4096],
    )
    .unwrap();
    let mut refused = false;
    for _ in 0..QUOTA_MB + 1 {
        pick_files(&ana, &[&near_limit]);
        ana.wait_for(
            "document.querySelector('#upload-tray .upload.is-done, #upload-tray .upload.is-failed')",
            "the upload to end",
        );
        refused =
            ana.eval("!!document.querySelector('#upload-tray .upload.is-failed')") == json!(true);
        if refused {
            break;
        }
        ana.click("#upload-tray .upload-cancel");
        ana.wait_for(
            "document.getElementById('upload-tray').hidden",
            "the file taken out",
        );
    }
    assert!(refused, "{QUOTA_MB} MiB of uploads passed the quota");
    assert_eq!(
        ana.text_of("#upload-tray .upload.is-failed .upload-state"),
        "Você atingiu sua cota diária de arquivos. Tente de novo em 24 h."
    );
    shots.push(ana.screenshot("files-quota-desktop"));
    ana.click("#upload-tray .upload-cancel");
    ana.wait_for(
        "document.getElementById('upload-tray').hidden",
        "the refused file taken out",
    );

    let problems = std::mem::take(&mut cdp.borrow_mut().problems);
    assert!(
        problems.is_empty(),
        "the pages logged problems:\n{}",
        problems.join("\n")
    );
    server.shutdown();
    for shot in &shots {
        loud!("screenshot: {}", shot.display());
    }
    loud!("browser files test took {:?}", started.elapsed());
}

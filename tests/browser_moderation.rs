//! Moderation and search on the page (PROTOCOL 1.1 "Moderation", "Search"; issue 12 point 3), in
//! real headless Chromium: Ana owns a room, Beto is a member, each in a browser context of their
//! own. Beto edits a message from its menu (by mouse, then by keyboard, Esc cancelling) and Ana
//! sees it change; Ana, the owner, deletes one of Beto's and it leaves his page; a DM edited with
//! the up arrow changes live on Ana's page, and she finds it by its new words; Beto searches
//! ("reuniao" finds "reunião") and the jump walks the history back to a message his page had not
//! loaded; on a phone a long press opens a message's menu; Ana bans Beto for 10 minutes from the
//! member menu and both sides see it (his notice and the room gone from his list, her member list
//! without him); his join is refused; Ana lifts the ban; a plain kick, seen from both sides; Ana
//! deletes the room; the admin suspends Beto from the admin panel, whose page closes with a notice
//! and whose sign-in is refused with the reason. Screenshots at desktop and phone widths go to
//! `target/test-artifacts/mod-*.png`.
//!
//! Without Chromium the test prints SKIPPED and passes, unless `CI=true` or
//! `PAPO_REQUIRE_BROWSER=1` (then a missing browser is a failure), as tests/browser.rs.

mod common;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[macro_use]
#[path = "common/chromium.rs"]
mod chromium;
use chromium::{chromium_or_skip, js, launch_chromium, Cdp, Tab};
use common::{api_post, test_config, Client, TestServer};
use serde_json::json;

/// Messages a bot posts after the one Beto will search for: more than `joined.history` (50)
/// and than one history page (100), so the jump has to walk back two pages.
const FILLER: usize = 130;

fn signed_in(tab: &Tab) {
    tab.wait_for(
        "document.body.dataset.view === 'app' && document.body.dataset.conn === 'online'",
        &format!("{} signed in", tab.who),
    );
}

/// Signs up through the page's own form, as a person does.
fn sign_up(tab: &Tab, name: &str, password: &str) {
    tab.click("#tab-signup");
    tab.fill("#signup-name", name);
    tab.fill("#signup-password", password);
    tab.enter();
    signed_in(tab);
}

fn sign_in(tab: &Tab, name: &str, password: &str) {
    tab.click("#tab-signin");
    tab.fill("#signin-name", name);
    tab.fill("#signin-password", password);
    tab.enter();
    signed_in(tab);
}

/// The id of the message on screen with exactly this text (the last one, if several).
fn message_id(tab: &Tab, text: &str) -> u64 {
    let expr = format!(
        "[...document.querySelectorAll('#messages .msg')].reverse().find(li => li.querySelector('.text')?.textContent === {})?.dataset.id",
        js(text)
    );
    tab.wait_for(&expr, &format!("the message {text:?}"));
    tab.eval(&expr).as_str().unwrap().parse().unwrap()
}

fn has_message(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('#messages .msg .text')].some(e => e.textContent === {})",
        js(text)
    )
}

/// What the open message menu offers, by key.
fn menu_keys(tab: &Tab) -> Vec<String> {
    tab.wait_for("document.querySelector('.popup-menu')", "a menu to open");
    let keys = tab
        .eval("[...document.querySelectorAll('.popup-menu .menu-item')].map(b => b.dataset.key)");
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn member_names(tab: &Tab) -> String {
    tab.eval("[...document.querySelectorAll('#member-list .member-name')].map(e => e.firstChild.textContent).join(',')")
        .as_str()
        .unwrap()
        .to_string()
}

fn phone(tab: &Tab) {
    tab.viewport(390, 844, true);
}

fn desktop(tab: &Tab) {
    tab.viewport(1280, 800, false);
}

#[test]
fn moderation_and_search_in_chromium() {
    let Some(binary) = chromium_or_skip(
        "tests/browser_moderation.rs",
        "The page's moderation and search were",
    ) else {
        return;
    };
    let started = Instant::now();
    let server = TestServer::start(papo::Config {
        // Eco, the bot, reads nothing while the pages are driven: no ping may find it silent.
        idle_timeout: Duration::from_secs(600),
        ..test_config()
    });
    let addr = server.addr;
    let url = format!("http://{addr}/");
    // The first account is the server's admin: Root, so that Ana moderates only as the owner.
    let root = api_post(
        addr,
        "/api/register",
        json!({ "name": "Root", "password": "senha do root" }),
        None,
    );
    assert_eq!(root.status, 201, "Root registers: {:?}", root.json());

    let (_chromium, ws_url) = launch_chromium(&binary);
    let cdp = Rc::new(RefCell::new(Cdp::connect(&ws_url)));
    let ana = Tab::open(&cdp, "ana", "pt-BR");
    let beto = Tab::open(&cdp, "beto", "en-US");
    ana.navigate(&url);
    beto.navigate(&url);
    let mut shots: Vec<PathBuf> = Vec::new();

    sign_up(&ana, "Ana", "senha da Ana");
    sign_up(&beto, "Beto", "senha do Beto");

    // Ana creates "praça": she owns it, so the members panel shows her the moderation tools.
    ana.fill("#create-name", "praça");
    ana.enter();
    ana.wait_for("document.body.dataset.pane === 'room'", "Ana inside praça");
    ana.wait_for(
        "!document.getElementById('mod-panel').hidden",
        "the moderation part of the members panel",
    );
    send(&ana, "a reunião é na quinta às <b>15h</b>");
    let target = message_id(&ana, "a reunião é na quinta às <b>15h</b>");
    // Then a crowd talks: the message falls out of what a newcomer's page gets with the join.
    let mut bot = Client::hello(addr, "Eco");
    bot.join("praça", None);
    for i in 0..FILLER {
        bot.say("praça", &format!("conversa {i}"));
    }
    ana.wait_for(
        &has_message(&format!("conversa {}", FILLER - 1)),
        "the crowd's last line on Ana's page",
    );

    // Beto joins from the lobby.
    beto.wait_for(
        "[...document.querySelectorAll('#room-dir .room-row')].some(b => b.dataset.room === 'praça')",
        "praça in Beto's lobby",
    );
    beto.click("#room-dir .room-row[data-room='praça']");
    beto.wait_for("document.body.dataset.pane === 'room'", "Beto inside praça");
    assert_eq!(
        beto.eval("document.getElementById('mod-panel').hidden"),
        json!(true),
        "a member who does not own the room gets no moderation tools"
    );
    assert!(
        !beto
            .eval(&has_message("a reunião é na quinta às <b>15h</b>"))
            .as_bool()
            .unwrap(),
        "the target message must not be loaded yet for the jump to be tested"
    );

    // Beto writes two lines; he edits the first from its menu, in place.
    send(&beto, "oi gente, tudo bem?");
    send(&beto, "vou comprar pão");
    let edited = message_id(&beto, "oi gente, tudo bem?");
    let doomed = message_id(&beto, "vou comprar pão");
    ana.wait_for(&has_message("vou comprar pão"), "Beto's lines at Ana's");
    beto.click(&format!(".msg[data-id='{edited}'] .msg-menu-btn"));
    assert_eq!(menu_keys(&beto), ["edit", "copy", "delete"]);
    shots.push(beto.screenshot("mod-message-menu-desktop-light"));
    beto.click(".popup-menu [data-key=edit]");
    beto.wait_for(
        "document.activeElement?.classList.contains('edit-input')",
        "the editor, focused",
    );
    beto.eval("document.activeElement.select()");
    beto.type_text("oi gente, tudo certo?");
    shots.push(beto.screenshot("mod-editing-desktop-light"));
    beto.enter();
    beto.wait_for(
        &has_message("oi gente, tudo certo?"),
        "the edit on Beto's page",
    );
    // Ana sees the new text, marked as edited, without reloading.
    ana.wait_for(
        &has_message("oi gente, tudo certo?"),
        "the edit on Ana's page",
    );
    assert_eq!(
        ana.text_of(&format!(".msg[data-id='{edited}'] .edited-mark")),
        "(editado)"
    );
    // Esc leaves an edit without saving. This time by keyboard: the menu button, Enter, the
    // first item (Edit) focused, Enter.
    beto.focus(&format!(".msg[data-id='{edited}'] .msg-menu-btn"));
    beto.enter();
    beto.wait_for(
        "document.activeElement?.dataset.key === 'edit'",
        "the menu open with Edit focused",
    );
    beto.press("ArrowDown", "ArrowDown", 40, "", 0);
    assert_eq!(
        beto.eval("document.activeElement.dataset.key"),
        json!("copy")
    );
    beto.press("ArrowUp", "ArrowUp", 38, "", 0);
    beto.enter();
    beto.wait_for(
        "document.activeElement?.classList.contains('edit-input')",
        "the editor again",
    );
    beto.type_text(" nada disso");
    beto.press("Escape", "Escape", 27, "", 0);
    beto.wait_for(
        "!document.querySelector('.edit-form')",
        "the editor gone after Esc",
    );
    assert!(beto
        .eval(&has_message("oi gente, tudo certo?"))
        .as_bool()
        .unwrap());

    // Ana, the owner, deletes one of Beto's messages: it leaves both pages.
    ana.click(&format!(".msg[data-id='{doomed}'] .msg-menu-btn"));
    assert_eq!(
        menu_keys(&ana),
        ["copy", "delete"],
        "the owner may delete, not edit, someone else's message"
    );
    ana.click(".popup-menu [data-key=delete]");
    ana.wait_for(
        "document.getElementById('confirm-dialog')?.open",
        "the confirmation",
    );
    shots.push(ana.screenshot("mod-delete-confirm-desktop-light"));
    ana.click("#confirm-yes");
    ana.wait_for(
        &format!("!document.querySelector(\".msg[data-id='{doomed}']\")"),
        "the message gone at Ana's",
    );
    beto.wait_for(
        &format!("!document.querySelector(\".msg[data-id='{doomed}']\")"),
        "the message gone at Beto's",
    );

    direct_message_edited_live(&ana, &beto);
    the_dm_found_by_its_new_words(&ana);
    search_and_jump(&beto, target, &mut shots);
    long_press_opens_the_menu(&beto, &mut shots);

    // Ana bans Beto for 10 minutes from the member list.
    ana.wait_for(
        "[...document.querySelectorAll('#member-list [data-mod-member]')].some(b => b.dataset.modMember === 'Beto')",
        "a moderation button on Beto's row",
    );
    ana.click("#member-list [data-mod-member='Beto']");
    assert_eq!(
        menu_keys(&ana),
        ["kick", "ban10m", "ban1h", "ban1d", "banForever"]
    );
    shots.push(ana.screenshot("mod-member-menu-desktop-light"));
    ana.click(".popup-menu [data-key=ban10m]");
    // Beto's side: a notice saying so, and the room out of his list.
    beto.wait_for(
        "!document.getElementById('main-error').hidden && document.getElementById('main-error-text').textContent.includes('praça')",
        "Beto's notice that he was removed",
    );
    let notice = beto.text_of("#main-error-text");
    assert!(
        notice.starts_with("A moderator removed you from the room praça. You may come back after"),
        "{notice}"
    );
    beto.wait_for(
        "document.body.dataset.pane === 'lobby' && !document.querySelector('#room-convs [data-conv]')",
        "praça gone from Beto's rooms",
    );
    shots.push(beto.screenshot("mod-banned-phone-light"));
    // Ana's side: Beto is gone from the members, the conversation says she banned him, and
    // the ban is listed with a way to lift it.
    ana.wait_for(
        "!document.querySelector('#member-list [data-mod-member=\"Beto\"]')",
        "Beto out of Ana's member list",
    );
    assert_eq!(member_names(&ana), "Ana,Eco");
    ana.wait_for(
        "[...document.querySelectorAll('#messages .sys-text')].some(e => e.textContent.startsWith('Você baniu Beto até'))",
        "the line saying Ana banned Beto",
    );
    ana.wait_for(
        "document.querySelector('#ban-list [data-unban=\"Beto\"]')",
        "the ban listed",
    );
    shots.push(ana.screenshot("mod-after-ban-desktop-light"));

    // Beto tries to come back: refused while banned.
    beto.click("#main-error-close");
    beto.click("#room-dir .room-row[data-room='praça']");
    beto.wait_for(
        "!document.getElementById('main-error').hidden",
        "the refusal",
    );
    assert_eq!(
        beto.text_of("#main-error-text"),
        "A moderator banned you from that room. Try again later."
    );
    assert_eq!(beto.eval("document.body.dataset.pane"), json!("lobby"));

    // Ana lifts the ban; Beto gets in again.
    ana.click("#ban-list [data-unban='Beto']");
    ana.wait_for(
        "document.getElementById('mod-status').textContent === 'Beto pode entrar de novo em praça.'",
        "the ban lifted",
    );
    beto.click("#main-error-close");
    beto.click("#room-dir .room-row[data-room='praça']");
    beto.wait_for(
        "document.body.dataset.pane === 'room'",
        "Beto back in praça",
    );
    ana.wait_for(
        "[...document.querySelectorAll('#member-list [data-mod-member]')].some(b => b.dataset.modMember === 'Beto')",
        "Beto back in Ana's list",
    );

    // A kick without a ban: Beto is out, told he may come back, and does.
    ana.click("#member-list [data-mod-member='Beto']");
    ana.click(".popup-menu [data-key=kick]");
    beto.wait_for(
        "document.body.dataset.pane === 'lobby' && !document.getElementById('main-error').hidden",
        "Beto kicked",
    );
    assert_eq!(
        beto.text_of("#main-error-text"),
        "A moderator removed you from the room praça. You may join it again."
    );
    ana.wait_for(
        "!document.querySelector('#member-list [data-mod-member=\"Beto\"]')",
        "Beto out of Ana's list again",
    );
    ana.wait_for(
        "[...document.querySelectorAll('#messages .sys-text')].some(e => e.textContent === 'Você removeu Beto da sala')",
        "the line saying Ana removed Beto",
    );
    beto.click("#main-error-close");
    beto.click("#room-dir .room-row[data-room='praça']");
    beto.wait_for(
        "document.body.dataset.pane === 'room'",
        "Beto back in praça after the kick",
    );

    // Ana deletes the room, after saying yes; Beto is told.
    ana.click("#delete-room");
    ana.wait_for(
        "document.getElementById('confirm-dialog')?.open",
        "the room's confirmation",
    );
    assert_eq!(ana.text_of("#confirm-title"), "Apagar a sala praça?");
    ana.click("#confirm-yes");
    ana.wait_for(
        "document.body.dataset.pane === 'lobby'",
        "Ana back in the lobby",
    );
    beto.wait_for(
        "document.body.dataset.pane === 'lobby' && document.getElementById('main-error-text').textContent.includes('praça')",
        "Beto told the room is gone",
    );
    shots.push(beto.screenshot("mod-room-deleted-phone-light"));
    desktop(&beto);

    // The admin suspends Beto for an hour from the admin panel; his page closes with a notice.
    let admin = Tab::open(&cdp, "root", "pt-BR");
    admin.navigate(&url);
    sign_in(&admin, "Root", "senha do root");
    assert_eq!(
        ana.eval("document.getElementById('admin-open').hidden"),
        json!(true)
    );
    admin.click("#admin-open");
    admin.fill("#admin-user", "Beto");
    admin
        .eval("(() => { const s = document.getElementById('admin-duration'); s.value = '60'; })()");
    admin.click("#admin-suspend");
    admin.wait_for(
        "!document.getElementById('admin-result').hidden",
        "the admin's answer",
    );
    assert!(admin
        .text_of("#admin-result")
        .starts_with("A conta Beto está suspensa até"));
    shots.push(admin.screenshot("mod-admin-desktop-light"));
    beto.wait_for(
        "document.body.dataset.view === 'login' && !document.getElementById('login-notice').hidden",
        "Beto's page sent back with a notice",
    );
    assert_eq!(
        beto.text_of("#login-notice"),
        "This account was suspended by the server’s admin."
    );
    // The right password does not get him in while it lasts, and the page says why.
    beto.fill("#signin-name", "Beto");
    beto.fill("#signin-password", "senha do Beto");
    beto.enter();
    beto.wait_for(
        "!document.getElementById('signin-error').hidden",
        "the refused sign-in",
    );
    assert!(
        beto.text_of("#signin-error")
            .starts_with("This account was suspended by the server’s admin until "),
        "{}",
        beto.text_of("#signin-error")
    );
    shots.push(beto.screenshot("mod-suspended-desktop-light"));
    admin.click("#admin-unsuspend");
    admin.wait_for(
        "document.getElementById('admin-result').textContent.startsWith('A conta Beto foi liberada')",
        "the suspension lifted",
    );

    let problems = cdp.borrow().problems.clone();
    assert!(
        problems.is_empty(),
        "the pages reported problems: {problems:#?}"
    );
    for path in &shots {
        loud!("screenshot: {}", path.display());
    }
    loud!("browser moderation test took {:?}", started.elapsed());
}

fn send(tab: &Tab, text: &str) {
    tab.focus("#composer-input");
    tab.type_text(text);
    tab.enter();
    tab.wait_for(&has_message(text), &format!("{text:?} sent"));
}

/// Beto searches without accents and jumps to Ana's message, which his page had not loaded;
/// then the same box on a phone.
fn search_and_jump(beto: &Tab, target: u64, shots: &mut Vec<PathBuf>) {
    beto.press("k", "KeyK", 75, "", 2); // Ctrl+K
    beto.wait_for(
        "document.getElementById('search-dialog')?.open && document.activeElement?.id === 'search-input'",
        "the search box from Ctrl+K",
    );
    beto.type_text("reuniao quinta");
    beto.wait_for(
        "document.querySelectorAll('#search-results .search-hit').length > 0",
        "search results",
    );
    assert_eq!(
        beto.eval("[...document.querySelectorAll('#search-results .hit-mark')].map(m => m.textContent).join(',')"),
        json!("reunião,quinta"),
        "the matched words are marked"
    );
    assert_eq!(
        beto.eval("[document.querySelector('#search-results b'), document.querySelector('#search-results .hit-text').textContent]"),
        json!([null, "a reunião é na quinta às <b>15h</b>"]),
        "message text is shown as text, never as markup"
    );
    shots.push(beto.screenshot("mod-search-desktop-light"));
    beto.click(&format!("#search-results .search-hit[data-id='{target}']"));
    beto.wait_for(
        &format!(
            "document.querySelector(\".msg[data-id='{target}']\")?.classList.contains('flash')"
        ),
        "the jump to the found message, highlighted",
    );
    let in_view = beto.eval(&format!(
        "(() => {{ const r = document.querySelector(\".msg[data-id='{target}']\").getBoundingClientRect();
           const s = document.getElementById('scroller').getBoundingClientRect();
           return r.top >= s.top && r.bottom <= s.bottom; }})()"
    ));
    assert_eq!(in_view, json!(true), "the found message is on screen");
    // Captured at once: the highlight fades in 2.5 s, and a screenshot waits for animations.
    shots.push(beto.capture("mod-search-jump-desktop-light"));
    // Someone else's message: Beto can only copy it.
    beto.click(&format!(".msg[data-id='{target}'] .msg-menu-btn"));
    assert_eq!(menu_keys(beto), ["copy"]);
    beto.press("Escape", "Escape", 27, "", 0);

    // The same on a phone, in the dark: search from the header button, full screen.
    phone(beto);
    beto.color_scheme("dark");
    beto.click("#search-open");
    beto.wait_for(
        "document.getElementById('search-dialog').open",
        "search on the phone",
    );
    beto.wait_for(
        "document.querySelectorAll('#search-results .search-hit').length > 0",
        "the results kept",
    );
    shots.push(beto.screenshot("mod-search-phone-dark"));
    beto.click("#search-close");
    beto.color_scheme("light");
}

/// On a phone, a long press on a message opens its menu, as on every phone.
fn long_press_opens_the_menu(beto: &Tab, shots: &mut Vec<PathBuf>) {
    phone(beto);
    let at = beto.eval(
        "(() => { const b = [...document.querySelectorAll('#messages .msg.own .bubble')].pop(); b.scrollIntoView({block: 'center'});
           const r = b.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()",
    );
    let point = json!([{ "x": at[0], "y": at[1] }]);
    beto.call(
        "Input.dispatchTouchEvent",
        json!({ "type": "touchStart", "touchPoints": point }),
    );
    beto.wait_for(
        "document.querySelector('.popup-menu')",
        "the menu from a long press",
    );
    beto.call(
        "Input.dispatchTouchEvent",
        json!({ "type": "touchEnd", "touchPoints": [] }),
    );
    assert_eq!(menu_keys(beto), ["edit", "copy", "delete"]);
    shots.push(beto.screenshot("mod-long-press-phone-light"));
    beto.press("Escape", "Escape", 27, "", 0);
    beto.wait_for("!document.querySelector('.popup-menu')", "the menu closed");
}

/// Beto writes to Ana directly and, with the up arrow in the empty box, edits what he wrote;
/// Ana, with the conversation open, sees it change. Then both go back to praça.
fn direct_message_edited_live(ana: &Tab, beto: &Tab) {
    beto.click("#member-list [data-dm='Ana']");
    beto.wait_for("document.body.dataset.pane === 'dm'", "Beto's DM with Ana");
    send(beto, "oi Ana, tudo bem?");
    ana.wait_for(
        "document.querySelector('#dm-convs [data-conv=\"dm:beto\"]')",
        "the DM in Ana's sidebar",
    );
    ana.click("#dm-convs [data-conv='dm:beto']");
    ana.wait_for(&has_message("oi Ana, tudo bem?"), "the DM on Ana's page");
    beto.focus("#composer-input");
    beto.press("ArrowUp", "ArrowUp", 38, "", 0);
    beto.wait_for(
        "document.activeElement?.classList.contains('edit-input')",
        "the editor from the up arrow",
    );
    beto.eval("document.activeElement.select()");
    beto.type_text("oi Ana, tudo joia?");
    beto.enter();
    ana.wait_for(
        &has_message("oi Ana, tudo joia?"),
        "the DM's edit on Ana's page",
    );
    let mark = ana.text_of("#messages .edited-mark");
    assert_eq!(mark, "(editado)");
    ana.click("#room-convs [data-conv='room:praça']");
    ana.wait_for("document.body.dataset.pane === 'room'", "Ana back in praça");
    beto.click("#room-convs [data-conv='room:praça']");
    beto.wait_for(
        "document.body.dataset.pane === 'room'",
        "Beto back in praça",
    );
}

/// From praça, Ana finds the DM by a word of its edited text and lands in that conversation.
fn the_dm_found_by_its_new_words(ana: &Tab) {
    ana.press("k", "KeyK", 75, "", 2); // Ctrl+K
    ana.wait_for(
        "document.getElementById('search-dialog')?.open",
        "Ana's search box",
    );
    ana.type_text("joia");
    ana.wait_for(
        "document.querySelector('#search-results .search-hit')",
        "the DM found",
    );
    assert_eq!(ana.text_of("#search-results .hit-where"), "Direta com Beto");
    ana.click("#search-results .search-hit");
    ana.wait_for(
        "document.body.dataset.pane === 'dm' && document.querySelector('#messages .msg.flash')",
        "the jump into the DM",
    );
    ana.click("#room-convs [data-conv='room:praça']");
    ana.wait_for(
        "document.body.dataset.pane === 'room'",
        "Ana in praça again",
    );
}

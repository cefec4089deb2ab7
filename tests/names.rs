//! PROTOCOL.md 1.1 "Names, stricter", over real TCP: names are one name under case
//! folding, NFKC and confusable skeletons; invisible names and names with format
//! characters are refused; emoji sequences stay allowed; names are shown as given.

mod common;

use common::*;
use serde_json::json;

/// Pairs that must be one name: first spelling, second spelling, why.
const SAME_NAME: &[(&str, &str, &str)] = &[
    ("ΟΔΟΣ", "οδοσ", "Greek: case folding, not lower-casing"),
    ("ΟΔΟΣ", "οδος", "Greek final sigma folds to sigma"),
    ("ana", "ａｎａ", "fullwidth: NFKC"),
    (
        "Ana",
        "ＡＮＡ",
        "fullwidth capitals: NFKC then case folding",
    ),
    (
        "Ana",
        "\u{410}na",
        "Cyrillic capital A: confusable skeleton",
    ),
    ("Carla", "\u{421}\u{430}rla", "Cyrillic Es and a"),
    ("modem", "rnodern", "rn looks like m"),
    ("Straße", "STRASSE", "full case folding: ß is ss"),
    ("Beto", "𝐁𝐞𝐭𝐨", "mathematical bold: NFKC"),
    ("paypal", "ρaypal", "Greek rho"),
    ("polo", "p0l0", "digit zero looks like O"),
];

/// Names with no visible character, or with a format character (category Cf) outside an
/// emoji sequence.
const INVISIBLE_OR_FORMAT: &[(&str, &str)] = &[
    ("\u{200b}", "zero width space alone"),
    ("\u{3164}", "Hangul filler (a letter, but invisible)"),
    ("\u{115f}", "Hangul choseong filler"),
    ("\u{1160}", "Hangul jungseong filler"),
    ("\u{ffa0}", "halfwidth Hangul filler"),
    ("\u{3164}\u{3164}\u{115f}", "only fillers"),
    ("\u{feff}", "byte order mark alone"),
    ("Beto\u{200b}", "trailing zero width space"),
    ("\u{202e}oteB", "right-to-left override"),
    ("\u{2066}Ana\u{2069}", "bidi isolates"),
    ("A\u{200e}na", "left-to-right mark"),
    ("An\u{ad}a", "soft hyphen"),
    ("Ana\u{200c}Maria", "zero width non-joiner"),
    ("Ana\u{200d}Maria", "zero width joiner between letters"),
    ("\u{200d}", "zero width joiner alone"),
    ("Ana\u{200d}", "zero width joiner after a letter"),
    (
        "\u{200d}\u{1f4bb}",
        "zero width joiner before an emoji, with nothing to join",
    ),
    ("\u{301}", "a combining mark alone"),
    (
        "\u{301}\u{302}\u{34f}",
        "combining marks and a grapheme joiner",
    ),
    ("\u{fe0f}", "a variation selector alone"),
    ("\u{2800}", "Braille pattern blank"),
    ("\u{e0041}\u{e007f}", "tag characters alone"),
    ("Ana\u{e0041}", "a tag character after a letter"),
];

/// Emoji names, allowed and shown exactly as given.
const EMOJI: &[&str] = &[
    "👩‍💻 Ana",  // woman technologist: ZWJ sequence
    "🏳️‍🌈",      // rainbow flag: VS16 and ZWJ
    "❤️‍🔥",      // heart on fire
    "🏃🏽‍♀️",      // skin tone, ZWJ, gender sign, VS16
    "👨‍👩‍👧‍👦",      // family: three joiners
    "👍🏽",      // skin tone modifier
    "1️⃣ Ana",  // keycap sequence
    "🇧🇷 Beto", // flag: regional indicators
    "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}", // flag of Scotland: tags
];

/// For each pair, in both orders: while the first spelling is online the second is
/// `name_taken`, and both connections keep working.
#[test]
fn lookalike_user_names_are_one_name() {
    for &(a, b, why) in SAME_NAME {
        for (first, second) in [(a, b), (b, a)] {
            let s = TestServer::default_config();
            let mut one = Client::hello(s.addr, first);
            assert_eq!(one.name, first, "{why}: shown as given");
            let mut two = Client::connect(s.addr);
            two.name = format!("second {second}");
            let e = two.expect_error(json!({"type": "hello", "name": second}), "name_taken");
            assert!(e["message"].is_string(), "{why}: {e}");
            two.assert_alive_unidentified();
            one.assert_alive();
        }
    }
}

#[test]
fn invisible_or_format_names_are_invalid() {
    let s = TestServer::default_config();
    let mut c = Client::connect(s.addr);
    c.name = "nameless".into();
    for &(name, why) in INVISIBLE_OR_FORMAT {
        let e = c.expect_error(json!({"type": "hello", "name": name}), "invalid_name");
        assert!(e["message"].is_string(), "{why}: {e}");
    }
    c.assert_alive_unidentified();
    let mut c = Client::hello(s.addr, "Ana");
    for &(name, why) in INVISIBLE_OR_FORMAT {
        let e = c.expect_error(json!({"type": "create", "room": name}), "invalid_room");
        assert!(e["message"].is_string(), "{why}: {e}");
        for cmd in [
            json!({"type": "join", "room": name}),
            json!({"type": "who", "room": name}),
            json!({"type": "text", "room": name, "text": "oi"}),
        ] {
            c.expect_error(cmd, "invalid_room");
        }
        c.expect_error(
            json!({"type": "dm", "to": name, "text": "oi"}),
            "invalid_name",
        );
    }
    c.assert_alive();
}

#[test]
fn emoji_names_are_allowed_and_shown_as_given() {
    let s = TestServer::default_config();
    let mut keep = Vec::new();
    for &name in EMOJI {
        let mut c = Client::connect(s.addr);
        c.name = name.into();
        let w = c.request(json!({"type": "hello", "name": name}), json!(1));
        assert_eq!(w["type"], "welcome", "{name:?}: {w}");
        assert_eq!(w["name"], name, "{name:?}: shown as given");
        let created = c.request(json!({"type": "create", "room": name}), json!(2));
        assert_eq!(created["type"], "created", "{name:?}: {created}");
        assert_eq!(created["room"], name, "{name:?}: shown as given");
        keep.push(c);
    }
}

#[test]
fn lookalike_rooms_are_room_exists_and_reach_the_first_room() {
    for &(a, b, why) in SAME_NAME {
        let s = TestServer::default_config();
        let mut ana = Client::hello(s.addr, "Ana");
        let created = ana.create(a, None);
        assert_eq!(created["room"], a, "{why}: shown as given");
        let e = ana.expect_error(json!({"type": "create", "room": b}), "room_exists");
        assert!(e["message"].is_string(), "{why}: {e}");
        // The other spelling names the same room, shown with its creator's spelling.
        let joined = ana.request(json!({"type": "join", "room": b}), json!("j"));
        assert_eq!(joined["type"], "joined", "{why}: {joined}");
        assert_eq!(joined["room"], a, "{why}: {joined}");
        ana.recv_type("presence");
        let rooms = ana.request(json!({"type": "list"}), json!("l"));
        assert_eq!(
            rooms["rooms"],
            json!([{"room": a, "protected": false, "member_count": 1}])
        );
    }
}

#[test]
fn a_dm_to_a_lookalike_spelling_reaches_the_user() {
    let s = TestServer::default_config();
    let mut ana = Client::hello(s.addr, "Ana");
    let mut beto = Client::hello(s.addr, "Beto");
    for (to, text) in [
        ("ＡＮＡ", "oi"),
        ("\u{410}na", "olá"),
        (" ana ", "tudo bem?"),
    ] {
        let echo = beto.request(json!({"type": "dm", "to": to, "text": text}), json!(to));
        assert_eq!(echo["type"], "dm", "{to:?}: {echo}");
        assert_eq!(echo["to"], "Ana", "{to:?}: the recipient's own spelling");
        let got = ana.recv_type("dm");
        assert_eq!(got["from"], "Beto");
        assert_eq!(got["to"], "Ana");
        assert_eq!(got["text"], text);
    }
}

#[test]
fn length_is_counted_in_code_points_as_given() {
    let s = TestServer::default_config();
    // 32 fullwidth letters are 32 code points (NFKC does not change how long a name is).
    let wide = "ａ".repeat(32);
    let c = Client::hello(s.addr, &wide);
    assert_eq!(c.name, wide);
    let mut d = Client::connect(s.addr);
    d.name = "long".into();
    d.expect_error(
        json!({"type": "hello", "name": "ａ".repeat(33)}),
        "invalid_name",
    );
    // A name of 32 "m" keys to 64 characters ("rn" each) and is still fine.
    let m = "m".repeat(32);
    let w = d.request(json!({"type": "hello", "name": m}), json!(1));
    assert_eq!(w["name"], m);
}

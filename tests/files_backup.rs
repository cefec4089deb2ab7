//! `papo backup` covers files: a backup taken while the server runs restores a server with
//! every message and every file, and the binary's flags for files work.

mod common;

use common::files::*;
use common::*;
use serde_json::json;
use std::process::Command;

#[test]
fn a_backup_taken_while_serving_restores_every_message_and_file() {
    let dir = TempDir::new("files-backup");
    let db = dir.file("papo.db");
    let (mut papo, addr) = spawn_with(&db, &["--max-upload-mb", "2", "--upload-quota-mb", "0"]);
    let ana_cookie = account(addr, "Ana");
    let photo: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let on_message = uploaded(addr, &ana_cookie, "foto.bin", &photo);
    let unattached = uploaded(addr, &ana_cookie, "depois.txt", b"ainda sem mensagem");
    // The flag is the binary's: 3 MiB is over --max-upload-mb 2.
    let r = upload(addr, &ana_cookie, "big.bin", &vec![0u8; 3 << 20]);
    assert_eq!(r.status, 413);
    let (mut ana, _) = Client::signed_in(addr, &ana_cookie);
    ana.create("album", None);
    ana.join("album", None);
    let ack = ana.request(
        json!({"type": "text", "room": "album", "text": "a foto", "files": [on_message["id"]]}),
        json!(1),
    );
    assert_eq!(ack["type"], "ack");

    let out = dir.file("copia.db");
    let backup = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["backup", &out, "--db", &db])
        .output()
        .expect("papo backup runs");
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    // Files uploaded after the backup are not in it, and nothing breaks.
    let later = uploaded(addr, &ana_cookie, "tarde.txt", b"tarde");
    drop(ana);
    papo.kill().unwrap();
    let _ = papo.wait();

    let copied = listing(&format!("{out}.files"));
    let mut expected = vec![
        on_message["id"].as_str().unwrap().to_string(),
        unattached["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(copied, expected, "every file the copy names, nothing later");
    assert!(!copied.contains(&later["id"].as_str().unwrap().to_string()));
    assert_eq!(
        std::fs::read(format!(
            "{out}.files/{}",
            on_message["id"].as_str().unwrap()
        ))
        .unwrap(),
        photo
    );

    // A server on the copy (its files found beside it) has the message and its file.
    let mut config = test_config();
    config.db = out.clone();
    let server = TestServer::start(config);
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    let joined = ana.join("album", None);
    assert_eq!(
        joined["history"][0]["files"],
        json!([on_message]),
        "{joined}"
    );
    let ack = ana.request(
        json!({"type": "text", "room": "album", "files": [unattached["id"]]}),
        json!(2),
    );
    assert_eq!(
        ack["type"], "ack",
        "the unattached file is restored too: {ack}"
    );
    ana.expect_error(
        json!({"type": "text", "room": "album", "files": [later["id"]]}),
        "no_such_file",
    );
    // And served from the restored copy, byte for byte.
    let path = format!("/files/{}", on_message["id"].as_str().unwrap());
    let served = fetch(server.addr, "GET", &path, &[]);
    assert_eq!((served.status, served.body.len()), (200, photo.len()));
    assert_eq!(served.body, photo);
}

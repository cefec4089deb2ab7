//! Where direct messages live: a DM between guests is never written to disk (nobody could
//! ever read it back, and the page tells guests their DMs vanish), while message ids stay
//! unique across a restart, the DM's included.

mod common;

use common::{test_config, Client, TempDir, TestServer};
use serde_json::json;

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn server_on(db: &str) -> TestServer {
    TestServer::start(papo::Config {
        db: db.into(),
        ..test_config()
    })
}

#[test]
fn a_dm_between_guests_is_not_on_disk_after_a_restart() {
    let dir = TempDir::new("dm-storage");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    let mut beto = Client::hello(server.addr, "Beto");
    ana.join("sala", None);

    // A room message first, acked: the control that shows the search below finds text
    // that was written.
    let kept = "mensagem-da-sala-kept-91c2";
    ana.text_ref("sala", kept, json!("before"));

    // The DM is the last message before the restart, so its id is the one at risk of being
    // handed out again when it is not stored. A clean shutdown drains the store, so a DM
    // sent to the store would be on disk afterwards.
    let secret = "segredo-entre-visitantes-7f3a";
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": secret}),
        json!("dm"),
    );
    assert_eq!(dm["type"], "dm", "{dm}");
    let dm_id = dm["id"].as_u64().unwrap();
    let got = beto.recv_type("dm");
    assert_eq!(got["text"], secret, "the DM is delivered live: {got}");
    drop(ana);
    drop(beto);
    server.shutdown();

    let on_disk = dir.all_bytes();
    assert!(
        contains(&on_disk, kept),
        "the room message is on disk (the search works)"
    );
    assert!(
        !contains(&on_disk, secret),
        "a DM between guests must not be written to disk"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let dms: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages WHERE room_id IS NULL OR recipient IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(dms, 0, "no DM rows in the database");
    drop(conn);

    // Ids are unique per server (PROTOCOL.md): after a restart they continue past every
    // id handed out before it, the unstored DM's included.
    let server = server_on(&db);
    let mut caio = Client::hello(server.addr, "Caio");
    caio.join("sala", None);
    let (ack, _) = caio.text_ref("sala", "depois", json!("later"));
    assert!(
        ack["id"].as_u64().unwrap() > dm_id,
        "ids continue after the DM's: {ack}"
    );
}

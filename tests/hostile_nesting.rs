//! Deeply nested JSON objects, in a test binary of their own: a server that overflows a
//! thread's stack on them aborts the whole process, which would hide every other result
//! of hostile.rs.

mod common;

use common::*;

fn nested_object(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[test]
fn deeply_nested_objects_are_bad_request_and_the_server_survives() {
    let s = TestServer::default_config();
    let mut pair = Pair::new(s.addr, "nest");
    pair.chat();
    let mut c = Client::hello(s.addr, "nester");
    for depth in [100, 127, 129, 200, 1000, 10_000] {
        // not a command: no type at the top
        c.expect_raw_error(&nested_object(depth), "bad_request");
        // the nesting inside an otherwise valid command's extra field
        let raw = format!(
            r#"{{"type":"list","ref":{depth},"x":{}}}"#,
            nested_object(depth)
        );
        c.send_text(&raw);
        let r = c.recv();
        assert_eq!(r["ref"], depth, "{r}");
        assert!(
            r["type"] == "rooms" || r["code"] == "bad_request",
            "depth {depth}: {r}"
        );
        // a wrong-typed field made of nesting
        let raw = format!(
            r#"{{"type":"dm","to":"nester","text":{},"ref":"t"}}"#,
            nested_object(depth)
        );
        c.send_text(&raw);
        let r = c.recv();
        assert_eq!(r["code"], "bad_request", "depth {depth}: {r}");
        c.assert_alive();
    }
    let mixed = format!("{}{}", "[{\"a\":".repeat(5000), "}]".repeat(5000));
    c.expect_raw_error(&mixed, "bad_request");
    c.assert_alive();
    pair.chat();
}

//! Ids every layer shares. A leaf module: it names nothing else in the crate, so the
//! connection edge, the hub, the pools and the store can all use it without import circles.

/// A connection's number for as long as it lives, given by the accept loop.
pub type ConnId = u64;

/// A room's number: its id in the database. The hub gives each new room the next one and
/// never gives one twice while it runs, so a removed room's id never names another room.
pub type RoomId = i64;

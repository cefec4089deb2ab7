//! Ids every layer shares. A leaf module: it names nothing else in the crate, so the
//! connection edge, the hub, the pools and the store can all use it without import circles.

/// A connection's number for as long as it lives, given by the accept loop.
pub type ConnId = u64;

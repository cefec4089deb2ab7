//! The wire encoding of the frames papo sends (RFC 6455 §5.2): text frames encoded once and
//! shared, control frames, and the close codes papo uses. A leaf: it names no other module,
//! so everything that queues or writes frames may depend on it.

use std::sync::Arc;

/// A server→client WebSocket text frame, encoded once (header and JSON payload in one
/// buffer) so a broadcast to a thousand members costs a thousand `Arc` clones, not a
/// thousand serialisations. Server frames are unmasked, so the bytes are the same for
/// every recipient.
#[derive(Debug)]
pub struct EncodedFrame {
    /// Header and payload, exactly as they go out on the socket.
    wire: Vec<u8>,
    /// Where the payload starts in `wire` (after a 2, 4 or 10 byte header), so the JSON
    /// can be read back without decoding the header again.
    payload_start: usize,
}

impl EncodedFrame {
    /// Encodes `json` as one final text frame.
    pub fn text(json: &str) -> Arc<Self> {
        Arc::new(Self::encode(0x1, json.as_bytes()))
    }

    /// Encodes a control or data frame with the given opcode.
    fn encode(opcode: u8, payload: &[u8]) -> Self {
        let len = payload.len();
        let mut wire = Vec::with_capacity(len + 10);
        wire.push(0x80 | opcode); // FIN set: we never fragment.
        if len < 126 {
            wire.push(len as u8);
        } else if len <= u16::MAX as usize {
            wire.push(126);
            wire.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            wire.push(127);
            wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let payload_start = wire.len();
        wire.extend_from_slice(payload);
        EncodedFrame {
            wire,
            payload_start,
        }
    }

    /// The bytes to write to the socket.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The JSON text this frame carries.
    pub fn json(&self) -> &str {
        // Only `text` builds frames whose payload is read back, and it took a &str.
        std::str::from_utf8(&self.wire[self.payload_start..]).unwrap_or("")
    }
}

/// A ping frame with no payload.
pub const PING_WIRE: [u8; 2] = [0x89, 0x00];

/// A pong frame answering a ping that carried `payload` (at most 125 bytes: tungstenite
/// refuses a longer control frame before we see it).
pub fn pong_wire(payload: &[u8]) -> Vec<u8> {
    EncodedFrame::encode(0xA, payload).wire
}

/// A close frame with `code` and as much of `reason` as fits a control frame.
pub fn close_wire(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    // A control frame's payload is at most 125 bytes, two of them the code.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    EncodedFrame::encode(0x8, &payload).wire
}

/// Close codes of RFC 6455 that papo sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length_in_the_header() {
        let small = EncodedFrame::text("{}");
        assert_eq!(small.wire(), b"\x81\x02{}");
        assert_eq!(small.json(), "{}");
        let medium = "x".repeat(300);
        assert_eq!(
            &EncodedFrame::text(&medium).wire()[..4],
            &[0x81, 126, 0x01, 0x2c]
        );
        let large = "y".repeat(70_000);
        let frame = EncodedFrame::text(&large);
        assert_eq!(frame.wire()[1], 127);
        assert_eq!(frame.json().len(), 70_000);
    }

    #[test]
    fn close_reason_is_cut_to_fit_a_control_frame() {
        let wire = close_wire(1008, &"é".repeat(100));
        assert!(wire.len() <= 127);
        assert_eq!(&wire[2..4], &1008u16.to_be_bytes());
    }

    #[test]
    fn a_pong_echoes_the_ping() {
        assert_eq!(pong_wire(b"hi"), b"\x8a\x02hi");
    }
}

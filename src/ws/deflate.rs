//! `permessage-deflate` (RFC 7692) for the seat stream, on terms that let
//! one compressed frame serve every socket: the server keeps no context
//! between messages (`server_no_context_takeover`), so a batch is deflated
//! once per show and node and the same bytes go to every socket that asked
//! for compression; and the client is asked to keep none either
//! (`client_no_context_takeover`), so a socket keeps no inflate window
//! between the rare messages a client sends.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The answer to an acceptable offer.
pub const ACCEPTED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The empty stored block a sync flush ends with, left off on the wire
/// (RFC 7692 7.2.1) and put back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Whether the `Sec-WebSocket-Extensions` values offer `permessage-deflate`
/// on terms this server can take (any one offer of several will do).
pub fn offered<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    values.into_iter().flat_map(|v| v.split(',')).any(acceptable)
}

fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
    {
        return false;
    }
    let mut seen: Vec<String> = Vec::new();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim().trim_matches('"'))),
            None => (param.to_ascii_lowercase(), None),
        };
        let fine = match (name.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover" | "client_max_window_bits", None) => true,
            // Frames are deflated with the whole 32 KiB window: a client that
            // can only inflate with less gets plain frames.
            ("server_max_window_bits", Some(bits)) => bits == "15",
            ("client_max_window_bits", Some(bits)) => bits.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b)),
            _ => false,
        };
        if !fine || seen.contains(&name) {
            return false;
        }
        seen.push(name);
    }
    true
}

/// One message deflated on its own: raw DEFLATE, sync-flushed, without
/// the flush's empty block.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() / 3 + 64);
    loop {
        let taken = c.total_in() as usize;
        // Errors only on a misuse of the stream (none here: one flush, fresh state).
        let _ = c.compress_vec(&payload[taken..], &mut out, FlushCompress::Sync);
        if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// Inflates a client's compressed messages only to measure them: the seat
/// stream acts on no data message, but the inbound limit counts a message's
/// inflated size. Nothing is kept between messages.
pub struct Inflater {
    stream: Decompress,
    scratch: Vec<u8>,
}

/// A message inflated past the limit, or not DEFLATE at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inflate {
    TooBig,
    Corrupt,
}

impl Default for Inflater {
    fn default() -> Self {
        Self {
            stream: Decompress::new(false),
            scratch: vec![0; 8 * 1024],
        }
    }
}

impl Inflater {
    /// Takes the next bytes of a message (unmasked); answers its inflated
    /// size so far, stopping as soon as it passes `limit`.
    pub fn feed(&mut self, mut input: &[u8], limit: u64) -> Result<u64, Inflate> {
        loop {
            let (in_before, out_before) = (self.stream.total_in(), self.stream.total_out());
            self.stream
                .decompress(input, &mut self.scratch, FlushDecompress::None)
                .map_err(|_| Inflate::Corrupt)?;
            let used = (self.stream.total_in() - in_before) as usize;
            let made = (self.stream.total_out() - out_before) as usize;
            input = &input[used..];
            if self.stream.total_out() > limit {
                return Err(Inflate::TooBig);
            }
            // Done when all input is taken and the output did not fill up
            // (which would mean more is waiting), or when nothing moves.
            if (input.is_empty() && made < self.scratch.len()) || (used == 0 && made == 0) {
                return Ok(self.stream.total_out());
            }
        }
    }

    /// Ends the message: its total inflated size; ready for the next one.
    pub fn finish(&mut self, limit: u64) -> Result<u64, Inflate> {
        let size = self.feed(&TAIL, limit);
        self.stream.reset(false);
        size
    }
}

#[cfg(test)]
mod tests {
    use flate2::read::DeflateDecoder;
    use std::io::Read;

    use super::*;

    #[test]
    fn offers_are_taken_on_terms_one_frame_can_serve() {
        // What browsers and Python's websockets send.
        assert!(offered(["permessage-deflate; client_max_window_bits"]));
        assert!(offered(["permessage-deflate"]));
        assert!(offered([
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ]));
        assert!(offered([
            "x-webkit-deflate-frame",
            "permessage-deflate; client_max_window_bits=10"
        ]));
        assert!(offered([
            "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=15"
        ]));
        // A smaller server window, unknown or repeated parameters, other
        // extensions: plain frames.
        assert!(!offered(["permessage-deflate; server_max_window_bits=10"]));
        assert!(!offered(["permessage-deflate; mystery"]));
        assert!(!offered(["permessage-deflate; client_max_window_bits=16"]));
        assert!(!offered([
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover"
        ]));
        assert!(!offered(["x-webkit-deflate-frame"]));
        assert!(!offered([""]));
    }

    #[test]
    fn a_message_deflates_alone_and_inflates_back_with_the_tail() {
        let json =
            br#"{"type":"delta","epoch":"e","fromVersion":1,"version":1,"changes":[{"seatId":"A1","status":"HELD"}]}"#
                .repeat(20);
        let wire = compress(&json);
        assert!(wire.len() < json.len() / 5, "{} of {}", wire.len(), json.len());
        assert!(!wire.ends_with(&TAIL));
        // An independent inflater (flate2's reader) reads it back whole.
        let mut framed = wire.clone();
        framed.extend_from_slice(&TAIL);
        let mut back = Vec::new();
        let _ = DeflateDecoder::new(&framed[..]).read_to_end(&mut back);
        assert_eq!(back, json);
        // And our own measures it, fed in any split, message after message.
        let mut inflater = Inflater::default();
        for _ in 0..2 {
            for part in wire.chunks(7) {
                inflater.feed(part, 1 << 20).unwrap();
            }
            assert_eq!(inflater.finish(1 << 20).unwrap(), json.len() as u64);
        }
    }

    #[test]
    fn a_small_message_that_inflates_past_the_limit_is_stopped() {
        let bomb = compress(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 2_000);
        let mut inflater = Inflater::default();
        assert_eq!(inflater.feed(&bomb, 64 * 1024), Err(Inflate::TooBig));
        let mut inflater = Inflater::default();
        assert_eq!(inflater.feed(&[0xff; 16], 64 * 1024), Err(Inflate::Corrupt));
    }
}

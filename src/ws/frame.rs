//! WebSocket frames (RFC 6455) at the byte level, for the seat stream's
//! write path: a frame is encoded once and the same bytes go to every
//! socket. Server frames are never masked; client frames always are.
//!
//! The reader keeps no message: the seat stream acts on control frames only
//! (ping, pong, close), so data frames are skipped as they arrive, counted
//! against the inbound limit (compressed ones by their inflated size).

use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};

use super::deflate::{self, Inflate, Inflater};

const FIN: u8 = 0x80;
/// Set on the first frame of a compressed message (RFC 7692 6).
const RSV1: u8 = 0x40;
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
/// Control frames carry at most this much (RFC 6455 5.5).
const MAX_CONTROL: usize = 125;

fn header(out: &mut BytesMut, first: u8, len: usize) {
    out.put_u8(FIN | first);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    header(&mut out, opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// A complete text frame: header and payload in one buffer.
pub fn text(payload: &[u8]) -> Bytes {
    frame(OP_TEXT, payload)
}

/// A text message for every socket of a show: its plain frame, and its
/// compressed frame (`permessage-deflate`), deflated the first time a
/// socket that negotiated compression needs it and shared from then on.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    plain: Bytes,
    /// Where the payload starts in `plain`.
    head: usize,
    deflated: Arc<OnceLock<Bytes>>,
}

impl Shared {
    pub fn text(payload: &[u8]) -> Self {
        let plain = text(payload);
        Self {
            head: plain.len() - payload.len(),
            plain,
            deflated: Arc::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }

    /// The frame as a socket gets it.
    pub fn for_socket(&self, deflate: bool) -> Bytes {
        if !deflate || self.plain.is_empty() {
            return self.plain.clone();
        }
        self.deflated
            .get_or_init(|| frame(RSV1 | OP_TEXT, &deflate::compress(&self.plain[self.head..])))
            .clone()
    }
}

pub fn ping() -> Bytes {
    frame(OP_PING, &[])
}

pub fn pong(payload: &[u8]) -> Bytes {
    frame(OP_PONG, payload)
}

/// A close frame with a code and a short reason.
pub fn close(code: u16, reason: &str) -> Bytes {
    let reason = &reason.as_bytes()[..reason.len().min(MAX_CONTROL - 2)];
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    frame(OP_CLOSE, &payload)
}

/// What a client sent that the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Anything that shows the peer is alive (a data frame, a pong).
    Alive,
    Ping(Bytes),
    Close,
}

/// Why the reader gave up on the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A message longer than the limit (close with 1009).
    TooBig,
    /// An unmasked frame, a bad opcode or an oversized control frame (1002).
    Protocol,
}

#[derive(Debug)]
enum State {
    /// Reading a header.
    Header,
    /// Skipping a data frame's payload (unmasked and inflated if the
    /// message is compressed; `at` is the offset into the frame's payload).
    Skip {
        left: u64,
        mask: [u8; 4],
        at: usize,
        fin: bool,
    },
    /// Reading a control frame's payload.
    Control(Control),
}

/// A control frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Control {
    opcode: u8,
    mask: [u8; 4],
    len: usize,
}

/// An incremental reader of client frames.
pub struct Reader {
    state: State,
    buf: BytesMut,
    /// Bytes of the current data message so far.
    message: u64,
    limit: u64,
    /// With `permessage-deflate` agreed: measures compressed messages.
    inflater: Option<Box<Inflater>>,
    /// The current data message is compressed.
    compressed: bool,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("state", &self.state)
            .field("message", &self.message)
            .field("deflate", &self.inflater.is_some())
            .finish()
    }
}

impl Reader {
    /// `deflate`: `permessage-deflate` was agreed for this socket.
    pub fn new(limit: usize, deflate: bool) -> Self {
        Self {
            state: State::Header,
            buf: BytesMut::new(),
            message: 0,
            limit: limit as u64,
            inflater: deflate.then(Box::default),
            compressed: false,
        }
    }

    /// Takes bytes read from the socket; answers what they mean, in order.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<Inbound>, Violation> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            at += match self.state {
                State::Skip { left, mask, at, fin } => self.skip(left, mask, at, fin, rest)?,
                State::Control(frame) => self.read_control(frame, rest, &mut out),
                State::Header => self.read_header(rest, &mut out)?,
            };
        }
        Ok(out)
    }

    /// Skips what `input` holds of a data frame's payload (inflating it
    /// to measure, if compressed); answers the bytes used.
    fn skip(&mut self, left: u64, mask: [u8; 4], at: usize, fin: bool, input: &[u8]) -> Result<usize, Violation> {
        let n = left.min(input.len() as u64) as usize;
        if self.compressed
            && let Some(inflater) = self.inflater.as_mut()
        {
            let plain: Vec<u8> = input[..n]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[(at + i) % 4])
                .collect();
            inflater.feed(&plain, self.limit).map_err(violation)?;
        }
        let left = left - n as u64;
        if left == 0 {
            self.state = State::Header;
            if fin {
                self.end_message()?;
            }
        } else {
            self.state = State::Skip {
                left,
                mask,
                at: at + n,
                fin,
            };
        }
        Ok(n)
    }

    /// The last frame of a data message is in: a compressed one is measured whole.
    fn end_message(&mut self) -> Result<(), Violation> {
        self.message = 0;
        if std::mem::take(&mut self.compressed)
            && let Some(inflater) = self.inflater.as_mut()
        {
            inflater.finish(self.limit).map_err(violation)?;
        }
        Ok(())
    }

    /// Reads what `input` holds of a control frame's payload, and the frame
    /// once it is whole; answers the bytes used.
    fn read_control(&mut self, frame: Control, input: &[u8], out: &mut Vec<Inbound>) -> usize {
        let n = (frame.len - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..n]);
        if self.buf.len() == frame.len {
            let payload: Vec<u8> = self
                .buf
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ frame.mask[i % 4])
                .collect();
            self.buf.clear();
            out.push(control(frame.opcode, payload));
            self.state = State::Header;
        }
        n
    }

    /// Reads what `input` holds of a header, and starts its frame once it
    /// is whole; answers the bytes used.
    fn read_header(&mut self, input: &[u8], out: &mut Vec<Inbound>) -> Result<usize, Violation> {
        let before = self.buf.len();
        // The longest header is 14 bytes; take what may be one.
        let take = (14 - before).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        let Some((used, header)) = parse_header(&self.buf)? else {
            return Ok(take);
        };
        self.buf.clear();
        out.extend(self.start_frame(header)?);
        // Bytes taken past the header belong to what follows it.
        Ok(used - before)
    }

    /// Starts the frame a complete header announces: a data frame counts
    /// against the message limit and is skipped; a control frame without a
    /// payload is answered at once.
    fn start_frame(&mut self, (fin, rsv, opcode, masked, len, mask): Header) -> Result<Option<Inbound>, Violation> {
        if !masked {
            return Err(Violation::Protocol);
        }
        // RSV1 marks a compressed message, on its first frame only, and only
        // where compression was agreed; RSV2 and RSV3 mean nothing here.
        let starts = matches!(opcode, OP_TEXT | OP_BINARY);
        if rsv & !RSV1 != 0 || (rsv == RSV1 && !(starts && self.inflater.is_some())) {
            return Err(Violation::Protocol);
        }
        match opcode {
            OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                if starts {
                    self.compressed = rsv == RSV1;
                }
                // On the wire too: a compressed message is never allowed
                // more bytes than an inflated one.
                self.message += len;
                if self.message > self.limit {
                    return Err(Violation::TooBig);
                }
                if len > 0 {
                    self.state = State::Skip {
                        left: len,
                        mask,
                        at: 0,
                        fin,
                    };
                } else if fin {
                    self.end_message()?;
                }
                Ok(Some(Inbound::Alive))
            }
            OP_CLOSE | OP_PING | OP_PONG if fin && len as usize <= MAX_CONTROL => {
                if len == 0 {
                    return Ok(Some(control(opcode, Vec::new())));
                }
                self.state = State::Control(Control {
                    opcode,
                    mask,
                    len: len as usize,
                });
                Ok(None)
            }
            _ => Err(Violation::Protocol),
        }
    }
}

fn control(opcode: u8, payload: Vec<u8>) -> Inbound {
    match opcode {
        OP_PING => Inbound::Ping(Bytes::from(payload)),
        OP_CLOSE => Inbound::Close,
        _ => Inbound::Alive,
    }
}

fn violation(e: Inflate) -> Violation {
    match e {
        Inflate::TooBig => Violation::TooBig,
        Inflate::Corrupt => Violation::Protocol,
    }
}

/// FIN, the RSV bits, opcode, masked, payload length, mask.
type Header = (bool, u8, u8, bool, u64, [u8; 4]);

/// A complete header at the start of `b`, and its length.
fn parse_header(b: &[u8]) -> Result<Option<(usize, Header)>, Violation> {
    if b.len() < 2 {
        return Ok(None);
    }
    let fin = b[0] & FIN != 0;
    let rsv = b[0] & 0x70;
    let opcode = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (len, at) = match b[1] & 0x7F {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap_or_default()), 10),
        126 | 127 => return Ok(None),
        n => (n as u64, 2),
    };
    let used = at + if masked { 4 } else { 0 };
    if b.len() < used {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    if masked {
        mask.copy_from_slice(&b[at..at + 4]);
    }
    Ok(Some((used, (fin, rsv, opcode, masked, len, mask))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![if fin { FIN | opcode } else { opcode }];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn server_frames_carry_the_length_the_way_the_rfc_says() {
        assert_eq!(&text(b"hi")[..], &[0x81, 2, b'h', b'i']);
        let big = text(&vec![b'x'; 300]);
        assert_eq!(&big[..4], &[0x81, 126, 1, 44]);
        assert_eq!(big.len(), 304);
        let huge = text(&vec![b'x'; 70_000]);
        assert_eq!(&huge[..2], &[0x81, 127]);
        assert_eq!(&close(4500, "bye")[..], &[0x88, 5, 0x11, 0x94, b'b', b'y', b'e']);
    }

    #[test]
    fn the_reader_answers_control_frames_and_skips_data_in_any_split() {
        let mut bytes = client(OP_TEXT, true, &vec![b'a'; 1000]);
        bytes.extend(client(OP_PING, true, b"are you there"));
        bytes.extend(client(OP_PONG, true, b""));
        bytes.extend(client(OP_CLOSE, true, &1000u16.to_be_bytes()));
        let want = vec![
            Inbound::Alive,
            Inbound::Ping(Bytes::from_static(b"are you there")),
            Inbound::Alive,
            Inbound::Close,
        ];
        for chunk in [1, 2, 3, 7, 13, 500, bytes.len()] {
            let mut r = Reader::new(64 * 1024, false);
            let mut got = Vec::new();
            for part in bytes.chunks(chunk) {
                got.extend(r.feed(part).unwrap());
            }
            assert_eq!(got, want, "in chunks of {chunk}");
        }
    }

    #[test]
    fn a_message_over_the_limit_and_an_unmasked_frame_are_violations() {
        let mut r = Reader::new(1024, false);
        let mut bytes = client(OP_TEXT, false, &[b'a'; 600]);
        bytes.extend(client(OP_CONTINUATION, true, &[b'a'; 600]));
        assert_eq!(r.feed(&bytes), Err(Violation::TooBig));
        let mut r = Reader::new(1024, false);
        assert_eq!(r.feed(&[0x81, 1, b'x']), Err(Violation::Protocol));
        let mut r = Reader::new(1024, false);
        assert_eq!(r.feed(&client(OP_PING, true, &[0; 126])), Err(Violation::Protocol));
    }

    /// A client's compressed text message in one frame.
    fn deflated(payload: &[u8]) -> Vec<u8> {
        let mut bytes = client(OP_TEXT, true, &deflate::compress(payload));
        bytes[0] |= RSV1;
        bytes
    }

    #[test]
    fn a_shared_frame_is_deflated_once_with_rsv1_and_inflates_back() {
        let json = br#"{"type":"delta","changes":[{"seatId":"A1","status":"HELD"}]}"#.repeat(10);
        let shared = Shared::text(&json);
        assert_eq!(shared.for_socket(false), text(&json));
        let once = shared.for_socket(true);
        // The same bytes for the next socket, not a second compression.
        assert_eq!(once.as_ptr(), shared.clone().for_socket(true).as_ptr());
        assert_eq!(once[0], FIN | RSV1 | OP_TEXT);
        let (used, (_, _, _, masked, len, _)) = parse_header(&once).unwrap().unwrap();
        assert!(!masked);
        assert_eq!(len as usize, once.len() - used);
        let mut inflater = Inflater::default();
        inflater.feed(&once[used..], 1 << 20).unwrap();
        assert_eq!(inflater.finish(1 << 20).unwrap(), json.len() as u64);
        assert!(Shared::default().for_socket(true).is_empty());
    }

    #[test]
    fn compressed_messages_are_read_in_any_split_where_compression_was_agreed() {
        let mut bytes = deflated(&vec![b'a'; 5_000]);
        bytes.extend(client(OP_PING, true, b"hi"));
        bytes.extend(deflated(b"{}"));
        let want = vec![Inbound::Alive, Inbound::Ping(Bytes::from_static(b"hi")), Inbound::Alive];
        for chunk in [1, 3, 11, bytes.len()] {
            let mut r = Reader::new(64 * 1024, true);
            let mut got = Vec::new();
            for part in bytes.chunks(chunk) {
                got.extend(r.feed(part).unwrap());
            }
            assert_eq!(got, want, "in chunks of {chunk}");
        }
        // Without the extension agreed, RSV1 is a protocol error.
        assert_eq!(Reader::new(64 * 1024, false).feed(&bytes), Err(Violation::Protocol));
    }

    #[test]
    fn the_limit_counts_inflated_bytes_and_stray_rsv_bits_are_refused() {
        // 1 MiB of one letter deflates to about a kilobyte.
        let bomb = deflated(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 2_000);
        assert_eq!(Reader::new(64 * 1024, true).feed(&bomb), Err(Violation::TooBig));
        // RSV1 on a continuation or a control frame, RSV2 anywhere.
        let mut cont = client(OP_TEXT, false, b"a");
        let mut second = client(OP_CONTINUATION, true, b"b");
        second[0] |= RSV1;
        cont.extend(second);
        assert_eq!(Reader::new(1024, true).feed(&cont), Err(Violation::Protocol));
        let mut ping = client(OP_PING, true, b"");
        ping[0] |= RSV1;
        assert_eq!(Reader::new(1024, true).feed(&ping), Err(Violation::Protocol));
        let mut rsv2 = client(OP_TEXT, true, b"x");
        rsv2[0] |= 0x20;
        assert_eq!(Reader::new(1024, true).feed(&rsv2), Err(Violation::Protocol));
        // Garbage flagged as compressed.
        let mut junk = client(OP_TEXT, true, &[0xff; 32]);
        junk[0] |= RSV1;
        assert_eq!(Reader::new(1024, true).feed(&junk), Err(Violation::Protocol));
    }
}

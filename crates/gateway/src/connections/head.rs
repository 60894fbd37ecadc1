//! Reading one HTTP/1 request head before Pingora sees the connection, and deciding where it
//! ends exactly as Pingora's parser will.
//!
//! Pingora 0.9.1 (`protocols::http::v1::server::HttpSession::read_request`) runs `httparse`
//! (256 header slots) on what it has read: complete, it parses the head; partial, it reads
//! more; `Token` or `Version` errors, it percent-escapes the request target once (a regex on
//! the request line) and parses again; any other error is `400` at once. [`HeadScanner`] asks
//! the same questions, so a head this reader hands over is one Pingora parses without reading
//! again, and a head Pingora would refuse is handed over (and refused with `400`) as soon as
//! it is known to be bad, instead of waiting for `server.header_timeout`.

use std::future::Future;
use std::task::Poll;

use bytes::BytesMut;
use once_cell::sync::Lazy;
use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
use pingora::protocols::Stream;
use regex::bytes::Regex;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::waits::{ConnectionWaits, Woken};
use super::Limits;

/// A request head larger than this is answered `431` and the connection closed. The proxy's
/// own limit (32 KiB, `431`) applies to heads under it.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Pingora's header slots (`v1::common::MAX_HEADERS`): a head with more fields is `400`.
const MAX_HEADERS: usize = 256;

/// What the bytes read so far are, to Pingora's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A whole head: Pingora parses it without reading.
    Complete,
    /// Not yet a whole head, nothing wrong so far: Pingora would read more.
    Partial,
    /// Pingora refuses it (`400`) without reading more.
    Invalid,
    /// Holds the empty CRLF line that ends a head: Pingora parses it or refuses it without
    /// reading more (which one is Pingora's to say).
    Ended,
}

/// Pingora's request-line rewrite for targets `httparse` refuses (`v1/server.rs`,
/// `REQUEST_LINE_REGEX` and `URI_ESC_CHARSET`), copied so the verdict is the same.
static REQUEST_LINE: Lazy<Option<Regex>> =
    Lazy::new(|| Regex::new(r"^\w+ (?P<uri>.+) HTTP/\d(?:\.\d)?").ok());
const URI_ESCAPE: &AsciiSet = &CONTROLS.add(b' ').add(b'<').add(b'>').add(b'"');

/// The head with its request target percent-escaped, or `None` when Pingora would not
/// rewrite it (no request line it recognizes, or nothing to escape).
fn escape_request_line(buf: &[u8]) -> Option<Vec<u8>> {
    let captures = REQUEST_LINE.as_ref()?.captures(buf)?;
    let uri = captures.name("uri")?;
    let mut escaped = Vec::with_capacity(buf.len() + 32);
    escaped.extend_from_slice(&buf[..uri.start()]);
    for piece in percent_encode(uri.as_bytes(), URI_ESCAPE) {
        escaped.extend_from_slice(piece.as_bytes());
    }
    if escaped.len() == uri.end() {
        return None;
    }
    escaped.extend_from_slice(&buf[uri.end()..]);
    Some(escaped)
}

fn parse(buf: &[u8]) -> Result<httparse::Status<usize>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    httparse::Request::new(&mut headers).parse(buf)
}

/// Pingora's verdict on the whole buffer `buf`, parsing from `start` (past the empty lines
/// that may precede the request line, which `httparse` skips the same way).
fn verdict(buf: &[u8], start: usize) -> Verdict {
    match parse(&buf[start..]) {
        Ok(httparse::Status::Complete(_)) => Verdict::Complete,
        Ok(httparse::Status::Partial) => Verdict::Partial,
        Err(httparse::Error::Token | httparse::Error::Version) => {
            // Pingora escapes the whole buffer (so leading empty lines defeat the `^` of its
            // regex) and parses once more; a second failure is final.
            match escape_request_line(buf).map(|escaped| parse(&escaped)) {
                Some(Ok(httparse::Status::Complete(_))) => Verdict::Complete,
                Some(Ok(httparse::Status::Partial)) => Verdict::Partial,
                Some(Err(_)) | None => Verdict::Invalid,
            }
        }
        Err(_) => Verdict::Invalid,
    }
}

/// Follows a head across reads. The buffer is parsed only when a read brings a CR or LF: a
/// `Complete` needs the empty line, and a malformed line is known at its end at the latest.
/// With Pingora's 256 header slots that bounds the parses per head (a few per line),
/// however the client splits it; empty lines before the request line are stepped over once.
#[derive(Debug, Default)]
pub(super) struct HeadScanner {
    /// How far earlier calls looked.
    scanned: usize,
    /// Where the request line starts: past `\r\n` and `\n` lines before it.
    start: usize,
}

impl HeadScanner {
    pub(super) fn check(&mut self, buf: &[u8]) -> Verdict {
        self.scan(buf, true)
    }

    /// `end_at_crlf_line`: take the empty CRLF line's shortcut ([`Verdict::Ended`]); the
    /// tests turn it off to check the parse it stands for.
    fn scan(&mut self, buf: &[u8], end_at_crlf_line: bool) -> Verdict {
        let from = self.scanned.min(buf.len());
        // From the last byte of the previous read: a CR there is judged by the byte after it.
        let line_end = buf[from.saturating_sub(1)..]
            .iter()
            .any(|&b| b == b'\r' || b == b'\n');
        self.scanned = buf.len();
        loop {
            match buf.get(self.start..self.start + 2) {
                Some([b'\n', _]) => self.start += 1,
                Some(b"\r\n") => self.start += 2,
                _ if buf.get(self.start..) == Some(b"\n") => self.start += 1,
                _ => break,
            }
        }
        if !line_end || self.start >= buf.len() || buf[self.start..] == *b"\r" {
            return Verdict::Partial;
        }
        // The usual head: past its request line, an empty CRLF line ends it. From there
        // Pingora's parser can only finish or fail, never ask for more, so the head is handed
        // over without parsing it here; only heads without it (partial, bare LF) are parsed.
        if end_at_crlf_line && memchr::memmem::find(&buf[self.start..], b"\r\n\r\n").is_some() {
            return Verdict::Ended;
        }
        verdict(buf, self.start)
    }
}

/// How reading a request head ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head {
    /// A whole head (and whatever followed it in the same reads), or bytes Pingora refuses
    /// with `400`: either way, Pingora's to parse.
    Complete(BytesMut),
    /// The client closed the connection, or it broke.
    Closed,
    /// No complete head in time; `partial` when some of it had arrived.
    TimedOut {
        partial: bool,
    },
    TooLarge,
    /// The server is stopping and the connection was idle.
    ShuttingDown,
}

/// What a read of the head gave.
enum Event {
    Read(std::io::Result<usize>),
    Woken(Woken),
}

/// Reads one request head from `stream`. A new connection (`new_connection`, its `waits`
/// made with its arrival plus `header_timeout`) has until then for the whole head; a
/// kept-alive one waits up to `idle_timeout` for the first byte of the next request, then has
/// `header_timeout` for the rest.
pub(super) async fn read_head(
    stream: &mut Stream,
    new_connection: bool,
    waits: &mut ConnectionWaits,
    limits: &Limits,
) -> Head {
    if !new_connection && waits.stopping_now() {
        return Head::ShuttingDown;
    }
    let mut buf = BytesMut::new();
    let mut scanner = HeadScanner::default();
    if !new_connection {
        waits.set_deadline(Instant::now() + limits.idle_timeout);
    }
    let mut started = new_connection;
    loop {
        if buf.capacity() - buf.len() < 256 {
            // Most heads fit in 1 KiB; a bigger one doubles the buffer.
            buf.reserve(buf.len().max(1024));
        }
        let idle = buf.is_empty() && !new_connection;
        let event = {
            let mut read = std::pin::pin!(stream.read_buf(&mut buf));
            // The read first: bytes that are there are taken before any deadline is looked at.
            std::future::poll_fn(|cx| {
                if let Poll::Ready(read) = read.as_mut().poll(cx) {
                    return Poll::Ready(Event::Read(read));
                }
                if idle && waits.shutting_down(cx) {
                    return Poll::Ready(Event::Woken(Woken::Shutdown));
                }
                waits.poll_deadline(cx).map(Event::Woken)
            })
            .await
        };
        match event {
            Event::Woken(Woken::Shutdown) => return Head::ShuttingDown,
            Event::Woken(Woken::Deadline) => {
                return Head::TimedOut {
                    partial: !buf.is_empty(),
                }
            }
            Event::Read(Err(_) | Ok(0)) => return Head::Closed,
            Event::Read(Ok(_)) => {}
        }
        if !started {
            started = true;
            waits.set_deadline(Instant::now() + limits.header_timeout);
        }
        match scanner.check(&buf) {
            Verdict::Complete | Verdict::Invalid | Verdict::Ended => return Head::Complete(buf),
            Verdict::Partial if buf.len() > MAX_HEAD_BYTES => return Head::TooLarge,
            Verdict::Partial => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pingora's verdict, by parsing (no shortcut).
    fn whole(bytes: &[u8]) -> Verdict {
        HeadScanner::default().scan(bytes, false)
    }

    /// Every head the tests below judge, and some more.
    const HEADS: [&[u8]; 16] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\n\r\nbody",
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"\r\n\r\n\r\n",
        b"GET / HTTP/1.1\rHost: x\r\r",
        b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
        b"\r\rGET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\"q\" HTTP/1.1\r\n\r\n",
        b"\r\nGET /a b HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n \r\n\r\n",
    ];

    #[test]
    fn the_crlf_line_shortcut_hands_over_exactly_when_the_parse_would() {
        // Ended stands for Complete or Invalid: both hand the head to Pingora at once.
        for head in HEADS {
            for end in 1..=head.len() {
                let (mut fast, mut slow) = (HeadScanner::default(), HeadScanner::default());
                for step in 1..=end {
                    let (f, s) = (fast.check(&head[..step]), slow.scan(&head[..step], false));
                    assert_eq!(
                        f == Verdict::Partial,
                        s == Verdict::Partial,
                        "{:?}: shortcut {f:?}, parse {s:?}",
                        String::from_utf8_lossy(&head[..step])
                    );
                    if f != Verdict::Partial {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn a_head_is_complete_at_the_empty_line() {
        assert_eq!(
            whole(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Verdict::Complete
        );
        assert_eq!(whole(b"GET / HTTP/1.1\nHost: x\n\n"), Verdict::Complete);
        assert_eq!(whole(b"GET / HTTP/1.1\r\n\r\nbody"), Verdict::Complete);
        assert_eq!(
            whole(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Verdict::Complete
        );
        assert_eq!(whole(b"GET / HTTP/1.1\r\nHost: x\r\n"), Verdict::Partial);
        assert_eq!(whole(b"\r\n\r\n\r\n"), Verdict::Partial);
        assert_eq!(whole(b""), Verdict::Partial);
        assert_eq!(whole(b"\r\n\r\nGET / HTTP/1.1\r\n"), Verdict::Partial);
        assert_eq!(whole(b"GET / HTTP/1.1\r"), Verdict::Partial);
    }

    #[test]
    fn bare_cr_line_endings_are_refused_at_once() {
        assert_eq!(whole(b"GET / HTTP/1.1\rHost: x\r\r"), Verdict::Invalid);
        assert_eq!(whole(b"GET / HTTP/1.1\rHost: x"), Verdict::Invalid);
        assert_eq!(
            whole(b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n"),
            Verdict::Invalid
        );
        assert_eq!(whole(b"\r\rGET / HTTP/1.1\r\n\r\n"), Verdict::Invalid);
    }

    #[test]
    fn a_bare_cr_is_judged_when_the_next_byte_comes() {
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.check(b"GET / HTTP/1.1\r"), Verdict::Partial);
        assert_eq!(scanner.check(b"GET / HTTP/1.1\rH"), Verdict::Invalid);
    }

    #[test]
    fn other_malformed_heads_are_refused_at_once() {
        // A field line without a colon, and more fields than Pingora has slots for.
        assert_eq!(whole(b"GET / HTTP/1.1\r\nno colon\r\n"), Verdict::Invalid);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        assert_eq!(whole(&many), Verdict::Invalid);
        // A method Pingora's rewrite does not recognize.
        assert_eq!(whole(b"G\x01T / HTTP/1.1\r\n"), Verdict::Invalid);
    }

    #[test]
    fn targets_pingora_escapes_wait_for_the_rest_of_the_head() {
        // httparse refuses the space and the quote in the target; Pingora escapes them and
        // parses the head, so it must be read whole first.
        assert_eq!(whole(b"GET /a b HTTP/1.1\r\nHost: x\r\n"), Verdict::Partial);
        assert_eq!(
            whole(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
            Verdict::Complete
        );
        assert_eq!(whole(b"GET /\"q\" HTTP/1.1\r\n\r\n"), Verdict::Complete);
        // ...unless empty lines come first: Pingora's rewrite does not apply then.
        assert_eq!(whole(b"\r\nGET /a b HTTP/1.1\r\n\r\n"), Verdict::Invalid);
    }

    #[test]
    fn the_verdict_is_the_same_however_the_head_is_split() {
        let heads: [&[u8]; 4] = [
            b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nbody",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\rHost: x\r\r",
            b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        for head in heads {
            let expected = whole(head);
            for split in 1..head.len() {
                let mut scanner = HeadScanner::default();
                let first = scanner.scan(&head[..split], false);
                let second = scanner.scan(head, false);
                if first == Verdict::Partial {
                    assert_eq!(second, expected, "{head:?} split at {split}");
                } else {
                    assert_eq!(first, expected, "{head:?} split at {split}");
                }
            }
        }
    }
}

//! The load generator's HTTP/1.1 client: one request at a time on a keep-alive
//! connection, the request written from prepared bytes and the response head parsed in
//! place (httparse) and handed to the caller as borrowed header lines, so checking every
//! response for leaks costs no allocation, and no connection task has to be woken. The
//! probe, which needs whole header maps anyway, keeps using hyper.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{RequestError, Stream};

/// Initial read buffer; grows up to [`MAX_HEAD`] for a large response head.
const BUFFER: usize = 16 * 1024;
const MAX_HEAD: usize = 256 * 1024;
const MAX_HEADERS: usize = 128;

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

pub(crate) struct H1Connection {
    stream: Stream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    reusable: bool,
    answered: u64,
}

impl H1Connection {
    pub fn new(stream: Stream) -> Self {
        H1Connection {
            stream,
            buf: vec![0; BUFFER],
            pos: 0,
            end: 0,
            reusable: true,
            answered: 0,
        }
    }

    /// Whether another request may go out (the last response was complete and did not
    /// say `Connection: close`).
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Responses completed on this connection.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// Writes `request` (a complete HTTP/1.1 request head), reads the response head and
    /// passes its status and header lines to `inspect`, then reads past the body.
    pub async fn exchange<R>(
        &mut self,
        request: &[u8],
        is_head: bool,
        inspect: impl FnOnce(u16, &[httparse::Header<'_>]) -> R,
    ) -> Result<R, RequestError> {
        if !self.reusable {
            return Err(RequestError::Closed);
        }
        self.reusable = false;
        let send = |err: std::io::Error| RequestError::Send(err.to_string());
        self.stream.write_all(request).await.map_err(send)?;
        self.stream.flush().await.map_err(send)?;

        let mut inspect = Some(inspect);
        let mut seen_bytes = false;
        let (result, framing, close) = loop {
            if self.end > self.pos {
                seen_bytes = true;
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf[self.pos..self.end]) {
                    Ok(httparse::Status::Complete(length)) => {
                        let status = response.code.unwrap_or(0);
                        if (100..200).contains(&status) && status != 101 {
                            // An interim answer (100 Continue, 103 Early Hints).
                            self.pos += length;
                            continue;
                        }
                        let (framing, close) =
                            framing_of(status, is_head, response.version, response.headers)?;
                        let Some(inspect) = inspect.take() else {
                            return Err(RequestError::Receive("response inspected twice".into()));
                        };
                        let result = inspect(status, response.headers);
                        self.pos += length;
                        break (result, framing, close);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(err) => {
                        return Err(RequestError::Receive(format!(
                            "malformed response head: {err}"
                        )))
                    }
                }
            }
            if self.read_more().await? == 0 {
                return Err(if seen_bytes {
                    RequestError::Receive("the connection closed inside the response head".into())
                } else {
                    RequestError::Closed
                });
            }
        };
        match framing {
            Framing::Empty => {}
            Framing::Length(length) => self.skip(length).await?,
            Framing::Chunked => self.skip_chunked().await?,
            Framing::UntilClose => {
                loop {
                    self.pos = self.end;
                    if self.read_more().await? == 0 {
                        break;
                    }
                }
                self.answered += 1;
                return Ok(result);
            }
        }
        self.answered += 1;
        self.reusable = !close;
        Ok(result)
    }

    /// Reads into the free end of the buffer; returns 0 at end of stream.
    async fn read_more(&mut self) -> Result<usize, RequestError> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            } else if self.buf.len() < MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(RequestError::Receive(format!(
                    "a response head or chunk line longer than {MAX_HEAD} bytes"
                )));
            }
        }
        let read = self
            .stream
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|err| RequestError::Receive(err.to_string()))?;
        self.end += read;
        Ok(read)
    }

    /// Consumes exactly `length` body bytes.
    async fn skip(&mut self, mut length: u64) -> Result<(), RequestError> {
        loop {
            let buffered = (self.end - self.pos) as u64;
            let take = buffered.min(length);
            // `take` is at most the buffered count, which is a usize.
            self.pos += usize::try_from(take).unwrap_or(0);
            length -= take;
            if length == 0 {
                return Ok(());
            }
            if self.read_more().await? == 0 {
                return Err(RequestError::Receive(
                    "the connection closed inside the response body".into(),
                ));
            }
        }
    }

    /// Consumes a chunked body and its trailer section.
    async fn skip_chunked(&mut self) -> Result<(), RequestError> {
        loop {
            match httparse::parse_chunk_size(&self.buf[self.pos..self.end]) {
                Ok(httparse::Status::Complete((consumed, 0))) => {
                    self.pos += consumed;
                    return self.skip_trailers().await;
                }
                Ok(httparse::Status::Complete((consumed, size))) => {
                    self.pos += consumed;
                    // The chunk, then its CRLF.
                    self.skip(size.saturating_add(2)).await?;
                    continue;
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Err(RequestError::Receive("malformed chunk size".into())),
            }
            if self.read_more().await? == 0 {
                return Err(RequestError::Receive(
                    "the connection closed inside a chunked body".into(),
                ));
            }
        }
    }

    async fn skip_trailers(&mut self) -> Result<(), RequestError> {
        loop {
            let unread = &self.buf[self.pos..self.end];
            if let Some(at) = unread.windows(2).position(|pair| pair == b"\r\n") {
                self.pos += at + 2;
                if at == 0 {
                    return Ok(());
                }
                continue;
            }
            if self.read_more().await? == 0 {
                return Err(RequestError::Receive(
                    "the connection closed inside the trailers".into(),
                ));
            }
        }
    }
}

fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case(name))
        .flat_map(|header| header.value.split(|byte| *byte == b','))
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The body's framing and whether the connection closes after it.
fn framing_of(
    status: u16,
    is_head: bool,
    version: Option<u8>,
    headers: &[httparse::Header<'_>],
) -> Result<(Framing, bool), RequestError> {
    let close = has_token(headers, "connection", "close")
        || (version == Some(0) && !has_token(headers, "connection", "keep-alive"));
    if is_head || status == 204 || status == 304 {
        return Ok((Framing::Empty, close));
    }
    let codings: Vec<&[u8]> = headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|header| header.value.split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        return Ok(if last.eq_ignore_ascii_case(b"chunked") {
            (Framing::Chunked, close)
        } else {
            (Framing::UntilClose, true)
        });
    }
    let mut length = None;
    for header in headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("content-length"))
    {
        for item in header.value.split(|byte| *byte == b',') {
            let value = std::str::from_utf8(item.trim_ascii())
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| RequestError::Receive("invalid Content-Length".into()))?;
            if length.is_some_and(|seen| seen != value) {
                return Err(RequestError::Receive(
                    "conflicting Content-Length values".into(),
                ));
            }
            length = Some(value);
        }
    }
    Ok(match length {
        Some(length) => (Framing::Length(length), close),
        None => (Framing::UntilClose, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(lines: &[(&'static str, &'static [u8])]) -> Vec<httparse::Header<'static>> {
        lines
            .iter()
            .map(|(name, value)| httparse::Header { name, value })
            .collect()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let length = head(&[("Content-Length", b"12")]);
        assert_eq!(
            framing_of(200, false, Some(1), &length).expect("valid"),
            (Framing::Length(12), false)
        );
        assert_eq!(
            framing_of(200, true, Some(1), &length).expect("valid").0,
            Framing::Empty
        );
        assert_eq!(
            framing_of(304, false, Some(1), &length).expect("valid").0,
            Framing::Empty
        );
        let chunked = head(&[
            ("Transfer-Encoding", b"gzip, chunked"),
            ("Content-Length", b"3"),
        ]);
        assert_eq!(
            framing_of(200, false, Some(1), &chunked).expect("valid").0,
            Framing::Chunked
        );
        let close = head(&[("Connection", b"keep-alive, Close")]);
        assert_eq!(
            framing_of(200, false, Some(1), &close).expect("valid"),
            (Framing::UntilClose, true)
        );
        let http10 = head(&[("Content-Length", b"0")]);
        assert!(framing_of(200, false, Some(0), &http10).expect("valid").1);
        let conflicting = head(&[("Content-Length", b"1"), ("Content-Length", b"2")]);
        assert!(framing_of(200, false, Some(1), &conflicting).is_err());
        let bad = head(&[("Content-Length", b"-1")]);
        assert!(framing_of(200, false, Some(1), &bad).is_err());
    }
}

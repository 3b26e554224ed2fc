//! Request targets as ksqlDB's server takes them: clients paste a command id such as
//! ``stream/`ORDERS`/create`` into `GET /status/…` unencoded, which ksqlDB's HTTP server
//! accepts and hyper's URI parser refuses with 400. [`RawTargets`] sits between the
//! connection and hyper and percent-encodes the backticks of each HTTP/1 request line
//! (`` ` `` → `%60`, which the router decodes back), leaving every other byte as it came.
//!
//! To know where each request line starts, it follows HTTP/1 framing on the way in:
//! headers up to the empty line, then a `Content-Length` body or a chunked one, then the
//! next request. An HTTP/2 connection (its preface, or `h2` chosen over TLS) and a
//! connection that upgrades to another protocol are passed through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Where the reader is in the HTTP/1 byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    /// The first bytes of the connection, until they tell HTTP/1 from HTTP/2.
    Start,
    /// In a request line.
    RequestLine,
    /// In the header lines (the current one kept to read the framing headers).
    Headers,
    /// In a body with this many bytes left.
    Body(u64),
    /// In a chunk-size line.
    ChunkSize,
    /// In a chunk with this many bytes left, then its CRLF.
    ChunkData(u64),
    /// In the trailer lines after the last chunk.
    Trailers,
    /// Not HTTP/1 any more (HTTP/2, or an upgraded connection): bytes pass as they are.
    Opaque,
}

/// A connection whose HTTP/1 request lines may carry raw backticks.
pub(crate) struct RawTargets<S> {
    inner: S,
    framing: Framing,
    /// The current header, chunk-size or first line, while it is read.
    line: Vec<u8>,
    /// Of the current request's headers.
    content_length: u64,
    chunked: bool,
    upgrade: bool,
    /// Bytes rewritten but not yet handed to the reader.
    pending: Vec<u8>,
    /// How much of `pending` was handed over.
    handed: usize,
    /// The buffer reads from the connection go to, kept between reads.
    scratch: Vec<u8>,
}

impl<S> RawTargets<S> {
    /// Wraps a connection; `opaque` for one known not to speak HTTP/1 (h2 over TLS).
    pub(crate) fn new(inner: S, opaque: bool) -> Self {
        Self {
            inner,
            framing: if opaque {
                Framing::Opaque
            } else {
                Framing::Start
            },
            line: Vec::new(),
            content_length: 0,
            chunked: false,
            upgrade: false,
            pending: Vec::new(),
            handed: 0,
            scratch: Vec::new(),
        }
    }

    /// Rewrites `input` into `pending`, following the framing.
    fn rewrite(&mut self, input: &[u8]) {
        let mut i = 0;
        while i < input.len() {
            match self.framing.clone() {
                Framing::Opaque => {
                    self.pending.extend_from_slice(&input[i..]);
                    return;
                }
                Framing::Start => {
                    // Hold the first bytes until they show whether this is HTTP/2.
                    self.line.push(input[i]);
                    i += 1;
                    let seen = self.line.len().min(H2_PREFACE.len());
                    if self.line[..seen] != H2_PREFACE[..seen] {
                        let held = std::mem::take(&mut self.line);
                        self.framing = Framing::RequestLine;
                        self.rewrite(&held);
                    } else if self.line.len() == H2_PREFACE.len() {
                        self.pending.append(&mut self.line);
                        self.framing = Framing::Opaque;
                    }
                }
                Framing::RequestLine => {
                    let b = input[i];
                    i += 1;
                    if b == b'`' {
                        self.pending.extend_from_slice(b"%60");
                    } else {
                        self.pending.push(b);
                    }
                    if b == b'\n' {
                        self.content_length = 0;
                        self.chunked = false;
                        self.upgrade = false;
                        self.framing = Framing::Headers;
                    }
                }
                Framing::Headers | Framing::Trailers | Framing::ChunkSize => {
                    let b = input[i];
                    i += 1;
                    self.pending.push(b);
                    if b != b'\n' {
                        self.line.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches('\r');
                    self.framing = match self.framing {
                        Framing::Headers => self.after_header_line(line),
                        Framing::Trailers if line.is_empty() => Framing::RequestLine,
                        Framing::Trailers => Framing::Trailers,
                        _ => {
                            let size = line.split(';').next().unwrap_or("").trim();
                            match u64::from_str_radix(size, 16) {
                                Ok(0) => Framing::Trailers,
                                // The chunk, then its CRLF.
                                Ok(n) => Framing::ChunkData(n.saturating_add(2)),
                                // Malformed: hyper will refuse it; stop interpreting.
                                Err(_) => Framing::Opaque,
                            }
                        }
                    };
                }
                Framing::Body(left) | Framing::ChunkData(left) => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.pending.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.framing = match (&self.framing, left) {
                        (Framing::Body(_), 0) => Framing::RequestLine,
                        (Framing::ChunkData(_), 0) => Framing::ChunkSize,
                        (Framing::Body(_), n) => Framing::Body(n),
                        (_, n) => Framing::ChunkData(n),
                    };
                }
            }
        }
    }

    /// The framing after one header line (the empty one ends the headers).
    fn after_header_line(&mut self, line: &str) -> Framing {
        if line.is_empty() {
            return if self.upgrade {
                Framing::Opaque
            } else if self.chunked {
                Framing::ChunkSize
            } else if self.content_length > 0 {
                Framing::Body(self.content_length)
            } else {
                Framing::RequestLine
            };
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => match value.parse() {
                    Ok(n) => self.content_length = n,
                    Err(_) => return Framing::Opaque,
                },
                "transfer-encoding" => {
                    self.chunked = value.to_ascii_lowercase().contains("chunked");
                }
                "upgrade" => self.upgrade = true,
                _ => {}
            }
        }
        Framing::Headers
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RawTargets<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.framing == Framing::Opaque && this.handed == this.pending.len() {
            // HTTP/2 and upgraded connections: no copy.
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.handed == this.pending.len() {
            this.pending.clear();
            this.handed = 0;
            let mut raw = std::mem::take(&mut this.scratch);
            raw.resize(buf.remaining().clamp(1, 64 * 1024), 0);
            let mut read = ReadBuf::new(&mut raw);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let filled = read.filled().len();
            if !matches!(polled, Poll::Ready(Ok(()))) {
                this.scratch = raw;
                return polled;
            }
            if filled == 0 {
                // End of the connection: a first line held back goes out as it was.
                if this.framing == Framing::Start {
                    this.pending = std::mem::take(&mut this.line);
                }
                if this.pending.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            } else {
                // Bytes held back (the start of a first line) give nothing yet: read on.
                this.rewrite(&raw[..filled]);
            }
            this.scratch = raw;
        }
        let n = buf.remaining().min(this.pending.len() - this.handed);
        buf.put_slice(&this.pending[this.handed..this.handed + n]);
        this.handed += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RawTargets<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes hyper sees for `input` fed in pieces of `piece` bytes.
    fn rewritten(input: &[u8], piece: usize) -> Vec<u8> {
        let mut conn = RawTargets::new((), false);
        for chunk in input.chunks(piece) {
            conn.rewrite(chunk);
        }
        conn.pending
    }

    #[test]
    fn backticks_of_request_lines_only_are_encoded() {
        let input: &[u8] = b"GET /status/stream/`ORDERS`/create HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /ksql HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"k\":\"`a`\"}\
            POST /ksql HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n`b`\r\n0\r\n\r\n\
            GET /status/`X` HTTP/1.1\r\n\r\n";
        let expected: &[u8] = b"GET /status/stream/%60ORDERS%60/create HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /ksql HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"k\":\"`a`\"}\
            POST /ksql HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n`b`\r\n0\r\n\r\n\
            GET /status/%60X%60 HTTP/1.1\r\n\r\n";
        for piece in [1, 2, 7, input.len()] {
            assert_eq!(
                String::from_utf8_lossy(&rewritten(input, piece)),
                String::from_utf8_lossy(expected),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn http2_and_upgraded_connections_pass_untouched() {
        let h2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`binary`";
        assert_eq!(rewritten(h2, 3), h2);
        let upgraded: &[u8] = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n`frames`";
        assert_eq!(rewritten(upgraded, 5), upgraded);
    }
}

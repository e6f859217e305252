//! The request head, read and checked strictly before hyper sees the connection.
//!
//! hyper decodes bodies (chunked, `Expect: 100-continue`) and writes responses; this
//! module reads the request line and headers first, bounded in bytes and time, and
//! refuses whatever is ambiguous or unsupported with the API's own status codes: a
//! version other than HTTP/1.0 or 1.1 (505), a malformed line (400), too many or too
//! large headers (431), and every ambiguous body framing (400): two `Content-Length`
//! headers, a length that is not plain digits (`+5`), `Content-Length` together with
//! `Transfer-Encoding`, two `Transfer-Encoding` headers. A transfer coding other than
//! `chunked` is 501. What was read is replayed to hyper ([`Replay`]), which parses the
//! same head again; the routing uses the head parsed here.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Bounds for one request head.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLimits {
    /// Request line plus headers, in bytes.
    pub(crate) max_bytes: usize,
    /// Number of header lines.
    pub(crate) max_headers: usize,
    /// Time to receive the whole head.
    pub(crate) timeout: Duration,
}

/// A parsed request head.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first header named `name` (case-insensitive), trimmed.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the headers named `name`.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of query parameter `name` (no percent-decoding: the API needs none).
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// An answer decided without hyper: status and plain-text message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refuse(pub(crate) u16, pub(crate) String);

/// Why a head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// Closed, reset, or silent before a whole head: nothing to answer.
    Gone,
    /// Answer this, then close.
    Respond(Refuse),
}

/// Reads the head (up to and including the blank line) from `stream`; returns it parsed
/// and every byte read so far (the head and whatever followed), for [`Replay`].
pub(crate) async fn read_head(
    stream: &mut TcpStream,
    limits: HeadLimits,
) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                return Ok(end);
            }
            if buf.len() > limits.max_bytes {
                return Err(HeadError::Respond(Refuse(
                    431,
                    "request header fields too large".into(),
                )));
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(HeadError::Gone),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let end = match tokio::time::timeout(limits.timeout, read).await {
        Ok(result) => result?,
        // A client silent from the start gets no answer; one that stalled mid-head does.
        Err(_) if buf.is_empty() => return Err(HeadError::Gone),
        Err(_) => {
            return Err(HeadError::Respond(Refuse(408, "request timed out".into())));
        }
    };
    if end > limits.max_bytes {
        return Err(HeadError::Respond(Refuse(
            431,
            "request header fields too large".into(),
        )));
    }
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| HeadError::Respond(bad("request head is not UTF-8")))?;
    let req = parse_head(head, limits.max_headers).map_err(HeadError::Respond)?;
    Ok((req, buf))
}

/// How the body is framed, once [`body_framing`] found it unambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The body framing of `req`, refusing anything ambiguous; a length over `max` is 413 at
/// once, before any of the body is read.
pub(crate) fn body_framing(req: &Request, max: usize) -> Result<Framing, Refuse> {
    let lengths = req.all("content-length");
    let encodings = req.all("transfer-encoding");
    match (lengths.as_slice(), encodings.as_slice()) {
        ([], []) => Err(Refuse(411, "Content-Length required".into())),
        ([_, ..], [_, ..]) => Err(bad("both Content-Length and Transfer-Encoding given")),
        ([_, _, ..], []) => Err(bad("more than one Content-Length header")),
        ([], [_, _, ..]) => Err(bad("more than one Transfer-Encoding header")),
        ([], [te]) if te.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        ([], [te]) => Err(Refuse(
            501,
            format!("transfer encoding {te:?} is not supported"),
        )),
        ([length], []) => {
            // Digits only: `+5`, `5,5`, `0x5` and the like are ambiguous between parsers.
            if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("bad Content-Length"));
            }
            let len: usize = length.parse().map_err(|_| too_large(max))?;
            if len > max {
                return Err(too_large(max));
            }
            Ok(Framing::Length(len))
        }
    }
}

pub(crate) fn too_large(max: usize) -> Refuse {
    Refuse(
        413,
        format!("request body exceeds the limit of {max} bytes"),
    )
}

fn bad(message: &str) -> Refuse {
    Refuse(400, message.to_owned())
}

fn parse_head(head: &str, max_headers: usize) -> Result<Request, Refuse> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(Refuse(
            505,
            format!("{version:?} is not supported; use HTTP/1.1"),
        ));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("malformed method"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("request target must be an absolute path"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == max_headers {
            return Err(Refuse(431, "too many header fields".into()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header line"))?;
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(bad("malformed header name"));
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad("malformed header value"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers,
    })
}

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The reason phrase of the status codes the API uses.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a complete plain-text response (with extra headers) and closes gracefully:
/// for answers given before hyper takes the connection.
pub(crate) async fn respond_and_close(
    mut stream: TcpStream,
    status: u16,
    message: &str,
    headers: &[(&str, String)],
    head_only: bool,
) {
    let mut body = message.to_owned();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \
         {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    let write = stream.write_all(out.as_bytes());
    if matches!(
        tokio::time::timeout(Duration::from_secs(5), write).await,
        Ok(Ok(()))
    ) {
        linger_close(stream).await;
    }
}

/// Half-closes, then reads and discards what the client still sends (up to 1 MiB or one
/// second), so that it sees the answer rather than a reset.
pub(crate) async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut chunk = [0u8; 8192];
        let mut drained = 0usize;
        while drained < (1 << 20) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// A stream that first yields bytes already read from it (the head), then the rest.
pub(crate) struct Replay {
    prefix: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl Replay {
    pub(crate) fn new(prefix: Vec<u8>, inner: TcpStream) -> Replay {
        Replay {
            prefix,
            at: 0,
            inner,
        }
    }

    /// The stream, once hyper is done with it.
    pub(crate) fn into_inner(self) -> TcpStream {
        self.inner
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
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

    fn status(r: Result<Request, Refuse>) -> u16 {
        r.map_or_else(|Refuse(s, _)| s, |_| 0)
    }

    #[test]
    fn parses_request_line_headers_and_query() {
        let req = parse_head(
            "GET /v1/status?format=json&x HTTP/1.1\r\nHost: a\r\nAuthorization:  Bearer t ",
            8,
        )
        .expect("head");
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/v1/status");
        assert_eq!(req.query_param("format"), Some("json"));
        assert_eq!(req.query_param("x"), Some(""));
        assert_eq!(req.query_param("y"), None);
        assert_eq!(req.header("authorization"), Some("Bearer t"));
        assert_eq!(req.header("HOST"), Some("a"));
    }

    #[test]
    fn rejects_malformed_heads() {
        assert_eq!(status(parse_head("GET /", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/2", 8)), 505);
        assert_eq!(status(parse_head("PRI * HTTP/2.0", 8)), 505);
        assert_eq!(status(parse_head("get / HTTP/1.1", 8)), 400);
        assert_eq!(status(parse_head("GET x HTTP/1.1", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/1.1\r\nno-colon", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/1.1\r\n folded: x", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/1.1\r\nx: a\x00b", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/1.1\r\na: 1\r\nb: 2", 1)), 431);
    }

    /// Every ambiguous framing is a 400 (issue 10: the old reader took the first of two
    /// lengths and parsed `+5`).
    #[test]
    fn ambiguous_framing_is_refused() {
        let head = |h: &str| parse_head(&format!("PUT / HTTP/1.1\r\n{h}"), 8).expect("head");
        let code = |h: &str| body_framing(&head(h), 10).map_or_else(|Refuse(s, _)| s, |_| 0);
        assert_eq!(
            body_framing(&head("Content-Length: 10"), 10),
            Ok(Framing::Length(10))
        );
        assert_eq!(
            body_framing(&head("Transfer-Encoding: Chunked"), 10),
            Ok(Framing::Chunked)
        );
        assert_eq!(code("Content-Length: 11"), 413);
        assert_eq!(code("Content-Length: 99999999999999999999999"), 413);
        assert_eq!(code("X: y"), 411);
        assert_eq!(code("Transfer-Encoding: gzip"), 501);
        assert_eq!(code("Transfer-Encoding: gzip, chunked"), 501);
        for ambiguous in [
            "Content-Length: -1",
            "Content-Length: +5",
            "Content-Length: 5,5",
            "Content-Length: 0x5",
            "Content-Length: 5 5",
            "Content-Length:",
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 5\r\nContent-Length: 5",
            "Transfer-Encoding: chunked\r\nContent-Length: 1",
            "Content-Length: 1\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        ] {
            assert_eq!(code(ambiguous), 400, "{ambiguous:?}");
        }
    }
}

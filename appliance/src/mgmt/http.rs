//! A bounded HTTP/1.1 request reader and response writer for the management API.
//!
//! Only what the API needs: one request per connection (`Connection: close`), bodies by
//! `Content-Length` or chunked encoding. Every read is bounded in bytes and in time, so a
//! slow or hostile client costs at most one connection slot for a bounded time.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Size and time bounds for one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Request line plus headers.
    pub(crate) max_head_bytes: usize,
    /// Number of header lines.
    pub(crate) max_headers: usize,
    /// Decoded body.
    pub(crate) max_body_bytes: usize,
    /// Time to receive the request line and headers.
    pub(crate) head_timeout: Duration,
    /// Time to receive the body.
    pub(crate) body_timeout: Duration,
    /// Longest wait for any single read or write.
    pub(crate) io_timeout: Duration,
}

/// Why a request could not be read; `Respond` carries the answer to send.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed or reset the connection, or went silent: nothing to answer.
    Gone,
    /// Answer with this status and message, then close.
    Respond(u16, String),
}

/// A parsed request head.
#[derive(Debug)]
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

/// One connection: the stream plus bytes read past the request head.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: Limits,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, limits: Limits) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            limits,
        }
    }

    /// Reads up to one chunk, waiting no longer than `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Respond(408, "request timed out".into()));
        }
        let wait = left.min(self.limits.io_timeout);
        self.stream
            .set_read_timeout(Some(wait))
            .map_err(|_| ReadError::Gone)?;
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(ReadError::Gone),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(ReadError::Respond(408, "request timed out".into()))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(_) => Err(ReadError::Gone),
        }
    }

    /// Reads and parses the request line and headers.
    pub(crate) fn read_head(&mut self) -> Result<Request, ReadError> {
        let deadline = Instant::now() + self.limits.head_timeout;
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > self.limits.max_head_bytes {
                return Err(ReadError::Respond(
                    431,
                    "request header fields too large".into(),
                ));
            }
            match self.fill(deadline) {
                // A connection closed before sending anything needs no answer.
                Err(ReadError::Respond(..)) if self.buf.is_empty() => return Err(ReadError::Gone),
                other => other?,
            };
        };
        if end > self.limits.max_head_bytes {
            return Err(ReadError::Respond(
                431,
                "request header fields too large".into(),
            ));
        }
        let head = String::from_utf8(self.buf[..end].to_vec())
            .map_err(|_| bad_request("request head is not UTF-8"))?;
        self.buf.drain(..end + 4);
        parse_head(&head, self.limits.max_headers)
    }

    /// Reads the body the head announces, bounded by `max_body_bytes`.
    pub(crate) fn read_body(&mut self, req: &Request) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + self.limits.body_timeout;
        match body_framing(req, self.limits.max_body_bytes)? {
            Framing::Length(len) => {
                while self.buf.len() < len {
                    self.fill(deadline)?;
                }
                self.buf.truncate(len);
                Ok(std::mem::take(&mut self.buf))
            }
            Framing::Chunked => self.read_chunked(deadline),
        }
    }

    fn read_chunked(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| bad_request("bad chunk size line"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !self.read_line(deadline)?.is_empty() {}
                return Ok(body);
            }
            if body.len().saturating_add(size) > self.limits.max_body_bytes {
                return Err(too_large(self.limits.max_body_bytes));
            }
            while self.buf.len() < size + 2 {
                self.fill(deadline)?;
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(bad_request("chunk not followed by CRLF"));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// One CRLF-terminated line of chunk framing (at most 1 KiB).
    fn read_line(&mut self, deadline: Instant) -> Result<String, ReadError> {
        const MAX_LINE: usize = 1024;
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(bad_request("chunk framing line too long"));
            }
            self.fill(deadline)?;
        }
    }

    /// Sends an interim `100 Continue` (for clients that sent `Expect: 100-continue`).
    pub(crate) fn send_continue(&mut self) -> io::Result<()> {
        self.stream
            .set_write_timeout(Some(self.limits.io_timeout))?;
        self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
    }

    /// Writes a complete response and closes the connection. Unread request bytes are
    /// drained for a moment first, so the client sees the answer rather than a reset.
    pub(crate) fn respond(mut self, response: &Response, head_only: bool) {
        if self.write_response(response, head_only) {
            let _ = self.stream.shutdown(Shutdown::Write);
            self.drain();
        }
    }

    /// Writes a complete response and closes at once, without draining: for answers the
    /// accepting thread gives itself, which must never wait on a client.
    pub(crate) fn reject(mut self, response: &Response) {
        self.write_response(response, false);
    }

    /// Whether the whole response was written.
    fn write_response(&mut self, response: &Response, head_only: bool) -> bool {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len()
        );
        for (name, value) in &response.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&response.body);
        }
        self.stream
            .set_write_timeout(Some(self.limits.io_timeout))
            .is_ok()
            && self.stream.write_all(&bytes).is_ok()
    }

    /// Reads and discards what the client still sends, up to 1 MiB or one second.
    fn drain(&mut self) {
        const MAX_DRAIN: usize = 1 << 20;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut drained = 0;
        let mut chunk = [0u8; 8192];
        while drained < MAX_DRAIN {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }
}

/// A response to send.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text answer; a trailing newline is added for terminals.
    pub(crate) fn text(status: u16, message: &str) -> Self {
        let mut body = message.to_owned();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

enum Framing {
    Length(usize),
    Chunked,
}

fn body_framing(req: &Request, max: usize) -> Result<Framing, ReadError> {
    let length = req.header("content-length");
    match req.header("transfer-encoding") {
        Some(_) if length.is_some() => Err(bad_request(
            "both Content-Length and Transfer-Encoding given",
        )),
        Some(te) if te.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        Some(te) => Err(ReadError::Respond(
            501,
            format!("transfer encoding {te:?} is not supported"),
        )),
        None => {
            let Some(length) = length else {
                return Err(ReadError::Respond(411, "Content-Length required".into()));
            };
            let len: usize = length
                .parse()
                .map_err(|_| bad_request("bad Content-Length"))?;
            if len > max {
                return Err(too_large(max));
            }
            Ok(Framing::Length(len))
        }
    }
}

/// Checks the announced body size without reading it (so 413 can go out at once).
pub(crate) fn check_body_size(req: &Request, max: usize) -> Result<(), ReadError> {
    body_framing(req, max).map(|_| ())
}

fn parse_head(head: &str, max_headers: usize) -> Result<Request, ReadError> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_request("malformed request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(ReadError::Respond(
            505,
            format!("{version:?} is not supported; use HTTP/1.1"),
        ));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad_request("malformed method"));
    }
    if !target.starts_with('/') {
        return Err(bad_request("request target must be an absolute path"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == max_headers {
            return Err(ReadError::Respond(431, "too many header fields".into()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad_request("malformed header line"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(bad_request("malformed header name"));
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

fn bad_request(message: &str) -> ReadError {
    ReadError::Respond(400, message.to_owned())
}

fn too_large(max: usize) -> ReadError {
    ReadError::Respond(
        413,
        format!("request body exceeds the limit of {max} bytes"),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Result<Request, ReadError>) -> u16 {
        match r {
            Ok(_) => 0,
            Err(ReadError::Respond(s, _)) => s,
            Err(ReadError::Gone) => 1,
        }
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
        assert_eq!(status(parse_head("get / HTTP/1.1", 8)), 400);
        assert_eq!(status(parse_head("GET x HTTP/1.1", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/1.1\r\nno-colon", 8)), 400);
        assert_eq!(status(parse_head("GET / HTTP/1.1\r\na: 1\r\nb: 2", 1)), 431);
    }

    #[test]
    fn body_framing_is_checked() {
        let head = |h: &str| parse_head(&format!("PUT / HTTP/1.1\r\n{h}"), 8).expect("head");
        let code = |r: Result<(), ReadError>| match r {
            Ok(()) => 0,
            Err(ReadError::Respond(s, _)) => s,
            Err(ReadError::Gone) => 1,
        };
        assert_eq!(code(check_body_size(&head("Content-Length: 10"), 10)), 0);
        assert_eq!(code(check_body_size(&head("Content-Length: 11"), 10)), 413);
        assert_eq!(code(check_body_size(&head("Content-Length: -1"), 10)), 400);
        assert_eq!(code(check_body_size(&head("X: y"), 10)), 411);
        assert_eq!(
            code(check_body_size(&head("Transfer-Encoding: chunked"), 10)),
            0
        );
        assert_eq!(
            code(check_body_size(&head("Transfer-Encoding: gzip"), 10)),
            501
        );
        assert_eq!(
            code(check_body_size(
                &head("Transfer-Encoding: chunked\r\nContent-Length: 1"),
                10
            )),
            400
        );
    }
}

//! A minimal HTTP/1.1 client for the management API (`udplb status`, tests).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Applying a large manifest set can take a while; status and metrics are quick.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response accepted (status of a big configuration, metrics of many backends).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Why a management API call failed (an HTTP error status is not a failure here).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, sending or receiving failed.
    #[error("management API at {addr}: {source}")]
    Io {
        /// The API address.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The answer is not a well-formed HTTP response.
    #[error("management API at {addr}: malformed response: {reason}")]
    BadResponse {
        /// The API address.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The bearer token a command-line call sends (`udplb status`, `udplb drain`): the one in
/// `given` (`--token-file`), which must be readable, else the one in `default` if that
/// file exists; surrounding whitespace ignored. `None`: no token is sent.
///
/// # Errors
/// `given` cannot be read, or `default` exists but cannot be read; the message names the
/// file.
pub fn read_token(given: Option<&Path>, default: Option<&Path>) -> Result<Option<String>, String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| (e.kind(), format!("--token-file {}: {e}", path.display())))
    };
    match (given, default) {
        (Some(path), _) => read(path).map(Some).map_err(|(_, e)| e),
        (None, Some(path)) => match read(path) {
            Ok(token) => Ok(Some(token)),
            Err((std::io::ErrorKind::NotFound, _)) => Ok(None),
            Err((_, e)) => Err(e),
        },
        (None, None) => Ok(None),
    }
}

/// `GET path` on the API at `addr` (`HOST:PORT`): the status code and the body.
///
/// # Errors
/// See [`request`].
pub fn fetch(addr: &str, path: &str) -> Result<(u16, String), ClientError> {
    request(addr, "GET", path, None, None)
}

/// Sends one request (`Connection: close`) and returns the status code and the body
/// (invalid UTF-8 replaced). `token` goes out as `Authorization: Bearer <token>`.
///
/// # Errors
/// [`ClientError::Io`] on connection failures and timeouts, [`ClientError::BadResponse`] if
/// the answer is not HTTP or is longer than 64 MiB.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    token: Option<&str>,
) -> Result<(u16, String), ClientError> {
    let io = |source| ClientError::Io {
        addr: addr.to_owned(),
        source,
    };
    let mut stream = connect(addr).map_err(io)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    if let Some(body) = body {
        stream.write_all(body).map_err(io)?;
    }
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut response)
        .map_err(io)?;
    let bad = |reason: &str| ClientError::BadResponse {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    };
    if response.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(bad("longer than 64 MiB"));
    }
    parse_response(&response).map_err(bad)
}

/// Connects to the first address `addr` (`HOST:PORT`) resolves to that answers.
fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for candidate in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolves to nothing",
        )
    }))
}

fn parse_response(response: &[u8]) -> Result<(u16, String), &'static str> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of header")?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| "header is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err("malformed status line");
    };
    if !version.starts_with("HTTP/1.") {
        return Err("not an HTTP/1 response");
    }
    let code: u16 = code.parse().map_err(|_| "malformed status code")?;
    let mut body = &response[end + 4..];
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim().parse::<usize>());
    if let Some(length) = length {
        let length = length.map_err(|_| "malformed Content-Length")?;
        body = body
            .get(..length)
            .ok_or("body shorter than Content-Length")?;
    }
    Ok((code, String::from_utf8_lossy(body).into_owned()))
}

/// `udplb status`: prints the running appliance's Gateway API status and key counters;
/// `token` is sent as a bearer token (for `management.read_token_file`).
///
/// # Errors
/// The API cannot be reached or answers with an error.
pub fn print_status(api: &str, full_metrics: bool, token: Option<&str>) -> Result<(), String> {
    let get = |path| request(api, "GET", path, None, token).map_err(|e| e.to_string());
    let (code, status) = get("/v1/status")?;
    if code != 200 {
        return Err(format!("GET /v1/status: HTTP {code}: {status}"));
    }
    let (code, metrics) = get("/metrics")?;
    if code != 200 {
        return Err(format!("GET /metrics: HTTP {code}"));
    }
    if full_metrics {
        print!("{metrics}");
        return Ok(());
    }
    print!("{status}");
    println!("---\n# key counters");
    for line in metrics.lines() {
        if line.starts_with('#') {
            continue;
        }
        let key = [
            "udplb_config_",
            "udplb_port_rx_packets",
            "udplb_port_tx_packets",
            "udplb_flows_active",
            "udplb_flows_created",
            "udplb_drops_total",
            "udplb_backend_packets_total",
            "udplb_neighbors",
        ];
        let value_nonzero = !line.ends_with(" 0");
        if key.iter().any(|k| line.starts_with(k))
            && (value_nonzero || line.starts_with("udplb_config_"))
        {
            println!("{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\nextra"),
            Ok((200, "ok\n".into()))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 422 Unprocessable Content\r\n\r\nbad"),
            Ok((422, "bad".into()))
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn cli_tokens_given_or_default_when_present() {
        let dir = std::env::temp_dir().join(format!("udplb-cli-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (file, missing) = (dir.join("token"), dir.join("missing"));
        std::fs::write(&file, "s3cret\n").expect("token");
        assert_eq!(read_token(Some(&file), None), Ok(Some("s3cret".into())));
        assert_eq!(read_token(None, Some(&file)), Ok(Some("s3cret".into())));
        assert_eq!(read_token(None, Some(&missing)), Ok(None), "absent default");
        assert_eq!(read_token(None, None), Ok(None));
        let err = read_token(Some(&missing), Some(&file)).expect_err("given must exist");
        assert!(err.contains("missing"), "{err}");
        // A directory exists but cannot be read as a token.
        assert!(read_token(None, Some(&dir)).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

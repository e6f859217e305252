//! A client for BIRD 2's control socket (`bird -s PATH`; Debian: `/run/bird/bird.ctl`),
//! speaking its line protocol directly (no `birdc` subprocess).
//!
//! On connect BIRD greets with `0001 BIRD 2.0.12 ready.`. The client sends one command line
//! (birdc syntax) at a time; the reply is a sequence of lines `DDDD-text` (more follow),
//! ` text` (continues the previous code) and a final `DDDD text`. Codes `0xxx` mean done,
//! `1xxx` a table row, `2xxx` a table heading, `8xxx` a run-time error and `9xxx` a parse
//! error (BIRD's `doc/reply_codes`). Lines starting with `+` are spontaneous output, which
//! only the `echo` command asks for; they are skipped. Every read and write has a timeout,
//! so a wedged daemon cannot wedge the management thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest reply line accepted (BIRD's own limit is a few KiB).
const MAX_LINE: usize = 64 << 10;
/// The most lines accepted in one reply (a `show protocols` of thousands of VIPs fits).
const MAX_LINES: usize = 1 << 20;

/// Why a BIRD exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    /// The socket could not be reached.
    #[error("BIRD control socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Reading or writing failed, or timed out.
    #[error("BIRD control socket: {0}")]
    Io(#[from] std::io::Error),
    /// BIRD closed the connection in the middle of a reply.
    #[error("BIRD closed the control connection")]
    Closed,
    /// A line that is not the protocol.
    #[error("BIRD sent a malformed line: {0:?}")]
    Malformed(String),
    /// The greeting was not `0001 ...`.
    #[error("BIRD did not greet: {0:?}")]
    Greeting(String),
    /// BIRD answered with an error code (8xxx run-time, 9xxx parse).
    #[error("BIRD refused {command:?}: {code:04} {message}")]
    Refused {
        /// The command.
        command: String,
        /// The reply code.
        code: u16,
        /// BIRD's text (all lines of the reply).
        message: String,
    },
    /// The command would not be one line.
    #[error("not a single command line: {0:?}")]
    BadCommand(String),
}

/// One reply line: its code and text (continuation lines carry the previous code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLine {
    /// The reply code.
    pub code: u16,
    /// The text after the code.
    pub text: String,
}

/// A complete reply: its lines, the last one being the final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Every line in order; never empty.
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// The final line's code.
    pub fn code(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.code)
    }

    /// Whether any line carries `code`.
    pub fn has(&self, code: u16) -> bool {
        self.lines.iter().any(|l| l.code == code)
    }

    /// All texts, one per line.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How `configure` went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Configured {
    /// `0003 Reconfigured`.
    Done,
    /// `0004 Reconfiguration in progress` (protocols being restarted or shut down).
    InProgress,
    /// `0005`/`0017`: queued behind a reconfiguration in progress.
    Queued,
}

/// A connection to BIRD's control socket.
pub struct BirdClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    greeting: String,
}

impl BirdClient {
    /// Connects to the socket at `path` and reads the greeting; every later read and
    /// write waits at most `timeout`.
    ///
    /// # Errors
    /// [`BirdError::Connect`], or the greeting is missing or not `0001`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<BirdClient, BirdError> {
        let connect = |source| BirdError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect)?;
        stream.set_read_timeout(Some(timeout)).map_err(connect)?;
        stream.set_write_timeout(Some(timeout)).map_err(connect)?;
        let writer = stream.try_clone().map_err(connect)?;
        let mut client = BirdClient {
            reader: BufReader::new(stream),
            writer,
            greeting: String::new(),
        };
        let hello = client.read_reply()?;
        match hello.lines.as_slice() {
            [line] if line.code == 1 => client.greeting = line.text.clone(),
            _ => return Err(BirdError::Greeting(hello.text())),
        }
        Ok(client)
    }

    /// The greeting's text, e.g. `BIRD 2.0.12 ready.`.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Sends `command` and reads its whole reply. Error codes are a reply like any other
    /// here; [`BirdClient::run`] turns them into errors.
    ///
    /// # Errors
    /// I/O failure or timeout, a malformed reply, or a command that is not one line.
    pub fn command(&mut self, command: &str) -> Result<Reply, BirdError> {
        if command.is_empty() || command.contains(['\n', '\r']) {
            return Err(BirdError::BadCommand(command.to_owned()));
        }
        self.writer.write_all(format!("{command}\n").as_bytes())?;
        self.read_reply()
    }

    /// Sends `command`; a reply ending in an error code (8xxx, 9xxx) is an error.
    ///
    /// # Errors
    /// As [`BirdClient::command`], and [`BirdError::Refused`].
    pub fn run(&mut self, command: &str) -> Result<Reply, BirdError> {
        let reply = self.command(command)?;
        let code = reply.code();
        if code >= 8000 {
            return Err(BirdError::Refused {
                command: command.to_owned(),
                code,
                message: reply.text(),
            });
        }
        Ok(reply)
    }

    /// `configure`: BIRD re-reads its configuration (with udplb's include file).
    ///
    /// # Errors
    /// [`BirdError::Refused`] with BIRD's message when the configuration is invalid (8002)
    /// or BIRD is shutting down (0006); I/O failures.
    pub fn configure(&mut self) -> Result<Configured, BirdError> {
        let reply = self.run("configure")?;
        match reply.code() {
            3 => Ok(Configured::Done),
            4 => Ok(Configured::InProgress),
            5 | 17 => Ok(Configured::Queued),
            code => Err(BirdError::Refused {
                command: "configure".into(),
                code,
                message: reply.text(),
            }),
        }
    }

    /// `disable "<pattern>"` (a quoted pattern: no match is 8003, not a parse error).
    /// The fallback that withdraws when BIRD refuses the configuration; `configure`
    /// later restores the file's state.
    ///
    /// # Errors
    /// As [`BirdClient::run`]; a pattern with a `"` is refused.
    pub fn disable(&mut self, pattern: &str) -> Result<Reply, BirdError> {
        if pattern.contains('"') {
            return Err(BirdError::BadCommand(pattern.to_owned()));
        }
        self.run(&format!("disable \"{pattern}\""))
    }

    fn read_reply(&mut self) -> Result<Reply, BirdError> {
        let mut lines: Vec<ReplyLine> = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.starts_with('+') {
                continue;
            }
            if let Some(text) = line.strip_prefix(' ') {
                let code = lines
                    .last()
                    .map(|l| l.code)
                    .ok_or_else(|| BirdError::Malformed(line.clone()))?;
                lines.push(ReplyLine {
                    code,
                    text: text.to_owned(),
                });
            } else {
                let (code, sep, text) = split_coded(&line)?;
                lines.push(ReplyLine {
                    code,
                    text: text.to_owned(),
                });
                if sep == ' ' {
                    return Ok(Reply { lines });
                }
            }
            if lines.len() > MAX_LINES {
                return Err(BirdError::Malformed("reply too long".into()));
            }
        }
    }

    fn read_line(&mut self) -> Result<String, BirdError> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(BirdError::Closed);
        }
        if buf.last() != Some(&b'\n') {
            return Err(if buf.len() > MAX_LINE {
                BirdError::Malformed("line too long".into())
            } else {
                BirdError::Closed
            });
        }
        buf.pop();
        String::from_utf8(buf).map_err(|e| BirdError::Malformed(format!("{:?}", e.as_bytes())))
    }
}

/// `DDDD-text` or `DDDD text` (the text may be empty: `0000 `, or even `0000`).
fn split_coded(line: &str) -> Result<(u16, char, &str), BirdError> {
    let malformed = || BirdError::Malformed(line.to_owned());
    let digits = line.get(..4).ok_or_else(malformed)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let code: u16 = digits.parse().map_err(|_| malformed())?;
    match line[4..].chars().next() {
        None => Ok((code, ' ', "")),
        Some(sep @ ('-' | ' ')) => Ok((code, sep, &line[5..])),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread::JoinHandle;

    /// A fake BIRD: greets with `greeting`, then answers each expected command with its
    /// canned reply (bytes as BIRD sends them); records what it received.
    fn fake(
        dir: &Path,
        greeting: &'static str,
        script: Vec<(&'static str, &'static str)>,
    ) -> (PathBuf, JoinHandle<Vec<String>>) {
        let path = dir.join(format!("bird-{}.ctl", script.len()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let thread = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(greeting.as_bytes()).expect("greet");
            let mut seen = Vec::new();
            let mut reader = BufReader::new(s.try_clone().expect("clone"));
            for (want, reply) in script {
                let mut line = String::new();
                if reader.read_line(&mut line).expect("read") == 0 {
                    break;
                }
                seen.push(line.clone());
                assert_eq!(line, format!("{want}\n"));
                s.write_all(reply.as_bytes()).expect("reply");
            }
            // Hold the connection until the client goes (timeouts are tested this way).
            let _ = s.read(&mut [0u8; 16]);
            seen
        });
        (path, thread)
    }

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "udplb-bird-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    const HELLO: &str = "0001 BIRD 2.0.12 ready.\n";
    const T: Duration = Duration::from_secs(5);

    #[test]
    fn greeting_configure_disable_and_multi_line_replies() {
        let dir = tmp();
        let (path, server) = fake(
            &dir,
            HELLO,
            vec![
                (
                    "configure",
                    "0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n",
                ),
                (
                    "configure",
                    "0002-Reading configuration from /etc/bird/bird.conf\n0004 Reconfiguration in progress\n",
                ),
                (
                    "disable \"udplb4_198_19_0_10\"",
                    "0009-udplb4_198_19_0_10: disabled\n0000 \n",
                ),
                (
                    "show protocols \"udplb*\"",
                    "2002-Name       Proto      Table      State  Since         Info\n1002-udplb4_198_19_0_10 Static     master4    up     04:28:32.431  \n more\n0000 \n",
                ),
                ("show status", "+spontaneous\n1000-BIRD 2.0.12\n0013 Daemon is up and running\n"),
            ],
        );
        let mut c = BirdClient::connect(&path, T).expect("connect");
        assert_eq!(c.greeting(), "BIRD 2.0.12 ready.");
        assert_eq!(c.configure().expect("configure"), Configured::Done);
        assert_eq!(c.configure().expect("configure"), Configured::InProgress);
        let r = c.disable("udplb4_198_19_0_10").expect("disable");
        assert!(r.has(9));
        assert_eq!(r.code(), 0);
        let r = c.run("show protocols \"udplb*\"").expect("show");
        assert_eq!(
            r.lines,
            [
                ReplyLine {
                    code: 2002,
                    text: "Name       Proto      Table      State  Since         Info".into()
                },
                ReplyLine {
                    code: 1002,
                    text: "udplb4_198_19_0_10 Static     master4    up     04:28:32.431  ".into()
                },
                ReplyLine {
                    code: 1002,
                    text: "more".into()
                },
                ReplyLine {
                    code: 0,
                    text: String::new()
                },
            ]
        );
        let r = c.run("show status").expect("status");
        assert_eq!(r.code(), 13);
        assert_eq!(r.lines.len(), 2, "the spontaneous line is skipped");
        drop(c);
        assert_eq!(server.join().expect("server").len(), 5);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn error_codes_are_errors_with_birds_message() {
        let dir = tmp();
        let (path, server) = fake(
            &dir,
            HELLO,
            vec![
                (
                    "configure",
                    "0002-Reading configuration from /etc/bird/bird.conf\n8002 /run/udplb/bird/vips.conf:1:20 syntax error\n",
                ),
                ("disable \"nomatch\"", "8003 No protocols match\n"),
                (
                    "disable nomatch",
                    "9001 syntax error, unexpected CF_SYM_UNDEFINED\n",
                ),
                ("configure", "0006 Reconfiguration ignored, shutting down\n"),
            ],
        );
        let mut c = BirdClient::connect(&path, T).expect("connect");
        match c.configure() {
            Err(BirdError::Refused { code, message, .. }) => {
                assert_eq!(code, 8002);
                assert!(message.contains("vips.conf:1:20 syntax error"), "{message}");
            }
            other => panic!("configure: {other:?}"),
        }
        assert!(matches!(
            c.disable("nomatch"),
            Err(BirdError::Refused { code: 8003, .. })
        ));
        assert!(matches!(
            c.run("disable nomatch"),
            Err(BirdError::Refused { code: 9001, .. })
        ));
        assert!(matches!(
            c.configure(),
            Err(BirdError::Refused { code: 6, .. })
        ));
        // Commands that are not one line never reach BIRD.
        assert!(matches!(
            c.command("configure\nshutdown"),
            Err(BirdError::BadCommand(_))
        ));
        assert!(matches!(
            c.disable("a\" all"),
            Err(BirdError::BadCommand(_))
        ));
        drop(c);
        server.join().expect("server");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_greetings_closed_connections_and_timeouts() {
        let dir = tmp();
        // Not a greeting.
        let (path, server) = fake(&dir, "9999 go away\n", vec![]);
        assert!(matches!(
            BirdClient::connect(&path, T),
            Err(BirdError::Greeting(_))
        ));
        server.join().expect("server");
        // Garbage.
        let (path, server) = fake(&dir, "hello\n", vec![]);
        assert!(matches!(
            BirdClient::connect(&path, T),
            Err(BirdError::Malformed(_))
        ));
        server.join().expect("server");
        // A daemon that never answers: the read times out.
        let (path, server) = fake(&dir, HELLO, vec![("configure", "")]);
        let mut c = BirdClient::connect(&path, Duration::from_millis(200)).expect("connect");
        match c.configure() {
            Err(BirdError::Io(e)) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
            other => panic!("expected a timeout: {other:?}"),
        }
        drop(c);
        server.join().expect("server");
        // A reply cut short.
        let (path, server) = fake(&dir, HELLO, vec![("configure", "0002-Reading")]);
        let mut c = BirdClient::connect(&path, T).expect("connect");
        // The fake keeps the socket open after the partial line; close our side of the
        // wait by timing out instead.
        let _ = c.writer.set_read_timeout(Some(Duration::from_millis(200)));
        assert!(c.configure().is_err());
        drop(c);
        server.join().expect("server");
        // Nobody listening.
        assert!(matches!(
            BirdClient::connect(&dir.join("absent.ctl"), T),
            Err(BirdError::Connect { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn coded_lines_parse_strictly() {
        assert_eq!(split_coded("0000 ").expect("ok"), (0, ' ', ""));
        assert_eq!(split_coded("0000").expect("ok"), (0, ' ', ""));
        assert_eq!(split_coded("1002-x y").expect("ok"), (1002, '-', "x y"));
        assert!(split_coded("12-x").is_err());
        assert!(split_coded("abcd x").is_err());
        assert!(split_coded("0000:x").is_err());
    }
}

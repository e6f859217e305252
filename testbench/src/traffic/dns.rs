//! DNS drivers: `dnsmasq` as a backend that names itself, `dig` as the client.
//!
//! Each backend's dnsmasq answers `whoami.test` with a TXT record holding the backend's
//! name, an A record with its IPv4 address and an AAAA record with its IPv6 address. A
//! client querying the VIP thus learns which backend answered.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{self, Process};
use crate::netns::Netns;
use crate::topology::Host;

/// The name every backend's dnsmasq answers for.
pub const WHOAMI: &str = "whoami.test";

/// The DNS port dnsmasq listens on unless told otherwise.
pub const DNS_PORT: u16 = 53;

/// How long [`Dnsmasq::start`] waits for the server to bind its port.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A dnsmasq running in a backend namespace; killed when dropped.
#[derive(Debug)]
pub struct Dnsmasq {
    process: Process,
    backend: String,
    listen: Vec<IpAddr>,
    port: u16,
}

impl Dnsmasq {
    /// Starts dnsmasq in `host`'s namespace on all its addresses, port `port`, without
    /// a configuration file, logging queries to `log`, and waits until it listens.
    ///
    /// # Errors
    /// [`Error::Spawn`] if dnsmasq is missing; [`Error::Timeout`] if it never binds (the
    /// error then includes its log).
    pub fn start(host: &Host, port: u16, log: &std::path::Path) -> Result<Dnsmasq> {
        Dnsmasq::start_with(host, port, log, &[])
    }

    /// [`Dnsmasq::start`] with `extra` arguments (more records, `--edns-packet-max`, …).
    ///
    /// # Errors
    /// As [`Dnsmasq::start`].
    pub fn start_with(
        host: &Host,
        port: u16,
        log: &std::path::Path,
        extra: &[String],
    ) -> Result<Dnsmasq> {
        let listen: Vec<IpAddr> = host.addrs().map(|a| a.addr).collect();
        let mut args = vec![
            "--keep-in-foreground".to_owned(),
            "--conf-file=/dev/null".to_owned(),
            "--no-resolv".to_owned(),
            "--no-hosts".to_owned(),
            "--bind-interfaces".to_owned(),
            "--pid-file".to_owned(),
            // Root keeps the right to write the log after start-up.
            "--user=root".to_owned(),
            "--log-queries".to_owned(),
            format!("--log-facility={}", log.display()),
            format!("--port={port}"),
            format!("--txt-record={WHOAMI},{}", host.name()),
            format!("--address=/{WHOAMI}/{}", host.ipv4()),
            format!("--address=/{WHOAMI}/{}", host.ipv6()),
        ];
        args.extend(listen.iter().map(|a| format!("--listen-address={a}")));
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process =
            host.ns()
                .spawn_udp_server("dnsmasq", &args, log, port, listen.len(), READY_TIMEOUT)?;
        Ok(Dnsmasq {
            process,
            backend: host.name().to_owned(),
            listen,
            port,
        })
    }

    /// Starts one on `port` of every backend of `topo`, logging to
    /// `dnsmasq-<backend>.log` in the run directory.
    ///
    /// # Errors
    /// As [`Dnsmasq::start`].
    pub fn start_on_backends(topo: &crate::topology::Topology, port: u16) -> Result<Vec<Dnsmasq>> {
        Dnsmasq::start_on_backends_with(topo, port, &[])
    }

    /// [`Dnsmasq::start_on_backends`] with `extra` arguments for each.
    ///
    /// # Errors
    /// As [`Dnsmasq::start`].
    pub fn start_on_backends_with(
        topo: &crate::topology::Topology,
        port: u16,
        extra: &[String],
    ) -> Result<Vec<Dnsmasq>> {
        topo.backends()
            .iter()
            .map(|b| {
                Dnsmasq::start_with(
                    b,
                    port,
                    &topo.log_path(&format!("dnsmasq-{}.log", b.name())),
                    extra,
                )
            })
            .collect()
    }

    /// The backend name it answers with.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The addresses it listens on.
    pub fn listen(&self) -> &[IpAddr] {
        &self.listen
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The underlying process (pid, log).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Its log: with `--log-queries`, one line per query, naming the client address it saw.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// One `dig` query.
#[derive(Clone, Debug)]
pub struct DigQuery {
    /// The server to ask (e.g. the VIP).
    pub server: IpAddr,
    /// Its port.
    pub port: u16,
    /// The name to look up.
    pub name: String,
    /// The record type (`TXT`, `A`, `AAAA`, …).
    pub rtype: String,
    /// Source address and port (`dig -b addr#port`); `None` lets the kernel choose.
    pub source: Option<SocketAddr>,
    /// How long to wait for the reply (`+time`); one try only.
    pub timeout: Duration,
    /// EDNS UDP payload size to advertise (`+bufsize=N`, with `+notcp +ignore`: the
    /// answer must come whole over UDP, never retried over TCP); `None`: dig's default.
    pub udp_bufsize: Option<u16>,
}

impl DigQuery {
    /// A TXT query for [`WHOAMI`] to `server`:53, one try, 2 s timeout.
    pub fn whoami(server: IpAddr) -> DigQuery {
        DigQuery {
            server,
            port: DNS_PORT,
            name: WHOAMI.to_owned(),
            rtype: "TXT".to_owned(),
            source: None,
            timeout: Duration::from_secs(2),
            udp_bufsize: None,
        }
    }

    /// Sets the port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the record type.
    pub fn rtype(mut self, rtype: &str) -> Self {
        self.rtype = rtype.to_owned();
        self
    }

    /// Sets the source address and port.
    pub fn source(mut self, source: SocketAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Advertises an EDNS UDP payload size of `size` and takes the answer over UDP only.
    pub fn bufsize(mut self, size: u16) -> Self {
        self.udp_bufsize = Some(size);
        self
    }

    /// Sets the reply timeout (whole seconds; at least 1).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn args(&self) -> Vec<String> {
        let secs = self.timeout.as_secs().max(1);
        let mut args = vec![
            format!("@{}", self.server),
            "-p".to_owned(),
            self.port.to_string(),
        ];
        if let Some(src) = self.source {
            args.push("-b".to_owned());
            args.push(format!("{}#{}", src.ip(), src.port()));
        }
        args.extend([
            self.name.clone(),
            self.rtype.clone(),
            "+noall".to_owned(),
            "+comments".to_owned(),
            "+answer".to_owned(),
            "+tries=1".to_owned(),
            "+retry=0".to_owned(),
            format!("+time={secs}"),
            "+nocookie".to_owned(),
        ]);
        if let Some(size) = self.udp_bufsize {
            args.extend([
                format!("+bufsize={size}"),
                "+notcp".to_owned(),
                "+ignore".to_owned(),
            ]);
        }
        args
    }
}

/// One answer record as dig prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    /// Owner name, with the trailing dot.
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Record type (`TXT`, `A`, …).
    pub rtype: String,
    /// Record data; TXT strings are unquoted and concatenated.
    pub data: String,
}

/// What a dig run got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigReply {
    /// A DNS response with this status (`NOERROR`, `NXDOMAIN`, …) and answer section.
    Answer {
        /// The response code.
        status: String,
        /// The answer records.
        records: Vec<DnsRecord>,
    },
    /// No response: timeout, ICMP unreachable, or network error; dig's reason.
    NoAnswer(String),
}

impl DigReply {
    /// The data of every answer record of type `rtype` (empty for [`DigReply::NoAnswer`]).
    pub fn data(&self, rtype: &str) -> Vec<&str> {
        match self {
            DigReply::Answer { records, .. } => records
                .iter()
                .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
                .map(|r| r.data.as_str())
                .collect(),
            DigReply::NoAnswer(_) => Vec::new(),
        }
    }

    /// The single TXT answer, which for [`WHOAMI`] names the backend.
    pub fn txt(&self) -> Option<&str> {
        match self.data("TXT").as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Every A and AAAA answer as an address.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for rtype in ["A", "AAAA"] {
            out.extend(
                self.data(rtype)
                    .iter()
                    .filter_map(|d| d.parse::<IpAddr>().ok()),
            );
        }
        out
    }

    /// Whether a response arrived.
    pub fn answered(&self) -> bool {
        matches!(self, DigReply::Answer { .. })
    }
}

impl fmt::Display for DigReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigReply::Answer { status, records } => {
                write!(f, "{status}")?;
                for r in records {
                    write!(f, " [{} {} {}]", r.name, r.rtype, r.data)?;
                }
                Ok(())
            }
            DigReply::NoAnswer(why) => write!(f, "no answer: {why}"),
        }
    }
}

/// Runs `dig` in `ns` and parses its reply.
///
/// # Errors
/// [`Error::Spawn`] if dig is missing; [`Error::Command`] for usage errors (bad source
/// address, …); [`Error::Parse`] for output we cannot read. Silence is not an error:
/// it is [`DigReply::NoAnswer`].
pub fn dig(ns: &Netns, query: &DigQuery) -> Result<DigReply> {
    let args = query.args();
    let mut cmd = ns.command("dig");
    cmd.args(&args);
    let bound = query.timeout.max(Duration::from_secs(1)) + Duration::from_secs(10);
    let out = exec::run_unchecked(&mut cmd, None, bound)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // dig exits with 9 also when it cannot even open its socket (e.g. a source address
    // the namespace does not have): that is a test bug, not silence from the server.
    let setup_failed = stdout.contains(" setup with ");
    match out.status.code() {
        Some(0) => parse_dig(&stdout),
        Some(9) if setup_failed => Err(Error::Command {
            command: format!("dig {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: stdout.trim().to_owned(),
        }),
        // 9: no reply from the server (timeout, refused, unreachable).
        Some(9) => Ok(DigReply::NoAnswer(
            stdout
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
                .map(|l| l.trim_start_matches(';').trim())
                .find(|l| !l.is_empty())
                .unwrap_or("no reply")
                .to_owned(),
        )),
        _ => Err(Error::Command {
            command: format!("dig {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: format!("{}{}", String::from_utf8_lossy(&out.stderr), stdout)
                .trim()
                .to_owned(),
        }),
    }
}

/// Parses `dig +noall +comments +answer` output.
fn parse_dig(text: &str) -> Result<DigReply> {
    let status = text
        .lines()
        .find_map(|l| l.split_once("status: "))
        .and_then(|(_, rest)| rest.split(',').next())
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| Error::Parse {
            tool: "dig".into(),
            detail: format!("no status line in {text:?}"),
        })?;
    let mut records = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        records.push(parse_record(line)?);
    }
    Ok(DigReply::Answer { status, records })
}

/// Parses `name ttl class type data…`.
fn parse_record(line: &str) -> Result<DnsRecord> {
    let bad = || Error::Parse {
        tool: "dig".into(),
        detail: format!("unexpected answer line {line:?}"),
    };
    let mut rest = line;
    let mut field = || -> Result<&str> {
        let (word, tail) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
        rest = tail.trim_start();
        Ok(word)
    };
    let name = field()?.to_owned();
    let ttl = field()?.parse().map_err(|_| bad())?;
    let _class = field()?;
    let rtype = field()?.to_owned();
    let raw = rest.trim();
    if raw.is_empty() {
        return Err(bad());
    }
    let data = if rtype.eq_ignore_ascii_case("TXT") {
        unquote_txt(raw)
    } else {
        raw.to_owned()
    };
    Ok(DnsRecord {
        name,
        ttl,
        rtype,
        data,
    })
}

/// `"a" "b"` → `ab`; dig escapes `"` and `\` inside strings with a backslash.
fn unquote_txt(raw: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (c, in_string) {
            ('"', _) => in_string = !in_string,
            ('\\', true) => out.extend(chars.next()),
            (c, true) => out.push(c),
            (_, false) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT_OUTPUT: &str = "\
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 20441
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; ANSWER SECTION:
whoami.test.\t\t0\tIN\tTXT\t\"backend-2\"
";

    #[test]
    fn parses_a_txt_answer() {
        let reply = parse_dig(TXT_OUTPUT).expect("parses");
        assert_eq!(
            reply,
            DigReply::Answer {
                status: "NOERROR".into(),
                records: vec![DnsRecord {
                    name: "whoami.test.".into(),
                    ttl: 0,
                    rtype: "TXT".into(),
                    data: "backend-2".into(),
                }],
            }
        );
        assert_eq!(reply.txt(), Some("backend-2"));
    }

    #[test]
    fn parses_addresses_and_nxdomain() {
        let text = ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n\
                    whoami.test. 0 IN A 198.18.1.11\n\
                    whoami.test. 0 IN AAAA 2001:2:0:1::11\n";
        let reply = parse_dig(text).expect("parses");
        assert_eq!(
            reply.addresses(),
            vec![
                "198.18.1.11".parse::<IpAddr>().unwrap(),
                "2001:2:0:1::11".parse().unwrap()
            ]
        );
        assert_eq!(reply.txt(), None);
        let nx =
            parse_dig(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 2\n").expect("parses");
        assert_eq!(
            nx,
            DigReply::Answer {
                status: "NXDOMAIN".into(),
                records: vec![]
            }
        );
    }

    #[test]
    fn txt_strings_are_joined_and_unescaped() {
        assert_eq!(unquote_txt(r#""a b" "c\"d""#), "a bc\"d");
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(parse_dig("hello"), Err(Error::Parse { .. })));
        let text = ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\nwhoami.test. x IN A\n";
        assert!(matches!(parse_dig(text), Err(Error::Parse { .. })));
    }

    #[test]
    fn query_arguments() {
        let q = DigQuery::whoami("198.18.0.10".parse().unwrap())
            .source("198.19.0.100:40000".parse().unwrap())
            .rtype("A")
            .port(5353);
        let args = q.args();
        assert_eq!(
            &args[..5],
            ["@198.18.0.10", "-p", "5353", "-b", "198.19.0.100#40000"]
        );
        assert_eq!(&args[5..7], ["whoami.test", "A"]);
        assert!(args.contains(&"+time=2".to_owned()));
        assert!(!args.iter().any(|a| a.starts_with("+bufsize")));
        let args = q.bufsize(4096).args();
        assert!(args.ends_with(&["+bufsize=4096".into(), "+notcp".into(), "+ignore".into()]));
    }
}

//! `deserialize_with` adaptors: settings parse straight into the pipelines types (which
//! are serde-free) through their `FromStr`, so appliance.yaml and the Gateway annotations
//! accept the same spellings with the same messages.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use pipelines::net::IpNet;
use serde::{Deserialize, Deserializer};

/// Deserializes a type from its string form through `FromStr`. The parse runs inside the
/// deserializer's visitor, so the YAML parser reports the error with the field path and line.
struct FromStrVisitor<T>(PhantomData<T>);

impl<T> serde::de::Visitor<'_> for FromStrVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

/// A value parsed from its string form.
struct Text<T>(T);

impl<'de, T> Deserialize<'de> for Text<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FromStrVisitor(PhantomData)).map(Text)
    }
}

pub(super) fn one<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Text::deserialize(d).map(|t| t.0)
}

pub(super) fn option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Option::<Text<T>>::deserialize(d).map(|o| o.map(|t| t.0))
}

/// An address with its prefix length, `198.18.0.1/24` (`ipnet`), with a message that
/// says which part is wrong.
struct Prefix(IpNet);

impl FromStr for Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(net) = s.parse() {
            return Ok(Prefix(net));
        }
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX-LENGTH"))?;
        let addr: std::net::IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .map_err(|_| format!("{s:?}: prefix length out of range (0 to {max})"))?;
        IpNet::new(addr, len)
            .map(Prefix)
            .map_err(|_| format!("{s:?}: prefix length out of range (0 to {max})"))
    }
}

pub(super) fn prefix<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    one(d).map(|p: Prefix| p.0)
}

pub(super) fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<Text<Prefix>>::deserialize(d).map(|v| v.into_iter().map(|t| t.0 .0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_reject_out_of_range_lengths() {
        let p = |s: &str| s.parse::<Prefix>().map(|p| p.0);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let net = p("198.18.0.1/24").expect("prefix");
        assert_eq!(net.addr(), ip("198.18.0.1"), "the address is kept");
        assert_eq!(net.network(), ip("198.18.0.0"));
        assert!(net.contains(&ip("198.18.0.200")));
        assert!(!net.contains(&ip("198.18.1.1")));
        assert!(!net.contains(&ip("2001:2::1")));
        let d = p("0.0.0.0/0").expect("default");
        assert!(d.prefix_len() == 0 && d.contains(&ip("198.19.255.255")));
        let v6 = p("2001:2:0:1::1/64").expect("v6");
        assert_eq!(v6.network(), ip("2001:2:0:1::"));
        assert!(v6.contains(&ip("2001:2:0:1:ffff::9")));
        assert_eq!(
            p("198.18.0.1/33"),
            Err("\"198.18.0.1/33\": prefix length out of range (0 to 32)".into())
        );
        assert!(p("2001:2::1/129").is_err());
        assert!(p("198.18.0.1").is_err());
        assert!(p("198.18.0/24").is_err());
    }
}

//! Listener options from Gateway annotations (implementation-specific; the Gateway API has
//! no field for them).
//!
//! | annotation | values |
//! |---|---|
//! | `udplb.io/nat-mode` | `fullnat`, `preserve-client` |
//! | `udplb.io/idle-timeout` | a duration: `500ms`, `30s`, `2m`, `1h` |
//! | `udplb.io/hash-key` | `5-tuple`, `source-ip-port`, `source-ip` |
//! | `udplb.io/listener.<listener>.<option>` | the same, for one listener; overrides |

use std::collections::BTreeMap;
use std::time::Duration;

use pipelines::spec::{HashKey, ListenerOptions, NatMode};

/// Prefix of every udplb annotation.
pub const PREFIX: &str = "udplb.io/";

/// One bad annotation: its key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadAnnotation {
    /// The annotation key.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

/// Checks every `udplb.io/` annotation of a Gateway with the given listener names.
pub fn check(annotations: &BTreeMap<String, String>, listeners: &[&str]) -> Vec<BadAnnotation> {
    let mut bad = Vec::new();
    for (key, value) in annotations {
        let Some(rest) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let option = match rest.strip_prefix("listener.") {
            Some(scoped) => match scoped.rsplit_once('.') {
                Some((listener, option)) if listeners.contains(&listener) => option,
                Some((listener, _)) => {
                    bad.push(BadAnnotation {
                        key: key.clone(),
                        message: format!("the Gateway has no listener named {listener:?}"),
                    });
                    continue;
                }
                None => {
                    bad.push(BadAnnotation {
                        key: key.clone(),
                        message: "expected udplb.io/listener.<listener>.<option>".into(),
                    });
                    continue;
                }
            },
            None => rest,
        };
        let mut scratch = ListenerOptions::default();
        if let Err(message) = apply(&mut scratch, option, value) {
            bad.push(BadAnnotation {
                key: key.clone(),
                message,
            });
        }
    }
    bad
}

/// The options of one listener: Gateway-wide annotations, then per-listener overrides.
/// Invalid annotations (rejected by validation before) are ignored.
pub fn for_listener(annotations: &BTreeMap<String, String>, listener: &str) -> ListenerOptions {
    let mut options = ListenerOptions::default();
    for (key, value) in annotations {
        if let Some(option) = key.strip_prefix(PREFIX) {
            if !option.starts_with("listener.") {
                let _ = apply(&mut options, option, value);
            }
        }
    }
    let scoped = format!("{PREFIX}listener.{listener}.");
    for (key, value) in annotations {
        if let Some(option) = key.strip_prefix(&scoped) {
            let _ = apply(&mut options, option, value);
        }
    }
    options
}

fn apply(options: &mut ListenerOptions, option: &str, value: &str) -> Result<(), String> {
    match option {
        "nat-mode" => {
            options.nat_mode = Some(match value {
                "fullnat" => NatMode::FullNat,
                "preserve-client" => NatMode::PreserveClient,
                _ => return Err(format!("{value:?} is not one of fullnat, preserve-client")),
            });
        }
        "hash-key" => {
            options.hash_key = Some(match value {
                "5-tuple" => HashKey::FiveTuple,
                "source-ip-port" => HashKey::SourceIpPort,
                "source-ip" => HashKey::SourceIp,
                _ => {
                    return Err(format!(
                        "{value:?} is not one of 5-tuple, source-ip-port, source-ip"
                    ))
                }
            });
        }
        "idle-timeout" => options.idle_timeout = Some(parse_duration(value)?),
        _ => {
            return Err(format!(
                "unknown option {option:?} (known: nat-mode, idle-timeout, hash-key)"
            ))
        }
    }
    Ok(())
}

/// Parses `<positive integer><unit>` with unit `ms`, `s`, `m` or `h`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let err = || format!("{text:?} is not a duration like 500ms, 30s, 2m or 1h");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| err())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
        _ => return Err(err()),
    };
    if d.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "s",
            "30",
            "-1s",
            "1.5s",
            "0s",
            "30 s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listener_override_beats_gateway_default() {
        let a = annotations(&[
            ("udplb.io/nat-mode", "preserve-client"),
            ("udplb.io/idle-timeout", "30s"),
            ("udplb.io/listener.dns.nat-mode", "fullnat"),
            ("udplb.io/listener.dns.hash-key", "source-ip"),
            ("other.io/ignored", "x"),
        ]);
        assert!(check(&a, &["dns", "game"]).is_empty());
        let dns = for_listener(&a, "dns");
        assert_eq!(dns.nat_mode, Some(NatMode::FullNat));
        assert_eq!(dns.hash_key, Some(HashKey::SourceIp));
        assert_eq!(dns.idle_timeout, Some(Duration::from_secs(30)));
        let game = for_listener(&a, "game");
        assert_eq!(game.nat_mode, Some(NatMode::PreserveClient));
        assert_eq!(game.hash_key, None);
    }

    #[test]
    fn bad_values_name_the_annotation() {
        let a = annotations(&[
            ("udplb.io/nat-mode", "snat"),
            ("udplb.io/listener.nope.hash-key", "5-tuple"),
            ("udplb.io/listener.dns.colour", "red"),
            ("udplb.io/idle-timeout", "soon"),
        ]);
        let bad = check(&a, &["dns"]);
        let keys: Vec<&str> = bad.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "udplb.io/idle-timeout",
                "udplb.io/listener.dns.colour",
                "udplb.io/listener.nope.hash-key",
                "udplb.io/nat-mode"
            ]
        );
    }
}

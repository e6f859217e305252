//! Listener options from Gateway annotations (implementation-specific; the Gateway API has
//! no field for them).
//!
//! | annotation | values |
//! |---|---|
//! | `udplb.io/nat-mode` | `fullnat`, `preserve-client`, `dsr` |
//! | `udplb.io/idle-timeout` | a duration (`500ms`, `30s`, `2m`, `1h`; the `humantime` grammar), 1ms to 24h |
//! | `udplb.io/hash-key` | `5-tuple`, `source-ip-port`, `source-ip` |
//! | `udplb.io/listener.<listener>.<option>` | the same, for one listener; overrides |

use std::collections::BTreeMap;

use pipelines::spec::{parse_idle_timeout, ListenerOptions};

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

/// Sets `option` from `value`, parsed by the pipelines types' `FromStr` (the same
/// spellings and messages as the appliance settings).
fn apply(options: &mut ListenerOptions, option: &str, value: &str) -> Result<(), String> {
    let text = |e: pipelines::spec::ParseError| e.to_string();
    match option {
        "nat-mode" => options.nat_mode = Some(value.parse().map_err(text)?),
        "hash-key" => options.hash_key = Some(value.parse().map_err(text)?),
        "idle-timeout" => options.idle_timeout = Some(parse_idle_timeout(value)?),
        _ => {
            return Err(format!(
                "unknown option {option:?} (known: nat-mode, idle-timeout, hash-key)"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pipelines::spec::{HashKey, NatMode};

    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn idle_timeout(value: &str) -> Result<Option<Duration>, String> {
        let mut o = ListenerOptions::default();
        apply(&mut o, "idle-timeout", value).map(|()| o.idle_timeout)
    }

    #[test]
    fn durations() {
        assert_eq!(idle_timeout("500ms"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(idle_timeout("30s"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(idle_timeout("2m"), Ok(Some(Duration::from_secs(120))));
        assert_eq!(idle_timeout("1h"), Ok(Some(Duration::from_secs(3600))));
        // The humantime grammar (shared with appliance.yaml) also takes these.
        assert_eq!(idle_timeout("1.5s"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(idle_timeout("30 s"), Ok(Some(Duration::from_secs(30))));
        for bad in ["", "s", "30", "-1s", "99999999999999999999h"] {
            assert!(idle_timeout(bad).is_err(), "{bad}");
        }
        // 0s is a duration, but not an idle timeout: the same range check and message as
        // `flows.idle_timeout` in appliance.yaml.
        assert_eq!(
            idle_timeout("0s"),
            Err("0s is out of range (1ms to 24h)".into())
        );
        assert_eq!(
            idle_timeout("25h"),
            Err("25h is out of range (1ms to 24h)".into())
        );
        assert_eq!(
            idle_timeout("soon").unwrap_err(),
            "\"soon\": expected a number and a unit, e.g. 500ms, 30s, 2m or 1h \
             (expected number at 0)"
        );
    }

    #[test]
    fn keyword_values_use_the_pipelines_spellings() {
        let mut o = ListenerOptions::default();
        apply(&mut o, "nat-mode", "preserve-client").unwrap();
        apply(&mut o, "hash-key", "source-ip-port").unwrap();
        assert_eq!(o.nat_mode, Some(NatMode::PreserveClient));
        assert_eq!(o.hash_key, Some(HashKey::SourceIpPort));
        assert_eq!(
            apply(&mut o, "hash-key", "4-tuple"),
            Err("\"4-tuple\" is not one of 5-tuple, source-ip-port, source-ip".into())
        );
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

//! Probe payloads written as hexadecimal or base64 text.

/// Decodes hexadecimal digits, two per byte (either case, no separators).
///
/// # Errors
/// The first bad digit and its position, or an odd count.
pub(crate) fn hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    let value = |i: usize| -> Result<u8, String> {
        let c = digits[i];
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| format!("{:?} at {i} is not a hexadecimal digit", char::from(c)))
    };
    let mut out = Vec::with_capacity(digits.len() / 2);
    for i in (0..digits.len()).step_by(2) {
        let high = value(i)?;
        if i + 1 == digits.len() {
            return Err(format!("{} digits; two per byte are needed", digits.len()));
        }
        out.push(high << 4 | value(i + 1)?);
    }
    Ok(out)
}

/// Decodes base64 with the standard alphabet (RFC 4648 §4); the `=` padding is optional.
///
/// # Errors
/// The first character outside the alphabet and its position, or a length that no
/// encoding has.
pub(crate) fn base64(text: &str) -> Result<Vec<u8>, String> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return Err("has more than two '=' of padding".into());
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for (i, c) in body.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => {
                return Err(format!(
                    "{:?} at {i} is not in the base64 alphabet",
                    char::from(c)
                ))
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    // 6 leftover bits cannot come from whole bytes (a length of 4n + 1 characters).
    if bits >= 6 {
        return Err(format!("{} characters is not a base64 length", body.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits() {
        assert_eq!(hex("00ffA5"), Ok(vec![0, 0xff, 0xa5]));
        assert_eq!(hex(""), Ok(vec![]));
        assert_eq!(hex("abc"), Err("3 digits; two per byte are needed".into()));
        assert_eq!(
            hex("0x10"),
            Err("'x' at 1 is not a hexadecimal digit".into())
        );
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(encoded), Ok(plain.as_bytes().to_vec()), "{encoded}");
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(
                base64(unpadded),
                Ok(plain.as_bytes().to_vec()),
                "{unpadded}"
            );
        }
        assert_eq!(base64("/+8="), Ok(vec![0xff, 0xef]));
        assert_eq!(
            base64("Zm9v!"),
            Err("'!' at 4 is not in the base64 alphabet".into())
        );
        assert_eq!(
            base64("Z"),
            Err("1 characters is not a base64 length".into())
        );
        assert_eq!(
            base64("Zg==="),
            Err("has more than two '=' of padding".into())
        );
    }
}

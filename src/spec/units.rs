//! Scalar formats of the compose model: durations (`1m30s`), byte sizes
//! (`1.5G`), and shell-word splitting of string commands.
//!
//! Pure functions over strings; no knowledge of where the values sit.

/// Parses a duration as Compose does (`1h2m3s`, `500ms`, `1.5s`, a bare `0`)
/// into nanoseconds.
pub fn parse_duration(s: &str) -> Option<i128> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            _ => return None,
        };
        total += n * scale;
    }
    let ns = total.round() as i128;
    Some(if neg { -ns } else { ns })
}

/// Formats nanoseconds the way Go's `time.Duration` prints (`1m30s`, `500ms`).
pub fn format_duration(ns: i128) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: one unit with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1u128)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fraction(u, div));
        out.push_str(unit);
    } else {
        let hours = u / 3_600_000_000_000;
        let mins = (u / 60_000_000_000) % 60;
        let secs_ns = u % 60_000_000_000;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || mins > 0 {
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&fraction(secs_ns, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn fraction(v: u128, div: u128) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses a byte size with Docker's binary units (`512m`, `1.5G`, `1gb`, `100000`).
pub fn parse_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix('-') {
        // Only -1 ("unlimited", as memswap_limit takes it) is a valid negative size.
        return (rest == "1").then_some(-1);
    }
    let lower = t.to_ascii_lowercase();
    let num_len = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    if num_len == 0 {
        return None;
    }
    let n: f64 = lower[..num_len].parse().ok()?;
    let unit = lower[num_len..].trim();
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return None;
    }
    Some(v as i64)
}

/// Splits a command string into words as a POSIX shell would, without
/// expansions: quotes group, backslashes escape.
pub fn split_shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some('\n') => {}
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(format!("unterminated double quote in {s:?}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(ch) => cur.push(ch),
                    None => cur.push('\\'),
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(s: &str) -> String {
        parse_duration(s)
            .map(format_duration)
            .unwrap_or_else(|| "ERR".into())
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go("90s"), "1m30s");
        assert_eq!(go("1m"), "1m0s");
        assert_eq!(go("1h2m3s"), "1h2m3s");
        assert_eq!(go("500ms"), "500ms");
        assert_eq!(go("1500ms"), "1.5s");
        assert_eq!(go("10s"), "10s");
        assert_eq!(go("0"), "0s");
        assert_eq!(go("1h"), "1h0m0s");
        assert_eq!(go("100us"), "100µs");
        assert_eq!(go("abc"), "ERR");
        assert_eq!(go("10x"), "ERR");
    }

    #[test]
    fn byte_sizes_use_binary_units() {
        assert_eq!(parse_bytes("1.5G"), Some(1_610_612_736));
        assert_eq!(parse_bytes("512m"), Some(536_870_912));
        assert_eq!(parse_bytes("1gb"), Some(1_073_741_824));
        assert_eq!(parse_bytes("100000"), Some(100_000));
        assert_eq!(parse_bytes("64M"), Some(67_108_864));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("1q"), None);
        assert_eq!(parse_bytes("-1"), Some(-1));
        assert_eq!(parse_bytes("-5"), None);
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_shell_words(r#"echo "hi there" 'x y' a\ b"#).unwrap_or_default(),
            vec!["echo", "hi there", "x y", "a b"]
        );
        assert_eq!(
            split_shell_words(r#"sh -c "echo \"q\"""#).unwrap_or_default(),
            vec!["sh", "-c", "echo \"q\""]
        );
        assert!(split_shell_words("echo 'open").is_err());
        assert!(split_shell_words("").unwrap_or_default().is_empty());
    }
}

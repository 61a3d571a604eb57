//! The dotenv grammar Compose reads for `.env`, `--env-file` and `env_file:`:
//! `export`, single quotes (raw, `\'` allowed), double quotes (escapes and
//! variables), unquoted values with `#` a comment only after whitespace,
//! multi-line quoted values, `KEY: value`, a bare `KEY` taken from the lookup,
//! and `${VAR}` expansion against earlier lines and the lookup.
//!
//! Pure: the caller reads the file and supplies the lookup.

use super::interpolate::substitute;

/// Why a dotenv text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotenvError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// How values are read: `Expand` interprets quotes, escapes and variables;
/// `Raw` keeps everything after `=` as written (`format: raw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Expand,
    Raw,
}

/// Parses a dotenv text into ordered pairs. `lookup` answers variables that the
/// text does not define itself; it is consulted first, so the shell beats the file.
pub fn parse(
    text: &str,
    format: Format,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0usize;
    let mut line = 1usize;
    while pos < chars.len() {
        // Skip blank space and comment lines.
        let c = chars[pos];
        if c == '\n' {
            line += 1;
            pos += 1;
            continue;
        }
        if c.is_whitespace() {
            pos += 1;
            continue;
        }
        if c == '#' {
            while pos < chars.len() && chars[pos] != '\n' {
                pos += 1;
            }
            continue;
        }
        let start_line = line;
        let line_end = chars[pos..]
            .iter()
            .position(|c| *c == '\n')
            .map_or(chars.len(), |p| pos + p);
        let raw_line: String = chars[pos..line_end].iter().collect();
        let mut rest = raw_line.trim_start();
        if let Some(r) = rest.strip_prefix("export ") {
            rest = r.trim_start();
        }
        let sep = rest.find(['=', ':']);
        let (key, has_value) = match sep {
            Some(i) => (rest[..i].trim(), true),
            None => (rest.trim(), false),
        };
        if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
            return Err(DotenvError::Syntax {
                line: start_line,
                message: format!("unexpected character in variable name {key:?}"),
            });
        }
        if !has_value {
            if let Some(v) = lookup(key) {
                out.push((key.to_string(), v));
            }
            pos = line_end;
            continue;
        }
        let key = key.to_string();
        // Position of the value's first char in `chars`.
        let offset_in_line = raw_line.len() - rest.len() + sep.map_or(0, |i| i + 1);
        let mut vpos = pos + raw_line[..offset_in_line].chars().count();
        while vpos < line_end && (chars[vpos] == ' ' || chars[vpos] == '\t') {
            vpos += 1;
        }
        let value;
        if format == Format::Raw {
            value = chars[vpos..line_end]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string();
            pos = line_end;
        } else if vpos < chars.len() && (chars[vpos] == '\'' || chars[vpos] == '"') {
            let quote = chars[vpos];
            let mut end = vpos + 1;
            let mut prev = '\0';
            while end < chars.len() && !(chars[end] == quote && prev != '\\') {
                if chars[end] == '\n' {
                    line += 1;
                }
                prev = if prev == '\\' && chars[end] == '\\' {
                    '\0'
                } else {
                    chars[end]
                };
                end += 1;
            }
            if end >= chars.len() {
                return Err(DotenvError::Syntax {
                    line: start_line,
                    message: format!("unterminated quoted value for {key}"),
                });
            }
            let inner: String = chars[vpos + 1..end].iter().collect();
            value = if quote == '\'' {
                inner.replace("\\'", "'")
            } else {
                let unescaped = unescape_double(&inner);
                expand(&unescaped, &out, lookup)
            };
            // Skip the rest of the closing line (a comment may follow).
            pos = chars[end..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| end + p);
        } else {
            let raw: String = chars[vpos..line_end].iter().collect();
            let cut = comment_start(&raw).unwrap_or(raw.len());
            value = expand(raw[..cut].trim(), &out, lookup);
            pos = line_end;
        }
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    Ok(out)
}

/// Byte index of an inline comment: a `#` that follows whitespace.
fn comment_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (1..b.len()).find(|&i| b[i] == b'#' && (b[i - 1] == b' ' || b[i - 1] == b'\t'))
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn expand(
    value: &str,
    defined: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> String {
    let find = |name: &str| {
        lookup(name).or_else(|| {
            defined
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    };
    // An invalid template is kept as written, as Compose does for .env values.
    substitute(value, &find, &mut |name| {
        tracing::warn!("The {name:?} variable is not set. Defaulting to a blank string.")
    })
    .unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Vec<(String, String)> {
        parse(text, Format::Expand, &|k| {
            (k == "HOME").then(|| "/root".to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
        pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn quoting_rules() {
        let text = "OPTION_A='1'\nOPTION_D='\\n'\nOPTION_H=\"\\n\"\nOPTION_I = \"echo 'asd'\" # Inline comment\nOPTION_J = 'first line\nsecond line'\nOPTION_K='Let\\'s go!'\n";
        let p = load(text);
        assert_eq!(get(&p, "OPTION_A"), Some("1"));
        assert_eq!(get(&p, "OPTION_D"), Some("\\n"));
        assert_eq!(get(&p, "OPTION_H"), Some("\n"));
        assert_eq!(get(&p, "OPTION_I"), Some("echo 'asd'"));
        assert_eq!(get(&p, "OPTION_J"), Some("first line\nsecond line"));
        assert_eq!(get(&p, "OPTION_K"), Some("Let's go!"));
    }

    #[test]
    fn comments_need_whitespace_before_hash() {
        let p = load("# a comment\nA=abc#def\nB=abc #c\nC=\"1234#5\"\n");
        assert_eq!(get(&p, "A"), Some("abc#def"));
        assert_eq!(get(&p, "B"), Some("abc"));
        assert_eq!(get(&p, "C"), Some("1234#5"));
    }

    #[test]
    fn export_colon_bare_and_spacing() {
        let p = load("export C=v\nE: yaml\nHOME\nMISSING\n  M=indented\nG=  spaced  \n");
        assert_eq!(get(&p, "C"), Some("v"));
        assert_eq!(get(&p, "E"), Some("yaml"));
        assert_eq!(get(&p, "HOME"), Some("/root"));
        assert_eq!(get(&p, "MISSING"), None);
        assert_eq!(get(&p, "M"), Some("indented"));
        assert_eq!(get(&p, "G"), Some("spaced"));
    }

    #[test]
    fn substitution_sees_earlier_lines_and_shell_first() {
        let p = load("OPTION_A=${OPTION_A:-1}\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\nH=$HOME\nS='${OPTION_A}'\n");
        assert_eq!(get(&p, "OPTION_B"), Some("1"));
        assert_eq!(get(&p, "OPTION_C"), Some("1"));
        assert_eq!(get(&p, "OPTION_D"), Some("1_1"));
        assert_eq!(get(&p, "OPTION_E"), Some(""));
        assert_eq!(get(&p, "H"), Some("/root"));
        assert_eq!(get(&p, "S"), Some("${OPTION_A}"));
    }

    #[test]
    fn raw_format_keeps_quotes() {
        let p =
            parse("TEST_VAR='{\"key\": \"value\"}'\n", Format::Raw, &|_| None).unwrap_or_default();
        assert_eq!(get(&p, "TEST_VAR"), Some("'{\"key\": \"value\"}'"));
    }

    #[test]
    fn unterminated_quote_is_an_error_with_line() {
        let err = parse("A=1\nB=\"open\n", Format::Expand, &|_| None).expect_err("must fail");
        assert!(err.to_string().starts_with("line 2"), "{err}");
    }
}

//! The Dockerfile parser: parser directives (`# escape=`), line
//! continuations, comments, instruction flags (`--from=…`), JSON and shell
//! forms, heredocs (`<<EOF`, `<<-EOF`, quoted delimiters), and the split into
//! stages (`FROM … AS name`, the ARGs before the first FROM). Also the
//! word lexer Docker applies to ENV, ARG, LABEL, COPY and the rest: quotes,
//! escapes and `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}`,
//! `${VAR-word}`, `${VAR+word}`.
//!
//! Pure: text in, instructions out; never reads files or runs anything.

/// A Dockerfile error with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn perr(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// An instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`.
    Json(Vec<String>),
    /// The rest of the line, as written (continuations joined).
    Shell(String),
}

/// A here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub body: String,
    /// Unquoted delimiters have their body expanded (RUN: by the shell).
    pub expand: bool,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    /// Upper case (`RUN`, `COPY`…).
    pub keyword: String,
    /// `--name=value` flags after the keyword, in order (`--link` alone: "").
    pub flags: Vec<(String, String)>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// The instruction as written, continuations joined (for history and cache keys).
    pub text: String,
}

impl Instruction {
    /// The value of flag `name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable flag (`--mount`).
    pub fn flags_named(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The shell-form text ("" for JSON form).
    pub fn shell_text(&self) -> &str {
        match &self.args {
            Args::Shell(s) => s,
            Args::Json(_) => "",
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Reads the parser directives at the top (`# escape=`` ` ``, `# syntax=`).
fn directives(lines: &[&str]) -> (char, usize) {
    let mut escape = '\\';
    let mut skip = 0;
    for l in lines {
        let t = l.trim();
        let Some(rest) = t.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) {
            break;
        }
        if k == "escape" {
            match v.trim() {
                "`" => escape = '`',
                _ => escape = '\\',
            }
        }
        skip += 1;
    }
    (escape, skip)
}

/// Parses Dockerfile text.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, mut i) = directives(&lines);
    let mut instructions = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        // Join continuation lines (comment and blank lines inside are dropped).
        let mut logical = String::new();
        let mut cur = first.to_string();
        loop {
            let trimmed = cur.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                logical.push_str(body);
                // Find the next line that is not a comment or blank.
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let t = l.trim_start();
                    if t.starts_with('#') || t.is_empty() {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            } else {
                logical.push_str(&cur);
                break;
            }
        }
        let logical = logical.trim().to_string();
        let (kw, rest) = match logical.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_ascii_uppercase(), r.trim_start().to_string()),
            None => (logical.to_ascii_uppercase(), String::new()),
        };
        if !KEYWORDS.contains(&kw.as_str()) {
            return Err(perr(start + 1, format!("unknown instruction: {kw}")));
        }
        let (flags, rest) = if kw == "ONBUILD" {
            (Vec::new(), rest)
        } else {
            take_flags(&rest)
        };
        // Heredocs: `<<NAME` words in the arguments; bodies follow the line.
        let mut heredocs = Vec::new();
        if matches!(kw.as_str(), "RUN" | "COPY" | "ADD") {
            for word in rest.split_whitespace() {
                let Some(spec) = word.strip_prefix("<<") else {
                    continue;
                };
                let (strip_tabs, spec) = match spec.strip_prefix('-') {
                    Some(s) => (true, s),
                    None => (false, spec),
                };
                let quoted = spec.starts_with('"') || spec.starts_with('\'');
                let name = spec.trim_matches(|c| c == '"' || c == '\'').to_string();
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let mut body = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == name {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    return Err(perr(start + 1, format!("unterminated heredoc <<{name}")));
                }
                heredocs.push(Heredoc {
                    name,
                    body,
                    expand: !quoted,
                });
            }
        }
        let args = json_args(&rest).map_or(Args::Shell(rest.clone()), Args::Json);
        instructions.push(Instruction {
            line: start + 1,
            keyword: kw,
            flags,
            args,
            heredocs,
            text: logical,
        });
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Leading `--name=value` words.
fn take_flags(rest: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut s = rest;
    while let Some(after) = s.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        flags.push((k.to_ascii_lowercase(), v.to_string()));
        s = after[end..].trim_start();
    }
    (flags, s.to_string())
}

/// The JSON form, when the arguments are a JSON array of strings.
fn json_args(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// A stage: `FROM base [AS name]` and its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    /// The base as written (variables not yet expanded).
    pub base: String,
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

/// The ARGs before the first FROM and the stages.
pub fn stages(file: &Dockerfile) -> Result<(Vec<Instruction>, Vec<Stage>), ParseError> {
    let mut meta = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in &file.instructions {
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins.shell_text().split_whitespace().collect();
            let (base, name) = match words.as_slice() {
                [b] => (*b, None),
                [b, as_, n] if as_.eq_ignore_ascii_case("as") => (*b, Some(n.to_ascii_lowercase())),
                _ => return Err(perr(ins.line, "FROM needs IMAGE [AS NAME]")),
            };
            stages.push(Stage {
                index: stages.len(),
                name,
                base: base.to_string(),
                line: ins.line,
                instructions: Vec::new(),
            });
            continue;
        }
        match stages.last_mut() {
            Some(s) => s.instructions.push(ins.clone()),
            None if ins.keyword == "ARG" => meta.push(ins.clone()),
            None => {
                return Err(perr(
                    ins.line,
                    format!(
                        "{} before the first FROM (only ARG may come first)",
                        ins.keyword
                    ),
                ))
            }
        }
    }
    if stages.is_empty() {
        return Err(perr(1, "no FROM instruction"));
    }
    Ok((meta, stages))
}

/// Expands variables and removes quotes in `s`, splitting it into words as
/// Docker's lexer does (whitespace outside quotes separates words).
pub fn words(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                cur.push(n);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            continue;
        }
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                cur.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated quote in {s:?}"));
            }
            i += 1;
            continue;
        }
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == escape && matches!(chars.get(i + 1), Some('"' | '$')) {
                    cur.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                if chars[i] == escape && chars.get(i + 1) == Some(&escape) {
                    cur.push(escape);
                    i += 2;
                    continue;
                }
                if chars[i] == '$' {
                    let (v, n) = variable(&chars[i..], escape, lookup)?;
                    cur.push_str(&v);
                    i += n;
                    continue;
                }
                cur.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated quote in {s:?}"));
            }
            i += 1;
            continue;
        }
        if c == '$' {
            let (v, n) = variable(&chars[i..], escape, lookup)?;
            cur.push_str(&v);
            i += n;
            continue;
        }
        cur.push(c);
        i += 1;
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Expands variables in `s` without splitting or removing quotes (the
/// values of `KEY=VALUE` pairs are lexed by `words`; this is for FROM,
/// USER, WORKDIR, EXPOSE, STOPSIGNAL where the text is one value).
pub fn expand(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    Ok(words(s, escape, lookup)?.join(" "))
}

/// One `$NAME` or `${…}` at the start of `chars`: its value and length.
fn variable(
    chars: &[char],
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, usize), String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(1) == Some(&'{') {
        let close = chars
            .iter()
            .position(|&c| c == '}')
            .ok_or_else(|| "missing } in ${…}".to_string())?;
        let inner: String = chars[2..close].iter().collect();
        let name_len = inner.chars().take_while(|&c| is_name(c)).count();
        let name = &inner[..name_len];
        if name.is_empty() {
            return Err(format!("bad substitution ${{{inner}}}"));
        }
        let value = lookup(name);
        let op = &inner[name_len..];
        let expand_word = |w: &str| -> Result<String, String> { expand(w, escape, lookup) };
        let v = if op.is_empty() {
            value.unwrap_or_default()
        } else if let Some(w) = op.strip_prefix(":-") {
            match value.filter(|v| !v.is_empty()) {
                Some(v) => v,
                None => expand_word(w)?,
            }
        } else if let Some(w) = op.strip_prefix(":+") {
            match value.filter(|v| !v.is_empty()) {
                Some(_) => expand_word(w)?,
                None => String::new(),
            }
        } else if let Some(w) = op.strip_prefix('-') {
            match value {
                Some(v) => v,
                None => expand_word(w)?,
            }
        } else if let Some(w) = op.strip_prefix('+') {
            match value {
                Some(_) => expand_word(w)?,
                None => String::new(),
            }
        } else {
            return Err(format!("unsupported modifier in ${{{inner}}}"));
        };
        return Ok((v, close + 1));
    }
    let n = chars[1..].iter().take_while(|&&c| is_name(c)).count();
    if n == 0 {
        return Ok(("$".into(), 1));
    }
    let name: String = chars[1..=n].iter().collect();
    Ok((lookup(&name).unwrap_or_default(), n + 1))
}

/// `KEY=VALUE …` pairs (ENV, ARG, LABEL), or the legacy `KEY VALUE` of ENV
/// and LABEL when the first word has no `=`.
pub fn pairs(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>, String> {
    let first = s.split_whitespace().next().unwrap_or_default();
    if legacy && !first.contains('=') {
        let rest = s.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(format!("{first} needs a value"));
        }
        let value = words(rest, escape, lookup)?.join(" ");
        return Ok(vec![(first.to_string(), Some(value))]);
    }
    let mut out = Vec::new();
    for w in words(s, escape, &|name| lookup(name))? {
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((w, None)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn continuations_comments_flags_and_forms() {
        let text = "# syntax=docker/dockerfile:1\nFROM busybox AS base\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nCOPY --from=base --chown=1:2 /a /b\nCMD [\"sh\", \"-c\", \"echo hi\"]\nentrypoint not json [\n";
        let f = parse(text).expect("parse");
        let kw: Vec<&str> = f.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(kw, ["FROM", "RUN", "COPY", "CMD", "ENTRYPOINT"]);
        assert_eq!(
            f.instructions[1].args,
            Args::Shell("echo a   && echo b".into())
        );
        assert_eq!(f.instructions[1].line, 4);
        assert_eq!(f.instructions[2].flag("from"), Some("base"));
        assert_eq!(f.instructions[2].flag("chown"), Some("1:2"));
        assert_eq!(
            f.instructions[3].args,
            Args::Json(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(f.instructions[4].args, Args::Shell("not json [".into()));
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let f = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  /b\n").expect("parse");
        assert_eq!(f.escape, '`');
        assert_eq!(f.instructions[1].shell_text(), "dir c:\\   /b");
    }

    #[test]
    fn heredocs_are_captured() {
        let text = "FROM busybox\nRUN <<EOF\necho one\necho $A\nEOF\nCOPY <<-'CONF' /etc/app.conf\n\tkey=value\n\tCONF\nRUN true\n";
        let f = parse(text).expect("parse");
        assert_eq!(f.instructions.len(), 4);
        let run = &f.instructions[1];
        assert_eq!(run.heredocs[0].body, "echo one\necho $A\n");
        assert!(run.heredocs[0].expand);
        let copy = &f.instructions[2];
        assert_eq!(copy.heredocs[0].name, "CONF");
        assert_eq!(copy.heredocs[0].body, "key=value\n");
        assert!(!copy.heredocs[0].expand);
        assert_eq!(f.instructions[3].keyword, "RUN");
        assert!(parse("FROM x\nRUN <<EOF\nnever closed\n").is_err());
    }

    #[test]
    fn unknown_instructions_and_missing_from_name_their_line() {
        let e = parse("FROM x\nFROB y\n").expect_err("unknown");
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("unknown instruction: FROB"));
        let f = parse("RUN x\n").expect("parse");
        assert!(stages(&f).is_err());
    }

    #[test]
    fn stages_split_with_meta_args() {
        let f = parse(
            "ARG V=1\nFROM busybox:${V} AS Build\nRUN a\nFROM scratch\nCOPY --from=build /x /x\n",
        )
        .expect("parse");
        let (meta, st) = stages(&f).expect("stages");
        assert_eq!(meta.len(), 1);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].name.as_deref(), Some("build"));
        assert_eq!(st[0].base, "busybox:${V}");
        assert_eq!(st[1].instructions.len(), 1);
    }

    #[test]
    fn substitution_as_docker_does() {
        let w = |s: &str| words(s, '\\', &vars).expect("words");
        assert_eq!(
            w("$A ${A}x ${B:-def} ${A:+alt} ${EMPTY:-e} ${EMPTY-e} ${B+x}"),
            ["one", "onex", "def", "alt", "e", "", ""]
        );
        assert_eq!(w("'$A' \"$A b\" \\$A"), ["$A", "one b", "$A"]);
        assert_eq!(w("a\\ b"), ["a b"]);
        assert!(words("'open", '\\', &vars).is_err());
        assert!(words("${", '\\', &vars).is_err());
    }

    #[test]
    fn pairs_for_env_arg_and_label() {
        let p = pairs("X=1 Y=\"two words\" Z", '\\', &vars, false).expect("pairs");
        assert_eq!(
            p,
            vec![
                ("X".into(), Some("1".into())),
                ("Y".into(), Some("two words".into())),
                ("Z".into(), None)
            ]
        );
        let legacy = pairs("NAME some $A value", '\\', &vars, true).expect("legacy");
        assert_eq!(legacy, vec![("NAME".into(), Some("some one value".into()))]);
    }
}

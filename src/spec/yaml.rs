//! YAML documents: parsing a compose file into a value tree, resolving merge keys
//! (`<<`), keeping the `!reset` / `!override` tags for the merge phase, and finding
//! the line of a key path in the source text for error messages.
//!
//! Owns the only contact with `serde_yaml` parsing; must not interpret compose keys.

use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use super::error::{SpecError, SpecErrorKind};
use super::path::{KeyPath, Segment};
use std::path::Path;

/// The tag that removes a key from what an earlier file declared.
pub const RESET_TAG: &str = "reset";
/// The tag that replaces (instead of merging) what an earlier file declared.
pub const OVERRIDE_TAG: &str = "override";

/// Deepest nesting accepted; deeper documents are refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Parses one compose document. An empty document is an empty mapping.
pub fn parse(file: &Path, text: &str) -> Result<Value, SpecError> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        let message = e.to_string();
        SpecError::new(SpecErrorKind::Yaml(strip_location(&message)))
            .in_file(file)
            .at(loc.map(|l| (l.line(), l.column())))
    })?;
    let value = match value {
        Value::Null => Value::Mapping(Mapping::new()),
        v => v,
    };
    check_depth(&value, 0).map_err(|_| {
        SpecError::new(SpecErrorKind::Yaml(format!(
            "document nests deeper than {MAX_DEPTH} levels"
        )))
        .in_file(file)
    })?;
    let mut value = value;
    apply_merge_keys(&mut value)
        .map_err(|msg| SpecError::new(SpecErrorKind::Yaml(msg)).in_file(file))?;
    check_keys(&value, &KeyPath::root()).map_err(|e| e.locate_in(file, text))?;
    Ok(value)
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn check_depth(value: &Value, depth: usize) -> Result<(), ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    match value {
        Value::Mapping(m) => m.values().try_for_each(|v| check_depth(v, depth + 1)),
        Value::Sequence(s) => s.iter().try_for_each(|v| check_depth(v, depth + 1)),
        Value::Tagged(t) => check_depth(&t.value, depth + 1),
        _ => Ok(()),
    }
}

/// Resolves YAML merge keys (`<<: *anchor` or `<<: [*a, *b]`): keys of the mapping
/// itself win, then earlier merge sources over later ones.
pub fn apply_merge_keys(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Mapping(map) => {
            for v in map.values_mut() {
                apply_merge_keys(v)?;
            }
            let key = Value::String("<<".to_string());
            if let Some(merge) = map.remove(&key) {
                let sources = match merge {
                    Value::Mapping(m) => vec![m],
                    Value::Sequence(seq) => {
                        let mut out = Vec::new();
                        for item in seq {
                            match item {
                                Value::Mapping(m) => out.push(m),
                                _ => {
                                    return Err("a merge key (<<) sequence may hold only mappings"
                                        .to_string())
                                }
                            }
                        }
                        out
                    }
                    Value::Null => Vec::new(),
                    _ => return Err("a merge key (<<) must refer to a mapping".to_string()),
                };
                for source in sources {
                    for (k, v) in source {
                        if !map.contains_key(&k) {
                            map.insert(k, v);
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Sequence(seq) => seq.iter_mut().try_for_each(apply_merge_keys),
        Value::Tagged(t) => apply_merge_keys(&mut t.value),
        _ => Ok(()),
    }
}

/// Mapping keys must be strings, as in Compose: `80: x` or `true: x` is refused.
fn check_keys(value: &Value, path: &KeyPath) -> Result<(), SpecError> {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let Value::String(key) = k else {
                    let shown = scalar_to_string(k).unwrap_or_else(|| "null".to_string());
                    return Err(SpecError::new(SpecErrorKind::Yaml(format!(
                        "non-string key in {}: {shown}",
                        if path.is_empty() {
                            "the top level".to_string()
                        } else {
                            path.to_string()
                        }
                    )))
                    .key(path)
                    .hint(format!("quote the key: \"{shown}\"")));
                };
                check_keys(v, &path.key(key))?;
            }
            Ok(())
        }
        Value::Sequence(seq) => seq
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_keys(v, &path.index(i))),
        Value::Tagged(t) => check_keys(&t.value, path),
        _ => Ok(()),
    }
}

/// The text of a scalar as compose reads it (`8000` → "8000", `true` → "true").
pub fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(number_to_string(n)),
        Value::Null => None,
        Value::Tagged(t) => scalar_to_string(&t.value),
        _ => None,
    }
}

/// Formats a YAML number as compose prints it: integers as is, integral floats
/// without a fraction (`1e3` → "1000").
pub fn number_to_string(n: &serde_yaml::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => n.to_string(),
    }
}

/// Whether a value carries the given tag (`!reset`, `!override`).
pub fn has_tag(value: &Value, tag: &str) -> bool {
    matches!(value, Value::Tagged(t) if t.tag == Tag::new(tag))
}

/// Removes `!reset` entries and unwraps `!override` values: what a document means
/// when nothing precedes it.
pub fn strip_tags(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            map.retain(|_, v| !has_tag(v, RESET_TAG));
            for v in map.values_mut() {
                strip_tags(v);
            }
        }
        Value::Sequence(seq) => {
            seq.retain(|v| !has_tag(v, RESET_TAG));
            seq.iter_mut().for_each(strip_tags);
        }
        Value::Tagged(_) => {
            if let Value::Tagged(t) = std::mem::replace(value, Value::Null) {
                let TaggedValue { value: inner, .. } = *t;
                *value = inner;
                strip_tags(value);
            }
        }
        _ => {}
    }
}

/// Finds the 1-based line and column of a key path in a block-style YAML text.
/// Flow-style parts fall back to the nearest enclosing key that can be found.
pub fn locate(text: &str, path: &KeyPath) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    // The current node: the line it starts on, the column of its content, and the
    // range of lines that belong to it.
    let mut found: Option<(usize, usize)> = None;
    let mut start = 0usize;
    let mut end = lines.len();
    // The column children must be deeper than.
    let mut parent_indent: isize = -1;
    // When a sequence item is `- key: v`, its mapping starts on the dash line.
    let mut inline_col: Option<usize> = None;
    for seg in path.segments() {
        let hit = match seg {
            Segment::Key(key) => find_key(&lines, start, end, parent_indent, inline_col, key),
            Segment::Index(i) => find_item(&lines, start, end, parent_indent, inline_col, *i),
        };
        let Some((line, col, content_col, same_line_child)) = hit else {
            break;
        };
        found = Some((line + 1, col + 1));
        parent_indent = col as isize;
        start = if same_line_child { line } else { line + 1 };
        inline_col = if same_line_child {
            Some(content_col)
        } else {
            None
        };
        end = block_end(&lines, line + 1, end, col);
    }
    found
}

fn indent_of(line: &str) -> Option<usize> {
    let trimmed = line.trim_start_matches(' ');
    if trimmed.is_empty() || trimmed.starts_with('#') {
        None
    } else {
        Some(line.len() - trimmed.len())
    }
}

fn block_end(lines: &[&str], from: usize, limit: usize, col: usize) -> usize {
    for (i, line) in lines.iter().enumerate().take(limit).skip(from) {
        if let Some(ind) = indent_of(line) {
            if ind <= col && !line.trim_start().starts_with("- ") || ind < col {
                return i;
            }
        }
    }
    limit
}

fn key_matches(content: &str, key: &str) -> bool {
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        if let Some(rest) = content.strip_prefix(&quoted) {
            let rest = rest.trim_start_matches(' ');
            if rest.starts_with(':') {
                return true;
            }
        }
    }
    false
}

/// Returns (line, column of key, column of content, whether children may start on this line).
fn find_key(
    lines: &[&str],
    start: usize,
    end: usize,
    parent_indent: isize,
    inline_col: Option<usize>,
    key: &str,
) -> Option<(usize, usize, usize, bool)> {
    let mut level: Option<usize> = inline_col;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let Some(ind) = indent_of(line) else { continue };
        let (col, content) = if i == start && inline_col.is_some() {
            let c = inline_col.unwrap_or(ind);
            (c, line.get(c..).unwrap_or(""))
        } else {
            (ind, &line[ind..])
        };
        if (col as isize) <= parent_indent && inline_col.is_none() {
            continue;
        }
        let lvl = *level.get_or_insert(col);
        if col != lvl {
            continue;
        }
        if key_matches(content, key) {
            return Some((i, col, col, false));
        }
    }
    None
}

fn find_item(
    lines: &[&str],
    start: usize,
    end: usize,
    parent_indent: isize,
    inline_col: Option<usize>,
    index: usize,
) -> Option<(usize, usize, usize, bool)> {
    let mut seen = 0usize;
    let mut level: Option<usize> = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let Some(ind) = indent_of(line) else { continue };
        let col = if i == start {
            inline_col.unwrap_or(ind)
        } else {
            ind
        };
        let content = line.get(col..).unwrap_or("");
        if (col as isize) < parent_indent {
            continue;
        }
        if !(content.starts_with("- ") || content == "-") {
            continue;
        }
        let lvl = *level.get_or_insert(col);
        if col != lvl {
            continue;
        }
        if seen == index {
            let after = content[1..].len() - content[1..].trim_start_matches(' ').len();
            return Some((i, col, col + 1 + after, true));
        }
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(s: &str) -> KeyPath {
        KeyPath::parse(s)
    }

    #[test]
    fn locates_nested_keys_and_items() {
        let text = "services:\n  web:\n    image: x\n    ports:\n      - \"80:80\"\n      - target: 1\n        published: 2\n  db:\n    image: y\n";
        assert_eq!(locate(text, &kp("services.web.image")), Some((3, 5)));
        assert_eq!(locate(text, &kp("services.web.ports[0]")), Some((5, 7)));
        assert_eq!(locate(text, &kp("services.web.ports[1]")), Some((6, 7)));
        assert_eq!(
            locate(text, &kp("services.web.ports[1].published")),
            Some((7, 9))
        );
        assert_eq!(locate(text, &kp("services.db.image")), Some((9, 5)));
        // Unknown leaf: the nearest known ancestor.
        assert_eq!(locate(text, &kp("services.db.nope")), Some((8, 3)));
    }

    #[test]
    fn merge_keys_local_wins() {
        let mut v: Value =
            serde_yaml::from_str("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  y: 3\n").unwrap_or_default();
        apply_merge_keys(&mut v).unwrap_or_default();
        assert_eq!(v["b"]["x"], Value::from(1));
        assert_eq!(v["b"]["y"], Value::from(3));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(Path::new("bomb.yaml"), &text).expect_err("bomb must fail");
        assert!(err.to_string().contains("bomb.yaml"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let flow = format!("services: {}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert!(parse(Path::new("deep.yaml"), &flow).is_err());
        let mut block = String::from("services:\n");
        for i in 0..1000 {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(2 * (i + 1))));
        }
        assert!(parse(Path::new("deep.yaml"), &block).is_err());
    }

    #[test]
    fn non_string_keys_are_refused_with_their_path() {
        let e = parse(
            Path::new("k.yaml"),
            "services:\n  a:\n    environment:\n      1: one\n",
        )
        .expect_err("numeric key");
        assert!(
            e.to_string()
                .contains("non-string key in services.a.environment: 1"),
            "{e}"
        );
        assert!(e.to_string().starts_with("k.yaml:3:5"), "{e}");
    }

    #[test]
    fn integral_floats_print_without_fraction() {
        let v: Value = serde_yaml::from_str("1e3").unwrap_or_default();
        assert_eq!(scalar_to_string(&v).as_deref(), Some("1000"));
        let v: Value = serde_yaml::from_str("1.5").unwrap_or_default();
        assert_eq!(scalar_to_string(&v).as_deref(), Some("1.5"));
    }

    #[test]
    fn strip_tags_removes_resets() {
        let mut v: Value =
            serde_yaml::from_str("a: !reset null\nb: !override [1]\nc: 2\n").unwrap_or_default();
        strip_tags(&mut v);
        assert!(v.get("a").is_none());
        assert_eq!(
            v["b"],
            serde_yaml::from_str::<Value>("[1]").unwrap_or_default()
        );
    }
}

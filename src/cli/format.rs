//! `--format` as Docker reads it, for every listing verb: `table` (or
//! nothing: the verb's own columns), `json` (one JSON object a line),
//! `table TEMPLATE` (a header row made by running the template over the
//! column names, then a row an item, aligned as Go's tabwriter aligns) or
//! a Go template run once an item (`{{.Names}}\t{{.Status}}`,
//! `{{json .}}`). Templates are Go's text/template (the gtmpl crate) with
//! Docker's functions: `json`, `join`, `split`, `lower`, `upper`, `title`,
//! `truncate`, `pad`, `println`, beside the builtins (`index`, `printf`,
//! `len`, `eq`, `range`, `if`…).
//!
//! Owns turning JSON items into text; what an item holds is the verb's.

use std::collections::{BTreeMap, HashMap};

use gtmpl::{Context, FuncError, Template, Value};

/// Why a format could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Exec(String),
}

/// A parsed `--format`.
pub enum Format {
    /// The verb's own columns.
    Table,
    /// One JSON object a line.
    Json,
    /// A header from the template, then a row an item, aligned.
    TableTemplate(Template),
    /// The template, once an item.
    Template(Template),
}

impl Format {
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        let t = text.trim();
        if t.is_empty() || t == "table" {
            return Ok(Format::Table);
        }
        if t == "json" {
            return Ok(Format::Json);
        }
        if let Some(rest) = text.strip_prefix("table ") {
            return Ok(Format::TableTemplate(template(&unescape(rest))?));
        }
        Ok(Format::Template(template(&unescape(text))?))
    }

    pub fn is_table(&self) -> bool {
        matches!(self, Format::Table)
    }

    /// The items as this format prints them (the default table is the
    /// verb's: None). `headers` names the columns (`ID` → `CONTAINER ID`);
    /// other fields are named by their words in capitals.
    pub fn render(
        &self,
        items: &[serde_json::Value],
        headers: &[(&str, &str)],
    ) -> Result<Option<String>, FormatError> {
        match self {
            Format::Table => Ok(None),
            Format::Json => {
                let mut out = String::new();
                for i in items {
                    out.push_str(&json_text(i));
                    out.push('\n');
                }
                Ok(Some(out))
            }
            Format::Template(t) => {
                let mut out = String::new();
                for i in items {
                    out.push_str(&run(t, i)?);
                    out.push('\n');
                }
                Ok(Some(out))
            }
            Format::TableTemplate(t) => {
                let mut names = serde_json::Map::new();
                let keys: Vec<String> = items
                    .first()
                    .and_then(|i| i.as_object())
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_else(|| headers.iter().map(|(k, _)| k.to_string()).collect());
                for k in keys {
                    let h = headers
                        .iter()
                        .find(|(f, _)| *f == k)
                        .map(|(_, h)| h.to_string())
                        .unwrap_or_else(|| header_of(&k));
                    names.insert(k, serde_json::Value::String(h));
                }
                let mut lines = vec![run(t, &serde_json::Value::Object(names))?];
                for i in items {
                    lines.push(run(t, i)?);
                }
                Ok(Some(align(&lines)))
            }
        }
    }
}

/// Prints what `render` made, or lets the verb print its table.
pub fn print_or(
    format: &Format,
    items: &[serde_json::Value],
    headers: &[(&str, &str)],
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    use std::io::Write;
    let text = match format.render(items, headers)? {
        Some(t) => t,
        None => table(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `print_or` for Compose's verbs that frame `json` as one array
/// (`compose ls`, `compose images`).
pub fn print_array_or(
    format: &Format,
    items: Vec<serde_json::Value>,
    headers: &[(&str, &str)],
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if matches!(format, Format::Json) {
        println!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    print_or(format, &items, headers, table)
}

/// What `inspect` prints: the records as one indented JSON array, or
/// with `--format` a template run over each (`{{.State.Status}}`).
pub fn print_inspect(records: &[serde_json::Value], format: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let text = match format.map(Format::parse).transpose()? {
        None | Some(Format::Table) | Some(Format::Json) => {
            format!("{}\n", serde_json::to_string_pretty(records)?)
        }
        Some(f) => f.render(records, &[])?.unwrap_or_default(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `\t` and `\n` as the shell passed them literally, as Docker reads them.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// `CreatedAt` → `CREATED AT`.
fn header_of(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        if i > 0 && c.is_uppercase() && (prev_lower || next_lower) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// Go's tabwriter as Docker sets it up: cells padded to the widest of
/// their column plus 3, at least 10; the last cell of a line as it is.
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = (cell.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < r.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// JSON as Go's encoder writes a map: keys sorted, no spaces.
fn json_text(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => {
                let m: BTreeMap<&String, serde_json::Value> =
                    o.iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).unwrap_or_default()
}

fn template(text: &str) -> Result<Template, FormatError> {
    let mut t = Template::default();
    let funcs: &[(&str, gtmpl::Func)] = &[
        ("json", json_fn),
        ("join", join_fn),
        ("split", split_fn),
        ("lower", lower_fn),
        ("upper", upper_fn),
        ("title", title_fn),
        ("truncate", truncate_fn),
        ("pad", pad_fn),
    ];
    t.add_funcs(funcs);
    t.parse(text)
        .map_err(|e| FormatError::Parse(e.to_string()))?;
    Ok(t)
}

fn run(t: &Template, item: &serde_json::Value) -> Result<String, FormatError> {
    t.render(&Context::from(to_value(item)))
        .map_err(|e| FormatError::Exec(e.to_string()))
}

/// serde_json → the template's values.
fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (_, Some(i), _) => Value::from(i),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// The template's values → JSON (maps sorted, as Go's encoder sorts them).
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                serde_json::json!(u)
            } else if let Some(i) = n.as_i64() {
                serde_json::json!(i)
            } else {
                n.as_f64()
                    .map_or(serde_json::Value::Null, |f| serde_json::json!(f))
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            let m: BTreeMap<&String, serde_json::Value> =
                o.iter().map(|(k, v)| (k, to_json(v))).collect();
            serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::NoValue | Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn arg<'a>(args: &'a [Value], n: usize, name: &str) -> Result<&'a Value, FuncError> {
    args.get(n)
        .ok_or_else(|| FuncError::AtLeastXArgs(name.into(), n + 1))
}

fn json_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        serde_json::to_string(&to_json(arg(args, 0, "json")?))
            .map_err(|e| FuncError::Generic(e.to_string()))?,
    ))
}

fn join_fn(args: &[Value]) -> Result<Value, FuncError> {
    let sep = text(arg(args, 1, "join")?);
    let parts: Vec<String> = match arg(args, 0, "join")? {
        Value::Array(a) => a.iter().map(text).collect(),
        other => vec![text(other)],
    };
    Ok(Value::String(parts.join(&sep)))
}

fn split_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "split")?);
    let sep = text(arg(args, 1, "split")?);
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    ))
}

fn lower_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "lower")?).to_lowercase()))
}

fn upper_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "upper")?).to_uppercase()))
}

fn title_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "title")?);
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

fn truncate_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "truncate")?);
    let n = match arg(args, 1, "truncate")? {
        Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
        other => text(other).parse().unwrap_or(0),
    };
    Ok(Value::String(s.chars().take(n).collect()))
}

fn pad_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "pad")?);
    let n = |i: usize| -> usize {
        match args.get(i) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
            _ => 0,
        }
    };
    Ok(Value::String(format!(
        "{}{s}{}",
        " ".repeat(n(1)),
        " ".repeat(n(2))
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<serde_json::Value> {
        vec![
            serde_json::json!({"ID": "abc", "Names": "web", "Status": "Up 2 seconds",
                "Labels": "tier=web,team=core", "Ports": ["80/tcp", "443/tcp"], "Size": 3}),
            serde_json::json!({"ID": "defghijklmnop", "Names": "db", "Status": "Exited (0)",
                "Labels": "", "Ports": [], "Size": 12}),
        ]
    }

    fn render(format: &str) -> String {
        Format::parse(format)
            .and_then(|f| f.render(&items(), &[("ID", "CONTAINER ID")]))
            .unwrap_or_else(|e| panic!("{format}: {e}"))
            .unwrap_or_default()
    }

    #[test]
    fn templates_run_once_an_item() {
        assert_eq!(
            render("{{.Names}}\t{{.Status}}"),
            "web\tUp 2 seconds\ndb\tExited (0)\n"
        );
        assert_eq!(
            render("{{.Names}}\\t{{.Size}}"),
            "web\t3\ndb\t12\n",
            "\\t as typed"
        );
        assert_eq!(render("{{json .Ports}}"), "[\"80/tcp\",\"443/tcp\"]\n[]\n");
        assert!(render("{{json .}}").starts_with("{\"ID\":\"abc\",\"Labels\""));
    }

    #[test]
    fn docker_functions_and_builtins() {
        assert_eq!(render("{{join .Ports \", \"}}"), "80/tcp, 443/tcp\n\n");
        assert_eq!(render("{{upper .Names}}"), "WEB\nDB\n");
        assert_eq!(render("{{lower (upper .Names)}}"), "web\ndb\n");
        assert_eq!(render("{{title .Status}}"), "Up 2 Seconds\nExited (0)\n");
        assert_eq!(render("{{truncate .ID 4}}"), "abc\ndefg\n");
        assert_eq!(render("{{index (split .Labels \",\") 0}}"), "tier=web\n\n");
        assert_eq!(render("{{printf \"%s!\" .Names}}"), "web!\ndb!\n");
        assert_eq!(render("{{len .Ports}}"), "2\n0\n");
        assert_eq!(
            render("{{range .Ports}}[{{.}}]{{end}}"),
            "[80/tcp][443/tcp]\n\n"
        );
        assert_eq!(
            render("{{if eq .Names \"web\"}}front{{else}}back{{end}}"),
            "front\nback\n"
        );
        assert_eq!(render("{{pad .Names 1 2}}|"), " web  |\n db  |\n");
    }

    #[test]
    fn table_templates_get_a_header_and_aligned_columns() {
        assert_eq!(
            render("table {{.ID}}\t{{.Names}}\t{{.Status}}"),
            "CONTAINER ID    NAMES     STATUS\nabc             web       Up 2 seconds\ndefghijklmnop   db        Exited (0)\n"
        );
        assert_eq!(header_of("CreatedAt"), "CREATED AT");
        assert_eq!(header_of("LocalVolumes"), "LOCAL VOLUMES");
        assert_eq!(header_of("ID"), "ID");
    }

    #[test]
    fn json_is_one_sorted_object_a_line_and_table_is_the_verbs() {
        let out = render("json");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("{\"ID\":\"abc\",\"Labels\":\"tier=web,team=core\",\"Names\""));
        assert!(Format::parse("table")
            .map(|f| f.is_table())
            .unwrap_or(false));
        assert!(Format::parse("").map(|f| f.is_table()).unwrap_or(false));
        assert!(Format::parse("{{.Names").is_err(), "unclosed action");
    }
}

//! Validation against the Compose Specification's JSON schema (draft-07, the
//! copy in `compose-spec.json`). Implements the keywords that schema uses
//! (`type`, `properties`, `patternProperties`, `additionalProperties`,
//! `required`, `enum`, `oneOf`/`anyOf`/`allOf`, `items`, `uniqueItems`,
//! `minimum`, `maximum`, `pattern`, `$ref`) and reports errors in Compose's
//! words with the key path of the offending value.
//!
//! Pure; compiled once per process and shared.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value as Json;

use super::path::KeyPath;

const SCHEMA_TEXT: &str = include_str!("compose-spec.json");

/// A schema violation: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub path: KeyPath,
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}{}", self.path, self.message)
        }
    }
}

struct Schema {
    root: Json,
    patterns: HashMap<String, Pattern>,
}

/// A `pattern` or `patternProperties` key of the schema. Most keys a file
/// has meet only `^x-`, so a plain prefix is matched as one, and a regular
/// expression is compiled the first time a value meets it: compiling all of
/// them was a millisecond of every compose command.
enum Pattern {
    Prefix(String),
    Regex(String, OnceLock<Option<Regex>>),
}

impl Pattern {
    fn new(p: &str) -> Pattern {
        match p.strip_prefix('^') {
            Some(rest)
                if !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '-' || c == '_') =>
            {
                Pattern::Prefix(rest.to_string())
            }
            _ => Pattern::Regex(p.to_string(), OnceLock::new()),
        }
    }

    /// Whether `text` matches; a pattern that does not compile (none in the
    /// embedded schema: a test checks) matches nothing.
    fn is_match(&self, text: &str) -> bool {
        match self {
            Pattern::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Pattern::Regex(p, re) => re
                .get_or_init(|| Regex::new(p).ok())
                .as_ref()
                .is_some_and(|re| re.is_match(text)),
        }
    }
}

fn schema() -> Option<&'static Schema> {
    static SCHEMA: OnceLock<Option<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let root: Json = serde_json::from_str(SCHEMA_TEXT).ok()?;
            let mut patterns = HashMap::new();
            collect_patterns(&root, &mut patterns);
            Some(Schema { root, patterns })
        })
        .as_ref()
}

fn collect_patterns(node: &Json, out: &mut HashMap<String, Pattern>) {
    match node {
        Json::Object(map) => {
            if let Some(Json::Object(pp)) = map.get("patternProperties") {
                for k in pp.keys() {
                    out.entry(k.clone()).or_insert_with(|| Pattern::new(k));
                }
            }
            if let Some(Json::String(p)) = map.get("pattern") {
                out.entry(p.clone()).or_insert_with(|| Pattern::new(p));
            }
            map.values().for_each(|v| collect_patterns(v, out));
        }
        Json::Array(items) => items.iter().for_each(|v| collect_patterns(v, out)),
        _ => {}
    }
}

/// Validates a whole compose document.
pub fn validate(doc: &Json) -> Result<(), SchemaError> {
    let Some(s) = schema() else {
        return Err(SchemaError {
            path: KeyPath::root(),
            message: "the embedded compose schema could not be read".to_string(),
        });
    };
    let mut v = Validator { schema: s };
    v.check(&s.root, doc, &KeyPath::root())
}

struct Validator<'a> {
    schema: &'a Schema,
}

fn type_name(t: &str) -> &str {
    match t {
        "object" => "mapping",
        "array" => "list",
        other => other,
    }
}

fn json_is(t: &str, v: &Json) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => {
            v.is_i64()
                || v.is_u64()
                || v.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        _ => true,
    }
}

fn sep(path: &KeyPath) -> &'static str {
    if path.is_empty() {
        ""
    } else {
        " "
    }
}

impl<'a> Validator<'a> {
    fn resolve(&self, reference: &str) -> Option<&'a Json> {
        let pointer = reference.strip_prefix('#')?;
        self.schema.root.pointer(pointer)
    }

    fn check(&mut self, node: &'a Json, v: &Json, path: &KeyPath) -> Result<(), SchemaError> {
        let Json::Object(s) = node else {
            return Ok(());
        };
        let fail = |message: String| SchemaError {
            path: path.clone(),
            message,
        };
        if let Some(Json::String(r)) = s.get("$ref") {
            let target = self
                .resolve(r)
                .ok_or_else(|| fail(format!(": unknown schema reference {r}")))?;
            self.check(target, v, path)?;
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Json::String(one) => vec![one.as_str()],
                Json::Array(many) => many.iter().filter_map(|x| x.as_str()).collect(),
                _ => Vec::new(),
            };
            if !types.is_empty() && !types.iter().any(|ty| json_is(ty, v)) {
                let names: Vec<&str> = types.iter().map(|t| type_name(t)).collect();
                return Err(fail(format!(
                    "{}must be a {}",
                    sep(path),
                    names.join(" or ")
                )));
            }
        }
        if let Some(Json::Array(options)) = s.get("enum") {
            if !options.contains(v) {
                let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
                return Err(fail(format!(
                    "{}must be one of {}",
                    sep(path),
                    list.join(", ")
                )));
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Json::Array(branches)) = s.get(key) {
                self.one_of(branches, v, path)?;
            }
        }
        if let Some(Json::Array(all)) = s.get("allOf") {
            for b in all {
                self.check(b, v, path)?;
            }
        }
        match v {
            Json::Object(obj) => self.object(s, obj, path)?,
            Json::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &path.index(i))?;
                    }
                }
                if s.get("uniqueItems") == Some(&Json::Bool(true)) {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            return Err(fail(format!(
                                "{}must contain unique items: {} is duplicated",
                                sep(path),
                                item
                            )));
                        }
                    }
                }
            }
            Json::Number(n) => {
                if let (Some(min), Some(x)) =
                    (s.get("minimum").and_then(|m| m.as_f64()), n.as_f64())
                {
                    if x < min {
                        return Err(fail(format!(
                            "{}must be greater than or equal to {min}",
                            sep(path)
                        )));
                    }
                }
                if let (Some(max), Some(x)) =
                    (s.get("maximum").and_then(|m| m.as_f64()), n.as_f64())
                {
                    if x > max {
                        return Err(fail(format!(
                            "{}must be less than or equal to {max}",
                            sep(path)
                        )));
                    }
                }
            }
            Json::String(text) => {
                if let Some(Json::String(p)) = s.get("pattern") {
                    if let Some(re) = self.schema.patterns.get(p) {
                        if !re.is_match(text) {
                            return Err(fail(format!(
                                "{}{text:?} does not match the pattern {p:?}",
                                sep(path)
                            )));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn one_of(
        &mut self,
        branches: &'a [Json],
        v: &Json,
        path: &KeyPath,
    ) -> Result<(), SchemaError> {
        let mut errors = Vec::new();
        for b in branches {
            match self.check(b, v, path) {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e),
            }
        }
        // Report the branch that got furthest into the value: the most specific.
        // A branch failing on the value's own type is the least informative.
        let best = errors
            .iter()
            .filter(|e| !(e.path == *path && e.message.contains("must be a ")))
            .max_by_key(|e| e.path.len())
            .cloned();
        if let Some(e) = best {
            return Err(e);
        }
        let mut kinds: Vec<String> = Vec::new();
        for e in &errors {
            if let Some(i) = e.message.find("must be a ") {
                for k in e.message[i + 10..].split(" or ") {
                    if !kinds.iter().any(|x| x == k) {
                        kinds.push(k.to_string());
                    }
                }
            }
        }
        Err(SchemaError {
            path: path.clone(),
            message: if kinds.is_empty() {
                format!("{}is invalid", sep(path))
            } else {
                format!("{}must be a {}", sep(path), kinds.join(" or "))
            },
        })
    }

    fn object(
        &mut self,
        s: &'a serde_json::Map<String, Json>,
        obj: &serde_json::Map<String, Json>,
        path: &KeyPath,
    ) -> Result<(), SchemaError> {
        if let Some(Json::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(|r| r.as_str()) {
                if !obj.contains_key(r) {
                    return Err(SchemaError {
                        path: path.clone(),
                        message: format!(
                            "{}missing property '{r}'",
                            if path.is_empty() { "" } else { ": " }
                        ),
                    });
                }
            }
        }
        let props = s.get("properties").and_then(|p| p.as_object());
        let patterns = s.get("patternProperties").and_then(|p| p.as_object());
        let additional = s.get("additionalProperties");
        let mut extra: Vec<&str> = Vec::new();
        for (k, val) in obj {
            let child = path.key(k);
            let mut matched = false;
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                matched = true;
                self.check(ps, val, &child)?;
            }
            if let Some(pats) = patterns {
                for (pat, ps) in pats {
                    if self
                        .schema
                        .patterns
                        .get(pat)
                        .is_some_and(|re| re.is_match(k))
                    {
                        matched = true;
                        self.check(ps, val, &child)?;
                    }
                }
            }
            if !matched {
                match additional {
                    Some(Json::Bool(false)) => extra.push(k),
                    Some(sub @ Json::Object(_)) => self.check(sub, val, &child)?,
                    _ => {}
                }
            }
        }
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|k| format!("'{k}'")).collect();
            return Err(SchemaError {
                path: path.clone(),
                message: format!(
                    "{}additional properties {} not allowed",
                    if path.is_empty() { "" } else { ": " },
                    list.join(", ")
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_of_the_schema_compiles_and_prefixes_match_as_regexes_do() {
        let schema = schema().unwrap_or_else(|| panic!("the embedded schema does not parse"));
        assert!(schema.patterns.len() >= 5, "{}", schema.patterns.len());
        for (p, pattern) in &schema.patterns {
            let re = Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            for text in ["x-extra", "x", "web_1", "nx-a", "always", "", "a b"] {
                assert_eq!(pattern.is_match(text), re.is_match(text), "{p} on {text:?}");
            }
        }
        assert!(matches!(Pattern::new("^x-"), Pattern::Prefix(_)));
        assert!(matches!(Pattern::new("^[a-z]+$"), Pattern::Regex(..)));
    }

    fn check(yaml: &str) -> Result<(), String> {
        let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap_or_default();
        let j: Json = serde_json::to_value(v).unwrap_or_default();
        validate(&j).map_err(|e| e.to_string())
    }

    #[test]
    fn schema_loads_and_accepts_a_valid_file() {
        assert_eq!(
            check("services:\n  web:\n    image: nginx\n    ports: ['80:80', {target: 81}]\n    x-custom: 1\nx-top: {a: 1}\n"),
            Ok(())
        );
    }

    #[test]
    fn null_service_must_be_a_mapping() {
        assert_eq!(
            check("services:\n  nil:\n"),
            Err("services.nil must be a mapping".to_string())
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        assert_eq!(
            check("services:\n  app:\n    image: x\n    network: host\n"),
            Err("services.app: additional properties 'network' not allowed".to_string())
        );
        assert_eq!(
            check("servics: {}\n"),
            Err("additional properties 'servics' not allowed".to_string())
        );
    }

    #[test]
    fn wrong_types_and_enums() {
        let e = check("services:\n  a:\n    image: x\n    privileged: [1]\n").unwrap_err();
        assert_eq!(e, "services.a.privileged must be a boolean or string");
        let e = check(
            "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: whenever}\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("services.a.depends_on.b.condition must be one of"),
            "{e}"
        );
    }

    #[test]
    fn unique_items() {
        let e = check("services:\n  a:\n    image: x\n    cap_add: [A, A]\n").unwrap_err();
        assert!(e.contains("unique"), "{e}");
    }
}

//! Rendering a project as `docker compose config` prints it: YAML or JSON with
//! the same structure, `$` written back as `$$` (unless interpolation was off),
//! services sorted by name, sections in Compose's order.
//!
//! Pure: returns strings; the CLI writes them.

use serde_json::{Map, Value as Json};
use serde_yaml::Value;

use super::model::Project;

const SECTION_ORDER: &[&str] = &[
    "name", "services", "networks", "volumes", "secrets", "configs", "models",
];

fn escape(v: &mut Json) {
    match v {
        Json::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Json::Array(a) => a.iter_mut().for_each(escape),
        Json::Object(o) => {
            if o.keys().any(|k| k.contains('$')) {
                let old = std::mem::take(o);
                for (k, mut v) in old {
                    escape(&mut v);
                    o.insert(k.replace('$', "$$"), v);
                }
            } else {
                o.values_mut().for_each(escape);
            }
        }
        _ => {}
    }
}

fn sorted(v: Json) -> Json {
    match v {
        Json::Object(o) => {
            let mut entries: Vec<(String, Json)> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(entries.into_iter().collect())
        }
        other => other,
    }
}

/// The project as a JSON value, in output order.
pub fn to_json(project: &Project) -> Json {
    let mut out = Map::new();
    out.insert("name".into(), Json::String(project.name.clone()));
    let model: Json =
        serde_json::to_value(Value::Mapping(project.model.clone())).unwrap_or(Json::Null);
    let Json::Object(mut model) = model else {
        return Json::Object(out);
    };
    for key in SECTION_ORDER.iter().skip(1) {
        if let Some(mut v) = model.remove(*key) {
            if *key == "services" {
                if let Json::Object(services) = v {
                    v = Json::Object(
                        services
                            .into_iter()
                            .map(|(k, s)| (k, sorted(s)))
                            .collect::<Map<String, Json>>(),
                    );
                    v = sorted(v);
                }
            } else {
                v = sorted(v);
            }
            out.insert((*key).to_string(), v);
        }
    }
    let mut rest: Vec<(String, Json)> = model.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(rest);
    let mut v = Json::Object(out);
    if project.interpolated {
        escape(&mut v);
    }
    v
}

/// `config --format json`.
pub fn to_json_text(project: &Project) -> String {
    serde_json::to_string_pretty(&to_json(project)).unwrap_or_default()
}

/// `config` (YAML).
pub fn to_yaml_text(project: &Project) -> String {
    let json = to_json(project);
    serde_yaml::to_string(&json).unwrap_or_default()
}

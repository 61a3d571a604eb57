//! The image being built: its layers (diff ids and stored blobs), its
//! configuration and its history, as the cache records them.
//!
//! Owns the image configuration's edits; knows nothing of steps.

use serde_json::{json, Map, Value};

use crate::image::store::LayerBlob;

/// The image being built: layers, configuration, history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub(super) diff_ids: Vec<String>,
    /// The layers as stored, one per diff id: a pulled base's compressed
    /// blobs keep their own digests (records without them are stale).
    #[serde(default)]
    pub(super) blobs: Vec<LayerBlob>,
    pub(super) config: Map<String, Value>,
    pub(super) history: Vec<Value>,
}

impl State {
    pub(super) fn scratch() -> State {
        let mut config = Map::new();
        config.insert(
            "Env".into(),
            json!([format!("PATH={}", crate::runtime::process::DEFAULT_PATH)]),
        );
        State {
            diff_ids: Vec::new(),
            blobs: Vec::new(),
            config,
            history: Vec::new(),
        }
    }

    pub(super) fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn env_value(&self, key: &str) -> Option<String> {
        self.env().iter().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    pub(super) fn set_env(&mut self, key: &str, value: &str) {
        let mut env: Vec<String> = self
            .env()
            .into_iter()
            .filter(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) != key)
            .collect();
        env.push(format!("{key}={value}"));
        self.config.insert("Env".into(), json!(env));
    }

    pub(super) fn text(&self, key: &str) -> Option<String> {
        self.config
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    }

    pub(super) fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    pub(super) fn workdir(&self) -> String {
        self.text("WorkingDir").unwrap_or_else(|| "/".into())
    }

    pub(super) fn insert_map(&mut self, key: &str, name: &str, value: Value) {
        let entry = self
            .config
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Some(m) = entry.as_object_mut() {
            m.insert(name.to_string(), value);
        }
    }
}

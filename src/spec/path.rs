//! Key paths into a compose document (`services.web.ports[0]`): how errors name
//! a place and how path-dependent rules (casting, merging) match.
//!
//! Owns only the path type; knows nothing of compose semantics.

use std::fmt;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// Parses `a.b[2].c`; used by tests and by callers that build paths from text.
    pub fn parse(text: &str) -> Self {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(i) = rest.find('[') {
                if i > 0 {
                    segs.push(Segment::Key(rest[..i].to_string()));
                }
                rest = &rest[i..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let close = stripped.find(']').unwrap_or(stripped.len());
                    if let Ok(n) = stripped[..close].parse() {
                        segs.push(Segment::Index(n));
                    }
                    rest = stripped.get(close + 1..).unwrap_or("");
                }
            } else {
                segs.push(Segment::Key(rest.to_string()));
            }
        }
        KeyPath(segs)
    }

    pub fn key(&self, key: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Key(key.to_string()));
        KeyPath(v)
    }

    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Index(i));
        KeyPath(v)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Matches a pattern like `services.*.ports.*.published`, where `*` stands for
    /// any key or index.
    pub fn matches(&self, pattern: &str) -> bool {
        let parts: Vec<&str> = pattern.split('.').collect();
        parts.len() == self.0.len()
            && parts.iter().zip(&self.0).all(|(p, s)| match (p, s) {
                (&"*", _) => true,
                (p, Segment::Key(k)) => p == k,
                (_, Segment::Index(_)) => false,
            })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches() {
        let p = KeyPath::parse("services.web.ports[0].published");
        assert_eq!(p.to_string(), "services.web.ports[0].published");
        assert!(p.matches("services.*.ports.*.published"));
        assert!(!p.matches("services.*.ports.*"));
        assert!(KeyPath::root().key("a").index(3).matches("a.*"));
    }
}

//! The loader's error type: what went wrong, in which file, at which line and
//! column, under which key path, and what to do about it.
//!
//! Owns error formatting for spec/; never prints or logs.

use std::fmt;
use std::path::{Path, PathBuf};

use super::path::KeyPath;

/// What went wrong while loading a compose project.
#[derive(Debug, thiserror::Error)]
pub enum SpecErrorKind {
    #[error("{0}")]
    Yaml(String),
    #[error("{0}")]
    Io(String),
    #[error("no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in {0} and its parents)")]
    NoConfigFile(String),
    #[error("invalid interpolation format for {value:?}: {reason}")]
    Interpolation { value: String, reason: String },
    #[error("required variable {name} is missing a value: {message}")]
    RequiredVariable { name: String, message: String },
    #[error("{0}")]
    Schema(String),
    #[error("{0}")]
    Invalid(String),
    #[error("env file {0}")]
    EnvFile(String),
    #[error("{0}")]
    Extends(String),
    #[error("{0}")]
    Include(String),
    #[error("dependency cycle detected: {0}")]
    Cycle(String),
    #[error("invalid project name {0:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName(String),
}

/// Where and what: the parts of a loader error.
#[derive(Debug)]
pub struct SpecErrorParts {
    pub kind: SpecErrorKind,
    pub file: Option<PathBuf>,
    pub position: Option<(usize, usize)>,
    pub key_path: Option<KeyPath>,
    /// A path used only to find the line, when the message names the path itself.
    pub locator: Option<KeyPath>,
    pub hint: Option<String>,
}

/// A loader error with its place (boxed: errors are rare, results are many).
#[derive(Debug)]
pub struct SpecError(Box<SpecErrorParts>);

impl std::ops::Deref for SpecError {
    type Target = SpecErrorParts;
    fn deref(&self) -> &SpecErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for SpecError {
    fn deref_mut(&mut self) -> &mut SpecErrorParts {
        &mut self.0
    }
}

impl SpecError {
    pub fn new(kind: SpecErrorKind) -> Self {
        SpecError(Box::new(SpecErrorParts {
            kind,
            file: None,
            position: None,
            key_path: None,
            locator: None,
            hint: None,
        }))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        SpecError::new(SpecErrorKind::Invalid(message.into()))
    }

    pub fn in_file(mut self, file: &Path) -> Self {
        if self.file.is_none() {
            self.file = Some(file.to_path_buf());
        }
        self
    }

    pub fn at(mut self, position: Option<(usize, usize)>) -> Self {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    pub fn key(mut self, path: &KeyPath) -> Self {
        if self.key_path.is_none() && !path.is_empty() {
            self.key_path = Some(path.clone());
        }
        self
    }

    /// Finds the line by `path` without printing it (the message already does).
    pub fn located_by(mut self, path: &KeyPath) -> Self {
        self.locator = Some(path.clone());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Fills in the line and column from the file's text when the key path is known.
    pub fn locate_in(mut self, file: &Path, text: &str) -> Self {
        if self.position.is_none() {
            if let Some(path) = self.key_path.as_ref().or(self.locator.as_ref()) {
                self.position = super::yaml::locate(text, path);
            }
        }
        self.in_file(file)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, col)) = self.position {
                write!(f, ":{line}:{col}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(path) = &self.key_path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.kind)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

pub type Result<T> = std::result::Result<T, SpecError>;

//! Project options: which compose files, which directory, which environment,
//! profiles and project name — resolved from flags first, then Docker Compose's
//! variables (COMPOSE_FILE, COMPOSE_PATH_SEPARATOR, COMPOSE_PROJECT_NAME,
//! COMPOSE_PROFILES, COMPOSE_ENV_FILES, COMPOSE_DISABLE_ENV_FILE), which may
//! themselves come from the shell or the project's `.env`.
//!
//! Reads files (discovery, dotenv); never writes. The process environment is
//! passed in, never read here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dotenv::{self, Format};
use super::error::{Result, SpecError, SpecErrorKind};

/// File names looked for, in order, in the working directory and its parents.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
/// Override files merged after the default file when present beside it.
pub const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What the command line said (raw values; empty means "not given").
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// Services named on the command line; they enable their own profiles.
    pub services: Vec<String>,
    pub interpolate: bool,
    /// The directory berth was started in.
    pub cwd: PathBuf,
    /// The process environment.
    pub os_env: BTreeMap<String, String>,
    /// The content of `-f -`.
    pub stdin: Option<String>,
}

/// A compose file to load: its path (the working dir plus `-` for stdin) and text.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
}

/// Options after every default and variable has been applied.
#[derive(Debug, Clone)]
pub struct ResolvedOptions {
    pub files: Vec<ConfigFile>,
    pub working_dir: PathBuf,
    /// Shell variables over `.env` values: what interpolation sees.
    pub environment: BTreeMap<String, String>,
    pub profiles: Vec<String>,
    pub services: Vec<String>,
    pub project_name: Option<String>,
    pub interpolate: bool,
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    clean(&joined)
}

/// Lexically removes `.` and `..` components.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(SpecErrorKind::Io(format!(
            "cannot read {}: {e}",
            path.display()
        )))
    })
}

/// Reads dotenv files in order; later files override earlier ones, and `lookup`
/// (the shell) is consulted first while expanding.
pub fn read_env_files(
    files: &[PathBuf],
    base: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            SpecError::new(SpecErrorKind::EnvFile(format!(
                "{} not found: {e}",
                file.display()
            )))
        })?;
        let so_far = out.clone();
        let lookup = |k: &str| base.get(k).or_else(|| so_far.get(k)).cloned();
        let pairs = dotenv::parse(&text, Format::Expand, &lookup).map_err(|e| {
            SpecError::new(SpecErrorKind::EnvFile(format!("{}: {e}", file.display()))).in_file(file)
        })?;
        out.extend(pairs);
    }
    Ok(out)
}

fn non_empty<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| super::interpolate::parse_bool(v).unwrap_or(v == "1"))
}

/// Finds the default compose file in `dir` or its parents.
pub fn discover(dir: &Path) -> Option<PathBuf> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        for name in DEFAULT_FILES {
            let candidate = d.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
        cur = d.parent();
    }
    None
}

impl ProjectOptions {
    /// Applies defaults, variables and discovery; reads the files.
    pub fn resolve(&self) -> Result<ResolvedOptions> {
        let cwd = &self.cwd;
        let project_dir = self.project_directory.as_ref().map(|p| absolute(cwd, p));
        let base_dir = project_dir.clone().unwrap_or_else(|| cwd.clone());
        let disable_env_file = truthy(
            self.os_env
                .get("COMPOSE_DISABLE_ENV_FILE")
                .map(String::as_str),
        );

        // The project .env may set COMPOSE_* variables; the shell beats it.
        let early_env = {
            let dot = base_dir.join(".env");
            let mut env = BTreeMap::new();
            if !disable_env_file && self.env_files.is_empty() && dot.is_file() {
                env = read_env_files(std::slice::from_ref(&dot), &self.os_env)?;
            }
            env.extend(self.os_env.clone());
            env
        };

        let mut paths: Vec<PathBuf> = self.files.clone();
        if paths.is_empty() {
            if let Some(list) = non_empty(&early_env, "COMPOSE_FILE") {
                let sep = non_empty(&early_env, "COMPOSE_PATH_SEPARATOR").unwrap_or(":");
                paths = list
                    .split(sep)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect();
                for p in paths.iter_mut() {
                    *p = absolute(&base_dir, p);
                }
            }
        }
        let mut files = Vec::new();
        if paths.is_empty() {
            let found = discover(&base_dir).ok_or_else(|| {
                SpecError::new(SpecErrorKind::NoConfigFile(base_dir.display().to_string()))
                    .hint("create a compose.yaml, or name one with -f FILE")
            })?;
            let dir = found.parent().map(Path::to_path_buf).unwrap_or_default();
            files.push(ConfigFile {
                text: read_file(&found)?,
                path: found,
            });
            if let Some(over) = OVERRIDE_FILES
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
            {
                files.push(ConfigFile {
                    text: read_file(&over)?,
                    path: over,
                });
            }
        } else {
            for p in &paths {
                if p.as_os_str() == "-" {
                    let text = self.stdin.clone().unwrap_or_default();
                    files.push(ConfigFile {
                        path: base_dir.join("-"),
                        text,
                    });
                } else {
                    let path = absolute(cwd, p);
                    if !path.exists() {
                        return Err(SpecError::new(SpecErrorKind::Io(format!(
                            "open {}: no such file or directory",
                            path.display()
                        ))));
                    }
                    files.push(ConfigFile {
                        text: read_file(&path)?,
                        path,
                    });
                }
            }
        }

        let working_dir = match (&project_dir, files.first()) {
            (Some(d), _) => d.clone(),
            (None, Some(f)) if f.path.file_name().is_some_and(|n| n != "-") => f
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| cwd.clone()),
            _ => cwd.clone(),
        };

        let mut env_files: Vec<PathBuf> = self.env_files.iter().map(|p| absolute(cwd, p)).collect();
        if env_files.is_empty() {
            if let Some(list) = non_empty(&self.os_env, "COMPOSE_ENV_FILES") {
                env_files = list
                    .split(',')
                    .map(|p| absolute(&working_dir, Path::new(p)))
                    .collect();
            }
        }
        if env_files.is_empty() && !disable_env_file {
            let dot = working_dir.join(".env");
            if dot.is_file() {
                env_files.push(dot);
            }
        }
        let mut environment = read_env_files(&env_files, &self.os_env)?;
        environment.extend(self.os_env.clone());

        let mut profiles = self.profiles.clone();
        if profiles.is_empty() {
            if let Some(p) = non_empty(&environment, "COMPOSE_PROFILES") {
                profiles = p
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
        }
        let project_name = self
            .project_name
            .clone()
            .or_else(|| non_empty(&environment, "COMPOSE_PROJECT_NAME").map(str::to_string));
        Ok(ResolvedOptions {
            files,
            working_dir,
            environment,
            profiles,
            services: self.services.clone(),
            project_name,
            interpolate: self.interpolate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-opts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_default();
        d
    }

    fn opts(cwd: &Path) -> ProjectOptions {
        ProjectOptions {
            cwd: cwd.to_path_buf(),
            interpolate: true,
            ..Default::default()
        }
    }

    #[test]
    fn discovers_in_parents_with_override() {
        let d = tmp("disc");
        std::fs::write(d.join("compose.yaml"), "services: {}\n").unwrap_or_default();
        std::fs::write(d.join("compose.override.yaml"), "services: {}\n").unwrap_or_default();
        let sub = d.join("a/b");
        std::fs::create_dir_all(&sub).unwrap_or_default();
        let r = opts(&sub).resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.working_dir, d);
        assert!(r.files[1].path.ends_with("compose.override.yaml"));
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let d = tmp("none");
        let e = opts(&d).resolve().expect_err("nothing to find");
        assert!(
            e.to_string().contains("no configuration file provided"),
            "{e}"
        );
    }

    #[test]
    fn compose_variables_from_dotenv_and_flags_win() {
        let d = tmp("vars");
        std::fs::write(d.join("one.yaml"), "services: {}\n").unwrap_or_default();
        std::fs::write(d.join("two.yaml"), "services: {}\n").unwrap_or_default();
        std::fs::write(
            d.join(".env"),
            "COMPOSE_FILE=one.yaml;two.yaml\nCOMPOSE_PATH_SEPARATOR=;\nCOMPOSE_PROFILES=a,b\nCOMPOSE_PROJECT_NAME=fromdotenv\n",
        )
        .unwrap_or_default();
        let r = opts(&d).resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.profiles, vec!["a", "b"]);
        assert_eq!(r.project_name.as_deref(), Some("fromdotenv"));

        let mut o = opts(&d);
        o.profiles = vec!["c".into()];
        o.project_name = Some("flag".into());
        o.os_env
            .insert("COMPOSE_PROJECT_NAME".into(), "shell".into());
        let r = o.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.profiles, vec!["c"]);
        assert_eq!(r.project_name.as_deref(), Some("flag"));

        let mut o = opts(&d);
        o.os_env
            .insert("COMPOSE_PROJECT_NAME".into(), "shell".into());
        let r = o.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.project_name.as_deref(), Some("shell"));

        let mut o = opts(&d);
        o.os_env
            .insert("COMPOSE_DISABLE_ENV_FILE".into(), "true".into());
        o.files = vec![PathBuf::from("one.yaml")];
        let r = o.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert!(r.project_name.is_none());
        assert!(r.profiles.is_empty());
    }

    #[test]
    fn shell_beats_dotenv_while_it_expands() {
        let d = tmp("expand");
        std::fs::write(d.join("compose.yaml"), "services: {}\n").unwrap_or_default();
        std::fs::write(
            d.join(".env"),
            "IMAGE=default_env:${WHEREAMI}\nWHEREAMI=file\n",
        )
        .unwrap_or_default();
        let mut o = opts(&d);
        o.os_env.insert("WHEREAMI".into(), "shell".into());
        let r = o.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.environment.get("IMAGE").map(String::as_str),
            Some("default_env:shell")
        );
        assert_eq!(
            r.environment.get("WHEREAMI").map(String::as_str),
            Some("shell")
        );
    }
}

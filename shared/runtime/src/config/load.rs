//! Layering the sources and collecting every problem with them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Metadata};

use super::Config;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "NEARLINE__";

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `ingest.http_port`; empty when the problem is a whole source.
    pub key: String,
    /// Where the bad value came from: a file, an environment variable, or the defaults.
    pub origin: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), self.origin.is_empty()) {
            (true, _) => write!(f, "{}: {}", self.origin, self.reason),
            (false, true) => write!(f, "{}: {}", self.key, self.reason),
            (false, false) => write!(f, "{} (from {}): {}", self.key, self.origin, self.reason),
        }
    }
}

/// Everything wrong with a configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.problems.len())?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Loads the configuration: defaults, then `file` (if given), then environment variables
/// named `NEARLINE__SECTION__KEY`. Returns every problem found, not just the first.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    let mut problems = Vec::new();
    let mut figment = defaults.clone();
    if let Some(path) = file {
        if path.is_file() {
            figment = figment.merge(Toml::file_exact(path));
        } else {
            problems.push(Problem {
                key: String::new(),
                origin: format!("config file {}", path.display()),
                reason: "no such file".into(),
            });
        }
    }
    let mut figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));

    let default_keys = leaf_keys(&defaults.extract::<Dict>().unwrap_or_default());
    match figment.extract::<Dict>() {
        Ok(dict) => {
            for key in leaf_keys(&dict).difference(&default_keys) {
                if !default_keys.iter().any(|known| key.starts_with(&format!("{known}."))) {
                    problems.push(Problem {
                        key: key.clone(),
                        origin: origin(figment.find_metadata(key), key),
                        reason: "unknown key".into(),
                    });
                }
            }
        }
        Err(error) => {
            // A source that cannot be read at all (say, a TOML syntax error) leaves
            // nothing to check key by key.
            problems.extend(error.into_iter().map(|e| problem_of(&e)));
            return Err(ConfigError { problems });
        }
    }

    // Deserialization stops at the first bad value; note it, put the default in its
    // place, and go on until the rest is clean. Bounded by the number of keys.
    for _ in 0..=default_keys.len() {
        match figment.extract::<Config>() {
            Ok(config) => {
                problems.extend(config.semantic_problems().into_iter().map(|(key, reason)| Problem {
                    origin: origin(figment.find_metadata(&key), &key),
                    key,
                    reason,
                }));
                return if problems.is_empty() { Ok(config) } else { Err(ConfigError { problems }) };
            }
            Err(error) => {
                let mut replaced = false;
                for e in error {
                    problems.push(problem_of(&e));
                    let key = e.path.join(".");
                    if let Ok(default) = defaults.find_value(&key) {
                        figment = figment.merge(Serialized::default(&key, default));
                        replaced = true;
                    }
                }
                if !replaced {
                    break;
                }
            }
        }
    }
    Err(ConfigError { problems })
}

fn problem_of(error: &figment::Error) -> Problem {
    let key = error.path.join(".");
    Problem { origin: origin(error.metadata.as_ref(), &key), key, reason: error.kind.to_string() }
}

/// Names the source of a key's value the way an operator would look for it.
fn origin(metadata: Option<&Metadata>, key: &str) -> String {
    let Some(metadata) = metadata else { return String::new() };
    if metadata.name.contains("environment") {
        return format!("environment variable {ENV_PREFIX}{}", key.replace('.', "__").to_uppercase());
    }
    match &metadata.source {
        Some(figment::Source::File(path)) => format!("config file {}", path.display()),
        _ => metadata.name.to_string(),
    }
}

/// Dotted paths of every non-table value in a dictionary.
fn leaf_keys(dict: &Dict) -> BTreeSet<String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Dict(_, dict) => {
                for (key, value) in dict {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(&path, value, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    for (key, value) in dict {
        walk(key, value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests;

//! `orderd config show [--config FILE]`: the effective settings, one per line, each with where
//! its value came from (default, the settings file, an `ORDERD_*` variable or a Node system
//! variable), secrets redacted, followed by warnings about variables read but unused.

use std::path::PathBuf;

use clap::Subcommand;
use figment::Figment;
use serde_json::Value;

use crate::configuration::Settings;
use crate::node_env::{self, NodeAliases};

/// Inspect the settings.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings and the source of each.
    Show {
        /// Settings file (also `ORDERD_CONFIG`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

impl ConfigCommand {
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self {
            ConfigCommand::Show { config } => {
                let figment = Settings::figment(config.as_deref())?;
                let settings = Settings::from_figment(&figment)?;
                let aliases = NodeAliases::from_env();
                for line in render(&settings, &figment, &aliases)? {
                    println!("{line}");
                }
                for warning in node_env::warnings() {
                    println!("# warning: {warning}");
                }
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    }
}

/// Settings whose values never print.
fn is_secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.contains("secret") || last.contains("password") || last == "mongodb_uri"
}

/// One `key = value  # source` line per setting, in key order.
pub fn render(
    settings: &Settings,
    figment: &Figment,
    aliases: &NodeAliases,
) -> anyhow::Result<Vec<String>> {
    let tree = serde_json::to_value(settings)?;
    let mut leaves = Vec::new();
    flatten("", &tree, &mut leaves);
    leaves.sort_by(|a, b| a.0.cmp(&b.0));
    let width = leaves.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    Ok(leaves
        .into_iter()
        .map(|(key, value)| {
            let shown = if is_secret(&key) && !value.is_null() {
                "\"<redacted>\"".to_owned()
            } else {
                value.to_string()
            };
            let source = source_of(&key, figment, aliases);
            format!("{key:<width$} = {shown}  # {source}")
        })
        .collect())
}

/// Where `key`'s value came from.
pub fn source_of(key: &str, figment: &Figment, aliases: &NodeAliases) -> String {
    let Some(metadata) = figment.find_metadata(key) else {
        return "default".to_owned();
    };
    if metadata.name == node_env::SOURCE_NAME {
        return match aliases.source_of(key) {
            Some(variable) => format!("Node variable {variable}"),
            None => "Node variable".to_owned(),
        };
    }
    if let Some(figment::Source::File(path)) = &metadata.source {
        return format!("file {}", path.display());
    }
    if metadata.name.contains("ORDERD_") {
        return format!(
            "ORDERD_{} variable",
            key.to_ascii_uppercase().replace('.', "__")
        );
    }
    metadata.name.to_string()
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_named_by_their_last_segment() {
        assert!(is_secret("auth.jwt_secret"));
        assert!(is_secret("mail.smtp.password"));
        assert!(is_secret("store.mongodb_uri"));
        assert!(!is_secret("store.mongodb_database"));
        assert!(!is_secret("http.port"));
    }
}

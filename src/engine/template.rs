//! The subset of Go templates that `inspect --format` supports here.
//!
//! The docker CLI renders `--format` on the client with Go's text/template; the gateway
//! renders it on the inspect JSON itself. Supported: literal text and the actions
//! `{{.}}`, `{{.Field.Sub}}`, `{{json .Field}}` and `{{json .}}`. Objects and arrays
//! print as compact JSON (Go would print `map[…]`), a missing field as `<no value>`.
//! Anything else (`range`, `if`, `index`, pipes, …) is refused before any call is made.

use serde_json::Value;

use crate::engine::EngineError;

/// A parsed template: literal text and field lookups, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field { path: Vec<String>, json: bool },
}

impl Template {
    pub(crate) fn parse(source: &str) -> Result<Self, EngineError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after_open = &rest[open + 2..];
            let close = after_open.find("}}").ok_or_else(|| unsupported(source))?;
            parts.push(action(&after_open[..close]).ok_or_else(|| unsupported(source))?);
            rest = &after_open[close + 2..];
        }
        if rest.contains("}}") {
            return Err(unsupported(source));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub(crate) fn render(&self, value: &Value) -> String {
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => rendered.push_str(text),
                Part::Field { path, json } => {
                    let found = path.iter().try_fold(value, |node, key| node.get(key));
                    match (found, json) {
                        (None, _) => rendered.push_str("<no value>"),
                        (Some(found), true) => rendered.push_str(&found.to_string()),
                        (Some(found), false) => rendered.push_str(&plain(found)),
                    }
                }
            }
        }
        rendered
    }
}

/// `.A.B` or `json .A.B`, with optional surrounding spaces and trim markers (`{{- … -}}`).
fn action(inner: &str) -> Option<Part> {
    let inner = inner.trim();
    let inner = inner.strip_prefix("- ").unwrap_or(inner);
    let inner = inner.strip_suffix(" -").unwrap_or(inner).trim();
    let (json, field) = match inner.strip_prefix("json ") {
        Some(field) => (true, field.trim()),
        None => (false, inner),
    };
    let path = field.strip_prefix('.')?;
    if path.is_empty() {
        return Some(Part::Field {
            path: Vec::new(),
            json,
        });
    }
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    let valid = path.iter().all(|key| {
        key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    valid.then_some(Part::Field { path, json })
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "<nil>".to_string(),
        other => other.to_string(),
    }
}

fn unsupported(source: &str) -> EngineError {
    EngineError::Unsupported {
        what: format!(
            "inspect --format {source:?}: only literal text, {{{{.Field.Path}}}} and {{{{json .Field}}}} are supported"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str) -> String {
        let state = json!({
            "Name": "/api",
            "State": {"Status": "running", "Running": true, "Pid": 42},
            "Config": {"Labels": {"a": "b"}}
        });
        Template::parse(source).expect(source).render(&state)
    }

    #[test]
    fn field_paths_render_like_docker() {
        assert_eq!(render("{{.State.Status}}"), "running");
        assert_eq!(render("{{ .State.Running }} {{.State.Pid}}"), "true 42");
        assert_eq!(render("name={{.Name}}"), "name=/api");
        assert_eq!(render("{{.State.Nope}}"), "<no value>");
    }

    #[test]
    fn json_renders_compact_json() {
        assert_eq!(render("{{json .Config.Labels}}"), r#"{"a":"b"}"#);
        assert_eq!(render("{{json .State.Status}}"), r#""running""#);
    }

    #[test]
    fn anything_beyond_field_lookups_is_refused() {
        for source in [
            "{{range .Mounts}}{{.Source}}{{end}}",
            "{{if .State.Running}}up{{end}}",
            "{{index .Config.Labels \"a\"}}",
            "{{.State.Status | printf \"%s\"}}",
            "{{.State.Status",
            "oops}}",
        ] {
            assert!(
                matches!(
                    Template::parse(source),
                    Err(EngineError::Unsupported { .. })
                ),
                "{source}"
            );
        }
    }
}

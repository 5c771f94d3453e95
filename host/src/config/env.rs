//! `${VAR}` expansion in manifest strings.
//!
//! Secrets never have to be written into the manifest: a string value may name
//! environment variables (`${JWT_SECRET}`), optionally with a default written in
//! the file itself (`${PORT:-8080}`). A variable that is unset and has no default
//! is an error naming the variable, so a missing secret is never silently
//! replaced by an empty string. `$$` writes a literal `$`.

use std::collections::HashMap;

/// Where `${VAR}` looks variables up. Tests inject a map instead of the process
/// environment, so that no test mutates global state.
pub trait Environment {
    /// The variable's value, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${NAME}` names a variable that is not set and has no `:-` default.
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    /// `${` without its closing `}`, or an empty or malformed name.
    #[error("malformed `${{...}}` reference: {0}")]
    Malformed(String),
}

/// Replaces every `${VAR}` / `${VAR:-default}` in `input`.
pub fn expand(input: &str, env: &dyn Environment) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = body
                .find('}')
                .ok_or_else(|| ExpandError::Malformed(format!("unclosed `${{` in {input:?}")))?;
            out.push_str(&resolve(&body[..close], env)?);
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(reference: &str, env: &dyn Environment) -> Result<String, ExpandError> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(ExpandError::Malformed(format!(
            "`{name}` is not a variable name"
        )));
    }
    match (env.var(name), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(ExpandError::Unset(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        let env = env(&[("KEY", "s3cret"), ("EMPTY", "")]);
        assert_eq!(expand("${KEY}", &env), Ok("s3cret".to_owned()));
        assert_eq!(expand("a-${KEY}-b", &env), Ok("a-s3cret-b".to_owned()));
        assert_eq!(expand("${MISSING:-dev}", &env), Ok("dev".to_owned()));
        assert_eq!(expand("${EMPTY:-dev}", &env), Ok(String::new()));
        assert_eq!(
            expand("cost $5 and $$HOME", &env),
            Ok("cost $5 and $HOME".to_owned())
        );
    }

    #[test]
    fn unset_and_malformed_references_are_errors() {
        let env = env(&[]);
        assert_eq!(
            expand("${NOPE}", &env),
            Err(ExpandError::Unset("NOPE".to_owned()))
        );
        assert!(matches!(
            expand("${OPEN", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${1X}", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${}", &env),
            Err(ExpandError::Malformed(_))
        ));
    }
}

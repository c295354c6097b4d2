//! `kargo get -l/--selector`: kubectl's label selectors, applied by the CLI to the objects a list
//! returned (the Kargo REST list routes take no `labelSelector`).
//!
//! A selector is requirements joined by commas, all of which must hold: `k=v` (or `k==v`),
//! `k!=v`, `k` (the label exists), `!k` (it does not), `k in (a,b)` and `k notin (a,b)`. As in
//! Kubernetes, `k!=v` and `notin` also match objects without the label.

use serde_json::Value;

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// Parses a selector such as `app=web,tier!=db,!legacy,env in (dev,qa)`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let fail = |why: &str| format!("invalid label selector {text:?}: {why}");
        let mut requirements = Vec::new();
        for part in split_top_level(text).map_err(|w| fail(&w))? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(fail("an empty requirement"));
            }
            requirements.push(requirement(part).map_err(|w| fail(&w))?);
        }
        Ok(Selector(requirements))
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| object["metadata"]["labels"][key].as_str();
        self.0.iter().all(|r| match r {
            Requirement::In(k, values) => label(k).is_some_and(|v| values.iter().any(|x| x == v)),
            Requirement::NotIn(k, values) => {
                label(k).is_none_or(|v| !values.iter().any(|x| x == v))
            }
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

/// Splits on the commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err("nested parentheses".to_owned()),
            ')' if depth == 1 => depth = 0,
            ')' => return Err("unmatched ')'".to_owned()),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed '('".to_owned());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key_of(key)?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotIn(key_of(key)?, vec![value_of(value)?]));
    }
    if let Some((key, value)) = part.split_once('=') {
        let value = value.strip_prefix('=').unwrap_or(value);
        return Ok(Requirement::In(key_of(key)?, vec![value_of(value)?]));
    }
    if let Some(open) = part.find('(') {
        let (head, list) = (part[..open].trim(), &part[open..]);
        let list = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or("text after ')'")?;
        let values = list
            .split(',')
            .map(value_of)
            .collect::<Result<Vec<_>, _>>()?;
        return match head.rsplit_once(char::is_whitespace) {
            Some((key, "in")) => Ok(Requirement::In(key_of(key)?, values)),
            Some((key, "notin")) => Ok(Requirement::NotIn(key_of(key)?, values)),
            _ => Err(format!("{head:?} is not KEY in (...) or KEY notin (...)")),
        };
    }
    Ok(Requirement::Exists(key_of(part)?))
}

/// A label key: `[prefix/]name`, each of letters, digits, `-`, `_` and `.`.
fn key_of(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let ok = match key.split_once('/') {
        Some((prefix, name)) => valid(prefix) && valid(name),
        None => valid(key),
    };
    if ok {
        Ok(key.to_owned())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

/// A label value: empty, or letters, digits, `-`, `_` and `.`.
fn value_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(value.to_owned())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses `selector` and checks which of the objects below it matches (`Err` for a message).
    fn check(selector: &str, expected: Result<&[&str], &str>) {
        let objects = [
            json!({"metadata": {"name": "web", "labels": {"app": "web", "env": "dev"}}}),
            json!({"metadata": {"name": "db", "labels": {"app": "db", "env": "prod"}}}),
            json!({"metadata": {"name": "bare"}}),
        ];
        let actual = Selector::parse(selector).map(|s| {
            objects
                .iter()
                .filter(|o| s.matches(o))
                .map(|o| o["metadata"]["name"].as_str().unwrap_or(""))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            actual,
            expected.map(<[&str]>::to_vec).map_err(str::to_owned),
            "{selector}"
        );
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        check("", Ok(&["web", "db", "bare"]));
        check("app=web", Ok(&["web"]));
        check("app==web", Ok(&["web"]));
        check("app!=web", Ok(&["db", "bare"]));
        check("app", Ok(&["web", "db"]));
        check("!app", Ok(&["bare"]));
        check("env in (dev, qa)", Ok(&["web"]));
        check("env notin (dev)", Ok(&["db", "bare"]));
        check("app,env=prod", Ok(&["db"]));
        check("app in (web,db),env!=prod", Ok(&["web"]));
    }

    #[test]
    fn bad_selectors_say_why() {
        check(
            "app=we b",
            Err("invalid label selector \"app=we b\": invalid label value \"we b\""),
        );
        check(
            "env in (dev",
            Err("invalid label selector \"env in (dev\": unclosed '('"),
        );
        check(
            "env within (dev)",
            Err(
                "invalid label selector \"env within (dev)\": \"env within\" is not KEY in (...) or KEY notin (...)",
            ),
        );
        check(
            "app,,env",
            Err("invalid label selector \"app,,env\": an empty requirement"),
        );
        check(
            "=x",
            Err("invalid label selector \"=x\": invalid label key \"\""),
        );
    }
}

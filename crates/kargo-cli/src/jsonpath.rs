//! `-o jsonpath=TEMPLATE`: the part of kubectl's JSONPath templates that scripts use. Text outside
//! braces is printed as is; inside braces go string literals (`{"\n"}`) and paths made of `.field`
//! (`\.` escapes a dot in a key), `['field']`, `[N]` (negative counts from the end), `[*]` and `.*`.
//! Several results of one path are joined by spaces; strings print raw, anything else as JSON.

use serde_json::Value;

/// A template that does not parse, or a path that does not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error executing jsonpath {template:?}: {reason}")]
pub struct JsonPathError {
    template: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Path(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(i64),
    All,
}

/// Renders `template` against `value`.
pub fn render(template: &str, value: &Value) -> Result<String, JsonPathError> {
    let fail = |reason: String| JsonPathError {
        template: template.to_owned(),
        reason,
    };
    let parts = parse(template).map_err(fail)?;
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(&text),
            Part::Path(steps) => {
                let results = evaluate(&steps, value).map_err(fail)?;
                let rendered: Vec<String> = results
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                out.push_str(&rendered.join(" "));
            }
        }
    }
    Ok(out)
}

/// `template`'s results as one JSON array, indented by 4 spaces, as kubectl's
/// `-o jsonpath-as-json` prints them (text outside the braces is left out).
pub fn render_as_json(template: &str, value: &Value) -> Result<String, JsonPathError> {
    let fail = |reason: String| JsonPathError {
        template: template.to_owned(),
        reason,
    };
    let mut results = Vec::new();
    for part in parse(template).map_err(fail)? {
        if let Part::Path(steps) = part {
            results.extend(evaluate(&steps, value).map_err(fail)?.into_iter().cloned());
        }
    }
    Ok(crate::output::to_json(&Value::Array(results)))
}

/// One path, as `--sort-by` and `-o custom-columns` take it: `.metadata.name` or
/// `{.metadata.name}`. Unlike a template, a missing field is no error: it finds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    steps: Vec<Step>,
}

impl Path {
    /// Parses `.a.b`, `{.a.b}` or `{$.a.b}`; text around or between braces is an error.
    pub fn parse(text: &str) -> Result<Path, JsonPathError> {
        let fail = |reason: &str| JsonPathError {
            template: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let inner = match trimmed.strip_prefix('{') {
            Some(rest) => rest
                .strip_suffix('}')
                .ok_or_else(|| fail("unclosed action"))?,
            None => trimmed,
        };
        let inner = inner.trim();
        if !inner.starts_with(['.', '[', '$']) {
            return Err(fail("a path must start with '.', as in .metadata.name"));
        }
        match parse_action(inner).map_err(|reason| fail(&reason))? {
            Part::Path(steps) if !steps.is_empty() => Ok(Path {
                text: text.to_owned(),
                steps,
            }),
            _ => Err(fail("a path must name a field, as in .metadata.name")),
        }
    }

    /// The values at this path in `value` (none where a field is missing or an index out of
    /// bounds).
    pub fn find<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        evaluate(&self.steps, value).unwrap_or_default()
    }
}

fn parse(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            None => {
                parts.push(Part::Text(rest.to_owned()));
                break;
            }
            Some(start) => {
                if start > 0 {
                    parts.push(Part::Text(rest[..start].to_owned()));
                }
                let inner = &rest[start + 1..];
                let end = closing_brace(inner).ok_or("unclosed action")?;
                parts.push(parse_action(inner[..end].trim())?);
                rest = &inner[end + 1..];
            }
        }
    }
    Ok(parts)
}

/// The index of the `}` that closes an action, skipping braces inside quotes.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (_, _) if escaped => escaped = false,
            (_, '\\') => escaped = true,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_action(action: &str) -> Result<Part, String> {
    if let Some(literal) = action.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
        return Ok(Part::Text(unescape(literal)));
    }
    let mut path = action.strip_prefix('$').unwrap_or(action);
    let mut steps = Vec::new();
    while !path.is_empty() {
        if let Some(rest) = path.strip_prefix('[') {
            let end = rest.find(']').ok_or("unterminated [")?;
            let inside = rest[..end].trim();
            steps.push(if inside == "*" {
                Step::All
            } else if let Some(key) = inside
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            {
                Step::Field(key.to_owned())
            } else {
                Step::Index(
                    inside
                        .parse()
                        .map_err(|_| format!("invalid array index {inside:?}"))?,
                )
            });
            path = &rest[end + 1..];
        } else if let Some(rest) = path.strip_prefix('.') {
            if let Some(after) = rest.strip_prefix('*') {
                steps.push(Step::All);
                path = after;
                continue;
            }
            let mut key = String::new();
            let mut consumed = rest.len();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            key.push(next);
                        }
                    }
                    '.' | '[' => {
                        consumed = i;
                        break;
                    }
                    c => key.push(c),
                }
            }
            if !key.is_empty() {
                steps.push(Step::Field(key));
            }
            path = &rest[consumed..];
        } else {
            return Err(format!("unrecognized character in action: {path:?}"));
        }
    }
    Ok(Part::Path(steps))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn evaluate<'a>(steps: &[Step], root: &'a Value) -> Result<Vec<&'a Value>, String> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for value in current {
            match (step, value) {
                (Step::Field(key), Value::Object(map)) => match map.get(key) {
                    Some(v) => next.push(v),
                    None => return Err(format!("{key} is not found")),
                },
                (Step::Field(key), _) => return Err(format!("{key} is not found")),
                (Step::Index(i), Value::Array(items)) => {
                    let len = items.len() as i64;
                    let at = if *i < 0 { len + i } else { *i };
                    match usize::try_from(at).ok().and_then(|at| items.get(at)) {
                        Some(v) => next.push(v),
                        None => return Err(format!("array index out of bounds: index {i}")),
                    }
                }
                (Step::Index(i), _) => return Err(format!("cannot index a non-array with [{i}]")),
                (Step::All, Value::Array(items)) => next.extend(items.iter()),
                (Step::All, Value::Object(map)) => next.extend(map.values()),
                (Step::All, _) => {}
            }
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(template: &str, expected: Result<&str, &str>) {
        let value = json!({
            "kind": "List",
            "items": [
                {"metadata": {"name": "a", "annotations": {"kubernetes.io/service-account.name": "sa"}}, "data": {"token": "dG9r"}},
                {"metadata": {"name": "b"}, "count": 2},
            ],
        });
        let actual = render(template, &value);
        let expected = expected.map(str::to_owned).map_err(|reason| JsonPathError {
            template: template.to_owned(),
            reason: reason.to_owned(),
        });
        assert_eq!(actual, expected, "template {template:?}");
    }

    #[test]
    fn templates_render_like_kubectl() {
        check("{.kind}", Ok("List"));
        check("{$.kind}", Ok("List"));
        check("{.items[0].metadata.name}", Ok("a"));
        check("{.items[-1].metadata.name}", Ok("b"));
        check("{.items[*].metadata.name}", Ok("a b"));
        check("name={.items[1].metadata.name}{\"\\n\"}", Ok("name=b\n"));
        check("{.items[0].data.token}", Ok("dG9r"));
        check("{.items[1].count}", Ok("2"));
        check("{.items[1].metadata}", Ok(r#"{"name":"b"}"#));
        check(
            "{.items[0].metadata.annotations.kubernetes\\.io/service-account\\.name}",
            Ok("sa"),
        );
        check(
            "{.items[0].metadata.annotations['kubernetes.io/service-account.name']}",
            Ok("sa"),
        );
        check("plain text", Ok("plain text"));
    }

    #[test]
    fn single_paths_parse_with_or_without_braces_and_find_nothing_when_missing() {
        let object = json!({"metadata": {"name": "a", "labels": {"app.io/x": "1"}}});
        let find = |path: &str| {
            Path::parse(path)
                .map(|p| p.find(&object).into_iter().cloned().collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        assert_eq!(find(".metadata.name"), Ok(vec![json!("a")]));
        assert_eq!(find("{.metadata.name}"), Ok(vec![json!("a")]));
        assert_eq!(find("{.metadata.labels.app\\.io/x}"), Ok(vec![json!("1")]));
        assert_eq!(find(".metadata.missing"), Ok(vec![]));
        assert_eq!(
            find("metadata.name"),
            Err("error executing jsonpath \"metadata.name\": a path must start with '.', as in .metadata.name".to_owned())
        );
        assert_eq!(
            find("{.metadata.name"),
            Err("error executing jsonpath \"{.metadata.name\": unclosed action".to_owned())
        );
        assert_eq!(
            find(".items[x]"),
            Err("error executing jsonpath \".items[x]\": invalid array index \"x\"".to_owned())
        );
    }

    #[test]
    fn bad_templates_and_missing_fields_are_errors() {
        check("{.missing}", Err("missing is not found"));
        check("{.items[5]}", Err("array index out of bounds: index 5"));
        check("{.kind", Err("unclosed action"));
        check("{.items[x]}", Err("invalid array index \"x\""));
        check("{kind}", Err("unrecognized character in action: \"kind\""));
    }
}

/// The fuzz target of `-o jsonpath=TEMPLATE` (run by `kargo_fuzz` on `fuzz/jsonpath/` and its
/// mutants): any template renders or fails without a panic, text without braces renders as
/// itself, and a path built from the document's own keys renders the value there.
#[cfg(test)]
mod fuzz {
    use kargo_fuzz::arbitrary::{Result as ArbitraryResult, Unstructured};
    use kargo_fuzz::structured;
    use serde_json::{Value, json};

    use super::*;

    fn document() -> Value {
        json!({
            "kind": "List",
            "items": [
                {"metadata": {"name": "a", "annotations": {"kubernetes.io/service-account.name": "sa"}},
                 "data": {"token": "dG9r"}},
                {"metadata": {"name": "b", "labels": {"x.io/a-b_c": "1"}}, "count": 2, "ok": true,
                 "nested": [[1, 2], {"k": null}]},
            ],
        })
    }

    /// The step that selects `key`: `.key` with `\` before the characters the parser reads,
    /// or `['key']` for the keys a dot cannot name (empty, or ending in whitespace, which the
    /// action's trimming would eat); `None` for keys neither form can name.
    fn step(key: &str) -> Option<String> {
        if key.is_empty() || key.ends_with(char::is_whitespace) {
            return (!key.contains(['\'', ']', '\\'])).then(|| format!("['{key}']"));
        }
        let mut out = String::from(".");
        for c in key.chars() {
            if matches!(c, '.' | '[' | '\\' | '{' | '}' | '"' | '\'' | '*') {
                out.push('\\');
            }
            out.push(c);
        }
        Some(out)
    }

    /// A path to a node of `value` chosen by the input, as a template, and the node.
    fn path_case<'a>(
        u: &mut Unstructured<'_>,
        mut value: &'a Value,
    ) -> ArbitraryResult<(String, &'a Value)> {
        let mut template = String::from("{");
        loop {
            match value {
                Value::Object(map) if !map.is_empty() && u.ratio(4, 5)? => {
                    let keys: Vec<&String> = map.keys().collect();
                    let key = *u.choose(&keys)?;
                    let Some(step) = step(key) else {
                        return Err(kargo_fuzz::arbitrary::Error::IncorrectFormat);
                    };
                    template.push_str(&step);
                    value = &map[key];
                }
                Value::Array(items) if !items.is_empty() && u.ratio(4, 5)? => {
                    let len = items.len() as i64;
                    let index = u.int_in_range(-len..=len - 1)?;
                    template.push_str(&format!("[{index}]"));
                    value = &items[if index < 0 { len + index } else { index } as usize];
                }
                _ => break,
            }
        }
        template.push('}');
        Ok((template, value))
    }

    fn check(template: &str, document: &Value) {
        let rendered = render(template, document);
        if !template.contains('{') {
            assert_eq!(rendered.as_deref(), Ok(template), "plain text changed");
        }
    }

    #[test]
    fn templates_render_or_fail_and_paths_of_the_document_render_their_value() {
        let document = document();
        kargo_fuzz::Fuzzer::new("jsonpath")
            .corpus(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/jsonpath"))
            .dictionary([
                "{",
                "}",
                ".",
                "[",
                "]",
                "[*]",
                ".*",
                "$",
                "\\",
                "'",
                "\"",
                "[-1]",
                "{\"\\n\"}",
                ".items",
                ".metadata",
            ])
            .max_len(512)
            .run(|data| {
                check(&String::from_utf8_lossy(data), &document);
                let mut u = Unstructured::new(data);
                let Ok(generated) =
                    structured::json(&mut u, &["a", "a.b", "k[0]", "x y", "", " ", "*", "{}"], 3)
                else {
                    return;
                };
                let Ok((template, node)) = path_case(&mut u, &generated) else {
                    return;
                };
                let rendered = render(&template, &generated)
                    .unwrap_or_else(|e| panic!("{template} on {generated}: {e}"));
                let expected = match node {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(rendered, expected, "{template} on {generated}");
            });
    }
}

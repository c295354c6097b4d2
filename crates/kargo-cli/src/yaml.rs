//! A YAML writer for JSON values that prints like kubectl (Go's `sigs.k8s.io/yaml`): keys sorted,
//! block style, sequences flush with their key, and strings quoted only when YAML would read them
//! back as something else (`"true"`, `"1"`, `"2025-01-01T00:00:00Z"`) or cannot write them plain
//! (`'*** REDACTED ***'`, `'a: b'`). Multi-line strings become literal blocks (`|`, `|-`, `|+`).

use serde_json::{Map, Value};

/// Renders a value as a YAML document (no `---`), ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            out.push_str(&inline(other, 0));
            out.push('\n');
        }
    }
    out
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Writes the entries of a non-empty map, each line indented by `indent`.
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (i, (key, value)) in sorted(map).into_iter().enumerate() {
        // The first key of a map inside a sequence item shares the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&scalar(key, indent));
        out.push(':');
        write_value_after_key(out, value, indent);
    }
}

fn write_value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other, indent));
            out.push('\n');
        }
    }
}

/// Writes the items of a non-empty sequence, dashes indented by `indent`.
fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        if !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2),
            other => {
                out.push_str(&inline(other, indent));
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A value that fits on the current line: a scalar, `{}` or `[]`. `indent` is that of the key or
/// dash before it; a literal block's lines follow, indented by `indent + 2`.
fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s, indent),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A string in the style Go's YAML encoder picks for it.
fn scalar(s: &str, indent: usize) -> String {
    let analysis = Analysis::of(s);
    if s.contains('\n') {
        if analysis.block_allowed {
            return literal_block(s, indent);
        }
        return double_quoted(s);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if analysis.plain_allowed {
        s.to_owned()
    } else if analysis.single_quoted_allowed {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

fn literal_block(s: &str, indent: usize) -> String {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let pad = " ".repeat(indent + 2);
    let mut lines: Vec<&str> = body.split('\n').collect();
    // Keep-chomping: the extra trailing newlines are empty lines of the block.
    lines.extend(std::iter::repeat_n("", trailing.saturating_sub(1)));
    for line in lines {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// libyaml's idea of a printable character.
fn is_printable(c: char) -> bool {
    matches!(c as u32,
        0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

/// Which styles libyaml's emitter allows for a string (its `yaml_emitter_analyze_scalar`, block
/// context only).
struct Analysis {
    plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(s: &str) -> Analysis {
        if s.is_empty() {
            return Analysis {
                plain_allowed: false,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let chars: Vec<char> = s.chars().collect();
        let is_blank_at = |i: usize| chars.get(i).is_none_or(|c| matches!(c, ' ' | '\t' | '\n'));
        let mut indicators = s.starts_with("---") || s.starts_with("...");
        let mut special = false;
        let (mut leading_space, mut trailing_space) = (false, false);
        let (mut space_break, mut break_space, mut line_breaks) = (false, false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_blank = is_blank_at(i + 1);
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => indicators = true,
                    '?' | ':' | '-' if followed_by_blank => indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_blank => indicators = true,
                    '#' if matches!(chars[i - 1], ' ' | '\t') => indicators = true,
                    _ => {}
                }
            }
            if !is_printable(c) {
                special = true;
            }
            if c == '\n' {
                line_breaks = true;
            }
            if c == ' ' {
                if i == 0 {
                    leading_space = true;
                }
                if i + 1 == chars.len() {
                    trailing_space = true;
                }
                if previous_break {
                    break_space = true;
                }
                previous_space = true;
                previous_break = false;
            } else if c == '\n' {
                if previous_space {
                    space_break = true;
                }
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
        }
        let plain_allowed = !(indicators
            || special
            || leading_space
            || trailing_space
            || line_breaks
            || break_space
            || space_break
            || s.starts_with('\n')
            || s.ends_with('\n'));
        Analysis {
            plain_allowed,
            single_quoted_allowed: !(special || space_break || break_space),
            block_allowed: !(special || space_break || trailing_space || leading_space),
        }
    }
}

/// Whether YAML 1.1 (as go-yaml resolves plain scalars) reads the string as something other than
/// a string: null, a boolean, a number, a timestamp or a base-60 float.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    WORDS.contains(&s) || is_int(s) || is_float(s) || is_timestamp(s) || is_base60_float(s)
}

fn strip_sign(s: &str) -> &str {
    s.strip_prefix(['-', '+']).unwrap_or(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax: decimal, `0x`, `0o`, `0b`, leading-zero octal,
/// underscores between digits.
fn is_int(s: &str) -> bool {
    let body = strip_sign(s);
    let (digits, radix) = if let Some(rest) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (rest, 16)
    } else if let Some(rest) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (rest, 8)
    } else if let Some(rest) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (rest, 2)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c == '_' || c.is_digit(radix))
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_float(s: &str) -> bool {
    let body = strip_sign(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((int, frac)) => !int.is_empty() && all_digits(int) && all_digits(frac),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = strip_sign(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// go-yaml's timestamp forms: `2006-1-2`, optionally followed by `T`/`t`/space and a time, an
/// optional fraction and zone.
fn is_timestamp(s: &str) -> bool {
    let mut rest = s;
    let take_digits = |min: usize, max: usize, rest: &mut &str| -> bool {
        let n = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if n < min || n > max {
            return false;
        }
        *rest = &rest[n..];
        true
    };
    let expect = |c: char, rest: &mut &str| -> bool {
        match rest.strip_prefix(c) {
            Some(r) => {
                *rest = r;
                true
            }
            None => false,
        }
    };
    if !(take_digits(4, 4, &mut rest)
        && expect('-', &mut rest)
        && take_digits(1, 2, &mut rest)
        && expect('-', &mut rest)
        && take_digits(1, 2, &mut rest))
    {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let Some(time) = rest.strip_prefix(['T', 't', ' ']) else {
        return false;
    };
    rest = time;
    if !(take_digits(1, 2, &mut rest)
        && expect(':', &mut rest)
        && take_digits(1, 2, &mut rest)
        && expect(':', &mut rest)
        && take_digits(1, 2, &mut rest))
    {
        return false;
    }
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac;
        if !take_digits(1, 9, &mut rest) {
            return false;
        }
    }
    if rest.is_empty() || rest == "Z" {
        return true;
    }
    let Some(zone) = rest.strip_prefix(['+', '-']) else {
        return false;
    };
    rest = zone;
    if !take_digits(1, 2, &mut rest) {
        return false;
    }
    if let Some(minutes) = rest.strip_prefix(':') {
        rest = minutes;
        return take_digits(2, 2, &mut rest) && rest.is_empty();
    }
    rest.is_empty()
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$` (YAML 1.1 sexagesimal floats, `1:20`).
fn is_base60_float(s: &str) -> bool {
    let body = strip_sign(s);
    let (body, fraction) = match body.split_once('.') {
        Some((b, f)) => (b, Some(f)),
        None => (body, None),
    };
    if fraction.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut parts = body.split(':');
    let first = parts.next().unwrap_or("");
    let first_ok = first.starts_with(|c: char| c.is_ascii_digit())
        && first.chars().all(|c| c.is_ascii_digit() || c == '_');
    let mut sixties = 0;
    for part in parts {
        sixties += 1;
        let ok = match part.as_bytes() {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    first_ok && sixties > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value, expected: &str) {
        let actual = to_string(&value);
        assert_eq!(
            actual, expected,
            "\n--- expected ---\n{expected}--- actual ---\n{actual}"
        );
    }

    #[test]
    fn strings_are_quoted_only_when_go_would_quote_them() {
        let cases = [
            ("plain", "plain"),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("NO", "\"NO\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("", "\"\""),
            ("1", "\"1\""),
            ("-12", "\"-12\""),
            ("0x1F", "\"0x1F\""),
            ("1.5", "\"1.5\""),
            ("1e3", "\"1e3\""),
            (".inf", "\".inf\""),
            ("1:20", "\"1:20\""),
            ("2025-01-01T00:00:00Z", "\"2025-01-01T00:00:00Z\""),
            ("2025-01-01", "\"2025-01-01\""),
            ("*** REDACTED ***", "'*** REDACTED ***'"),
            ("a: b", "'a: b'"),
            ("it's: x", "'it''s: x'"),
            ("{\"x\":1}", "'{\"x\":1}'"),
            ("- x", "'- x'"),
            ("-x", "-x"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("x  ", "'x  '"),
            (" x", "' x'"),
            ("http://x:1/y", "http://x:1/y"),
            ("KioqIFJFREFDVEVEICoqKg==", "KioqIFJFREFDVEVEICoqKg=="),
            (
                "rbac.kargo.akuity.io/managed",
                "rbac.kargo.akuity.io/managed",
            ),
            ("tab\there", "\"tab\\there\""),
            ("1.2.3", "1.2.3"),
            ("v1", "v1"),
        ];
        for (input, expected) in cases {
            assert_eq!(scalar(input, 0), expected, "scalar({input:?})");
        }
    }

    #[test]
    fn maps_are_sorted_and_sequences_sit_flush_with_their_key() {
        check(
            json!({
                "kind": "List",
                "apiVersion": "v1",
                "items": [
                    {"metadata": {"name": "a", "labels": {"x": "true"}}, "kind": "Secret"},
                    "scalar",
                    ["nested", "list"],
                ],
                "metadata": {"resourceVersion": ""},
                "empty": {},
                "none": [],
                "count": 3,
                "flag": false,
                "nothing": null,
            }),
            "apiVersion: v1\ncount: 3\nempty: {}\nflag: false\nitems:\n- kind: Secret\n  metadata:\n    labels:\n      x: \"true\"\n    name: a\n- scalar\n- - nested\n  - list\nkind: List\nmetadata:\n  resourceVersion: \"\"\nnone: []\nnothing: null\n",
        );
    }

    #[test]
    fn multi_line_strings_are_literal_blocks_with_their_chomping() {
        check(
            json!({"a": "one\ntwo\n", "b": "one\ntwo", "c": "one\n\n", "d": [{"e": "x\ny\n"}]}),
            "a: |\n  one\n  two\nb: |-\n  one\n  two\nc: |+\n  one\n\nd:\n- e: |\n    x\n    y\n",
        );
    }

    #[test]
    fn literal_blocks_in_sequences_indent_from_their_dash() {
        check(
            json!({"a": ["x\ny\n", ["p\nq", "r"]], "b": {"c": ["z\nw"]}}),
            "a:\n- |\n  x\n  y\n- - |-\n    p\n    q\n  - r\nb:\n  c:\n  - |-\n    z\n    w\n",
        );
    }

    #[test]
    fn multi_line_strings_with_edge_spaces_are_double_quoted() {
        check(json!({"a": " x\ny"}), "a: \" x\\ny\"\n");
        check(json!({"a": "x \ny"}), "a: \"x \\ny\"\n");
    }

    #[test]
    fn empty_documents_print_flow_style() {
        check(json!({}), "{}\n");
        check(json!([]), "[]\n");
        check(json!("true"), "\"true\"\n");
    }
}

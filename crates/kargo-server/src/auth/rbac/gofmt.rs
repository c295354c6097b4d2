//! Go `fmt` renderings that Kubernetes builds its messages with: `%q` on a string and on a string
//! slice, and the text of an `errors.Aggregate`.

use std::fmt::Write as _;

/// Renders `s` as Go's `%q` (strconv.Quote) does: double quotes, backslash escapes for quotes,
/// backslashes and control characters, printable characters kept as they are.
///
/// Go's `unicode.IsPrint` is approximated: control characters, whitespace other than the ASCII
/// space and the common invisible format characters are escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c,
            '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e000}'..='\u{f8ff}'))
}

/// Renders a string slice as Go's `%q` does: `["a" "b"]`, `[]` when empty.
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(item.as_ref()));
    }
    out.push(']');
    out
}

/// Renders error messages as `utilerrors.NewAggregate(errs).Error()` does: one message as is,
/// several as `[e1, e2]` with repeated messages dropped, none as the empty string.
pub fn aggregate<S: AsRef<str>>(errors: &[S]) -> String {
    match errors {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        many => {
            let mut seen: Vec<&str> = Vec::with_capacity(many.len());
            for e in many {
                if !seen.contains(&e.as_ref()) {
                    seen.push(e.as_ref());
                }
            }
            match seen.as_slice() {
                [one] => (*one).to_owned(),
                all => format!("[{}]", all.join(", ")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_go_strconv_quote() {
        let cases = [
            ("pods", r#""pods""#),
            ("", r#""""#),
            (r#"a"b\c"#, r#""a\"b\\c""#),
            ("tab\tnl\n", r#""tab\tnl\n""#),
            ("\u{1b}[0m", r#""\x1b[0m""#),
            ("\u{7f}", r#""\x7f""#),
            ("ünï <&>", r#""ünï <&>""#),
            ("\u{a0}", r#""\u00a0""#),
            ("\u{feff}", r#""\ufeff""#),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn quote_list_renders_like_go_percent_q_on_a_slice() {
        assert_eq!(quote_list::<&str>(&[]), "[]");
        assert_eq!(quote_list(&["g1", "g2"]), r#"["g1" "g2"]"#);
        assert_eq!(quote_list(&[""]), r#"[""]"#);
    }

    #[test]
    fn aggregate_renders_one_error_bare_and_several_in_brackets_without_repeats() {
        assert_eq!(aggregate::<&str>(&[]), "");
        assert_eq!(aggregate(&["a"]), "a");
        assert_eq!(aggregate(&["a", "b"]), "[a, b]");
        assert_eq!(aggregate(&["a", "b", "a"]), "[a, b]");
        assert_eq!(aggregate(&["a", "a"]), "a");
    }
}

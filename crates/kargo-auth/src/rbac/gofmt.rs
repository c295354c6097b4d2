//! Go `fmt` renderings that Kubernetes builds its messages with: `%q` on a string and on a string
//! slice, and the text of an `errors.Aggregate`.

/// Renders `s` as Go's `%q` (strconv.Quote) does (one implementation for the whole project:
/// [`kargo_api::field::go_quote`]).
pub fn quote(s: &str) -> String {
    kargo_api::field::go_quote(s)
}

/// Renders a string slice as Go's `%q` does: `["a" "b"]`, `[]` when empty.
pub(crate) fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
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

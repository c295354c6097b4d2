//! YAML documents decoded to JSON values, bounded: the scanner's time grows with the square of
//! the flow nesting, so a body that could nest deeper than [`MAX_YAML_FLOW_DEPTH`] is refused
//! before it is parsed. Duplicate fields are reported as [`crate::json`] reports them.

use std::borrow::Cow;

use crate::json::{Decoded, from_deserializer};

/// Why a YAML document was not decoded; its text follows kube-apiserver's
/// `error converting YAML to JSON: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error converting YAML to JSON: {0}")]
pub struct YamlError(String);

/// Decodes one YAML document into JSON, with the fields it names twice.
pub fn decode(body: &[u8]) -> Result<Decoded, YamlError> {
    let body = utf8(body)?;
    if flow_depth_bound(&body) > MAX_YAML_FLOW_DEPTH {
        return Err(YamlError(format!(
            "flow collections ([...], {{...}}) nested deeper than {MAX_YAML_FLOW_DEPTH} levels"
        )));
    }
    from_deserializer(yaml_serde::Deserializer::from_slice(&body))
        .map_err(|e| YamlError(e.to_string()))
}

/// The deepest flow nesting (`[`, `{`) a YAML body may reach, as [`flow_depth_bound`]
/// counts it.
///
/// The YAML scanner (libyaml's design, as in `yaml_serde`) revisits every open flow level on
/// every token, so its time grows with the square of the nesting: a 500 KB body of `{a: `
/// repeated 100,000 times held a thread for 90 s in an optimized build (found by fuzzing). The
/// decoder refuses more than 128 levels anyway; the bound over-counts (brackets inside quoted
/// scalars and comments may count), hence the margin. libyaml itself now stops at 1000 levels.
pub const MAX_YAML_FLOW_DEPTH: u32 = 256;

/// The lexical modes a YAML scanner can be in where brackets are, or are not, structure.
#[derive(Clone, Copy)]
enum YamlMode {
    /// Structure or a plain scalar: `[{` open and `]}` close a flow collection.
    Structure,
    /// A single-quoted scalar.
    Single,
    /// A double-quoted scalar.
    Double,
    /// Just after a `\` in a double-quoted scalar.
    DoubleEscape,
    /// A comment, to the end of the line.
    Comment,
    /// A verbatim tag, `!<...>`, which may hold brackets.
    Verbatim,
}

/// An upper bound of the flow nesting depth a YAML scanner reaches on `body`, in one linear
/// pass over its bytes.
///
/// Whether a quote or `#` starts a scalar or a comment depends on context this pass does not
/// track, so it follows every possibility at once (one depth per mode, the largest kept when
/// two possibilities meet): brackets inside a string or a comment can raise the bound but never
/// hide a real level. Bytes, not characters, are scanned: every byte that matters is ASCII, and
/// no byte of a multi-byte UTF-8 character is (other encodings are transcoded first).
pub fn flow_depth_bound(body: &[u8]) -> u32 {
    const MODES: usize = 6;
    let index = |mode: YamlMode| mode as usize;
    let mut depths: [Option<u32>; MODES] = [None; MODES];
    depths[index(YamlMode::Structure)] = Some(0);
    let mut deepest = 0;
    let mut previous = 0u8;
    for &byte in body {
        let mut next: [Option<u32>; MODES] = [None; MODES];
        let mut enter = |mode: YamlMode, depth: u32| {
            let slot = &mut next[index(mode)];
            *slot = Some(slot.map_or(depth, |d| d.max(depth)));
        };
        for (mode, depth) in [
            YamlMode::Structure,
            YamlMode::Single,
            YamlMode::Double,
            YamlMode::DoubleEscape,
            YamlMode::Comment,
            YamlMode::Verbatim,
        ]
        .into_iter()
        .filter_map(|mode| depths[index(mode)].map(|depth| (mode, depth)))
        {
            match (mode, byte) {
                (YamlMode::Structure, b'[' | b'{') => enter(YamlMode::Structure, depth + 1),
                (YamlMode::Structure, b']' | b'}') => {
                    enter(YamlMode::Structure, depth.saturating_sub(1))
                }
                (YamlMode::Structure, _) => {
                    enter(YamlMode::Structure, depth);
                    match byte {
                        b'\'' => enter(YamlMode::Single, depth),
                        b'"' => enter(YamlMode::Double, depth),
                        b'#' => enter(YamlMode::Comment, depth),
                        b'<' if previous == b'!' => enter(YamlMode::Verbatim, depth),
                        _ => {}
                    }
                }
                (YamlMode::Single, b'\'') => enter(YamlMode::Structure, depth),
                (YamlMode::Double, b'\\') => enter(YamlMode::DoubleEscape, depth),
                (YamlMode::Double, b'"') => enter(YamlMode::Structure, depth),
                (YamlMode::DoubleEscape, _) => enter(YamlMode::Double, depth),
                (YamlMode::Comment, b'\n' | b'\r') => enter(YamlMode::Structure, depth),
                (YamlMode::Verbatim, b'>') => enter(YamlMode::Structure, depth),
                (mode, _) => enter(mode, depth),
            }
        }
        depths = next;
        deepest = depths.iter().flatten().fold(deepest, |a, b| a.max(*b));
        previous = byte;
    }
    deepest
}

/// A YAML body as UTF-8: UTF-16 with a byte-order mark (which the YAML parser also reads) is
/// transcoded, so that [`flow_depth_bound`] sees its brackets as bytes.
fn utf8(body: &[u8]) -> Result<Cow<'_, [u8]>, YamlError> {
    let little = match body {
        [0xff, 0xfe, ..] => true,
        [0xfe, 0xff, ..] => false,
        _ => return Ok(Cow::Borrowed(body)),
    };
    let units = body[2..].chunks(2).map(|pair| match pair {
        [a, b] if little => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        // An odd trailing byte: an invalid unit, refused below.
        _ => 0xdc00,
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map(|text| Cow::Owned(text.into_bytes()))
        .map_err(|_| YamlError("invalid UTF-16".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_inside_strings_and_comments_cannot_hide_a_level() {
        // Each unit opens a real level; the closers are inside strings, comments or a verbatim
        // tag, and alternate quote kinds so that a scanner guessing where strings start errs.
        for unit in [
            r#"[ "]", "#,
            "[ ']', ",
            "[ # ]\n",
            r#"[ "it's ]", [ "]'", "#,
            r#"[ !<x]> a, "#,
            r#"[ "\"]", "#,
        ] {
            let body = unit.repeat(300);
            assert!(
                flow_depth_bound(body.as_bytes()) >= 300,
                "{unit:?}: {}",
                flow_depth_bound(body.as_bytes())
            );
        }
    }

    #[test]
    fn duplicate_fields_are_reported_and_the_last_value_wins() {
        let decoded = decode(b"metadata:\n  name: x\n  name: y\n").unwrap();
        assert_eq!(decoded.value["metadata"]["name"], "y");
        assert_eq!(decoded.duplicates, ["metadata.name"]);
    }
}

//! Structured values from fuzz bytes: the same bytes that a target reads raw also drive a small
//! grammar here, so that mutated seeds and random bytes become well-formed JSON documents and
//! words of a target's vocabulary most of the time.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value};

/// One of `words`, or a short arbitrary string now and then (empty when `words` is empty).
pub fn word(u: &mut Unstructured<'_>, words: &[&str]) -> Result<String> {
    if words.is_empty() || u.ratio(1, 8)? {
        let len = u.int_in_range(0..=8)?;
        let mut s = String::new();
        for _ in 0..len {
            s.push(u.arbitrary::<char>()?);
        }
        return Ok(s);
    }
    Ok((*u.choose(words)?).to_owned())
}

/// A JSON value at most `depth` levels deep, with keys and strings drawn from `words`.
pub fn json(u: &mut Unstructured<'_>, words: &[&str], depth: usize) -> Result<Value> {
    let last = if depth == 0 { 5 } else { 8 };
    Ok(match u.int_in_range(0..=last)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.int_in_range(-2i64..=3)?),
        3 => match u.int_in_range(0..=2)? {
            0 => Value::from(u.arbitrary::<i64>()?),
            1 => Value::from(u.arbitrary::<u64>()?),
            _ => serde_json::Number::from_f64(f64::from(u.arbitrary::<i16>()?) / 4.0)
                .map_or(Value::Null, Value::Number),
        },
        4 | 5 => Value::String(word(u, words)?),
        6 => {
            let len = u.int_in_range(0..=4)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(json(u, words, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(object(u, words, depth - 1)?),
    })
}

/// A JSON object of up to four members whose values are at most `depth` levels deep.
pub fn object(
    u: &mut Unstructured<'_>,
    words: &[&str],
    depth: usize,
) -> Result<Map<String, Value>> {
    let len = u.int_in_range(0..=4)?;
    let mut map = Map::new();
    for _ in 0..len {
        let key = word(u, words)?;
        map.insert(key, json(u, words, depth)?);
    }
    Ok(map)
}

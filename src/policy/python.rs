// SPDX-License-Identifier: MIT OR Apache-2.0
//! The few Python behaviours that Keras's messages and parsers depend on:
//! `repr()` of strings and lists, `str()` of JSON values, and `int()` of text.

use serde_json::Value;

/// Python's `repr()` of a string: single quotes unless the text holds a single
/// quote and no double quote, with backslash escapes for control characters.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a list of strings: `['a', 'b']`.
pub fn py_list_repr(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_repr_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// Python's `str()` of a value decoded from JSON, as an f-string prints it.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a value decoded from JSON.
fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// The JSON type name of a value, for messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The outcome of Python's `int(text)` for base-10 text.
#[derive(Debug, PartialEq, Eq)]
pub enum PyInt {
    /// The text is an integer that fits in `i64`.
    Value(i64),
    /// The text is an integer, but too large for `i64`.
    Overflow,
    /// `int(text)` would raise `ValueError`.
    Invalid,
}

/// Python's `int(text)`: surrounding white space, one optional sign, ASCII
/// digits with single underscores between them (`"1_28"`), leading zeros
/// allowed. Non-ASCII digits, which Python also takes, are refused.
pub fn py_int(text: &str) -> PyInt {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes[0].is_ascii_digit()
        && bytes[bytes.len() - 1].is_ascii_digit()
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
        && !digits.contains("__");
    if !well_formed {
        return PyInt::Invalid;
    }
    let mut value: i64 = 0;
    for b in bytes.iter().filter(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        let next = value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        });
        match next {
            Some(v) => value = v,
            None => return PyInt::Overflow,
        }
    }
    PyInt::Value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_of_strings_matches_python() {
        assert_eq!(py_repr_str("a/b"), "'a/b'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("'\""), "'\\'\"'");
        assert_eq!(py_repr_str("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(py_list_repr(&["x".into(), "y.*".into()]), "['x', 'y.*']");
    }

    #[test]
    fn str_of_json_values_matches_python() {
        assert_eq!(py_str(&serde_json::json!("16")), "16");
        assert_eq!(py_str(&serde_json::json!(["float32"])), "['float32']");
        assert_eq!(
            py_str(&serde_json::json!({"a": null, "b": true})),
            "{'a': None, 'b': True}"
        );
    }

    #[test]
    fn int_parsing_matches_python() {
        assert_eq!(py_int("128"), PyInt::Value(128));
        assert_eq!(py_int(" +128 "), PyInt::Value(128));
        assert_eq!(py_int("0128"), PyInt::Value(128));
        assert_eq!(py_int("1_28"), PyInt::Value(128));
        assert_eq!(py_int("-1"), PyInt::Value(-1));
        assert_eq!(py_int("-9223372036854775808"), PyInt::Value(i64::MIN));
        assert_eq!(py_int("9223372036854775808"), PyInt::Overflow);
        for bad in ["", "-", "1__28", "_1", "1_", "abc", "1.0", "+-1", "0x10"] {
            assert_eq!(py_int(bad), PyInt::Invalid, "{bad:?}");
        }
    }
}

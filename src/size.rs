// SPDX-License-Identifier: MIT OR Apache-2.0
//! Sizes computed from shapes that come from files and users: every count,
//! byte size and dispatch size is checked, so that a shape too large for
//! this machine, or a zero-sized one, is a clear `Err`, never an overflow
//! (a panic in debug builds, a wrapped size in release ones).

use crate::error::{Error, Result};

/// `a * b`, or an error saying that `what` is too large.
pub(crate) fn mul(a: usize, b: usize, what: &dyn Fn() -> String) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| too_large(what))
}

/// `a + b`, or an error saying that `what` is too large.
pub(crate) fn add(a: usize, b: usize, what: &dyn Fn() -> String) -> Result<usize> {
    a.checked_add(b).ok_or_else(|| too_large(what))
}

/// The product of `dims`, or an error naming them.
pub(crate) fn product(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter().try_fold(1usize, |acc, &d| {
        mul(acc, d, &|| format!("{what} of shape {dims:?}"))
    })
}

/// `v` rounded up to a multiple of `multiple` (at least 1).
pub(crate) fn round_up(v: usize, multiple: usize, what: &dyn Fn() -> String) -> Result<usize> {
    mul(v.div_ceil(multiple), multiple, what)
}

/// `count` values of `bytes_per_value` bytes, in bytes.
pub(crate) fn bytes(
    count: usize,
    bytes_per_value: usize,
    what: &dyn Fn() -> String,
) -> Result<u64> {
    let bytes = mul(count, bytes_per_value, what)?;
    u64::try_from(bytes).map_err(|_| too_large(what))
}

/// `Err` unless every named dimension is at least 1.
pub(crate) fn nonzero(dims: &[(&str, usize)], what: &str) -> Result<()> {
    match dims.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(Error::Shape(format!(
            "{what} has {name} = 0 ({}); every dimension must be at least 1",
            dims.iter()
                .map(|(n, v)| format!("{n} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(()),
    }
}

/// A count that must fit a shader's u32.
pub(crate) fn to_u32(v: usize, what: &dyn Fn() -> String) -> Result<u32> {
    u32::try_from(v).map_err(|_| too_large(what))
}

fn too_large(what: &dyn Fn() -> String) -> Error {
    Error::Shape(format!(
        "{} is too large: its size overflows this machine's arithmetic",
        what()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_zero_are_errors_that_say_what() {
        let err = product(&[99_999_999_999, 99_999_999_999, 4], "the kernel").unwrap_err();
        assert!(err.to_string().contains("the kernel of shape"), "{err}");
        let err = nonzero(&[("rows", 1), ("k", 0)], "layer 'a'").unwrap_err();
        assert!(err.to_string().contains("k = 0"), "{err}");
        assert_eq!(round_up(37, 32, &|| "k".into()).unwrap(), 64);
        assert!(round_up(usize::MAX - 3, 32, &|| "k".into()).is_err());
    }
}

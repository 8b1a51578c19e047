// SPDX-License-Identifier: MIT OR Apache-2.0
//! NumPy `.npy` files of float32 (`<f4`, C order): a model's inputs and
//! outputs on the command line (`numpy.save` / `numpy.load`).

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";
/// The largest header read (NumPy writes about a hundred bytes).
const MAX_HEADER: usize = 1 << 16;

/// An array of float32 values and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Its shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Its values in C order.
    pub values: Vec<f32>,
}

impl NpyArray {
    /// Reads an `.npy` file's bytes; `name` names it in messages.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let bad = |why: String| Error::file(name, why);
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err(bad("not a .npy file (no \\x93NUMPY magic)".to_owned()));
        }
        let (len, start) = match bytes[6] {
            1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(bad(format!(".npy version {v}; versions 1 to 3 are read"))),
        };
        if len > MAX_HEADER || start + len > bytes.len() {
            return Err(bad(format!(
                "a header of {len} bytes in a file of {}",
                bytes.len()
            )));
        }
        let header = std::str::from_utf8(&bytes[start..start + len])
            .map_err(|_| bad("a header that is not text".to_owned()))?;
        let field = |key: &str| -> Result<&str> {
            let at = header
                .find(&format!("'{key}':"))
                .ok_or_else(|| bad(format!("no '{key}' in the header {header:?}")))?;
            Ok(header[at + key.len() + 3..].trim_start())
        };
        let descr = field("descr")?;
        if !(descr.starts_with("'<f4'") || descr.starts_with("'|f4'")) {
            return Err(bad(format!(
                "values of type {}; float32 ('<f4') is read: save with x.astype('float32')",
                descr.split(',').next().unwrap_or(descr)
            )));
        }
        if field("fortran_order")?.starts_with("True") {
            return Err(bad(
                "Fortran order; save a C-ordered array (numpy.ascontiguousarray)".to_owned(),
            ));
        }
        let shape_text = field("shape")?;
        let inner = shape_text
            .strip_prefix('(')
            .and_then(|rest| rest.find(')').and_then(|close| rest.get(..close)))
            .ok_or_else(|| bad(format!("a shape that is not a tuple in {header:?}")))?;
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|d| {
                d.parse::<usize>()
                    .map_err(|_| bad(format!("a dimension '{d}' in the shape")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let data = &bytes[start + len..];
        let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if count.and_then(|c| c.checked_mul(4)) != Some(data.len()) {
            return Err(bad(format!(
                "a shape of {shape:?} float32 values, but {} bytes of data",
                data.len()
            )));
        }
        let values = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(NpyArray { shape, values })
    }

    /// The array as `.npy` bytes (version 1.0, `<f4`, C order).
    pub fn to_bytes(&self) -> Vec<u8> {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        // The data starts on a multiple of 64 bytes; the header ends in '\n'.
        let pad = (64 - (10 + header.len() + 1) % 64) % 64;
        header.push_str(&" ".repeat(pad));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + 4 * self.values.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in &self.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::NpyArray;

    #[test]
    fn round_trip_and_bad_files() {
        let a = NpyArray {
            shape: vec![2, 3],
            values: vec![1.0, -2.5, 3.0, 0.0, 5.0, f32::MIN_POSITIVE],
        };
        let bytes = a.to_bytes();
        assert_eq!((bytes.len() - 6 * 4) % 64, 0);
        assert_eq!(NpyArray::from_bytes(&bytes, "a.npy").unwrap(), a);
        for len in 0..bytes.len() {
            assert!(
                NpyArray::from_bytes(&bytes[..len], "a.npy").is_err(),
                "{len}"
            );
        }
        let mut f8 = bytes.clone();
        let at = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[at + 2] = b'8';
        let err = NpyArray::from_bytes(&f8, "a.npy").unwrap_err();
        assert!(err.to_string().contains("<f8"), "{err}");
        // Shapes that are not tuples: errors, not panics.
        for shape in ["),", "é)", "(", "(3, x)"] {
            let text = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape} }}\n");
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(text.len() as u16).to_le_bytes());
            b.extend_from_slice(text.as_bytes());
            assert!(NpyArray::from_bytes(&b, "a.npy").is_err(), "{shape}");
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The protobuf wire format, read: just enough to walk a SentencePiece
//! `ModelProto` (tags, varints, fixed 32/64-bit words, length-delimited
//! fields). Nothing is allocated here: a length-delimited field is a slice
//! of the input, checked against the bytes that remain before it is taken.

/// One field's value as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// Wire type 0: `int32`, `int64`, `uint32`, `bool`, `enum`.
    Varint(u64),
    /// Wire type 1: `fixed64`, `double`.
    Fixed64(u64),
    /// Wire type 2: `string`, `bytes`, an embedded message, a packed list.
    Bytes(&'a [u8]),
    /// Wire type 5: `fixed32`, `float`.
    Fixed32(u32),
}

impl Value<'_> {
    /// The name of the wire type, for error messages.
    pub(crate) fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Bytes(_) => "length-delimited",
            Value::Fixed32(_) => "32-bit",
        }
    }
}

/// Reads the fields of one message, in file order.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where `buf` starts in the file, so that errors give file offsets.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader of the message `buf`, which starts at byte `base` of its file.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    /// The file offset of the next byte to read.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The next field (number and value), or `None` at the end of the
    /// message; `Err` says what is wrong and at which byte of the file.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.offset();
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(format!(
                "byte {at}: field number {field} is not a valid protobuf field number"
            ));
        }
        let field = field as u32;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take_array::<8>(field)?)),
            2 => {
                let len_at = self.offset();
                let len = self.varint()?;
                let remaining = self.buf.len() - self.pos;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&n| n <= remaining)
                    .ok_or_else(|| {
                        format!(
                            "byte {len_at}: field {field} declares {len} bytes but only \
                             {remaining} remain (the file is truncated or corrupt)"
                        )
                    })?;
                let bytes = &self.buf[self.pos..self.pos + len];
                self.pos += len;
                Value::Bytes(bytes)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take_array::<4>(field)?)),
            3 | 4 => {
                return Err(format!(
                    "byte {at}: field {field} is a protobuf group (wire type {}), which a \
                     SentencePiece model never contains",
                    tag & 7
                ));
            }
            wire => {
                return Err(format!(
                    "byte {at}: field {field} has wire type {wire}, which protobuf does not define"
                ));
            }
        };
        Ok(Some((field, value)))
    }

    /// A base-128 varint of at most 10 bytes.
    fn varint(&mut self) -> Result<u64, String> {
        let at = self.offset();
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!(
                    "byte {at}: a varint runs past the end of the data (the file is truncated)"
                ));
            };
            self.pos += 1;
            // The tenth byte holds the 64th bit only.
            if i == 9 && byte > 1 {
                return Err(format!("byte {at}: a varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("byte {at}: a varint is longer than 10 bytes"))
    }

    fn take_array<const N: usize>(&mut self, field: u32) -> Result<[u8; N], String> {
        let at = self.offset();
        let bytes = self.buf.get(self.pos..self.pos + N).ok_or_else(|| {
            format!(
                "byte {at}: field {field} needs {N} bytes but only {} remain (the file is \
                     truncated)",
                self.buf.len() - self.pos
            )
        })?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed32, field 4 fixed64.
        let buf = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0,
            0,
        ];
        let mut r = Reader::new(&buf, 0);
        assert_eq!(r.next_field(), Ok(Some((1, Value::Varint(300)))));
        assert_eq!(r.next_field(), Ok(Some((2, Value::Bytes(b"hi")))));
        assert_eq!(r.next_field(), Ok(Some((3, Value::Fixed32(1)))));
        assert_eq!(r.next_field(), Ok(Some((4, Value::Fixed64(2)))));
        assert_eq!(r.next_field(), Ok(None));
    }

    #[test]
    fn a_length_past_the_end_is_an_error_not_an_allocation() {
        // field 1, length-delimited, declaring 2^63 bytes.
        let buf = [0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let err = Reader::new(&buf, 100).next_field().unwrap_err();
        assert!(err.contains("byte 101") && err.contains("remain"), "{err}");
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error() {
        for buf in [
            &[0x08][..],
            &[0x08, 0x80],
            &[0x1d, 1, 2],
            &[0x0b],
            &[0x0e],
            &[0x00],
        ] {
            assert!(Reader::new(buf, 0).next_field().is_err(), "{buf:?}");
        }
        let overlong = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert!(Reader::new(&overlong, 0).next_field().is_err());
    }
}

//! The protobuf wire format, read only: a cursor over one message's fields that rejects
//! malformed input with an error instead of panicking.

use std::fmt;

/// One field's payload, as the wire type tells it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Payload<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Payload<'_> {
    /// The wire type's name, for error messages.
    pub fn wire_name(&self) -> &'static str {
        match self {
            Payload::Varint(_) => "varint",
            Payload::Fixed64(_) => "64-bit",
            Payload::Bytes(_) => "length-delimited",
            Payload::Fixed32(_) => "32-bit",
        }
    }
}

/// Bytes that are not a well-formed protobuf message.
#[derive(Clone, Debug, PartialEq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads one message's fields in order: `(field number, payload)`.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Payload<'a>)>, WireError> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..=0x1FFF_FFFF).contains(n))
            .ok_or_else(|| WireError(format!("invalid field number {} at byte {at}", key >> 3)))?;
        let payload = match key & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Fixed64(u64::from_le_bytes(self.array::<8>()?)),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| WireError(format!("length {len} is too large")))?;
                Payload::Bytes(self.take(len)?)
            }
            5 => Payload::Fixed32(u32::from_le_bytes(self.array::<4>()?)),
            other => return Err(WireError(format!("unsupported wire type {other} for field {number} at byte {at}"))),
        };
        Ok(Some((number, payload)))
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(WireError(format!("truncated varint at byte {start}")));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(WireError(format!("varint at byte {start} overflows 64 bits")));
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError(format!("varint at byte {start} is longer than 10 bytes")))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(len).filter(|end| *end <= self.bytes.len()).ok_or_else(|| {
            WireError(format!("{len} bytes announced at byte {}, {} left", self.pos, self.bytes.len() - self.pos))
        })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
}

/// Test helpers that write the wire format (the emulator never encodes protobuf).
#[cfg(test)]
pub mod encode {
    pub fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    /// A varint field.
    pub fn int(number: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(number) << 3, &mut out);
        varint(value, &mut out);
        out
    }

    /// A length-delimited field.
    pub fn bytes(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint((u64::from(number) << 3) | 2, &mut out);
        varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    /// A map entry (`key = 1`, `value = 2`) as field `number`.
    pub fn entry(number: u32, key: &str, value: &[u8]) -> Vec<u8> {
        bytes(number, &[bytes(1, key.as_bytes()), bytes(2, value)].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{bytes, int, varint};
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<(u32, Payload<'_>)>, WireError> {
        let mut reader = Reader::new(input);
        let mut fields = Vec::new();
        while let Some(field) = reader.next_field()? {
            fields.push(field);
        }
        Ok(fields)
    }

    #[test]
    fn reads_each_wire_type() {
        let mut input = int(1, 300);
        input.extend(bytes(2, b"abc"));
        input.extend([0x19, 1, 0, 0, 0, 0, 0, 0, 0]); // field 3, fixed64 = 1
        input.extend([0x25, 2, 0, 0, 0]); // field 4, fixed32 = 2
        input.extend(int(536_870_911, u64::MAX));
        let fields = all(&input).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fields,
            [
                (1, Payload::Varint(300)),
                (2, Payload::Bytes(b"abc")),
                (3, Payload::Fixed64(1)),
                (4, Payload::Fixed32(2)),
                (536_870_911, Payload::Varint(u64::MAX)),
            ]
        );
        assert_eq!(all(&[]), Ok(vec![]));
    }

    #[test]
    fn rejects_malformed_input() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x08], "truncated varint"),
            (&[0x08, 0x80], "truncated varint"),
            (&[0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], "overflows"),
            (&[0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], "overflows"),
            (&[0x12, 0x05, b'a'], "5 bytes announced"),
            (&[0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], "bytes announced"),
            (&[0x19, 1, 2, 3], "8 bytes announced"),
            (&[0x25, 1], "4 bytes announced"),
            (&[0x0B], "wire type 3"),
            (&[0x0C], "wire type 4"),
            (&[0x0E], "wire type 6"),
            (&[0x00, 0x00], "invalid field number 0"),
        ];
        for (input, expected) in cases {
            let error = all(input).err().unwrap_or_else(|| panic!("{input:?} was accepted"));
            assert!(error.0.contains(expected), "{input:?}: {error}");
        }
    }

    #[test]
    fn never_panics_on_truncations_or_garbage() {
        let mut valid = bytes(1, &[bytes(1, b"name"), int(2, 7)].concat());
        varint(99, &mut valid);
        for end in 0..=valid.len() {
            let _ = all(&valid[..end]);
        }
        // A deterministic pseudo-random walk over garbage inputs.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let len = (seed % 24) as usize;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = all(&garbage);
        }
    }
}

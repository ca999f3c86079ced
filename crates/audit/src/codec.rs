//! A borrowed-slice reader for the binary formats, after rustls's `Reader`:
//! every read checks the length first, so truncated input is an error and
//! never a panic, and `finish` refuses trailing bytes.

use crate::error::DecodeError;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.offset == self.bytes.len()
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::Truncated)?;
        let taken = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(taken)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A presence flag: exactly 0 or 1.
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::BadFlag(other)),
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.bytes.len() - self.offset))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut reader = Reader::new(&[0, 1, 2, 3, 4]);
        assert_eq!(reader.u16().unwrap(), 1);
        assert_eq!(reader.offset(), 2);
        assert_eq!(reader.take(4), Err(DecodeError::Truncated));
        // A failed read consumes nothing.
        assert_eq!(reader.offset(), 2);
        assert_eq!(reader.finish(), Err(DecodeError::TrailingBytes(3)));
        assert_eq!(reader.flag(), Err(DecodeError::BadFlag(2)));
        assert_eq!(reader.take(usize::MAX), Err(DecodeError::Truncated));
        assert_eq!(reader.u16().unwrap(), 0x0304);
        assert!(reader.finish().is_ok());
        assert_eq!(reader.u8(), Err(DecodeError::Truncated));
    }
}

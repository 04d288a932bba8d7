//! Decoding keys. Stored keys may have been written by anyone, so every
//! malformed input is an error, never a panic.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::{BYTES_END, END, ESC, Error, width};

/// Decodes a key written by [`to_key`](super::to_key).
pub(crate) fn from_key<T: DeserializeOwned>(raw: &str) -> Result<T, Error> {
    let mut d = KeyDeserializer {
        input: raw,
        top: true,
    };
    let v = T::deserialize(&mut d)?;
    if !d.input.is_empty() {
        return Err(Error(format!("unexpected {:?} after the key", d.input)));
    }
    Ok(v)
}

struct KeyDeserializer<'de> {
    input: &'de str,
    /// As in the serializer: whether the value read is the whole key.
    top: bool,
}

fn bad(what: &str) -> Error {
    Error(format!("malformed key: {what}"))
}

impl<'de> KeyDeserializer<'de> {
    fn enter(&mut self) -> bool {
        std::mem::replace(&mut self.top, false)
    }

    /// The next `n` bytes, which must be whole chars.
    fn take(&mut self, n: usize) -> Result<&'de str, Error> {
        let s = self.input.get(..n).ok_or_else(|| bad("too short"))?;
        self.input = &self.input[n..];
        Ok(s)
    }

    fn flag(&mut self) -> Result<bool, Error> {
        match self.take(1)? {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad("expected 0 or 1")),
        }
    }

    fn digits(&mut self, n: usize) -> Result<u128, Error> {
        let s = self.take(n)?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected digits"));
        }
        s.parse().map_err(|_| bad("number out of range"))
    }

    fn unsigned(&mut self, bits: u32) -> Result<u128, Error> {
        self.enter();
        self.digits(width(bits, false))
    }

    fn signed(&mut self, bits: u32) -> Result<i128, Error> {
        self.enter();
        let w = width(bits, true);
        if !self.input.starts_with('-') {
            return i128::try_from(self.digits(w)?).map_err(|_| bad("number out of range"));
        }
        self.take(1)?;
        let s = self.take(w)?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected digits"));
        }
        let m: String = s.bytes().map(|d| char::from(b'9' - (d - b'0'))).collect();
        let m: i128 = m.parse().map_err(|_| bad("number out of range"))?;
        Ok(-m - 1)
    }

    fn text(&mut self) -> Result<String, Error> {
        if self.enter() {
            return Ok(std::mem::take(&mut self.input).to_owned());
        }
        let mut out = String::new();
        let mut chars = self.input.char_indices();
        loop {
            let (i, c) = chars.next().ok_or_else(|| bad("unterminated string"))?;
            match c {
                END => {
                    self.input = &self.input[i + 1..];
                    return Ok(out);
                }
                ESC => match chars.next() {
                    Some((_, ESC)) => out.push(END),
                    Some((_, '\u{2}')) => out.push(ESC),
                    _ => return Err(bad("bad escape")),
                },
                c => out.push(c),
            }
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        let top = self.enter();
        let hex = if top {
            std::mem::take(&mut self.input)
        } else {
            let end = self
                .input
                .find(BYTES_END)
                .ok_or_else(|| bad("unterminated bytes"))?;
            let hex = &self.input[..end];
            self.input = &self.input[end + 1..];
            hex
        };
        if hex.len() % 2 != 0 {
            return Err(bad("odd hex"));
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("expected hex"))
            })
            .collect()
    }

    fn hex_u64(&mut self, n: usize) -> Result<u64, Error> {
        self.enter();
        let s = self.take(n)?;
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected hex"));
        }
        u64::from_str_radix(s, 16).map_err(|_| bad("expected hex"))
    }

    fn variant(&mut self) -> Result<u32, Error> {
        self.enter();
        let n = match self.take(1)?.as_bytes()[0] {
            d @ b'1'..=b':' => usize::from(d - b'0'),
            _ => return Err(bad("expected a variant index")),
        };
        u32::try_from(self.digits(n)?).map_err(|_| bad("variant index out of range"))
    }
}

macro_rules! ints {
    ($($method:ident $visit:ident $ty:ty, $bits:literal, $read:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            let n = self.$read($bits)?;
            v.$visit(<$ty>::try_from(n).map_err(|_| bad("number out of range"))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut KeyDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error(
            "sorted keys are not self-describing: use a concrete key type".into(),
        ))
    }

    ints! {
        deserialize_i8 visit_i8 i8, 8, signed;
        deserialize_i16 visit_i16 i16, 16, signed;
        deserialize_i32 visit_i32 i32, 32, signed;
        deserialize_i64 visit_i64 i64, 64, signed;
        deserialize_i128 visit_i128 i128, 128, signed;
        deserialize_u8 visit_u8 u8, 8, unsigned;
        deserialize_u16 visit_u16 u16, 16, unsigned;
        deserialize_u32 visit_u32 u32, 32, unsigned;
        deserialize_u64 visit_u64 u64, 64, unsigned;
        deserialize_u128 visit_u128 u128, 128, unsigned;
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.enter();
        v.visit_bool(self.flag()?)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let o = self.hex_u64(8)? as u32;
        let bits = if o >> 31 == 1 { o & !(1 << 31) } else { !o };
        v.visit_f32(f32::from_bits(bits))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let o = self.hex_u64(16)?;
        let bits = if o >> 63 == 1 { o & !(1 << 63) } else { !o };
        v.visit_f64(f64::from_bits(bits))
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let s = self.text()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(bad("expected one char")),
        }
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_string(self.text()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_string(self.text()?)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_byte_buf(self.bytes()?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_byte_buf(self.bytes()?)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.enter();
        if self.flag()? {
            v.visit_some(self)
        } else {
            v.visit_none()
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.enter();
        v.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        self.enter();
        v.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.enter();
        v.visit_seq(Items {
            de: self,
            left: None,
        })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Error> {
        self.enter();
        v.visit_seq(Items {
            de: self,
            left: Some(len),
        })
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, v)
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.enter();
        v.visit_map(Items {
            de: self,
            left: None,
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(fields.len(), v)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_enum(self)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error("sorted keys hold no field names".into()))
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_any(v)
    }
}

/// The items of a compound: `left` items for fixed lengths, else marked.
struct Items<'a, 'de> {
    de: &'a mut KeyDeserializer<'de>,
    left: Option<usize>,
}

impl Items<'_, '_> {
    fn more(&mut self) -> Result<bool, Error> {
        match &mut self.left {
            Some(0) => Ok(false),
            Some(n) => {
                *n -= 1;
                Ok(true)
            }
            None => self.de.flag(),
        }
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.de)
    }
}

impl<'de> de::EnumAccess<'de> for &mut KeyDeserializer<'de> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let index = self.variant()?;
        let v = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(index))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut KeyDeserializer<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Error> {
        v.visit_seq(Items {
            de: self,
            left: Some(len),
        })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_seq(Items {
            de: self,
            left: Some(fields.len()),
        })
    }
}

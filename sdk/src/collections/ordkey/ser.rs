//! Encoding keys (see the module above for the format).

use serde::ser::{self, Serialize};

use super::{BYTES_END, END, ESC, Error, width};

/// Encodes `key` order-preservingly.
pub(crate) fn to_key<Q: Serialize + ?Sized>(key: &Q) -> Result<String, Error> {
    let mut s = KeySerializer {
        out: String::new(),
        top: true,
    };
    key.serialize(&mut s)?;
    Ok(s.out)
}

struct KeySerializer {
    out: String,
    /// Whether nothing but newtypes enclose the value being written: a
    /// string there is the whole key, so it needs no terminator.
    top: bool,
}

impl KeySerializer {
    /// Marks the start of a value that is not the whole key, returning
    /// whether it is.
    fn enter(&mut self) -> bool {
        std::mem::replace(&mut self.top, false)
    }

    fn unsigned(&mut self, v: u128, bits: u32) {
        self.enter();
        let w = width(bits, false);
        self.out.push_str(&format!("{v:0w$}"));
    }

    fn signed(&mut self, v: i128, bits: u32) {
        self.enter();
        let w = width(bits, true);
        if v >= 0 {
            self.out.push_str(&format!("{v:0w$}"));
        } else {
            // Larger negatives must sort lower: nines' complement of
            // |v| - 1 (which fits, unlike |v| for the minimum).
            let m = v.unsigned_abs() - 1;
            self.out.push('-');
            for d in format!("{m:0w$}").bytes() {
                self.out.push(char::from(b'9' - (d - b'0')));
            }
        }
    }

    fn text(&mut self, s: &str) {
        if self.enter() {
            self.out.push_str(s);
            return;
        }
        for c in s.chars() {
            match c {
                END => self.out.extend([ESC, ESC]),
                ESC => self.out.extend([ESC, '\u{2}']),
                c => self.out.push(c),
            }
        }
        self.out.push(END);
    }

    /// A variant index: its digit count, then its digits (no padding, so
    /// small indexes stay short; more digits means larger).
    fn variant(&mut self, index: u32) {
        self.enter();
        let digits = index.to_string();
        self.out.push(char::from(b'0' + digits.len() as u8));
        self.out.push_str(&digits);
    }
}

/// A compound value being written; `marks` for sequences and maps, whose
/// length varies: `1` before each item, `0` after the last.
pub(super) struct Compound<'a> {
    ser: &'a mut KeySerializer,
    marks: bool,
}

impl Compound<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        if self.marks {
            self.ser.out.push('1');
        }
        v.serialize(&mut *self.ser)
    }

    fn finish(self) -> Result<(), Error> {
        if self.marks {
            self.ser.out.push('0');
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut KeySerializer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.enter();
        self.out.push(if v { '1' } else { '0' });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.signed(v.into(), 8);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.signed(v.into(), 16);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.signed(v.into(), 32);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.signed(v.into(), 64);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.signed(v, 128);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.unsigned(v.into(), 8);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.unsigned(v.into(), 16);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.unsigned(v.into(), 32);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.unsigned(v.into(), 64);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.unsigned(v, 128);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.enter();
        let bits = v.to_bits();
        // Positive: set the sign bit; negative: flip all bits. Then
        // unsigned order is `total_cmp` order.
        let ordered = if bits >> 31 == 1 {
            !bits
        } else {
            bits | 1 << 31
        };
        self.out.push_str(&format!("{ordered:08x}"));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.enter();
        let bits = v.to_bits();
        let ordered = if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        };
        self.out.push_str(&format!("{ordered:016x}"));
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.text(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.text(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let top = self.enter();
        for b in v {
            self.out.push_str(&format!("{b:02x}"));
        }
        if !top {
            self.out.push(BYTES_END);
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.enter();
        self.out.push('0');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        self.enter();
        self.out.push('1');
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.enter();
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.enter();
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), Error> {
        self.variant(index);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.variant(index);
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        self.enter();
        Ok(Compound {
            ser: self,
            marks: true,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, Error> {
        self.enter();
        Ok(Compound {
            ser: self,
            marks: false,
        })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Error> {
        self.enter();
        Ok(Compound {
            ser: self,
            marks: false,
        })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Error> {
        self.variant(index);
        Ok(Compound {
            ser: self,
            marks: false,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        self.enter();
        Ok(Compound {
            ser: self,
            marks: true,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Error> {
        self.enter();
        Ok(Compound {
            ser: self,
            marks: false,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Error> {
        self.variant(index);
        Ok(Compound {
            ser: self,
            marks: false,
        })
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.item(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.item(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.item(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.item(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.item(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.item(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.item(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

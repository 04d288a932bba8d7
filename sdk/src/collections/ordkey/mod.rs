//! Order-preserving key encoding for [`SortedMap`](super::SortedMap) and
//! [`SortedSet`](super::SortedSet).
//!
//! A key is encoded as a string whose byte order (how the host sorts map
//! keys, the same on every replica) is the key type's own order, for the
//! orders `#[derive(PartialOrd, Ord)]` and the standard types define:
//! integers numerically (negatives first), strings and byte strings
//! lexicographically by bytes, `Option` with `None` first, tuples, structs
//! and sequences element-wise, enums by variant declaration order, floats
//! by `total_cmp`, `bool` with `false` first.
//!
//! Readability in exported state: a key that is a string (or a newtype of
//! one) is stored as itself. Other keys spell their parts in order:
//! integers as fixed-width decimals (`u32` 7 is `0000000007`; a negative
//! number is `-` then the nines' complement of its magnitude minus one,
//! so `-1i8` is `-999`), `bool` as `0`/`1`, `Option` as `0` or `1` then the
//! value, an enum variant as its index (a digit count then the digits),
//! sequences as `1` before each item and `0` at the end, a string inside
//! another key as itself with `\0` escaped and a `\0` after it, bytes as
//! hex, floats as hex of their ordered bits.
//!
//! The encoding depends on the key type: changing it (`u32` to `u64`, a
//! variant inserted before others) changes stored keys' order and decoding,
//! like any change of an app's state types.

mod de;
mod ser;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use de::from_key;
pub(crate) use ser::to_key;

/// Why a key could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Terminates a string inside a composite key; below every encoded char.
const END: char = '\0';
/// Escapes `\0` and itself inside a composite key's strings.
const ESC: char = '\u{1}';
/// Terminates bytes inside a composite key; below every hex digit.
const BYTES_END: char = '.';

/// Decimal digits of each integer type's widest value (for negatives: of
/// the magnitude minus one, which has as many).
const fn width(bits: u32, signed: bool) -> usize {
    match (bits, signed) {
        (8, _) => 3,
        (16, _) => 5,
        (32, _) => 10,
        (64, false) => 20,
        (64, true) => 19,
        _ => 39,
    }
}

/// Encodes a key, failing the call if its type cannot be a key.
pub(crate) fn encode<Q: Serialize + ?Sized>(key: &Q) -> String {
    to_key(key).unwrap_or_else(|e| crate::host::corrupt(format!("cannot encode a sorted key: {e}")))
}

/// Decodes a stored key, failing the call if it is not a `K`.
pub(crate) fn decode<K: DeserializeOwned>(raw: &str) -> K {
    from_key(raw).unwrap_or_else(|e| {
        crate::host::corrupt(format!(
            "stored sorted key {raw:?} is not a `{}`: {e} (did the app's state types change?)",
            std::any::type_name::<K>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use serde::{Deserialize, Serialize};

    use super::*;

    /// Checks that encoding preserves the order of `values` (sorted by
    /// their `Ord`) and round-trips each.
    fn check<T: Serialize + DeserializeOwned + Ord + Debug + Clone>(mut values: Vec<T>) {
        values.sort();
        values.dedup();
        let keys: Vec<String> = values.iter().map(|v| to_key(v).unwrap()).collect();
        for (i, (v, k)) in values.iter().zip(&keys).enumerate() {
            assert_eq!(
                &from_key::<T>(k).unwrap(),
                v,
                "round trip of {v:?} via {k:?}"
            );
            if i > 0 {
                assert!(
                    keys[i - 1] < *k,
                    "{:?} ({:?}) !< {v:?} ({k:?})",
                    values[i - 1],
                    keys[i - 1]
                );
            }
        }
    }

    #[test]
    fn integers_sort_numerically() {
        let mut ints: Vec<i64> = vec![
            i64::MIN,
            i64::MIN + 1,
            -1_000_000,
            -10,
            -9,
            -2,
            -1,
            0,
            1,
            2,
            9,
            10,
            99,
            100,
        ];
        ints.extend([i64::MAX - 1, i64::MAX, 1 << 53, (1 << 53) + 1, -(1 << 53)]);
        check(ints);
        check((i8::MIN..=i8::MAX).collect());
        check(vec![0u64, 1, 10, u64::MAX, u64::MAX / 2]);
        check(vec![0u8, 1, 255]);
        check(vec![i128::MIN, -1, 0, i128::MAX]);
        check(vec![u128::MAX, 0, 7]);
        assert_eq!(to_key(&7u32).unwrap(), "0000000007");
        assert_eq!(to_key(&-1i8).unwrap(), "-999");
        assert_eq!(to_key(&i8::MIN).unwrap(), "-872");
    }

    #[test]
    fn strings_sort_by_bytes_and_stay_readable() {
        let strings: Vec<String> = [
            "",
            "a",
            "a\0",
            "a\0b",
            "a\u{1}",
            "a\u{1}\0",
            "a\u{2}",
            "ab",
            "b",
            "é",
            "\u{10FFFF}",
        ]
        .map(String::from)
        .to_vec();
        check(strings.clone());
        assert_eq!(to_key("plain text").unwrap(), "plain text");
        // Inside tuples strings are terminated, so a prefix sorts first.
        let pairs: Vec<(String, u8)> = strings
            .iter()
            .flat_map(|s| [(s.clone(), 0), (s.clone(), 9)])
            .collect();
        check(pairs);
        check(strings.iter().map(|s| (s.clone(), s.clone())).collect());
        check(vec!['a', 'b', '\0', 'é']);
    }

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Line(u32),
        Box { w: i16, h: i16 },
        Pair(String, bool),
    }

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    struct Version {
        major: u16,
        minor: u16,
        tag: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    struct Name(String);

    #[test]
    fn composites_sort_element_wise() {
        check(vec![
            (1u32, "b".to_owned()),
            (1, "a".to_owned()),
            (0, "z".to_owned()),
            (10, String::new()),
        ]);
        check(vec![(-1i32, -1i32), (-1, 0), (0, -5), (3, 3)]);
        check(vec![None, Some(0u8), Some(7)]);
        check(vec![vec![], vec![0u8], vec![0, 0], vec![0, 1], vec![1]]);
        check(vec![
            vec!["a".to_owned()],
            vec!["a".to_owned(), String::new()],
            vec!["ab".to_owned()],
        ]);
        check(vec![
            Shape::Dot,
            Shape::Line(3),
            Shape::Line(20),
            Shape::Box { w: -1, h: 5 },
            Shape::Box { w: 2, h: -5 },
            Shape::Pair("x".into(), false),
            Shape::Pair("x".into(), true),
        ]);
        check(vec![
            Version {
                major: 1,
                minor: 2,
                tag: None,
            },
            Version {
                major: 1,
                minor: 10,
                tag: None,
            },
            Version {
                major: 1,
                minor: 10,
                tag: Some("rc1".into()),
            },
            Version {
                major: 2,
                minor: 0,
                tag: None,
            },
        ]);
        check(vec![true, false]);
        check(vec![(), ()]);
        let maps: Vec<BTreeMap<u8, bool>> = vec![
            BTreeMap::new(),
            [(1, false)].into(),
            [(1, true)].into(),
            [(1, false), (2, false)].into(),
            [(2, false)].into(),
        ];
        check(maps);
        // A newtype of a string reads as the string.
        assert_eq!(to_key(&Name("x y".into())).unwrap(), "x y");
        check(vec![Name("b".into()), Name("a".into())]);
    }

    #[test]
    fn floats_sort_by_total_order() {
        let floats = [
            f64::NEG_INFINITY,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            1.0,
            2.5,
            f64::INFINITY,
        ];
        let keys: Vec<String> = floats.iter().map(|f| to_key(f).unwrap()).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{w:?}");
        }
        for (f, k) in floats.iter().zip(&keys) {
            assert_eq!(from_key::<f64>(k).unwrap().to_bits(), f.to_bits());
        }
        assert!(to_key(&1.5f32).unwrap() < to_key(&2.0f32).unwrap());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for raw in [
            "",
            "12",
            "00000000000000000000x",
            "-",
            "-1234567890123456789é",
            "é",
            "2",
            "1a\u{1}",
        ] {
            let _ = from_key::<u64>(raw);
            let _ = from_key::<i64>(raw);
            let _ = from_key::<(String, u8)>(raw);
            let _ = from_key::<Vec<String>>(raw);
            let _ = from_key::<Option<bool>>(raw);
            let _ = from_key::<Shape>(raw);
            let _ = from_key::<f64>(raw);
            let _ = from_key::<char>(raw);
        }
        assert!(from_key::<u32>("0000000007x").is_err(), "trailing input");
        assert!(from_key::<u8>("999").is_err(), "out of range");
        assert!(
            from_key::<serde_json::Value>("x").is_err(),
            "not self-describing"
        );
    }
}

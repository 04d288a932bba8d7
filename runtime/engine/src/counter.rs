//! The exact counter behind `Counter`.
//!
//! Loro's own counter sums `f64`s, so it loses integers past 2^53. A mero
//! counter is instead a plain Loro list (a kind no other collection uses, so
//! a counter is recognisable in state) of plain values, one per replica
//! that ever added to it: `{"peer": "<loro peer id>", "total": <i64 or
//! decimal string>}`, that replica's running total. Only the replica itself
//! replaces its item (delete + insert), and its own ops are sequential, so
//! no total is ever lost to a concurrent write; the value is the exact sum
//! of all totals in `i128`.
//!
//! The items are values rather than nested maps so that every container of
//! a counter is addressed by name (a mergeable list), which owned entries
//! ([`crate::owned`]) require.
//!
//! Range: an add that would leave the value this replica sees outside
//! `i64` fails the call, unless it moves an out-of-range value (reached by
//! concurrent adds of several replicas) back towards the range. Totals
//! themselves may exceed `i64` (one replica adds what others subtract); they
//! are then stored as decimal strings.

use loro::{LoroList, LoroValue, ValueOrContainer};

use crate::error::EngineError;

/// Key of an item's replica (a Loro peer id in decimal).
const PEER: &str = "peer";
/// Key of an item's running total.
const TOTAL: &str = "total";

/// The exact value: the sum of every replica's total.
pub(crate) fn value(c: &LoroList) -> Result<i128, EngineError> {
    let mut sum: i128 = 0;
    for item in items(c)? {
        sum = sum.checked_add(item.1).ok_or_else(corrupt_sum)?;
    }
    Ok(sum)
}

/// Adds `by` as replica `peer`, refusing to leave the `i64` range.
pub(crate) fn add(c: &LoroList, peer: u64, by: i64) -> Result<(), EngineError> {
    if by == 0 {
        return Ok(());
    }
    let before = value(c)?;
    let after = before.checked_add(i128::from(by)).ok_or_else(corrupt_sum)?;
    if outside_i64(after) > 0 && outside_i64(after) >= outside_i64(before) {
        return Err(EngineError::invalid(format!(
            "counter overflow: {before} + {by} = {after} is outside the i64 range; the add was refused"
        )));
    }
    shift_own(c, peer, i128::from(by))
}

/// Makes the value this replica sees `target` by changing only its own
/// total, so concurrent adds of other replicas still count (used when a
/// counter is stored over another).
pub(crate) fn set(c: &LoroList, peer: u64, target: i128) -> Result<(), EngineError> {
    let diff = target.checked_sub(value(c)?).ok_or_else(corrupt_sum)?;
    if diff == 0 {
        return Ok(());
    }
    shift_own(c, peer, diff)
}

/// Adds `diff` to `peer`'s total: its items (one, unless a hostile replica
/// wrote more) are replaced by a single item holding their sum plus `diff`.
fn shift_own(c: &LoroList, peer: u64, diff: i128) -> Result<(), EngineError> {
    let me = peer.to_string();
    let mine: Vec<(usize, i128)> = items(c)?
        .into_iter()
        .enumerate()
        .filter(|(_, (p, _))| *p == me)
        .map(|(i, (_, total))| (i, total))
        .collect();
    let mut total = diff;
    for (_, t) in &mine {
        total = total.checked_add(*t).ok_or_else(corrupt_sum)?;
    }
    for (i, _) in mine.iter().rev() {
        c.delete(*i, 1)?;
    }
    let at = mine.first().map_or(c.len(), |(i, _)| *i);
    c.insert(at, item(&me, total))?;
    Ok(())
}

/// Every item as (peer, total). Anything else in the list (only a hostile
/// replica writes that) makes the counter unreadable rather than wrong.
fn items(c: &LoroList) -> Result<Vec<(String, i128)>, EngineError> {
    let mut raw = Vec::with_capacity(c.len());
    c.for_each(|v| raw.push(v));
    raw.into_iter().map(parse_item).collect()
}

fn parse_item(v: ValueOrContainer) -> Result<(String, i128), EngineError> {
    let ValueOrContainer::Value(LoroValue::Map(m)) = v else {
        return Err(corrupt("an item is not a {peer, total} map"));
    };
    let Some(LoroValue::String(peer)) = m.get(PEER) else {
        return Err(corrupt("an item has no peer"));
    };
    let total = match m.get(TOTAL) {
        Some(LoroValue::I64(n)) => i128::from(*n),
        Some(LoroValue::String(s)) => s
            .parse::<i128>()
            .map_err(|_| corrupt("an item's total is not an integer"))?,
        _ => return Err(corrupt("an item has no integer total")),
    };
    Ok((peer.to_string(), total))
}

fn item(peer: &str, total: i128) -> LoroValue {
    let total = match i64::try_from(total) {
        Ok(n) => LoroValue::I64(n),
        Err(_) => LoroValue::from(total.to_string()),
    };
    let mut m = std::collections::HashMap::with_capacity(2);
    m.insert(PEER.to_owned(), LoroValue::from(peer));
    m.insert(TOTAL.to_owned(), total);
    LoroValue::from(m)
}

/// How far `x` lies outside the `i64` range (0 inside).
fn outside_i64(x: i128) -> i128 {
    if x > i128::from(i64::MAX) {
        x - i128::from(i64::MAX)
    } else if x < i128::from(i64::MIN) {
        i128::from(i64::MIN) - x
    } else {
        0
    }
}

fn corrupt(why: &str) -> EngineError {
    EngineError::invalid(format!("the counter's state is corrupt: {why}"))
}

fn corrupt_sum() -> EngineError {
    corrupt("its totals overflow i128")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(doc: &loro::LoroDoc) -> LoroList {
        doc.get_list("c")
    }

    #[test]
    fn adds_are_exact_past_two_to_the_53() {
        let doc = loro::LoroDoc::new();
        let c = counter(&doc);
        add(&c, 1, 1 << 53).unwrap();
        add(&c, 1, 1).unwrap();
        add(&c, 2, 1).unwrap();
        assert_eq!(value(&c).unwrap(), (1 << 53) + 2);
        assert_eq!(c.len(), 2, "one item per replica");
    }

    #[test]
    fn an_add_leaving_i64_is_refused_but_one_moving_back_is_not() {
        let doc = loro::LoroDoc::new();
        let c = counter(&doc);
        add(&c, 1, i64::MAX).unwrap();
        assert!(add(&c, 1, 1).is_err());
        assert_eq!(value(&c).unwrap(), i128::from(i64::MAX));
        // Concurrent adds of two replicas can pass the range; this replica
        // sees both: it may move back, not further out.
        c.insert(0, item("2", 10)).unwrap();
        assert!(add(&c, 1, 1).is_err());
        add(&c, 1, -3).unwrap();
        assert_eq!(value(&c).unwrap(), i128::from(i64::MAX) + 7);
        add(&c, 1, -7).unwrap();
        assert_eq!(value(&c).unwrap(), i128::from(i64::MAX));
    }

    #[test]
    fn totals_past_i64_are_strings() {
        let doc = loro::LoroDoc::new();
        let c = counter(&doc);
        add(&c, 1, i64::MAX).unwrap();
        add(&c, 2, i64::MIN).unwrap();
        add(&c, 1, i64::MAX).unwrap();
        assert_eq!(value(&c).unwrap(), i128::from(i64::MAX) - 1);
        let json = crate::value::loro_to_json(&c.get_deep_value());
        assert_eq!(
            json[0]["total"],
            serde_json::json!((2 * i128::from(i64::MAX)).to_string())
        );
    }

    #[test]
    fn garbage_items_are_errors() {
        let doc = loro::LoroDoc::new();
        let c = counter(&doc);
        c.insert(0, 1.5).unwrap();
        assert!(value(&c).is_err());
        assert!(add(&c, 1, 1).is_err());
    }

    #[test]
    fn set_changes_only_the_own_total() {
        let doc = loro::LoroDoc::new();
        let c = counter(&doc);
        add(&c, 2, 40).unwrap();
        set(&c, 1, 5).unwrap();
        assert_eq!(value(&c).unwrap(), 5);
        let json = crate::value::loro_to_json(&c.get_deep_value());
        assert_eq!(
            json,
            serde_json::json!([{"peer": "2", "total": 40}, {"peer": "1", "total": -35}])
        );
    }
}

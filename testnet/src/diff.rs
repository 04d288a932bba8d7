//! What differs between nodes: state paths (JSON Pointer syntax) whose
//! values are not the same everywhere, and authors whose applied seq is
//! not. Pure functions over answers already fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// A state path whose value differs between nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDiff {
    /// `/items/k5` (keys escaped as JSON Pointer: `~0` for `~`, `~1` for `/`).
    pub path: String,
    /// Per node (1-based number): its value there, `None` when absent.
    pub values: Vec<(usize, Option<Value>)>,
}

/// An author whose applied seq differs between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorDiff {
    /// The author's member key.
    pub author: String,
    /// The node whose member key it is, when it is one of the network's.
    pub node: Option<usize>,
    /// Per node: how many of the author's deltas it applied.
    pub seqs: Vec<(usize, u64)>,
}

/// Longest value text shown in a [`PathDiff`] line.
const SHOWN_VALUE: usize = 60;

fn shown(v: &Option<Value>) -> String {
    match v {
        None => "absent".into(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() <= SHOWN_VALUE {
                text
            } else {
                let cut: String = text.chars().take(SHOWN_VALUE).collect();
                format!("{cut}…")
            }
        }
    }
}

impl fmt::Display for PathDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}:")?;
        for (i, (node, v)) in self.values.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}node{node}={}", shown(v))?;
        }
        Ok(())
    }
}

impl fmt::Display for AuthorDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "node{n}'s key {}:", self.author)?,
            None => write!(f, "{}:", self.author)?,
        }
        for (node, seq) in &self.seqs {
            write!(f, " node{node}={seq}")?;
        }
        Ok(())
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The paths whose values differ between `states` (node number, its
/// state; nodes whose state could not be read are left out by the
/// caller), at most `limit` of them, in path order; and how many differ in
/// all. Objects and arrays present on some nodes are descended into (an
/// absent parent makes its children absent), so a key one node lacks is
/// named, not its whole parent.
pub fn state_paths(states: &[(usize, &Value)], limit: usize) -> (Vec<PathDiff>, usize) {
    let mut out = Vec::new();
    let mut total = 0;
    let values: Vec<Option<&Value>> = states.iter().map(|(_, v)| Some(*v)).collect();
    let nodes: Vec<usize> = states.iter().map(|(n, _)| *n).collect();
    walk(&nodes, &values, String::new(), limit, &mut out, &mut total);
    (out, total)
}

fn walk(
    nodes: &[usize],
    values: &[Option<&Value>],
    path: String,
    limit: usize,
    out: &mut Vec<PathDiff>,
    total: &mut usize,
) {
    let first = values[0];
    if values.iter().all(|v| *v == first) {
        return;
    }
    let present: Vec<&Value> = values.iter().flatten().copied().collect();
    if present.iter().all(|v| v.is_object()) {
        let keys: BTreeSet<&String> = present
            .iter()
            .filter_map(|v| v.as_object())
            .flat_map(|m| m.keys())
            .collect();
        for k in keys {
            let children: Vec<Option<&Value>> =
                values.iter().map(|v| v.and_then(|v| v.get(k))).collect();
            walk(
                nodes,
                &children,
                format!("{path}/{}", escape(k)),
                limit,
                out,
                total,
            );
        }
    } else if present.iter().all(|v| v.is_array()) {
        let len = present
            .iter()
            .filter_map(|v| v.as_array())
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        for i in 0..len {
            let children: Vec<Option<&Value>> =
                values.iter().map(|v| v.and_then(|v| v.get(i))).collect();
            walk(nodes, &children, format!("{path}/{i}"), limit, out, total);
        }
    } else {
        *total += 1;
        if out.len() < limit {
            out.push(PathDiff {
                path,
                values: nodes
                    .iter()
                    .zip(values)
                    .map(|(n, v)| (*n, v.cloned()))
                    .collect(),
            });
        }
    }
}

/// The authors whose applied seq differs between `vectors` (node number,
/// its per-author vector; a missing author counts as 0), in key order.
/// `owners` maps member keys to the node that holds them.
pub fn author_diffs(
    vectors: &[(usize, &BTreeMap<String, u64>)],
    owners: &BTreeMap<String, usize>,
) -> Vec<AuthorDiff> {
    let authors: BTreeSet<&String> = vectors.iter().flat_map(|(_, v)| v.keys()).collect();
    authors
        .into_iter()
        .filter_map(|a| {
            let seqs: Vec<(usize, u64)> = vectors
                .iter()
                .map(|(n, v)| (*n, v.get(a).copied().unwrap_or(0)))
                .collect();
            let differ = seqs.iter().any(|(_, s)| *s != seqs[0].1);
            differ.then(|| AuthorDiff {
                author: a.clone(),
                node: owners.get(a).copied(),
                seqs,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_the_paths_that_differ_down_to_the_key() {
        let a = json!({"items": {"a/b": 1, "k1": "x", "k5": "y"}, "list": [1, 2], "writes": 3});
        let b = json!({"items": {"k1": "x", "a/b": 2}, "writes": 3, "list": [1, 2, 3]});
        // An empty root is absent from a state export: its keys are named.
        let c = json!({"writes": 3, "list": [1, 2]});
        let (paths, total) = state_paths(&[(1, &a), (2, &b)], 20);
        let text: Vec<String> = paths.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "/items/a~1b: node1=1, node2=2",
                "/items/k5: node1=\"y\", node2=absent",
                "/list/2: node1=absent, node2=3",
            ]
        );
        assert_eq!(total, 3);
        let (paths, _) = state_paths(&[(1, &a), (3, &c)], 20);
        assert_eq!(paths[0].path, "/items/a~1b");
        assert_eq!(paths[0].values[1], (3, None));
        assert_eq!(paths.len(), 3);
        // Equal states: nothing.
        assert_eq!(state_paths(&[(1, &a), (2, &a.clone())], 20).1, 0);
        // A type change is the path itself; the limit bounds the list, not the count.
        let d = json!({"items": 7, "writes": 4, "list": [1, 2]});
        let (paths, total) = state_paths(&[(1, &a), (2, &d)], 1);
        assert_eq!(total, 2);
        assert_eq!(paths.len(), 1);
        assert_eq!(
            paths[0].to_string(),
            r#"/items: node1={"a/b":1,"k1":"x","k5":"y"}, node2=7"#
        );
    }

    #[test]
    fn long_values_are_cut_and_roots_shown() {
        let long = "x".repeat(100);
        let d = PathDiff {
            path: String::new(),
            values: vec![(1, Some(json!(long))), (2, None)],
        };
        let text = d.to_string();
        assert!(text.starts_with("/: node1=\"xxx"), "{text}");
        assert!(text.ends_with("…, node2=absent"), "{text}");
    }

    #[test]
    fn names_authors_whose_seqs_differ_and_whose_key_they_are() {
        let v = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect()
        };
        let n1 = v(&[("keyA", 12), ("keyC", 4)]);
        let n2 = v(&[("keyA", 12), ("keyC", 4)]);
        let n3 = v(&[("keyA", 7), ("keyB", 2), ("keyC", 4)]);
        let owners = BTreeMap::from([("keyA".to_owned(), 1), ("keyB".to_owned(), 3)]);
        let diffs = author_diffs(&[(1, &n1), (2, &n2), (3, &n3)], &owners);
        let text: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "node1's key keyA: node1=12 node2=12 node3=7",
                "node3's key keyB: node1=0 node2=0 node3=2",
            ]
        );
        assert!(author_diffs(&[(1, &n1), (2, &n2)], &owners).is_empty());
    }
}

//! notes on three replicas typing into one document at the same time:
//! interleaved inserts and deletes, delivered in shuffled orders (several
//! seeds), converge to one text in which every word each replica typed
//! survives, whole and once. Concurrent renames leave one title and an
//! index that lists each document once.

use std::collections::BTreeMap;

use mero_sdk::testing::Network;
use notes::{Notes, Page, Summary};
use serde_json::{Value, json};

fn ok(net: &mut Network<Notes>, i: usize, method: &str, args: Value) -> Value {
    net.replica(i)
        .execute(method, args.clone())
        .unwrap_or_else(|e| panic!("replica {i}: {method} {args}: {e:?}"))
}

fn body(net: &mut Network<Notes>, i: usize, doc: &Value) -> String {
    let d = net.replica(i).query("get", json!({ "doc": doc })).unwrap();
    d["body"].as_str().unwrap().to_owned()
}

/// A document holding `text`, on every replica.
fn shared_doc(net: &mut Network<Notes>, text: &str, seed: u64) -> Value {
    let doc = ok(net, 0, "create", json!({"title": "shared"}));
    ok(
        net,
        0,
        "insert",
        json!({"doc": doc, "pos": 0, "text": text}),
    );
    net.deliver_shuffled(seed);
    doc
}

#[test]
fn typing_at_one_place_at_once_keeps_each_run_of_typing_whole() {
    for seed in 0..10u64 {
        let mut net = Network::<Notes>::new(3);
        let doc = shared_doc(&mut net, "start end", seed);
        let words = ["alpha ", "bravo ", "charlie "];
        // Each replica types its word key by key after "start ".
        for (i, word) in words.iter().enumerate() {
            for (k, ch) in word.chars().enumerate() {
                ok(
                    &mut net,
                    i,
                    "insert",
                    json!({"doc": doc, "pos": 6 + k, "text": ch.to_string()}),
                );
            }
        }
        net.deliver_shuffled(seed + 100);
        net.assert_converged();
        let text = body(&mut net, 1, &doc);
        assert!(
            text.starts_with("start ") && text.ends_with("end"),
            "{text}"
        );
        for w in words {
            assert_eq!(text.matches(w).count(), 1, "seed {seed}: {w:?} in {text:?}");
        }
        assert_eq!(text.chars().count(), 9 + 6 + 6 + 8, "{text}");
    }
}

/// A small seeded random number generator (xorshift), so the workload is
/// the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A random char position in `text` where a word starts: the start, or
/// just after a space. Inserting a space-terminated word there never
/// splits another word.
fn boundary(text: &str, rng: &mut Rng) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let spots: Vec<usize> = (0..=chars.len())
        .filter(|&p| p == 0 || chars[p - 1] == ' ')
        .collect();
    spots[rng.below(spots.len())]
}

/// Where `needle` is in `text`, in chars.
fn char_pos(text: &str, needle: &str) -> Option<usize> {
    text.find(needle).map(|b| text[..b].chars().count())
}

/// Deletes `token` from the document on replica `i` if it is there.
fn delete_token(net: &mut Network<Notes>, i: usize, doc: &Value, token: &str) -> bool {
    let text = body(net, i, doc);
    let Some(pos) = char_pos(&text, token) else {
        return false;
    };
    let len = token.chars().count();
    ok(
        net,
        i,
        "delete",
        json!({"doc": doc, "pos": pos, "len": len, "expect": token}),
    );
    true
}

#[test]
fn interleaved_inserts_and_deletes_converge_and_keep_every_word() {
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut net = Network::<Notes>::new(3);
        let doc = shared_doc(&mut net, "lorem ipsum dolor sit amet ", seed);
        let mut words = Vec::new();
        // Junk each replica typed and has not deleted yet.
        let mut junk: Vec<Vec<String>> = vec![Vec::new(); 3];
        for round in 0..5u64 {
            for (i, mine) in junk.iter_mut().enumerate() {
                // A word that must survive, a junk token that must not.
                for token in [format!("w{i}r{round} "), format!("#{i}r{round}# ")] {
                    let text = body(&mut net, i, &doc);
                    let pos = boundary(&text, &mut rng);
                    ok(
                        &mut net,
                        i,
                        "insert",
                        json!({"doc": doc, "pos": pos, "text": token}),
                    );
                    if token.starts_with('#') {
                        mine.push(token);
                    } else {
                        words.push(token.trim().to_owned());
                    }
                }
                // Delete the oldest junk this replica typed: by now others
                // may have typed right next to it.
                if round > 0 && rng.below(2) == 0 {
                    let oldest = mine.remove(0);
                    assert!(delete_token(&mut net, i, &doc, &oldest));
                }
            }
            if round == 1 {
                // Replicas delete the same stretches at once.
                for (i, token) in [(0, "ipsum "), (1, "ipsum "), (1, "dolor "), (2, "dolor ")] {
                    assert!(delete_token(&mut net, i, &doc, token), "{token}");
                }
            }
            // Partial delivery: the next round types into texts that have
            // seen some of the others' edits and not others.
            if round % 2 == 0 {
                net.deliver_round(seed * 10 + round);
            }
        }
        net.deliver_shuffled(seed + 1000);
        for (i, tokens) in junk.iter().enumerate() {
            for t in tokens {
                assert!(delete_token(&mut net, i, &doc, t), "{t}");
            }
        }
        net.deliver_shuffled(seed + 2000);
        net.assert_converged();

        let text = body(&mut net, 2, &doc);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            *count.entry(token).or_default() += 1;
        }
        for w in &words {
            assert_eq!(
                count.get(w.as_str()),
                Some(&1),
                "seed {seed}: {w} in {text:?}"
            );
        }
        assert!(!text.contains('#'), "seed {seed}: junk left in {text:?}");
        for gone in ["ipsum", "dolor"] {
            assert!(!count.contains_key(gone), "seed {seed}: {gone} in {text:?}");
        }
        for kept in ["lorem", "sit", "amet"] {
            assert_eq!(count.get(kept), Some(&1), "seed {seed}: {kept} in {text:?}");
        }
        assert_eq!(count.len(), words.len() + 3, "seed {seed}: {text:?}");
    }
}

#[test]
fn concurrent_renames_leave_one_title_and_one_listing() {
    for seed in 0..8u64 {
        let mut net = Network::<Notes>::new(3);
        let doc = shared_doc(&mut net, "text", seed);
        for i in 0..3 {
            ok(
                &mut net,
                i,
                "rename",
                json!({"doc": doc, "title": format!("Title {i}")}),
            );
            // And each replica creates a document of its own at once.
            ok(&mut net, i, "create", json!({"title": format!("own {i}")}));
        }
        net.deliver_shuffled(seed + 100);
        net.assert_converged();
        let title = net.replica(0).query("get", json!({"doc": doc})).unwrap()["title"].clone();
        for i in 0..3 {
            let page: Page =
                serde_json::from_value(net.replica(i).query("list", json!({})).unwrap()).unwrap();
            let ids: Vec<&str> = page.docs.iter().map(|d| d.id.as_str()).collect();
            assert_eq!(ids.len(), 4, "seed {seed}: {page:?}");
            assert_eq!(ids.iter().filter(|d| **d == doc).count(), 1, "{page:?}");
            let shown = page.docs.iter().find(|d| d.id == doc).unwrap();
            assert_eq!(json!(shown.title), title);
            let found: Vec<Summary> = serde_json::from_value(
                net.replica(i)
                    .query("search", json!({"prefix": "title"}))
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(found.len(), 1, "seed {seed}: losing titles are not found");
        }
        // The next rename anywhere clears every key the others added.
        ok(&mut net, 2, "rename", json!({"doc": doc, "title": "Final"}));
        net.deliver_shuffled(seed + 200);
        net.assert_converged();
        let state = net.replica(1).state_json();
        let keys: Vec<&String> = state["index"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "seed {seed}: {keys:?}");
        assert_eq!(
            state["index_keys"][doc.as_str().unwrap()]
                .as_object()
                .map(|o| o.len()),
            Some(1),
            "{state}"
        );
    }
}

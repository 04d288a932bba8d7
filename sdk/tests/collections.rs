//! Every collection, through a small app run on the native test host.

use mero_sdk::app;
use mero_sdk::collections::{Counter, LwwRegister, Text, UnorderedMap, UnorderedSet, Vector};
use mero_sdk::testing::{Network, Replica};
use serde_json::json;

#[app::state]
pub struct Board {
    title: LwwRegister<String>,
    notes: Vector<String>,
    columns: Vector<UnorderedSet<String>>,
    scores: UnorderedMap<(u32, String), i64>,
    by_id: UnorderedMap<u64, Vector<u8>>,
    doc: Text,
    visits: Counter,
    owner: LwwRegister<Option<String>>,
}

#[app::logic]
impl Board {
    #[app::init]
    pub fn init(title: String) -> Self {
        let mut columns = Vector::new();
        let mut todo = UnorderedSet::new();
        todo.insert("first".to_owned());
        columns.push(todo);
        Self {
            title: LwwRegister::new(title),
            notes: Vector::new(),
            columns,
            scores: UnorderedMap::new(),
            by_id: UnorderedMap::new(),
            doc: Text::new(),
            visits: Counter::new(),
            owner: LwwRegister::new(None),
        }
    }

    pub fn rename(&mut self, title: String) {
        self.title.set(title);
    }

    pub fn title(&self) -> String {
        self.title.get().clone()
    }

    pub fn insert_note(&mut self, index: usize, note: String) {
        self.notes.insert(index, note);
    }

    pub fn remove_note(&mut self, index: usize) -> Option<String> {
        self.notes.remove(index)
    }

    pub fn move_note(&mut self, from: usize, to: usize) {
        self.notes.move_item(from, to);
    }

    pub fn set_note(&mut self, index: usize, note: String) {
        self.notes.set(index, note);
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.to_vec()
    }

    pub fn add_card(&mut self, column: usize, card: String) -> app::Result<()> {
        let Some(mut col) = self.columns.get(column) else {
            app::bail!("no column {column}");
        };
        col.insert(card);
        Ok(())
    }

    pub fn cards(&self, column: usize) -> Vec<String> {
        self.columns
            .get(column)
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    pub fn score(&mut self, round: u32, player: String, points: i64) {
        self.scores.insert((round, player), points);
    }

    pub fn scores(&self) -> Vec<((u32, String), i64)> {
        self.scores.entries()
    }

    pub fn push_byte(&mut self, id: u64, b: u8) {
        self.by_id.ensure(id).push(b);
    }

    pub fn bytes(&self, id: u64) -> Vec<u8> {
        self.by_id.get(&id).map(|v| v.to_vec()).unwrap_or_default()
    }

    pub fn type_text(&mut self, pos: usize, s: String) {
        self.doc.insert(pos, &s);
    }

    pub fn erase(&mut self, pos: usize, len: usize) {
        self.doc.delete(pos, len);
    }

    pub fn text(&self) -> String {
        self.doc.get()
    }

    pub fn visit(&mut self) -> i64 {
        self.visits.increment();
        self.visits.value()
    }

    pub fn claim(&mut self) -> app::Result<String> {
        if let Some(owner) = self.owner.get() {
            app::bail!("already owned by {owner}");
        }
        let me: String = mero_sdk::env::executor_id()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        self.owner.set(Some(me.clone()));
        Ok(me)
    }
}

fn board() -> Replica<Board> {
    let mut r = Replica::new(0);
    r.init(json!({"title": "plans"})).unwrap();
    r
}

#[test]
fn registers_and_positional_vectors() {
    let mut r = board();
    assert_eq!(r.execute("title", json!({})).unwrap(), json!("plans"));
    r.execute("rename", json!({"title": "roadmap"})).unwrap();
    assert_eq!(r.execute("title", json!({})).unwrap(), json!("roadmap"));

    for (i, n) in [(0, "b"), (0, "a"), (2, "d"), (2, "c")] {
        r.execute("insert_note", json!({"index": i, "note": n}))
            .unwrap();
    }
    assert_eq!(
        r.execute("notes", json!({})).unwrap(),
        json!(["a", "b", "c", "d"])
    );
    r.execute("move_note", json!({"from": 3, "to": 0})).unwrap();
    r.execute("set_note", json!({"index": 1, "note": "A"}))
        .unwrap();
    assert_eq!(
        r.execute("remove_note", json!({"index": 2})).unwrap(),
        json!("b")
    );
    assert_eq!(
        r.execute("notes", json!({})).unwrap(),
        json!(["d", "A", "c"])
    );
    assert_eq!(
        r.execute("remove_note", json!({"index": 9})).unwrap(),
        json!(null)
    );
    // Out of range inserts fail the call and change nothing.
    let before = r.state_json();
    let err = r
        .execute("insert_note", json!({"index": 10, "note": "x"}))
        .unwrap_err();
    assert!(err.message.contains("out of range"), "{err:?}");
    assert_eq!(r.state_json(), before);
}

#[test]
fn nested_collections_and_structured_keys() {
    let mut r = board();
    assert_eq!(
        r.execute("cards", json!({"column": 0})).unwrap(),
        json!(["first"])
    );
    r.execute("add_card", json!({"column": 0, "card": "second"}))
        .unwrap();
    assert_eq!(
        r.execute("cards", json!({"column": 0})).unwrap(),
        json!(["first", "second"])
    );
    assert!(
        r.execute("add_card", json!({"column": 5, "card": "x"}))
            .is_err()
    );

    r.execute("score", json!({"round": 2, "player": "ann", "points": 7}))
        .unwrap();
    r.execute("score", json!({"round": 1, "player": "bob", "points": -3}))
        .unwrap();
    let scores = r.execute("scores", json!({})).unwrap();
    assert_eq!(scores, json!([[[1, "bob"], -3], [[2, "ann"], 7]]));

    for b in [1, 2, 3] {
        r.execute("push_byte", json!({"id": 42, "b": b})).unwrap();
    }
    assert_eq!(
        r.execute("bytes", json!({"id": 42})).unwrap(),
        json!([1, 2, 3])
    );
    assert_eq!(r.execute("bytes", json!({"id": 7})).unwrap(), json!([]));
}

#[test]
fn text_counter_and_optional_register() {
    let mut r = board();
    r.execute("type_text", json!({"pos": 0, "s": "hello world"}))
        .unwrap();
    r.execute("erase", json!({"pos": 5, "len": 6})).unwrap();
    r.execute("type_text", json!({"pos": 5, "s": ", mero"}))
        .unwrap();
    assert_eq!(r.execute("text", json!({})).unwrap(), json!("hello, mero"));
    assert_eq!(r.execute("visit", json!({})).unwrap(), json!(1));
    assert_eq!(r.execute("visit", json!({})).unwrap(), json!(2));
    let me = r.execute("claim", json!({})).unwrap();
    let err = r.execute("claim", json!({})).unwrap_err();
    assert_eq!(
        err.message,
        format!("already owned by {}", me.as_str().unwrap())
    );
}

#[test]
fn concurrent_edits_of_every_kind_converge() {
    for seed in 0..25u64 {
        let mut net = Network::<Board>::with_init(3, json!({"title": "t"}));
        for i in 0..3usize {
            let r = net.replica(i);
            r.execute("insert_note", json!({"index": 0, "note": format!("n{i}")}))
                .unwrap();
            r.execute("type_text", json!({"pos": 0, "s": format!("<{i}>")}))
                .unwrap();
            r.execute("visit", json!({})).unwrap();
            r.execute("add_card", json!({"column": 0, "card": format!("c{i}")}))
                .unwrap();
            r.execute("push_byte", json!({"id": 1, "b": i})).unwrap();
            r.execute("rename", json!({"title": format!("t{i}")}))
                .unwrap();
        }
        net.deliver_shuffled(seed);
        net.assert_converged();
        let r = net.replica(2);
        assert_eq!(
            r.execute("visit", json!({})).unwrap(),
            json!(4),
            "seed {seed}"
        );
        assert_eq!(
            r.execute("notes", json!({}))
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            r.execute("cards", json!({"column": 0})).unwrap(),
            json!(["c0", "c1", "c2", "first"])
        );
        assert_eq!(
            r.execute("bytes", json!({"id": 1}))
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let text = r.execute("text", json!({})).unwrap();
        for i in 0..3 {
            assert!(text.as_str().unwrap().contains(&format!("<{i}>")), "{text}");
        }
    }
}

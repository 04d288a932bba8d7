//! notes: collaborative documents, a mero example written to be read.
//!
//! Each document has a title and a body. Members on different nodes type
//! into the same body at the same time; their edits merge character by
//! character, so nobody's typing is lost, and every node ends with the
//! same text. Documents are listed by title, a page at a time, and found
//! by the start of their title.
//!
//! What it shows, and where:
//!
//! - **[`Text`]** (`bodies`): a collaborative text CRDT. The app only ever
//!   *inserts at* and *deletes from* positions ([`Notes::insert`],
//!   [`Notes::delete`]), never replaces a body wholesale: replacing would
//!   turn two people's concurrent typing into "last writer wins" and throw
//!   one of them away. Concurrent inserts at one place both survive, each
//!   run of typing kept together.
//! - **[`LwwRegister`]** (`titles`): a title is one value; of two
//!   concurrent renames, the later wins everywhere. A register read from a
//!   map writes back to it on `set`.
//! - **A derived, sorted index** ([`SortedMap`], `index`): keys are the
//!   lowercased title, then the document id, so listing in key order is
//!   listing by title; [`Notes::list`] pages through it with a cursor and
//!   [`Notes::search`] reads the keys with a prefix. Indexes derived from
//!   replicated data need care: two nodes renaming one document at once
//!   each add their own index key, and after merging both keys are there
//!   while only one title won. So each document also records the keys it
//!   added (`index_keys`); reads skip keys whose title is not the
//!   document's current one, and the next rename removes them all.
//! - **Typed errors** ([`NotesError`]) and **views** (`#[app::view]`).
//!
//! # Positions
//!
//! Positions and lengths count Unicode scalar values, Rust's `char`s, as
//! [`Text`] does: `"héllo"` has 5, `"👋"` has 1. They are neither bytes nor
//! JavaScript string indexes (UTF-16 units, in which `"👋"` has 2): a web
//! client converts, e.g. `Array.from(text.slice(0, i)).length`.
//!
//! The app must not trust positions to stay put: a position is valid in
//! the caller's replica at the moment of the call, and other members'
//! concurrent edits shift text around it; the CRDT, not the number, says
//! where the edit lands after merging (next to the characters that were
//! around it). A client computes positions from the text it last read,
//! and a peer's edit can arrive at its node before its call does; a
//! delete can name the text it means to remove (`expect`) and is then
//! refused if that text moved ([`NotesError::TextChanged`]).
//!
//! An editor that must place every keystroke exactly passes `base`, the
//! [`body_hash`] of the body it computed the position in: the call is then
//! refused with [`NotesError::BodyChanged`] unless the node's body is that
//! very text, and the editor reads the body again, rebases its unsent
//! edits on it and retries (the web editor, `web/src/editor.ts`, does).
//! Without it a peer's edit merged in between would shift the position
//! and split a word someone is typing.
//!
//! ```
//! use mero_sdk::testing::Replica;
//! use serde_json::json;
//!
//! let mut node = Replica::<notes::Notes>::new(0);
//! node.init(json!({})).unwrap();
//! let doc = node.execute("create", json!({"title": "Shopping"})).unwrap();
//! node.execute("insert", json!({"doc": doc, "pos": 0, "text": "milk, eggs"})).unwrap();
//! node.execute("insert", json!({"doc": doc, "pos": 4, "text": "🥛"})).unwrap();
//! node.execute("delete", json!({"doc": doc, "pos": 5, "len": 1})).unwrap();
//! assert_eq!(node.query("get", json!({"doc": doc})).unwrap()["body"], "milk🥛 eggs");
//!
//! // Placed only if the body is still the text the position was computed in.
//! let base = notes::body_hash("milk🥛 eggs");
//! node.execute("insert", json!({"doc": doc, "pos": 10, "text": "!", "base": base})).unwrap();
//! let stale = node.execute("insert", json!({"doc": doc, "pos": 0, "text": "x", "base": base}));
//! assert!(stale.is_err());
//! ```

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, SortedMap, Text, UnorderedMap, UnorderedSet};
use serde::{Deserialize, Serialize};

/// Longest title, in chars.
pub const MAX_TITLE: usize = 200;

/// Most documents one `list` or `search` returns.
pub const MAX_PAGE: usize = 100;

/// Page size when a `list` or `search` names none.
pub const DEFAULT_PAGE: usize = 20;

/// The replicated state.
#[app::state(emits = Event)]
pub struct Notes {
    /// Each document's title, by document id. A document exists iff it
    /// has a title.
    titles: UnorderedMap<String, LwwRegister<String>>,
    /// Each document's body.
    bodies: UnorderedMap<String, Text>,
    /// `lowercase title` `\0` `id` → the entry, in key order.
    index: SortedMap<String, IndexEntry>,
    /// The keys each document put in `index`.
    index_keys: UnorderedMap<String, UnorderedSet<String>>,
}

/// A key of the title index points here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The document.
    pub doc: String,
    /// Its title when the key was written.
    pub title: String,
}

/// A document, whole.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// The text's length in chars.
    pub len: usize,
}

/// A document in a listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its body's length in chars.
    pub len: usize,
}

/// One page of [`Notes::list`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The documents, by title (case-insensitively), then id.
    pub docs: Vec<Summary>,
    /// The cursor for the next page (`after`); absent once the listing
    /// ended. A full page can be followed by an empty last one.
    pub next: Option<String>,
}

/// What changed, pushed to subscribers of every member node.
#[app::event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A document was created.
    Created { doc: String, title: String },
    /// A document was renamed.
    Renamed { doc: String, title: String },
    /// A document's body changed; `len` is its new length here.
    Edited { doc: String, len: usize },
}

/// Why a notes call was refused. The call leaves no trace.
#[app::error]
#[derive(Debug, PartialEq, Eq)]
pub enum NotesError {
    /// No document with this id.
    NoSuchDoc { doc: String },
    /// Titles must not be empty (or only spaces).
    EmptyTitle,
    /// Titles are at most `max` chars.
    TitleTooLong { max: usize },
    /// Titles are one line of text: no control characters.
    ControlCharInTitle,
    /// Insert position past the end of a `doc_len`-char body.
    InsertOutOfRange { pos: usize, doc_len: usize },
    /// `len` chars at `pos` run past the end of a `doc_len`-char body.
    DeleteOutOfRange {
        pos: usize,
        len: usize,
        doc_len: usize,
    },
    /// The chars at `pos` are `found`, not the `expected` ones a delete
    /// named: the text changed since the caller read it.
    TextChanged {
        pos: usize,
        expected: String,
        found: String,
    },
    /// Pages hold 1 to `max` documents.
    BadLimit { max: usize },
    /// The body is not the text the caller computed its position in (its
    /// `base`): it changed since the caller read it, and is now the text
    /// whose [`body_hash`] is `hash`.
    BodyChanged { hash: u64 },
}

impl std::fmt::Display for NotesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use NotesError::*;
        match self {
            NoSuchDoc { doc } => write!(f, "no document {doc}"),
            EmptyTitle => f.write_str("a title must not be empty"),
            TitleTooLong { max } => write!(f, "a title has at most {max} chars"),
            ControlCharInTitle => f.write_str("a title cannot hold control characters"),
            InsertOutOfRange { pos, doc_len } => write!(
                f,
                "cannot insert at {pos}: the document has {doc_len} chars"
            ),
            DeleteOutOfRange { pos, len, doc_len } => write!(
                f,
                "cannot delete {len} chars at {pos}: the document has {doc_len} chars"
            ),
            TextChanged {
                pos,
                expected,
                found,
            } => write!(
                f,
                "the text at {pos} is {found:?}, not {expected:?}: read it again"
            ),
            BadLimit { max } => write!(f, "a page holds 1 to {max} documents"),
            BodyChanged { .. } => f.write_str(
                "the document changed since its text was read: read it again and redo the edit there",
            ),
        }
    }
}

#[app::logic]
impl Notes {
    /// No documents.
    #[app::init]
    pub fn init() -> Self {
        Self {
            titles: UnorderedMap::new(),
            bodies: UnorderedMap::new(),
            index: SortedMap::new(),
            index_keys: UnorderedMap::new(),
        }
    }

    /// Creates an empty document; returns its id (random, so two nodes
    /// creating documents at once never pick the same).
    pub fn create(&mut self, title: String) -> Result<String, NotesError> {
        let title = check_title(title)?;
        let doc = loop {
            let mut bytes = [0u8; 8];
            mero_sdk::env::random_bytes(&mut bytes);
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let id = format!("doc-{id}");
            if !self.titles.contains(&id) {
                break id;
            }
        };
        self.titles
            .insert(doc.clone(), LwwRegister::new(title.clone()));
        self.bodies.ensure(doc.clone());
        self.reindex(&doc, &title);
        app::emit!(Event::Created {
            doc: doc.clone(),
            title
        });
        Ok(doc)
    }

    /// Renames a document.
    pub fn rename(&mut self, doc: String, title: String) -> Result<(), NotesError> {
        let title = check_title(title)?;
        let mut current = self.title_of(&doc)?;
        current.set(title.clone());
        self.reindex(&doc, &title);
        app::emit!(Event::Renamed { doc, title });
        Ok(())
    }

    /// Inserts `text` at char position `pos` (0 ..= length); returns the
    /// new length.
    ///
    /// With `base`, only if the body is the text whose [`body_hash`] that
    /// is (see [Positions](crate#positions)).
    pub fn insert(
        &mut self,
        doc: String,
        pos: usize,
        text: String,
        base: Option<u64>,
    ) -> Result<usize, NotesError> {
        let mut body = self.body_of(&doc)?;
        check_base(&body, base)?;
        let doc_len = body.len();
        if pos > doc_len {
            return Err(NotesError::InsertOutOfRange { pos, doc_len });
        }
        if text.is_empty() {
            return Ok(doc_len);
        }
        body.insert(pos, &text);
        let len = doc_len + text.chars().count();
        app::emit!(Event::Edited { doc, len });
        Ok(len)
    }

    /// Deletes `len` chars at char position `pos`; returns the new length.
    ///
    /// With `expect`, only if those chars are `expect`: a client that read
    /// the text, chose what to delete and then called may have had the
    /// text change under it meanwhile (a peer's edit arriving between the
    /// read and the call shifts positions), and would delete the wrong
    /// chars. [`NotesError::TextChanged`] tells it to read again. With
    /// `base`, only if the whole body is the text whose [`body_hash`] that
    /// is.
    pub fn delete(
        &mut self,
        doc: String,
        pos: usize,
        len: usize,
        expect: Option<String>,
        base: Option<u64>,
    ) -> Result<usize, NotesError> {
        let mut body = self.body_of(&doc)?;
        check_base(&body, base)?;
        let doc_len = body.len();
        if pos.checked_add(len).is_none_or(|end| end > doc_len) {
            return Err(NotesError::DeleteOutOfRange { pos, len, doc_len });
        }
        if let Some(expected) = expect {
            let found: String = body.get().chars().skip(pos).take(len).collect();
            if found != expected {
                return Err(NotesError::TextChanged {
                    pos,
                    expected,
                    found,
                });
            }
        }
        if len == 0 {
            return Ok(doc_len);
        }
        body.delete(pos, len);
        let len = doc_len - len;
        app::emit!(Event::Edited { doc, len });
        Ok(len)
    }

    /// A whole document.
    #[app::view]
    pub fn get(&self, doc: String) -> Result<Document, NotesError> {
        let title = self.title_of(&doc)?.into_inner();
        let body = self.body_of(&doc)?.get();
        Ok(Document {
            len: body.chars().count(),
            id: doc,
            title,
            body,
        })
    }

    /// Up to `limit` documents (default [`DEFAULT_PAGE`]) by title, after
    /// the cursor `after` (the previous page's `next`; absent: from the
    /// start).
    #[app::view]
    pub fn list(&self, after: Option<String>, limit: Option<usize>) -> Result<Page, NotesError> {
        let limit = check_limit(limit)?;
        let mut docs = Vec::new();
        let mut cursor = after;
        loop {
            // Stale keys are skipped, so a page of keys may yield fewer
            // documents: read on until the page is full or the index ends.
            let keys = self.index.page(cursor.as_deref(), limit - docs.len());
            if keys.is_empty() {
                return Ok(Page { docs, next: None });
            }
            for (key, entry) in keys {
                cursor = Some(key);
                if let Some(summary) = self.current(entry) {
                    docs.push(summary);
                }
            }
            if docs.len() == limit {
                return Ok(Page { docs, next: cursor });
            }
        }
    }

    /// Up to `limit` documents (default [`DEFAULT_PAGE`]) whose title
    /// starts with `prefix`, ignoring case, by title.
    #[app::view]
    pub fn search(&self, prefix: String, limit: Option<usize>) -> Result<Vec<Summary>, NotesError> {
        let limit = check_limit(limit)?;
        Ok(self
            .index
            .prefix(&prefix.to_lowercase())
            .filter_map(|(_, entry)| self.current(entry))
            .take(limit)
            .collect())
    }
}

/// Helpers: not app methods (outside the `#[app::logic]` impl).
impl Notes {
    fn title_of(&self, doc: &str) -> Result<LwwRegister<String>, NotesError> {
        self.titles.get(doc).ok_or_else(|| NotesError::NoSuchDoc {
            doc: doc.to_owned(),
        })
    }

    fn body_of(&self, doc: &str) -> Result<Text, NotesError> {
        self.bodies.get(doc).ok_or_else(|| NotesError::NoSuchDoc {
            doc: doc.to_owned(),
        })
    }

    /// Replaces every index key of `doc` (this replica's and any a
    /// concurrent rename added) by the one for `title`.
    fn reindex(&mut self, doc: &str, title: &str) {
        let mut keys = self.index_keys.ensure(doc.to_owned());
        for old in keys.to_vec() {
            self.index.remove(old.as_str());
            keys.remove(old.as_str());
        }
        let key = format!("{}\0{doc}", title.to_lowercase());
        let entry = IndexEntry {
            doc: doc.to_owned(),
            title: title.to_owned(),
        };
        self.index.insert(key.clone(), entry);
        keys.insert(key);
    }

    /// The summary of an index entry, unless the key is stale: written for
    /// a title that lost to a concurrent rename.
    fn current(&self, entry: IndexEntry) -> Option<Summary> {
        let title = self.titles.get(&entry.doc)?.into_inner();
        if title != entry.title {
            return None;
        }
        let len = self.bodies.get(&entry.doc).map_or(0, |b| b.len());
        Some(Summary {
            id: entry.doc,
            title,
            len,
        })
    }
}

fn check_title(title: String) -> Result<String, NotesError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(NotesError::EmptyTitle);
    }
    if title.chars().count() > MAX_TITLE {
        return Err(NotesError::TitleTooLong { max: MAX_TITLE });
    }
    // Also keeps `\0`, the index keys' separator, out of titles.
    if title.chars().any(char::is_control) {
        return Err(NotesError::ControlCharInTitle);
    }
    Ok(title.to_owned())
}

/// The hash of a body that `insert` and `delete` take as `base`: cyrb53
/// (a 53-bit hash, so exact as a JSON number in JavaScript) over the text's
/// UTF-16 code units, which a web client computes on its string as it is.
/// Not cryptographic: it tells a client's own stale view from the current
/// text, nothing more.
///
/// ```
/// assert_eq!(notes::body_hash(""), 3338908027751811);
/// assert_ne!(notes::body_hash("ab"), notes::body_hash("ba"));
/// ```
pub fn body_hash(text: &str) -> u64 {
    let (mut h1, mut h2) = (0xdead_beef_u32, 0x41c6_ce57_u32);
    for unit in text.encode_utf16() {
        let unit = u32::from(unit);
        h1 = (h1 ^ unit).wrapping_mul(2_654_435_761);
        h2 = (h2 ^ unit).wrapping_mul(1_597_334_677);
    }
    h1 = (h1 ^ (h1 >> 16)).wrapping_mul(2_246_822_507);
    h1 ^= (h2 ^ (h2 >> 13)).wrapping_mul(3_266_489_909);
    h2 = (h2 ^ (h2 >> 16)).wrapping_mul(2_246_822_507);
    h2 ^= (h1 ^ (h1 >> 13)).wrapping_mul(3_266_489_909);
    (u64::from(h2 & 0x1f_ffff) << 32) | u64::from(h1)
}

fn check_base(body: &Text, base: Option<u64>) -> Result<(), NotesError> {
    let Some(base) = base else { return Ok(()) };
    let hash = body_hash(&body.get());
    if hash != base {
        return Err(NotesError::BodyChanged { hash });
    }
    Ok(())
}

fn check_limit(limit: Option<usize>) -> Result<usize, NotesError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(NotesError::BadLimit { max: MAX_PAGE }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mero_sdk::testing::{Replica, typed_error};
    use serde_json::json;

    #[test]
    fn body_hash_matches_the_web_clients() {
        // Computed by the JavaScript in web/src/text.ts (`bodyHash`).
        for (text, hash) in [
            ("", 3_338_908_027_751_811),
            ("a", 7_929_297_801_672_961),
            ("héllo 👋 world", 6_246_781_059_461_376),
            ("milk, eggs", 3_234_256_026_456_878),
        ] {
            assert_eq!(body_hash(text), hash, "{text:?}");
        }
    }

    #[test]
    fn edits_with_a_stale_base_are_refused_and_leave_no_trace() {
        let mut r = Replica::<Notes>::new(0);
        r.init(json!({})).unwrap();
        let doc = r.execute("create", json!({"title": "t"})).unwrap();
        let base = body_hash("");
        let args = json!({"doc": doc, "pos": 0, "text": "héllo", "base": base});
        assert_eq!(r.execute("insert", args).unwrap(), json!(5));
        let now = body_hash("héllo");
        for (method, args) in [
            (
                "insert",
                json!({"doc": doc, "pos": 0, "text": "x", "base": base}),
            ),
            (
                "delete",
                json!({"doc": doc, "pos": 0, "len": 1, "base": base}),
            ),
        ] {
            let err = r.execute(method, args).unwrap_err();
            assert_eq!(
                typed_error::<NotesError>(&err),
                Some(NotesError::BodyChanged { hash: now })
            );
        }
        let args = json!({"doc": doc, "pos": 1, "len": 1, "expect": "é", "base": now});
        assert_eq!(r.execute("delete", args).unwrap(), json!(4));
        assert_eq!(r.query("get", json!({"doc": doc})).unwrap()["body"], "hllo");
    }
}

//! notes' native tests on one replica: editing by char positions, the
//! title index (paging, prefix search), typed errors and read-only views.

use mero_sdk::__private::mero_abi::CallErrorKind;
use mero_sdk::testing::{Replica, typed_error};
use notes::{Document, Event, NotesError, Page, Summary};
use serde_json::{Value, json};

fn notes() -> Replica<notes::Notes> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r.take_deltas();
    r
}

fn ok(r: &mut Replica<notes::Notes>, method: &str, args: Value) -> Value {
    r.execute(method, args.clone())
        .unwrap_or_else(|e| panic!("{method} {args}: {e:?}"))
}

fn doc(r: &mut Replica<notes::Notes>, id: &Value) -> Document {
    serde_json::from_value(r.query("get", json!({ "doc": id })).unwrap()).unwrap()
}

fn titles(docs: &[Summary]) -> Vec<&str> {
    docs.iter().map(|d| d.title.as_str()).collect()
}

#[test]
fn inserts_and_deletes_count_chars_not_bytes() {
    let mut r = notes();
    let id = ok(&mut r, "create", json!({"title": "  Greetings  "}));
    assert!(id.as_str().unwrap().starts_with("doc-"), "{id}");
    assert_eq!(
        ok(
            &mut r,
            "insert",
            json!({"doc": id, "pos": 0, "text": "héllo"})
        ),
        json!(5)
    );
    // 'é' is 2 bytes but 1 char; '👋' is 4 bytes, 2 UTF-16 units, 1 char.
    assert_eq!(
        ok(
            &mut r,
            "insert",
            json!({"doc": id, "pos": 5, "text": " 👋 world"})
        ),
        json!(13)
    );
    assert_eq!(
        ok(&mut r, "insert", json!({"doc": id, "pos": 1, "text": ""})),
        json!(13)
    );
    let d = doc(&mut r, &id);
    assert_eq!(
        (d.title.as_str(), d.body.as_str(), d.len),
        ("Greetings", "héllo 👋 world", 13)
    );
    // Delete the emoji and the space after it (chars 6 and 7), first
    // naming the wrong text, which is refused.
    let err = r
        .execute(
            "delete",
            json!({"doc": id, "pos": 5, "len": 2, "expect": "👋 "}),
        )
        .unwrap_err();
    assert_eq!(
        typed_error::<NotesError>(&err),
        Some(NotesError::TextChanged {
            pos: 5,
            expected: "👋 ".into(),
            found: " 👋".into()
        })
    );
    assert_eq!(
        ok(
            &mut r,
            "delete",
            json!({"doc": id, "pos": 6, "len": 2, "expect": "👋 "})
        ),
        json!(11)
    );
    assert_eq!(doc(&mut r, &id).body, "héllo world");
    assert_eq!(
        ok(&mut r, "delete", json!({"doc": id, "pos": 11, "len": 0})),
        json!(11)
    );
    // Insert at the very end is in range.
    ok(&mut r, "insert", json!({"doc": id, "pos": 11, "text": "!"}));
    ok(&mut r, "rename", json!({"doc": id, "title": "Hello"}));
    let d = doc(&mut r, &id);
    assert_eq!(
        (d.title.as_str(), d.body.as_str()),
        ("Hello", "héllo world!")
    );

    let kinds: Vec<&str> = r.emitted().iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["Created", "Edited", "Edited", "Edited", "Edited", "Renamed"]
    );
    assert_eq!(
        r.events::<Event>()[4],
        Event::Edited {
            doc: id.as_str().unwrap().into(),
            len: 12
        }
    );
}

#[test]
fn typed_errors_reach_the_caller_and_leave_no_trace() {
    let mut r = notes();
    let id = ok(&mut r, "create", json!({"title": "t"}));
    ok(
        &mut r,
        "insert",
        json!({"doc": id, "pos": 0, "text": "ab👋"}),
    );
    r.take_deltas();
    let before = r.state_json();
    let cases = [
        ("create", json!({"title": " "}), NotesError::EmptyTitle),
        (
            "create",
            json!({"title": "x".repeat(notes::MAX_TITLE + 1)}),
            NotesError::TitleTooLong {
                max: notes::MAX_TITLE,
            },
        ),
        (
            "create",
            json!({"title": "a\0b"}),
            NotesError::ControlCharInTitle,
        ),
        (
            "rename",
            json!({"doc": id, "title": "two\nlines"}),
            NotesError::ControlCharInTitle,
        ),
        (
            "rename",
            json!({"doc": "doc-missing", "title": "x"}),
            NotesError::NoSuchDoc {
                doc: "doc-missing".into(),
            },
        ),
        (
            "insert",
            json!({"doc": "doc-missing", "pos": 0, "text": "x"}),
            NotesError::NoSuchDoc {
                doc: "doc-missing".into(),
            },
        ),
        (
            "insert",
            json!({"doc": id, "pos": 4, "text": "x"}),
            NotesError::InsertOutOfRange { pos: 4, doc_len: 3 },
        ),
        (
            "delete",
            json!({"doc": id, "pos": 2, "len": 2}),
            NotesError::DeleteOutOfRange {
                pos: 2,
                len: 2,
                doc_len: 3,
            },
        ),
        (
            "delete",
            json!({"doc": id, "pos": 1, "len": usize::MAX}),
            NotesError::DeleteOutOfRange {
                pos: 1,
                len: usize::MAX,
                doc_len: 3,
            },
        ),
        (
            "get",
            json!({"doc": "doc-missing"}),
            NotesError::NoSuchDoc {
                doc: "doc-missing".into(),
            },
        ),
        (
            "list",
            json!({"limit": 0}),
            NotesError::BadLimit {
                max: notes::MAX_PAGE,
            },
        ),
        (
            "search",
            json!({"prefix": "a", "limit": notes::MAX_PAGE + 1}),
            NotesError::BadLimit {
                max: notes::MAX_PAGE,
            },
        ),
    ];
    for (method, args, want) in cases {
        let err = r.execute(method, args.clone()).unwrap_err();
        assert_eq!(
            typed_error::<NotesError>(&err),
            Some(want),
            "{method} {args}"
        );
        assert_eq!(err.kind, CallErrorKind::App);
    }
    let err = r
        .execute("insert", json!({"doc": id, "pos": 9, "text": "x"}))
        .unwrap_err();
    assert_eq!(err.message, "cannot insert at 9: the document has 3 chars");
    assert_eq!(r.state_json(), before, "refused calls changed state");
    assert!(r.take_deltas().is_empty(), "refused calls produced deltas");
    // Wrong argument types are not app errors.
    let err = r
        .execute("insert", json!({"doc": id, "pos": -1, "text": "x"}))
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::InvalidArgs);
}

#[test]
fn listing_pages_through_titles_in_order() {
    let mut r = notes();
    let names = [
        "pear", "Apple", "banana", "apricot", "Cherry", "apple", "date",
    ];
    for n in names {
        ok(&mut r, "create", json!({ "title": n }));
    }
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let page: Page = serde_json::from_value(
            r.query("list", json!({"after": after, "limit": 3}))
                .unwrap(),
        )
        .unwrap();
        pages += 1;
        assert!(page.docs.len() <= 3);
        seen.extend(page.docs.iter().map(|d| d.title.clone()));
        match page.next {
            Some(next) => after = json!(next),
            None => break,
        }
    }
    // Case-insensitive title order; "Apple" and "apple" tie on the title
    // and are ordered by id, so only their relative order is unknown.
    assert_eq!(seen.len(), names.len(), "{seen:?}");
    let lower: Vec<String> = seen.iter().map(|t| t.to_lowercase()).collect();
    assert_eq!(
        lower,
        [
            "apple", "apple", "apricot", "banana", "cherry", "date", "pear"
        ]
    );
    assert_eq!(pages, 3, "7 documents in pages of 3");
    // Without a limit: the default page holds them all.
    let all: Page = serde_json::from_value(r.query("list", json!({})).unwrap()).unwrap();
    assert_eq!(all.docs.len(), names.len());
    assert_eq!(all.next, None);
}

#[test]
fn search_finds_titles_by_prefix_ignoring_case() {
    let mut r = notes();
    for n in ["Apple pie", "apricot jam", "Banana bread", "APPLE crumble"] {
        ok(&mut r, "create", json!({ "title": n }));
    }
    let search = |r: &mut Replica<notes::Notes>, args: Value| -> Vec<String> {
        let found: Vec<Summary> = serde_json::from_value(r.query("search", args).unwrap()).unwrap();
        titles(&found).into_iter().map(str::to_owned).collect()
    };
    assert_eq!(
        search(&mut r, json!({"prefix": "apple"})),
        ["APPLE crumble", "Apple pie"]
    );
    assert_eq!(search(&mut r, json!({"prefix": "AP"})).len(), 3);
    assert_eq!(
        search(&mut r, json!({"prefix": "ap", "limit": 1})),
        ["APPLE crumble"]
    );
    assert!(search(&mut r, json!({"prefix": "cherry"})).is_empty());
    // A renamed document is found by its new title only.
    let found: Vec<Summary> =
        serde_json::from_value(r.query("search", json!({"prefix": "banana"})).unwrap()).unwrap();
    ok(
        &mut r,
        "rename",
        json!({"doc": found[0].id, "title": "Cherry cake"}),
    );
    assert!(search(&mut r, json!({"prefix": "banana"})).is_empty());
    assert_eq!(search(&mut r, json!({"prefix": "cherry"})), ["Cherry cake"]);
    // One index key per document.
    assert_eq!(r.state_json()["index"].as_object().unwrap().len(), 4);
}

#[test]
fn views_are_read_only() {
    let mut r = notes();
    let id = ok(&mut r, "create", json!({"title": "t"}));
    ok(
        &mut r,
        "insert",
        json!({"doc": id, "pos": 0, "text": "body"}),
    );
    r.take_deltas();
    let before = r.state_json();
    let version = r.engine().version();
    for (method, args) in [
        ("get", json!({"doc": id})),
        ("list", json!({"limit": 5})),
        ("search", json!({"prefix": "t"})),
    ] {
        r.query(method, args.clone()).unwrap();
        r.execute(method, args).unwrap();
    }
    assert_eq!(r.state_json(), before);
    assert_eq!(r.engine().version(), version);
    assert!(r.take_deltas().is_empty(), "views produced deltas");
    let err = r
        .query("insert", json!({"doc": id, "pos": 0, "text": "x"}))
        .unwrap_err();
    assert_ne!(err.kind, CallErrorKind::App, "{err:?}");
    assert_eq!(doc(&mut r, &id).body, "body");
}

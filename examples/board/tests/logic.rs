//! board's native tests on one replica: the same state engine the node
//! runs, no WASM. Structure and moves, fields, profiles, typed errors, and
//! views that cannot write.

use board::{BoardError, CardView, ColumnView, Event, MemberView};
use mero_sdk::__private::mero_abi::CallErrorKind;
use mero_sdk::testing::{Replica, typed_error};
use serde_json::{Value, json};

fn board() -> Replica<board::Board> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r.take_deltas();
    r
}

fn ok(r: &mut Replica<board::Board>, method: &str, args: Value) -> Value {
    r.execute(method, args.clone())
        .unwrap_or_else(|e| panic!("{method} {args}: {e:?}"))
}

/// The typed error of a call that must fail with one.
fn refused(r: &mut Replica<board::Board>, method: &str, args: Value) -> BoardError {
    let err = r
        .execute(method, args.clone())
        .expect_err(&format!("{method} {args} must fail"));
    typed_error(&err).unwrap_or_else(|| panic!("{method} failed untyped: {err:?}"))
}

fn view(r: &mut Replica<board::Board>) -> Vec<ColumnView> {
    serde_json::from_value(r.query("board", json!({})).unwrap()).unwrap()
}

/// Titles per column, sub-tasks as `parent/child`.
fn outline(r: &mut Replica<board::Board>) -> Vec<(String, Vec<String>)> {
    fn walk(prefix: &str, cards: &[CardView], out: &mut Vec<String>) {
        for c in cards {
            let path = format!("{prefix}{}", c.title);
            out.push(path.clone());
            walk(&format!("{path}/"), &c.subtasks, out);
        }
    }
    view(r)
        .into_iter()
        .map(|col| {
            let mut cards = Vec::new();
            walk("", &col.cards, &mut cards);
            (col.title, cards)
        })
        .collect()
}

fn outline_of(cols: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    cols.iter()
        .map(|(t, cards)| (t.to_string(), cards.iter().map(|c| c.to_string()).collect()))
        .collect()
}

fn column(r: &mut Replica<board::Board>, title: &str) -> Value {
    ok(r, "add_column", json!({ "title": title }))
}

fn card(r: &mut Replica<board::Board>, to: Value, title: &str) -> Value {
    ok(r, "add_card", json!({ "to": to, "title": title }))
}

#[test]
fn columns_cards_and_subtasks_build_a_nested_board() {
    let mut r = board();
    let todo = column(&mut r, "To do");
    let done = column(&mut r, "  Done  ");
    let a = card(&mut r, json!({ "column": todo }), "write docs");
    let b = card(&mut r, json!({ "column": todo }), "ship");
    let sub = card(&mut r, json!({ "card": b }), "tag release");
    assert!(
        a.is_string() && sub.is_string(),
        "ids are strings: {a} {sub}"
    );
    assert_eq!(
        outline(&mut r),
        outline_of(&[
            ("To do", &["write docs", "ship", "ship/tag release"]),
            ("Done", &[])
        ])
    );
    ok(
        &mut r,
        "rename_card",
        json!({"card": a, "title": "write the docs"}),
    );
    ok(
        &mut r,
        "rename_column",
        json!({"column": done, "title": "Shipped"}),
    );
    ok(&mut r, "set_done", json!({"card": sub, "done": true}));
    let cols = view(&mut r);
    assert_eq!(cols[0].id.to_string(), todo.as_str().unwrap());
    assert_eq!(cols[0].cards[0].title, "write the docs");
    assert!(!cols[0].cards[0].done);
    assert!(cols[0].cards[1].subtasks[0].done);
    assert_eq!(cols[1].title, "Shipped");
    ok(&mut r, "set_done", json!({"card": sub, "done": false}));
    let one: CardView =
        serde_json::from_value(r.query("card_view", json!({"card": b})).unwrap()).unwrap();
    assert_eq!(one.subtasks.len(), 1);
    assert!(!one.subtasks[0].done);

    let events = r.events::<Event>();
    let created: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::CardCreated { title, .. } => Some(title.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["write docs", "ship", "tag release"]);
    match &events[2] {
        Event::CardCreated { parent, .. } => assert_eq!(json!(parent), b),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cards_move_within_and_between_columns_and_under_cards() {
    let mut r = board();
    let todo = column(&mut r, "To do");
    let doing = column(&mut r, "Doing");
    let a = card(&mut r, json!({"column": todo}), "a");
    let b = card(&mut r, json!({"column": todo}), "b");
    let c = card(&mut r, json!({"column": todo}), "c");
    // Reorder within the column: c first.
    ok(
        &mut r,
        "move_card",
        json!({"card": c, "to": {"column": todo}, "index": 0}),
    );
    assert_eq!(
        outline(&mut r),
        outline_of(&[("To do", &["c", "a", "b"]), ("Doing", &[])])
    );
    // To the end of another column (no index), then to its front.
    ok(
        &mut r,
        "move_card",
        json!({"card": a, "to": {"column": doing}}),
    );
    ok(
        &mut r,
        "move_card",
        json!({"card": b, "to": {"column": doing}, "index": 0}),
    );
    assert_eq!(
        outline(&mut r),
        outline_of(&[("To do", &["c"]), ("Doing", &["b", "a"])])
    );
    // Under a card, with its own sub-tasks moving along.
    let a1 = card(&mut r, json!({"card": a}), "a1");
    ok(&mut r, "move_card", json!({"card": a, "to": {"card": c}}));
    assert_eq!(
        outline(&mut r),
        outline_of(&[("To do", &["c", "c/a", "c/a/a1"]), ("Doing", &["b"])])
    );
    // Back out of the sub-tasks into a column.
    ok(
        &mut r,
        "move_card",
        json!({"card": a1, "to": {"column": doing}, "index": 1}),
    );
    assert_eq!(
        outline(&mut r),
        outline_of(&[("To do", &["c", "c/a"]), ("Doing", &["b", "a1"])])
    );
    // Columns reorder.
    ok(&mut r, "move_column", json!({"column": doing, "index": 0}));
    assert_eq!(
        outline(&mut r),
        outline_of(&[("Doing", &["b", "a1"]), ("To do", &["c", "c/a"])])
    );
    let moved: Vec<(String, usize)> = r
        .events::<Event>()
        .into_iter()
        .filter_map(|e| match e {
            Event::CardMoved { card, index, .. } => Some((card.to_string(), index)),
            _ => None,
        })
        .collect();
    let id = |v: &Value| v.as_str().unwrap().to_owned();
    assert_eq!(
        moved,
        [
            (id(&c), 0),
            (id(&a), 0),
            (id(&b), 0),
            (id(&a), 0),
            (id(&a1), 1)
        ]
    );
}

#[test]
fn deleting_takes_sub_tasks_and_fields_along() {
    let mut r = board();
    let todo = column(&mut r, "To do");
    let other = column(&mut r, "Other");
    let a = card(&mut r, json!({"column": todo}), "a");
    let a1 = card(&mut r, json!({"card": a}), "a1");
    card(&mut r, json!({"card": a1}), "a1x");
    let b = card(&mut r, json!({"column": todo}), "b");
    card(&mut r, json!({"column": other}), "o1");
    card(&mut r, json!({"column": other}), "o2");
    ok(&mut r, "set_done", json!({"card": a1, "done": true}));
    assert_eq!(ok(&mut r, "delete_card", json!({"card": a})), json!(3));
    assert_eq!(
        outline(&mut r),
        outline_of(&[("To do", &["b"]), ("Other", &["o1", "o2"])])
    );
    // The deleted cards' fields went too: only live nodes have titles.
    let state = r.state_json();
    assert_eq!(state["titles"].as_object().unwrap().len(), 5, "{state}");
    // An empty map is absent from exported state.
    assert_eq!(state.get("done"), None, "{state}");
    assert_eq!(
        refused(&mut r, "set_done", json!({"card": a1, "done": true})),
        BoardError::NoSuchCard {
            card: serde_json::from_value(a1).unwrap()
        }
    );
    assert_eq!(
        ok(&mut r, "delete_column", json!({"column": other})),
        json!(2)
    );
    assert_eq!(outline(&mut r), outline_of(&[("To do", &["b"])]));
    assert!(matches!(
        r.events::<Event>().last(),
        Some(Event::CardDeleted { removed: 3, .. })
    ));
    let _ = b;
}

#[test]
fn typed_errors_reach_the_caller_and_leave_no_trace() {
    let mut r = board();
    let todo = column(&mut r, "To do");
    let a = card(&mut r, json!({"column": todo}), "a");
    let a1 = card(&mut r, json!({"card": a}), "a1");
    let node =
        |v: &Value| serde_json::from_value::<mero_sdk::collections::NodeId>(v.clone()).unwrap();
    // A deleted card's id, to name things that are gone.
    let gone = card(&mut r, json!({"column": todo}), "gone");
    ok(&mut r, "delete_card", json!({"card": gone}));
    r.take_deltas();
    let before = r.state_json();
    let cases = [
        (
            "add_column",
            json!({"title": "   "}),
            BoardError::EmptyTitle,
        ),
        (
            "add_column",
            json!({"title": "x".repeat(board::MAX_TITLE + 1)}),
            BoardError::TitleTooLong {
                max: board::MAX_TITLE,
            },
        ),
        (
            "add_card",
            json!({"to": {"column": a}, "title": "t"}),
            BoardError::NotAColumn { id: node(&a) },
        ),
        (
            "add_card",
            json!({"to": {"card": todo}, "title": "t"}),
            BoardError::NotACard { id: node(&todo) },
        ),
        (
            "add_card",
            json!({"to": {"column": gone}, "title": "t"}),
            BoardError::NoSuchColumn {
                column: node(&gone),
            },
        ),
        (
            "rename_card",
            json!({"card": gone, "title": "t"}),
            BoardError::NoSuchCard { card: node(&gone) },
        ),
        (
            "move_card",
            json!({"card": a, "to": {"card": a1}}),
            BoardError::IntoItself { card: node(&a) },
        ),
        (
            "move_card",
            json!({"card": a, "to": {"card": a}}),
            BoardError::IntoItself { card: node(&a) },
        ),
        (
            "move_card",
            json!({"card": a1, "to": {"column": todo}, "index": 3}),
            BoardError::BadIndex { index: 3, len: 1 },
        ),
        (
            "move_column",
            json!({"column": todo, "index": 1}),
            BoardError::BadIndex { index: 1, len: 0 },
        ),
        (
            "move_column",
            json!({"column": a, "index": 0}),
            BoardError::NotAColumn { id: node(&a) },
        ),
        (
            "delete_column",
            json!({"column": a}),
            BoardError::NotAColumn { id: node(&a) },
        ),
        (
            "delete_card",
            json!({"card": todo}),
            BoardError::NotACard { id: node(&todo) },
        ),
        (
            "assign",
            json!({"card": a, "member": "nobody"}),
            BoardError::NoProfile {
                member: "nobody".into(),
            },
        ),
        (
            "set_profile",
            json!({"name": "", "colour": "#ffffff"}),
            BoardError::EmptyName,
        ),
        (
            "set_profile",
            json!({"name": "n".repeat(board::MAX_NAME + 1), "colour": "#ffffff"}),
            BoardError::NameTooLong {
                max: board::MAX_NAME,
            },
        ),
        (
            "set_profile",
            json!({"name": "ann", "colour": "red"}),
            BoardError::BadColour {
                colour: "red".into(),
            },
        ),
        (
            "set_profile",
            json!({"name": "ann", "colour": "#12345g"}),
            BoardError::BadColour {
                colour: "#12345g".into(),
            },
        ),
    ];
    for (method, args, want) in cases {
        let err = r.execute(method, args.clone()).unwrap_err();
        assert_eq!(
            typed_error::<BoardError>(&err),
            Some(want),
            "{method} {args}"
        );
        // What a client sees: the message is the error's Display, and
        // `data` carries the variant as `kind` with its stable code.
        let data = err.app_error().expect("typed errors carry data");
        assert_eq!(
            data.code,
            mero_sdk::__private::mero_abi::error::derived_code(&data.kind)
        );
        assert!(!err.message.is_empty());
    }
    let err = r.execute("add_column", json!({"title": ""})).unwrap_err();
    assert_eq!(err.message, "a title must not be empty");
    assert_eq!(r.state_json(), before, "refused calls changed state");
    assert!(r.take_deltas().is_empty(), "refused calls produced deltas");
}

#[test]
fn bad_arguments_are_not_app_errors() {
    let mut r = board();
    let todo = column(&mut r, "To do");
    for args in [
        json!({"to": {"lane": todo}, "title": "t"}),
        json!({"to": {"column": "not-a-node-id"}, "title": "t"}),
        json!({"to": {"column": todo}}),
        json!({"to": {"column": todo}, "title": "t", "extra": 1}),
    ] {
        let err = r.execute("add_card", args.clone()).unwrap_err();
        assert_eq!(err.kind, CallErrorKind::InvalidArgs, "{args}: {err:?}");
        assert!(typed_error::<BoardError>(&err).is_none());
    }
}

#[test]
fn profiles_are_each_members_own() {
    let mut ann = board();
    let me = ok(&mut ann, "whoami", json!({}));
    assert_eq!(
        ok(
            &mut ann,
            "set_profile",
            json!({"name": " Ann ", "colour": "#A0B0C0"})
        ),
        json!({"name": "Ann", "colour": "#a0b0c0"})
    );
    assert_eq!(
        ok(
            &mut ann,
            "edit_profile",
            json!({"member": me, "colour": "#000000"})
        ),
        json!({"name": "Ann", "colour": "#000000"})
    );
    let profiles: Vec<MemberView> =
        serde_json::from_value(ann.query("profiles", json!({})).unwrap()).unwrap();
    assert_eq!(
        profiles,
        [MemberView {
            member: me.as_str().unwrap().into(),
            name: "Ann".into(),
            colour: "#000000".into()
        }]
    );
    // The entry is keyed by the executing member, whatever a client says
    // (exported state shows the owned field under its own name).
    assert_eq!(
        ann.state_json()["profiles"][me.as_str().unwrap()]["name"],
        "Ann"
    );

    // Someone else's profile: refused by the app before any write.
    assert_eq!(
        refused(
            &mut ann,
            "edit_profile",
            json!({"member": "someone-else", "name": "x"})
        ),
        BoardError::NotYourProfile {
            member: "someone-else".into()
        }
    );

    // Assignees show with their current profile.
    let todo = column(&mut ann, "To do");
    let a = card(&mut ann, json!({"column": todo}), "a");
    ok(&mut ann, "assign", json!({"card": a, "member": me}));
    ok(
        &mut ann,
        "edit_profile",
        json!({"member": me, "name": "Annie"}),
    );
    let cols = view(&mut ann);
    let who = cols[0].cards[0].assignee.clone().unwrap();
    assert_eq!(
        (who.name.as_str(), who.colour.as_str()),
        ("Annie", "#000000")
    );
    ok(&mut ann, "assign", json!({"card": a, "member": null}));
    assert_eq!(view(&mut ann)[0].cards[0].assignee, None);
}

#[test]
fn views_are_read_only() {
    let mut r = board();
    let todo = column(&mut r, "To do");
    let a = card(&mut r, json!({"column": todo}), "a");
    r.take_deltas();
    let before = r.state_json();
    let version = r.engine().version();
    for (method, args) in [
        ("board", json!({})),
        ("card_view", json!({"card": a})),
        ("profiles", json!({})),
        ("whoami", json!({})),
    ] {
        r.query(method, args.clone()).unwrap();
        // `execute` of a view runs it read-only too.
        r.execute(method, args).unwrap();
    }
    assert_eq!(r.state_json(), before);
    assert_eq!(r.engine().version(), version);
    assert!(r.take_deltas().is_empty(), "views produced deltas");
    // A client's `query` cannot run a mutating method.
    let err = r
        .query("add_column", json!({"title": "sneaky"}))
        .unwrap_err();
    assert_ne!(err.kind, CallErrorKind::App, "{err:?}");
    assert_eq!(r.state_json(), before);
}

//! files' native tests: both versions' logic and the migration between
//! them, on the same state engine the node runs (blobs come from
//! `BlobId::for_tests`, as if every node held them).

use files::{FilesError, MAX_HEAD, v1, v2};
use mero_sdk::blob::BlobId;
use mero_sdk::testing::{Replica, UpgradeError, UpgradePlan, typed_error, upgrade_plan};
use serde_json::{Value, json};

fn v1_files() -> Replica<v1::Files> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

/// The member key replica 0 writes as, as the node's API shows it.
fn member0() -> String {
    let mut key = [0u8; 32];
    key[0] = 1;
    key[31] = 0x6d;
    bs58::encode(key).into_string()
}

fn error(r: Result<Value, mero_sdk::__private::mero_abi::CallError>) -> FilesError {
    let e = r.expect_err("the call must fail");
    typed_error(&e).unwrap_or_else(|| panic!("not a FilesError: {e:?}"))
}

fn blob(text: &str) -> BlobId {
    BlobId::for_tests(text.as_bytes())
}

#[test]
fn v1_adds_lists_renames_and_removes() {
    let mut r = v1_files();
    let report = blob("quarterly report");
    let added = r
        .execute(
            "add",
            json!({"name": "report.txt", "blob": report, "mime": "Text/Plain"}),
        )
        .unwrap();
    // The size is the blob's own; the author is the executing member.
    assert_eq!(
        added,
        json!({"blob": report, "size": 16, "mime": "text/plain", "uploaded_by": member0()})
    );
    let photo = BlobId::for_tests(&[0x89, b'P', b'N', b'G', 0, 1, 2]);
    r.execute("add", json!({"name": "photo.png", "blob": photo}))
        .unwrap();
    let names = |r: &mut Replica<v1::Files>| -> Vec<String> {
        let list = r.query("list", json!({})).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&mut r), ["photo.png", "report.txt"]);
    assert_eq!(
        r.query("get", json!({"name": "photo.png"})).unwrap()["mime"],
        "application/octet-stream"
    );

    r.execute("rename", json!({"from": "report.txt", "to": "docs/q3.txt"}))
        .unwrap();
    assert_eq!(names(&mut r), ["docs/q3.txt", "photo.png"]);
    assert_eq!(
        r.query("get", json!({"name": "docs/q3.txt"})).unwrap()["blob"],
        json!(report)
    );
    // Renaming onto itself changes nothing.
    r.execute("rename", json!({"from": "photo.png", "to": "photo.png"}))
        .unwrap();

    let removed = r.execute("remove", json!({"name": "photo.png"})).unwrap();
    assert_eq!(removed["blob"], json!(photo));
    assert_eq!(names(&mut r), ["docs/q3.txt"]);
    assert_eq!(
        r.query("get", json!({"name": "photo.png"})).unwrap(),
        json!(null)
    );
}

#[test]
fn v1_refusals_are_typed_and_leave_no_trace() {
    let mut r = v1_files();
    let a = blob("a");
    r.execute("add", json!({"name": "a", "blob": a})).unwrap();
    r.execute("add", json!({"name": "b", "blob": a})).unwrap();
    let before = r.state_json();
    let deltas = r.take_deltas().len();
    assert_eq!(deltas, 2);

    assert_eq!(
        error(r.execute("add", json!({"name": "a", "blob": a}))),
        FilesError::Exists { name: "a".into() }
    );
    assert_eq!(
        error(r.execute("rename", json!({"from": "a", "to": "b"}))),
        FilesError::Exists { name: "b".into() }
    );
    assert_eq!(
        error(r.execute("rename", json!({"from": "x", "to": "y"}))),
        FilesError::NotFound { name: "x".into() }
    );
    assert_eq!(
        error(r.execute("remove", json!({"name": "x"}))),
        FilesError::NotFound { name: "x".into() }
    );
    let long = "n".repeat(256);
    for bad in [
        "",
        " a",
        "a/",
        "/a",
        "a//b",
        "a/../b",
        ".",
        "a\nb",
        long.as_str(),
    ] {
        let FilesError::BadName { name, reason } =
            error(r.execute("add", json!({"name": bad, "blob": a})))
        else {
            panic!("{bad:?} must be refused as a name");
        };
        assert_eq!(name, bad);
        assert!(!reason.is_empty());
    }
    for bad in [
        "text",
        "text/",
        "/plain",
        "text/plain; charset=utf-8",
        "a b/c",
    ] {
        assert_eq!(
            error(r.execute("add", json!({"name": "c", "blob": a, "mime": bad}))),
            FilesError::BadMime { mime: bad.into() }
        );
    }
    // A blob this node does not hold cannot be added: its size is unknown.
    let absent = BlobId::from_bytes([7; 32]);
    let FilesError::Unavailable { name, reason } =
        error(r.execute("add", json!({"name": "c", "blob": absent})))
    else {
        panic!("an absent blob is unavailable");
    };
    assert_eq!(name, "c");
    assert!(reason.contains("not stored"), "{reason}");
    // What clients see: kind, code, data, and the Display message.
    let e = r.execute("remove", json!({"name": "gone"})).unwrap_err();
    let data = e.app_error().unwrap();
    assert_eq!((data.kind.as_str(), data.code), ("NotFound", 404));
    assert_eq!(data.data, json!({"name": "gone"}));
    assert_eq!(e.message, "no file named `gone`");
    // Ids are checked when the arguments are read.
    let e = r
        .execute("add", json!({"name": "c", "blob": "photo.png"}))
        .unwrap_err();
    assert!(e.message.contains("not a blob id"), "{e:?}");

    assert_eq!(r.state_json(), before);
    assert!(r.take_deltas().is_empty(), "refused calls write nothing");
}

#[test]
fn head_reads_the_first_bytes_inside_the_app() {
    let mut r = v1_files();
    // "héllo" cut after the `h` and the first byte of `é`.
    let text = BlobId::for_tests("héllo wörld".as_bytes());
    r.execute(
        "add",
        json!({"name": "t.txt", "blob": text, "mime": "text/plain"}),
    )
    .unwrap();
    let head = r.query("head", json!({"name": "t.txt", "len": 2})).unwrap();
    assert_eq!(head["size"], 13);
    assert_eq!(head["bytes"], json!([b'h', 0xc3]));
    assert_eq!(head["text"], "h", "a cut character is left out");
    let whole = r
        .query("head", json!({"name": "t.txt", "len": 100}))
        .unwrap();
    assert_eq!(whole["text"], "héllo wörld");

    let binary = BlobId::for_tests(&[0xff, 0xfe, 0, 1]);
    r.execute("add", json!({"name": "b.bin", "blob": binary}))
        .unwrap();
    let head = r.query("head", json!({"name": "b.bin", "len": 4})).unwrap();
    assert_eq!(head["text"], json!(null));

    // Never more than MAX_HEAD bytes, however many are asked for.
    let big: Vec<u8> = (0..3 * MAX_HEAD).map(|i| (i % 7) as u8 + b'a').collect();
    let big = BlobId::for_tests(&big);
    r.execute("add", json!({"name": "big", "blob": big}))
        .unwrap();
    let head = r
        .query("head", json!({"name": "big", "len": u32::MAX}))
        .unwrap();
    assert_eq!(head["size"], 3 * MAX_HEAD);
    assert_eq!(head["bytes"].as_array().unwrap().len(), MAX_HEAD as usize);

    assert_eq!(
        error(r.query("head", json!({"name": "nope", "len": 1}))),
        FilesError::NotFound {
            name: "nope".into()
        }
    );
    // `head` is a view: only the three adds wrote deltas.
    assert_eq!(r.take_deltas().len(), 3);
}

fn v2_files() -> Replica<v2::Files> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

fn paths(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn v2_keeps_files_in_folders_with_revisions() {
    let mut r = v2_files();
    let (a, b, c) = (blob("alpha"), blob("beta!"), blob("gamma gamma"));
    let added = r
        .execute("add", json!({"path": "docs/2024/a.txt", "blob": a}))
        .unwrap();
    assert_eq!(added["folder"], "docs/2024");
    assert_eq!(added["revision"], 1);
    r.execute("add", json!({"path": "docs/b.txt", "blob": b}))
        .unwrap();
    r.execute("add", json!({"path": "top.txt", "blob": c}))
        .unwrap();
    assert_eq!(
        r.query("folders", json!({})).unwrap(),
        json!(["docs", "docs/2024"])
    );
    assert_eq!(
        paths(&r.query("list", json!({"folder": "docs"})).unwrap()),
        ["docs/b.txt"]
    );
    assert_eq!(
        paths(&r.query("list", json!({"folder": ""})).unwrap()),
        ["top.txt"]
    );

    let replaced = r
        .execute(
            "replace",
            json!({"path": "docs/b.txt", "blob": c, "mime": "text/plain"}),
        )
        .unwrap();
    assert_eq!(replaced["revision"], 2);
    assert_eq!(replaced["size"], 11);
    assert_eq!(replaced["mime"], "text/plain");
    let again = r
        .execute("replace", json!({"path": "docs/b.txt", "blob": b}))
        .unwrap();
    assert_eq!(again["revision"], 3);
    assert_eq!(again["mime"], "text/plain", "the type stays unless given");

    // A move to another folder makes it and keeps the revision.
    r.execute("rename", json!({"from": "docs/b.txt", "to": "old/b.txt"}))
        .unwrap();
    let moved = r.query("get", json!({"path": "old/b.txt"})).unwrap();
    assert_eq!(
        (moved["folder"].clone(), moved["revision"].clone()),
        (json!("old"), json!(3))
    );
    assert_eq!(
        r.query("list", json!({"folder": "docs"})).unwrap(),
        json!([])
    );
    assert_eq!(
        r.query("folders", json!({})).unwrap(),
        json!(["docs", "docs/2024", "old"])
    );
    assert_eq!(
        r.execute("mkdir", json!({"folder": "empty/x"})).unwrap(),
        true
    );
    assert_eq!(
        r.execute("mkdir", json!({"folder": "empty"})).unwrap(),
        false
    );

    // Files and folders do not share paths.
    assert_eq!(
        error(r.execute("add", json!({"path": "docs", "blob": a}))),
        FilesError::Exists {
            name: "docs".into()
        }
    );
    assert_eq!(
        error(r.execute("mkdir", json!({"folder": "top.txt"}))),
        FilesError::Exists {
            name: "top.txt".into()
        }
    );
    assert_eq!(
        error(r.execute("replace", json!({"path": "nope", "blob": a}))),
        FilesError::NotFound {
            name: "nope".into()
        }
    );
    let removed = r.execute("remove", json!({"path": "top.txt"})).unwrap();
    assert_eq!(removed["blob"], json!(c));
    let head = r
        .query("head", json!({"path": "docs/2024/a.txt", "len": 3}))
        .unwrap();
    assert_eq!(head["text"], "alp");
}

#[test]
fn the_upgrade_from_v1_needs_and_runs_the_migration() {
    let Ok(UpgradePlan::Migrate(diff)) = upgrade_plan::<v1::Files, v2::Files>() else {
        panic!("v2 changes the schema and has a migration");
    };
    let lines = diff.lines().join("\n");
    assert!(lines.contains("schema version 0 -> 2"), "{lines}");
    assert!(
        lines.contains("~ files: UnorderedMap<String, File> -> SortedMap<String, File>"),
        "{lines}"
    );
    assert!(lines.contains("+ folders: SortedSet<String>"), "{lines}");
    // And back is refused, with the node's explanation.
    let Err(UpgradeError::NeedsMigration(back)) = upgrade_plan::<v2::Files, v1::Files>() else {
        panic!("v1 cannot read v2's state");
    };
    assert!(back.explain().contains("#[app::migrate]"));
}

#[test]
fn migrating_files_every_v1_entry_into_its_folder_at_revision_one() {
    let mut r = v1_files();
    let (a, b, c) = (blob("first"), blob("second"), blob("third file"));
    r.execute(
        "add",
        json!({"name": "docs/a.txt", "blob": a, "mime": "text/plain"}),
    )
    .unwrap();
    r.execute("add", json!({"name": "b.bin", "blob": b}))
        .unwrap();
    r.execute("add", json!({"name": "docs/deep/c.md", "blob": c}))
        .unwrap();
    r.take_deltas();
    let v1_entry = r.query("get", json!({"name": "docs/a.txt"})).unwrap();

    let mut r = r.upgrade::<v2::Files>().unwrap();
    let deltas = r.take_deltas();
    assert_eq!(deltas.len(), 1, "the migration is one delta");
    assert!(deltas[0].payload().events.is_empty());

    let a2 = r.query("get", json!({"path": "docs/a.txt"})).unwrap();
    for field in ["blob", "size", "mime", "uploaded_by"] {
        assert_eq!(a2[field], v1_entry[field], "{field} is kept");
    }
    assert_eq!(
        (a2["folder"].clone(), a2["revision"].clone()),
        (json!("docs"), json!(1))
    );
    assert_eq!(
        r.query("folders", json!({})).unwrap(),
        json!(["docs", "docs/deep"])
    );
    assert_eq!(
        paths(&r.query("list", json!({"folder": ""})).unwrap()),
        ["b.bin"]
    );
    assert_eq!(
        paths(&r.query("list", json!({"folder": "docs/deep"})).unwrap()),
        ["docs/deep/c.md"]
    );
    // Every v1 entry was rewritten: each reads in the new shape.
    for path in ["docs/a.txt", "b.bin", "docs/deep/c.md"] {
        let f = r.query("get", json!({"path": path})).unwrap();
        assert_eq!(f["revision"], 1, "{path}: {f}");
    }
    // The file is still readable, and v2 methods work on migrated entries.
    let head = r
        .query("head", json!({"path": "docs/deep/c.md", "len": 5}))
        .unwrap();
    assert_eq!(head["text"], "third");
    let replaced = r
        .execute("replace", json!({"path": "docs/a.txt", "blob": b}))
        .unwrap();
    assert_eq!(replaced["revision"], 2);
    assert_eq!(replaced["mime"], "text/plain");
}

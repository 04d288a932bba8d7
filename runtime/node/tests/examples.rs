//! Acceptance: the `board` and `notes` examples, built with `cargo mero
//! build`, each on three real `merod` nodes sharing one context. Members
//! on different nodes work at the same time over HTTP JSON-RPC; every node
//! converges to the same state, with every card on the board exactly once
//! and every word anyone typed in the document. On the board, a member
//! cannot edit another member's profile: the app refuses with its typed
//! error and the profile stays its owner's everywhere.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::{NodeProc, build_app, cluster, wait_converged};

const CONVERGE: Duration = Duration::from_secs(30);

fn three_nodes(manifest: &str) -> (Vec<tempfile::TempDir>, Vec<NodeProc>, String) {
    let wasm = build_app(manifest);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _app) = cluster(&dirs, &wasm);
    (dirs, nodes, ctx)
}

/// Every card of a `board` view with its parent's id, asserting no card
/// shows twice.
fn placement(board: &Value) -> BTreeMap<String, String> {
    fn walk(parent: &Value, cards: &Value, out: &mut BTreeMap<String, String>) {
        for c in cards.as_array().unwrap() {
            let id = c["id"].as_str().unwrap().to_owned();
            let again = out.insert(id.clone(), parent.as_str().unwrap().to_owned());
            assert!(again.is_none(), "card {id} shows twice: {c}");
            walk(&c["id"], &c["subtasks"], out);
        }
    }
    let mut out = BTreeMap::new();
    for col in board.as_array().unwrap() {
        walk(&col["id"], &col["cards"], &mut out);
    }
    out
}

#[test]
fn board_members_on_three_nodes_move_cards_at_once_and_keep_their_profiles() {
    let (_dirs, nodes, ctx) = three_nodes("examples/board/Cargo.toml");
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    // Each node calls as its own member: the one the node admin API shows.
    let members: Vec<String> = nodes
        .iter()
        .map(|n| {
            let me = n.query(&ctx, "whoami", json!({}));
            assert_eq!(n.get(&format!("/admin/contexts/{ctx}"))["member"], me);
            me.as_str().unwrap().to_owned()
        })
        .collect();

    let columns: Vec<Value> = ["To do", "Doing", "Done"]
        .iter()
        .map(|t| nodes[0].execute(&ctx, "add_column", json!({"title": t})))
        .collect();
    wait_converged(&refs, &ctx, CONVERGE);

    // At once on every node: set the own profile, add four cards, move
    // two of them on, assign one to oneself.
    let cards: Vec<Vec<Value>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (ctx, columns, me) = (&ctx, &columns, &members[i]);
                s.spawn(move || {
                    let colour = ["#aa0000", "#00aa00", "#0000aa"][i];
                    let name = format!("member {i}");
                    n.execute(ctx, "set_profile", json!({"name": name, "colour": colour}));
                    let mine: Vec<Value> = (0..4)
                        .map(|k| {
                            let to = json!({"column": columns[0]});
                            let title = format!("card {i}.{k}");
                            n.execute(ctx, "add_card", json!({"to": to, "title": title}))
                        })
                        .collect();
                    let to = json!({"column": columns[1]});
                    n.execute(ctx, "move_card", json!({"card": mine[0], "to": to}));
                    let to = json!({"column": columns[2]});
                    n.execute(
                        ctx,
                        "move_card",
                        json!({"card": mine[1], "to": to, "index": 0}),
                    );
                    let to = json!({"card": mine[3]});
                    n.execute(ctx, "move_card", json!({"card": mine[2], "to": to}));
                    n.execute(ctx, "assign", json!({"card": mine[3], "member": me}));
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    wait_converged(&refs, &ctx, CONVERGE);

    // All three move one card to three different columns at once.
    let contested = cards[0][3].clone();
    std::thread::scope(|s| {
        for (i, n) in nodes.iter().enumerate() {
            let (ctx, to, card) = (&ctx, json!({"column": columns[i]}), &contested);
            s.spawn(move || n.execute(ctx, "move_card", json!({"card": card, "to": to})));
        }
    });
    wait_converged(&refs, &ctx, CONVERGE);

    let board = nodes[0].query(&ctx, "board", json!({}));
    for n in &nodes[1..] {
        assert_eq!(n.query(&ctx, "board", json!({})), board);
    }
    let at = placement(&board);
    assert_eq!(at.len(), 12, "every card once: {board:#}");
    for (i, mine) in cards.iter().enumerate() {
        let id = |k: usize| mine[k].as_str().unwrap();
        assert_eq!(at[id(2)], id(3), "node {i}'s sub-task stays under its card");
        assert_eq!(at[id(0)], columns[1].as_str().unwrap(), "node {i}");
        assert_eq!(at[id(1)], columns[2].as_str().unwrap(), "node {i}");
    }
    let contested_at = &at[contested.as_str().unwrap()];
    assert!(
        columns.iter().any(|c| c == contested_at),
        "the contested card is in one of the columns: {contested_at}"
    );
    // Assignees show their own profile.
    let card = nodes[2].query(&ctx, "card_view", json!({"card": cards[1][3]}));
    assert_eq!(card["assignee"]["name"], "member 1", "{card}");
    assert_eq!(card["subtasks"][0]["title"], "card 1.2", "{card}");

    // Node 2's member asks to change node 1's member's profile.
    let r = nodes[2].rpc(
        "execute",
        &ctx,
        "edit_profile",
        json!({"member": members[1], "name": "hijacked"}),
    );
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let data = &r["error"]["data"];
    assert_eq!(data["kind"], "NotYourProfile", "{r}");
    assert_eq!(
        data["code"],
        mero_abi::error::derived_code("NotYourProfile")
    );
    assert_eq!(data["data"], json!({"member": members[1]}));
    // While node 1's member edits their own.
    nodes[1].execute(
        &ctx,
        "edit_profile",
        json!({"member": members[1], "colour": "#123456"}),
    );
    wait_converged(&refs, &ctx, CONVERGE);
    for n in &nodes {
        let profiles = n.query(&ctx, "profiles", json!({}));
        let by_member: BTreeMap<&str, &Value> = profiles
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["member"].as_str().unwrap(), p))
            .collect();
        assert_eq!(by_member.len(), 3, "{profiles}");
        for (i, m) in members.iter().enumerate() {
            assert_eq!(by_member[m.as_str()]["name"], format!("member {i}"));
        }
        assert_eq!(by_member[members[1].as_str()]["colour"], "#123456");
    }
}

#[test]
fn notes_typed_into_at_once_on_three_nodes_keep_every_word() {
    let (_dirs, nodes, ctx) = three_nodes("examples/notes/Cargo.toml");
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    let doc = nodes[0].execute(&ctx, "create", json!({"title": "Minutes"}));
    nodes[0].execute(
        &ctx,
        "insert",
        json!({"doc": doc, "pos": 0, "text": "begin end"}),
    );
    wait_converged(&refs, &ctx, CONVERGE);

    // Every node types its words at once, each after "begin " (char 6) as
    // its own text there has it, and deletes a word of its own again.
    let words: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (ctx, doc) = (&ctx, &doc);
                s.spawn(move || {
                    let mut typed = Vec::new();
                    for k in 0..6 {
                        let word = format!("n{i}w{k} ");
                        n.execute(ctx, "insert", json!({"doc": doc, "pos": 6, "text": word}));
                        typed.push(word.trim().to_owned());
                    }
                    // Take back the last word, as a client does: read,
                    // find it, delete it there unless the text moved
                    // meanwhile (a peer's edit arrived), else read again.
                    let last = format!("{} ", typed.pop().unwrap());
                    let deleted = (0..50).any(|_| {
                        let body = n.query(ctx, "get", json!({"doc": doc}))["body"].clone();
                        let body = body.as_str().unwrap();
                        let at = body.find(&last).expect("own word present");
                        let pos = body[..at].chars().count();
                        let len = last.chars().count();
                        let args = json!({"doc": doc, "pos": pos, "len": len, "expect": last});
                        let r = n.rpc("execute", ctx, "delete", args);
                        if r.get("error").is_none() {
                            return true;
                        }
                        assert_eq!(r["error"]["data"]["kind"], "TextChanged", "{r}");
                        false
                    });
                    assert!(deleted, "node {i}: the text kept moving");
                    typed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    wait_converged(&refs, &ctx, CONVERGE);

    let got = nodes[0].query(&ctx, "get", json!({"doc": doc}));
    for n in &nodes[1..] {
        assert_eq!(n.query(&ctx, "get", json!({"doc": doc})), got);
    }
    let body = got["body"].as_str().unwrap();
    let tokens: Vec<&str> = body.split(' ').filter(|t| !t.is_empty()).collect();
    assert_eq!(tokens.first(), Some(&"begin"), "{body}");
    assert_eq!(tokens.last(), Some(&"end"), "{body}");
    for w in words.iter().flatten() {
        assert_eq!(
            tokens.iter().filter(|t| **t == w.as_str()).count(),
            1,
            "{w} in {body}"
        );
    }
    for i in 0..3 {
        assert!(
            !body.contains(&format!("n{i}w5")),
            "deleted word left: {body}"
        );
    }
    assert_eq!(tokens.len(), 2 + 15, "{body}");
    assert_eq!(got["len"], body.chars().count());
    // The index lists the document on every node.
    for n in &nodes {
        let found = n.query(&ctx, "search", json!({"prefix": "min"}));
        assert_eq!(found[0]["id"], doc, "{found}");
    }
}

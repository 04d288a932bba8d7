//! board on several replicas: concurrent moves, edits and profiles, with
//! deltas delivered in shuffled orders (several seeds), converge to one
//! board that holds every card exactly once.

use std::collections::{BTreeMap, BTreeSet};

use board::{Board, BoardError, CardView, ColumnView, MemberView};
use mero_sdk::testing::{Network, typed_error};
use serde_json::{Value, json};

fn ok(net: &mut Network<Board>, i: usize, method: &str, args: Value) -> Value {
    net.replica(i)
        .execute(method, args.clone())
        .unwrap_or_else(|e| panic!("replica {i}: {method} {args}: {e:?}"))
}

fn view(net: &mut Network<Board>, i: usize) -> Vec<ColumnView> {
    serde_json::from_value(net.replica(i).query("board", json!({})).unwrap()).unwrap()
}

/// Every card on the board with its parent (a column or a card), checking
/// on the way that no card shows twice.
fn placement(cols: &[ColumnView]) -> BTreeMap<String, String> {
    fn walk(parent: &str, cards: &[CardView], out: &mut BTreeMap<String, String>) {
        for c in cards {
            let id = c.id.to_string();
            let again = out.insert(id.clone(), parent.to_owned());
            assert!(again.is_none(), "card {id} shows twice");
            walk(&id, &c.subtasks, out);
        }
    }
    let mut out = BTreeMap::new();
    for col in cols {
        walk(&col.id.to_string(), &col.cards, &mut out);
    }
    out
}

/// Two columns with cards `a`, `b`, `c` in the first, delivered to all.
fn seeded(seed: u64) -> (Network<Board>, [Value; 2], [Value; 3]) {
    let mut net = Network::<Board>::new(3);
    let todo = ok(&mut net, 0, "add_column", json!({"title": "To do"}));
    let done = ok(&mut net, 0, "add_column", json!({"title": "Done"}));
    let cards = ["a", "b", "c"].map(|t| {
        ok(
            &mut net,
            0,
            "add_card",
            json!({"to": {"column": todo}, "title": t}),
        )
    });
    net.deliver_shuffled(seed);
    (net, [todo, done], cards)
}

#[test]
fn concurrent_moves_of_one_card_leave_it_in_one_place() {
    for seed in 0..12u64 {
        let (mut net, [todo, done], [a, b, c]) = seeded(seed);
        // Three replicas move `a` to three different places at once.
        ok(
            &mut net,
            0,
            "move_card",
            json!({"card": a, "to": {"column": done}}),
        );
        ok(
            &mut net,
            1,
            "move_card",
            json!({"card": a, "to": {"card": b}}),
        );
        ok(
            &mut net,
            2,
            "move_card",
            json!({"card": a, "to": {"column": todo}, "index": 2}),
        );
        net.deliver_shuffled(seed + 1000);
        net.assert_converged();
        let cols = view(&mut net, 0);
        let at = placement(&cols);
        assert_eq!(at.len(), 3, "seed {seed}: {cols:?}");
        let a_at = &at[a.as_str().unwrap()];
        let places = [
            done.as_str().unwrap(),
            b.as_str().unwrap(),
            todo.as_str().unwrap(),
        ];
        assert!(
            places.contains(&a_at.as_str()),
            "seed {seed}: a under {a_at}"
        );
        assert_eq!(at[c.as_str().unwrap()], todo.as_str().unwrap());
        // Every replica reads the same board through the view too.
        for i in 1..3 {
            assert_eq!(view(&mut net, i), cols, "seed {seed}, replica {i}");
        }
    }
}

#[test]
fn concurrent_nesting_never_makes_a_cycle() {
    for seed in 0..12u64 {
        let (mut net, _, [a, b, c]) = seeded(seed);
        // a under b, b under c, c under a: each fine alone, a cycle together.
        ok(
            &mut net,
            0,
            "move_card",
            json!({"card": a, "to": {"card": b}}),
        );
        ok(
            &mut net,
            1,
            "move_card",
            json!({"card": b, "to": {"card": c}}),
        );
        ok(
            &mut net,
            2,
            "move_card",
            json!({"card": c, "to": {"card": a}}),
        );
        net.deliver_shuffled(seed + 2000);
        net.assert_converged();
        let at = placement(&view(&mut net, 1));
        assert_eq!(at.len(), 3, "seed {seed}: a card fell off the board");
    }
}

#[test]
fn concurrent_edits_of_different_fields_all_survive() {
    for seed in 0..8u64 {
        let (mut net, _, [a, ..]) = seeded(seed);
        let me2 = ok(&mut net, 2, "whoami", json!({}));
        ok(
            &mut net,
            2,
            "set_profile",
            json!({"name": "Cy", "colour": "#00ff00"}),
        );
        ok(
            &mut net,
            0,
            "rename_card",
            json!({"card": a, "title": "renamed"}),
        );
        ok(&mut net, 1, "set_done", json!({"card": a, "done": true}));
        ok(&mut net, 2, "assign", json!({"card": a, "member": me2}));
        net.deliver_shuffled(seed + 3000);
        net.assert_converged();
        let card: CardView = serde_json::from_value(
            net.replica(1)
                .query("card_view", json!({"card": a}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(card.title, "renamed", "seed {seed}");
        assert!(card.done, "seed {seed}");
        assert_eq!(card.assignee.unwrap().name, "Cy", "seed {seed}");

        // The same field at once: one title wins, the same everywhere.
        for i in 0..3 {
            ok(
                &mut net,
                i,
                "rename_card",
                json!({"card": a, "title": format!("by {i}")}),
            );
        }
        net.deliver_shuffled(seed + 4000);
        net.assert_converged();
        let title = view(&mut net, 0)[0].cards[0].title.clone();
        assert!(
            ["by 0", "by 1", "by 2"].contains(&title.as_str()),
            "{title}"
        );
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

#[test]
fn random_concurrent_work_converges_with_every_card_once() {
    for seed in 1..=6u64 {
        let mut rng = Rng(seed * 0x9e37_79b9_7f4a_7c15);
        let (mut net, columns, first) = seeded(seed);
        let mut created: BTreeSet<String> = first
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        for round in 0..6 {
            for i in 0..3 {
                for _ in 0..4 {
                    step(&mut net, i, &mut rng, &columns, &mut created);
                }
            }
            // Partial delivery between rounds: replicas keep working on
            // boards that have seen some of the others' changes.
            if round % 2 == 0 {
                net.deliver_round(seed * 100 + round);
            }
        }
        net.deliver_shuffled(seed + 5000);
        net.assert_converged();
        let cols = view(&mut net, 2);
        assert_eq!(cols.len(), 2, "seed {seed}: columns stay columns");
        let at = placement(&cols);
        let shown: BTreeSet<String> = at.keys().cloned().collect();
        assert_eq!(shown, created, "seed {seed}: every card once, none lost");
    }
}

/// One random call on replica `i`: add a card, move one, rename one or
/// mark one done. Refusals may happen only where the replica's board
/// makes them right (a move under the card's own sub-task).
fn step(
    net: &mut Network<Board>,
    i: usize,
    rng: &mut Rng,
    columns: &[Value; 2],
    created: &mut BTreeSet<String>,
) {
    let here: Vec<String> = placement(&view(net, i)).into_keys().collect();
    let any_card = |rng: &mut Rng| json!(here[rng.below(here.len())]);
    let to = |rng: &mut Rng| {
        if rng.below(3) == 0 {
            json!({"card": here[rng.below(here.len())]})
        } else {
            json!({"column": columns[rng.below(2)]})
        }
    };
    let r = net.replica(i);
    match rng.below(4) {
        0 => {
            let id = r
                .execute("add_card", json!({"to": to(rng), "title": format!("r{i}")}))
                .unwrap();
            created.insert(id.as_str().unwrap().to_owned());
        }
        1 => {
            let args = json!({"card": any_card(rng), "to": to(rng), "index": 0});
            if let Err(e) = r.execute("move_card", args.clone()) {
                let why = typed_error::<BoardError>(&e);
                assert!(
                    matches!(why, Some(BoardError::IntoItself { .. })),
                    "{args}: {e:?}"
                );
            }
        }
        2 => {
            let title = format!("renamed by {i}");
            r.execute(
                "rename_card",
                json!({"card": any_card(rng), "title": title}),
            )
            .unwrap();
        }
        _ => {
            r.execute("set_done", json!({"card": any_card(rng), "done": true}))
                .unwrap();
        }
    }
}

#[test]
fn each_member_changes_only_their_own_profile() {
    for seed in 0..6u64 {
        let mut net = Network::<Board>::new(3);
        let members: Vec<Value> = (0..3)
            .map(|i| ok(&mut net, i, "whoami", json!({})))
            .collect();
        assert_eq!(
            members
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect::<BTreeSet<_>>()
                .len(),
            3,
            "one member key per replica"
        );
        for (i, colour) in ["#ff0000", "#00ff00", "#0000ff"].iter().enumerate() {
            ok(
                &mut net,
                i,
                "set_profile",
                json!({"name": format!("member {i}"), "colour": colour}),
            );
        }
        net.deliver_shuffled(seed);
        net.assert_converged();
        // Replica 1 asks to change replica 0's profile: refused, typed.
        let err = net
            .replica(1)
            .execute(
                "edit_profile",
                json!({"member": members[0], "name": "hijacked"}),
            )
            .unwrap_err();
        assert_eq!(
            typed_error::<BoardError>(&err),
            Some(BoardError::NotYourProfile {
                member: members[0].as_str().unwrap().into()
            })
        );
        // Meanwhile replica 0 renames itself, and replica 1 itself.
        ok(
            &mut net,
            0,
            "edit_profile",
            json!({"member": members[0], "name": "zero"}),
        );
        ok(
            &mut net,
            1,
            "edit_profile",
            json!({"member": members[1], "colour": "#111111"}),
        );
        net.deliver_shuffled(seed + 6000);
        net.assert_converged();
        let profiles: Vec<MemberView> =
            serde_json::from_value(net.replica(2).query("profiles", json!({})).unwrap()).unwrap();
        let by_member: BTreeMap<&str, (&str, &str)> = profiles
            .iter()
            .map(|p| (p.member.as_str(), (p.name.as_str(), p.colour.as_str())))
            .collect();
        let key = |i: usize| members[i].as_str().unwrap();
        assert_eq!(by_member[key(0)], ("zero", "#ff0000"), "seed {seed}");
        assert_eq!(by_member[key(1)], ("member 1", "#111111"), "seed {seed}");
        assert_eq!(by_member[key(2)], ("member 2", "#0000ff"), "seed {seed}");
        assert!(
            !serde_json::to_string(&profiles)
                .unwrap()
                .contains("hijacked")
        );
    }
}

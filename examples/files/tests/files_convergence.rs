//! files converges: concurrent adds, renames, removes and replaces on three
//! replicas, delivered in shuffled orders with duplicates, end in one state
//! everywhere; so does an upgrade to v2 run on any of them.

use files::{v1, v2};
use mero_sdk::blob::BlobId;
use mero_sdk::testing::Network;
use serde_json::{Value, json};

fn paths(list: Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn concurrent_adds_renames_and_removes_converge() {
    let shared = BlobId::for_tests(b"shared by everyone");
    for seed in 0..20 {
        let mut net = Network::<v1::Files>::new(3);
        let r0 = net.replica(0);
        r0.execute("add", json!({"name": "shared", "blob": shared}))
            .unwrap();
        r0.execute("add", json!({"name": "keep", "blob": shared}))
            .unwrap();
        net.deliver_shuffled(seed);

        // Concurrently: two renames and a remove of one file, ...
        let ren = |to: &str| json!({"from": "shared", "to": to});
        net.replica(0).execute("rename", ren("by-0")).unwrap();
        net.replica(1).execute("rename", ren("by-1")).unwrap();
        net.replica(2)
            .execute("remove", json!({"name": "shared"}))
            .unwrap();
        // ... a remove and a rename of another, ...
        net.replica(0)
            .execute("remove", json!({"name": "keep"}))
            .unwrap();
        net.replica(1)
            .execute("rename", json!({"from": "keep", "to": "kept"}))
            .unwrap();
        // ... and one new name added twice, with different files.
        let ones = BlobId::for_tests(format!("one {seed}").as_bytes());
        let twos = BlobId::for_tests(format!("two {seed}").as_bytes());
        net.replica(1)
            .execute("add", json!({"name": "same", "blob": ones}))
            .unwrap();
        net.replica(2)
            .execute("add", json!({"name": "same", "blob": twos}))
            .unwrap();

        net.deliver_shuffled(seed + 1000);
        net.assert_converged();
        for i in 0..3 {
            let r = net.replica(i);
            // Both renames took the file somewhere; the original name is gone.
            assert_eq!(
                paths(r.query("list", json!({})).unwrap()),
                ["by-0", "by-1", "kept", "same"],
                "replica {i}, seed {seed}"
            );
            let by0 = r.query("get", json!({"name": "by-0"})).unwrap();
            assert_eq!(by0["blob"], json!(shared));
            // One of the two adds wins, the same everywhere.
            let same = r.query("get", json!({"name": "same"})).unwrap();
            assert!(
                same["blob"] == json!(ones) || same["blob"] == json!(twos),
                "{same}"
            );
        }
    }
}

#[test]
fn concurrent_v2_replaces_moves_and_folders_converge() {
    let (a, b, c) = (
        BlobId::for_tests(b"version a"),
        BlobId::for_tests(b"version b"),
        BlobId::for_tests(b"version c!"),
    );
    for seed in 0..20 {
        let mut net = Network::<v2::Files>::new(3);
        net.replica(0)
            .execute("add", json!({"path": "docs/plan.txt", "blob": a}))
            .unwrap();
        net.deliver_shuffled(seed);
        net.replica(0)
            .execute("replace", json!({"path": "docs/plan.txt", "blob": b}))
            .unwrap();
        net.replica(1)
            .execute("replace", json!({"path": "docs/plan.txt", "blob": c}))
            .unwrap();
        net.replica(2)
            .execute("mkdir", json!({"folder": "archive/2024"}))
            .unwrap();
        net.replica(1)
            .execute("add", json!({"path": "notes/n.txt", "blob": a}))
            .unwrap();
        net.deliver_shuffled(seed + 1000);
        net.assert_converged();
        for i in 0..3 {
            let r = net.replica(i);
            let plan = r.query("get", json!({"path": "docs/plan.txt"})).unwrap();
            assert_eq!(plan["revision"], 2, "both replaces wrote revision 2");
            assert!(
                plan["blob"] == json!(b) || plan["blob"] == json!(c),
                "{plan}"
            );
            assert_eq!(
                r.query("folders", json!({})).unwrap(),
                json!(["archive", "archive/2024", "docs", "notes"])
            );
        }
    }
}

#[test]
fn an_upgrade_to_v2_on_any_replica_converges() {
    let blobs: Vec<BlobId> = (0..6)
        .map(|i| BlobId::for_tests(format!("file {i}").as_bytes()))
        .collect();
    for seed in 0..12 {
        let mut net = Network::<v1::Files>::new(3);
        for i in 0..3 {
            let names = [format!("r{i}/a.txt"), format!("top-{i}")];
            for (j, name) in names.into_iter().enumerate() {
                let args = json!({"name": name, "blob": blobs[2 * i + j]});
                net.replica(i).execute("add", args).unwrap();
            }
        }
        net.deliver_shuffled(seed);
        net.replica(0)
            .execute("rename", json!({"from": "top-0", "to": "r0/top.txt"}))
            .unwrap();
        net.replica(2)
            .execute("remove", json!({"name": "top-2"}))
            .unwrap();
        net.deliver_shuffled(seed + 100);

        let on = (seed % 3) as usize;
        let mut net = net.upgrade::<v2::Files>(on).unwrap();
        // Work on v2 at once, concurrently, from every replica.
        net.replica(0)
            .execute("replace", json!({"path": "r1/a.txt", "blob": blobs[5]}))
            .unwrap();
        net.replica(1)
            .execute("rename", json!({"from": "top-1", "to": "moved/top-1"}))
            .unwrap();
        net.replica(2)
            .execute("mkdir", json!({"folder": "new"}))
            .unwrap();
        net.deliver_shuffled(seed + 200);
        net.assert_converged();
        for i in 0..3 {
            let r = net.replica(i);
            assert_eq!(
                r.query("folders", json!({})).unwrap(),
                json!(["moved", "new", "r0", "r1", "r2"]),
                "replica {i}, upgraded on {on}, seed {seed}"
            );
            assert_eq!(
                paths(r.query("list", json!({"folder": "r0"})).unwrap()),
                ["r0/a.txt", "r0/top.txt"]
            );
            let r1 = r.query("get", json!({"path": "r1/a.txt"})).unwrap();
            assert_eq!(
                (r1["revision"].clone(), r1["blob"].clone()),
                (json!(2), json!(blobs[5]))
            );
            let moved = r.query("get", json!({"path": "moved/top-1"})).unwrap();
            assert_eq!(
                (moved["folder"].clone(), moved["revision"].clone()),
                (json!("moved"), json!(1))
            );
            assert_eq!(r.query("list", json!({"folder": ""})).unwrap(), json!([]));
        }
    }
}

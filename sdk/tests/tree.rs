//! Tree on the native test host: structure, data, ids as JSON, and
//! concurrent moves converging without cycles.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, NodeId, Tree, UnorderedMap, Vector};
use mero_sdk::testing::{Network, Replica};
use serde_json::json;

#[app::state]
pub struct Board {
    folders: Tree<String>,
    cards: Tree<UnorderedMap<String, String>>,
    notes: Tree<LwwRegister<String>>,
    boards: UnorderedMap<String, Tree<u32>>,
    pinned: Vector<NodeId>,
}

#[app::logic]
impl Board {
    #[app::init]
    pub fn init() -> Self {
        Self {
            folders: Tree::new(),
            cards: Tree::new(),
            notes: Tree::new(),
            boards: UnorderedMap::new(),
            pinned: Vector::new(),
        }
    }

    pub fn mkdir(&mut self, parent: Option<NodeId>, name: String) -> NodeId {
        self.folders.create(parent, name)
    }

    pub fn mv(&mut self, node: NodeId, parent: Option<NodeId>, index: usize) {
        self.folders.mov(node, parent, index);
    }

    pub fn rm(&mut self, node: NodeId) -> bool {
        self.folders.delete(node)
    }

    /// Every folder as `path`, depth first.
    pub fn paths(&self) -> Vec<String> {
        self.folders
            .nodes()
            .into_iter()
            .map(|n| {
                let mut parts = vec![self.folders.get(n).unwrap()];
                let mut at = n;
                while let Some(p) = self.folders.parent(at) {
                    parts.push(self.folders.get(p).unwrap());
                    at = p;
                }
                parts.reverse();
                parts.join("/")
            })
            .collect()
    }

    pub fn pin(&mut self, node: NodeId) {
        self.pinned.push(node);
    }

    pub fn pinned(&self) -> Vec<NodeId> {
        self.pinned.to_vec()
    }
}

fn board() -> Replica<Board> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

#[test]
fn nodes_create_move_and_delete_with_their_subtrees() {
    let mut r = board();
    let home = r
        .execute("mkdir", json!({"parent": null, "name": "home"}))
        .unwrap();
    let etc = r
        .execute("mkdir", json!({"parent": null, "name": "etc"}))
        .unwrap();
    let ann = r
        .execute("mkdir", json!({"parent": home, "name": "ann"}))
        .unwrap();
    let docs = r
        .execute("mkdir", json!({"parent": ann, "name": "docs"}))
        .unwrap();
    assert!(home.is_string(), "node ids are JSON strings: {home}");
    assert_eq!(
        r.execute("paths", json!({})).unwrap(),
        json!(["home", "home/ann", "home/ann/docs", "etc"])
    );
    // Move `ann` (with `docs`) under `etc`, first.
    r.execute("mv", json!({"node": ann, "parent": etc, "index": 0}))
        .unwrap();
    assert_eq!(
        r.execute("paths", json!({})).unwrap(),
        json!(["home", "etc", "etc/ann", "etc/ann/docs"])
    );
    // Under its own subtree: refused, nothing changes.
    let before = r.state_json();
    let err = r
        .execute("mv", json!({"node": ann, "parent": docs, "index": 0}))
        .unwrap_err();
    assert!(err.message.contains("under itself"), "{err:?}");
    assert_eq!(r.state_json(), before);
    // Ids stored elsewhere stay valid.
    r.execute("pin", json!({"node": docs})).unwrap();
    assert_eq!(r.execute("pinned", json!({})).unwrap(), json!([docs]));
    assert_eq!(r.execute("rm", json!({"node": ann})).unwrap(), json!(true));
    assert_eq!(
        r.execute("rm", json!({"node": docs})).unwrap(),
        json!(false),
        "deleted with its parent"
    );
    assert_eq!(
        r.execute("paths", json!({})).unwrap(),
        json!(["home", "etc"])
    );
    let err = r
        .execute("mkdir", json!({"parent": docs, "name": "x"}))
        .unwrap_err();
    assert!(err.message.contains("no node"), "{err:?}");
    let err = r
        .execute("mkdir", json!({"parent": "not-an-id", "name": "x"}))
        .unwrap_err();
    assert_eq!(
        err.kind,
        mero_sdk::__private::mero_abi::CallErrorKind::InvalidArgs
    );
}

#[test]
fn node_data_values_collections_and_registers() {
    let mut r = board();
    let (card, note) = r
        .mutate(|s| {
            let mut fields = UnorderedMap::new();
            fields.insert("title".to_owned(), "write tests".to_owned());
            let card = s.cards.create(None, fields);
            s.cards.ensure(card).insert("owner".into(), "ann".into());
            let note = s.notes.create(None, LwwRegister::new("draft".into()));
            let first = s.folders.create(None, "b".into());
            let zero = s.folders.create_at(None, 0, "a".into());
            let after = s.folders.create_after(zero, "a2".into());
            s.folders.create_before(first, "a3".into());
            s.folders.mov_before(after, zero);
            s.folders.set(first, "B".into());
            Ok((card, note))
        })
        .unwrap();
    r.mutate(|s| {
        // A register read from a node writes back to it.
        s.notes.get(note).unwrap().set("final".into());
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        let fields = s.cards.get(card).unwrap();
        assert_eq!(fields.get("title").as_deref(), Some("write tests"));
        assert_eq!(fields.get("owner").as_deref(), Some("ann"));
        assert_eq!(s.notes.get(note).unwrap().get(), "final");
        let names: Vec<String> = s
            .folders
            .roots()
            .into_iter()
            .map(|n| s.folders.get(n).unwrap())
            .collect();
        assert_eq!(names, ["a2", "a", "a3", "B"]);
        assert_eq!(s.folders.len(), 4);
        assert!(!s.folders.is_empty());
    })
    .unwrap();
    // Setting a node that is not there fails the call.
    let err = r
        .mutate(|s| {
            let n = s.folders.create(None, "tmp".into());
            s.folders.delete(n);
            s.folders.set(n, "x".into());
            Ok(())
        })
        .unwrap_err();
    assert!(err.message.contains("no node"), "{err:?}");
}

#[test]
fn trees_nested_in_maps_and_created_in_init() {
    let mut r = board();
    r.mutate(|s| {
        let mut t = s.boards.ensure("sprint".into());
        let a = t.create(None, 1);
        t.create(Some(a), 2);
        // Storing a detached tree that already had nodes is impossible:
        // node edits need a stored tree.
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        let t = s.boards.get("sprint").unwrap();
        let roots = t.roots();
        assert_eq!(roots.len(), 1);
        assert_eq!(t.get(t.children(Some(roots[0]))[0]), Some(2));
    })
    .unwrap();
    let err = r
        .mutate(|_| {
            let mut t: Tree<u32> = Tree::new();
            t.create(None, 1);
            Ok(())
        })
        .unwrap_err();
    assert!(err.message.contains("not in state"), "{err:?}");
}

#[test]
fn concurrent_moves_never_make_a_cycle() {
    for seed in 0..20u64 {
        let mut net = Network::<Board>::new(3);
        let x = net
            .replica(0)
            .execute("mkdir", json!({"parent": null, "name": "x"}))
            .unwrap();
        let y = net
            .replica(0)
            .execute("mkdir", json!({"parent": null, "name": "y"}))
            .unwrap();
        let z = net
            .replica(0)
            .execute("mkdir", json!({"parent": null, "name": "z"}))
            .unwrap();
        net.deliver_shuffled(seed);
        // A 3-cycle attempted concurrently: x under y, y under z, z under x.
        net.replica(0)
            .execute("mv", json!({"node": x, "parent": y, "index": 0}))
            .unwrap();
        net.replica(1)
            .execute("mv", json!({"node": y, "parent": z, "index": 0}))
            .unwrap();
        net.replica(2)
            .execute("mv", json!({"node": z, "parent": x, "index": 0}))
            .unwrap();
        net.deliver_shuffled(seed + 100);
        net.assert_converged();
        let paths = net.replica(1).execute("paths", json!({})).unwrap();
        let paths: Vec<String> = serde_json::from_value(paths).unwrap();
        // All three folders are still reachable from a root: no cycle.
        assert_eq!(paths.len(), 3, "seed {seed}: {paths:?}");
        assert!(
            paths.iter().any(|p| p.split('/').count() == 3),
            "two of the moves apply: {paths:?}"
        );
        let roots = net.replica(2).view(|s| s.folders.roots()).unwrap();
        // Exported state nests children under their parents.
        let state = net.replica(2).state_json();
        assert_eq!(state["folders"].as_array().unwrap().len(), 1);
        assert_eq!(state["folders"][0]["id"], json!(roots[0]));
        let roots = roots.len();
        assert_eq!(roots, 1, "seed {seed}: exactly one root");
    }
}

#[test]
fn concurrent_edits_of_siblings_and_data_converge() {
    for seed in 0..10u64 {
        let mut net = Network::<Board>::new(3);
        let root = net
            .replica(0)
            .execute("mkdir", json!({"parent": null, "name": "root"}))
            .unwrap();
        net.deliver_shuffled(seed);
        for i in 0..3 {
            for j in 0..3 {
                net.replica(i)
                    .execute("mkdir", json!({"parent": root, "name": format!("{i}{j}")}))
                    .unwrap();
            }
        }
        // Concurrently: one replica deletes the root, one moves a child out.
        let child = net.replica(1).mutate(|s| {
            let root: NodeId = serde_json::from_value(root.clone()).unwrap();
            let c = s.folders.children(Some(root))[0];
            s.folders.mov_last(c, None);
            Ok(c)
        });
        let child = child.unwrap();
        net.replica(2).execute("rm", json!({"node": root})).unwrap();
        net.deliver_shuffled(seed + 7);
        net.assert_converged();
        let paths = net.replica(0).execute("paths", json!({})).unwrap();
        let paths: Vec<String> = serde_json::from_value(paths).unwrap();
        // The moved child has its own last move: it survives the
        // concurrent deletion of its old parent, on every replica.
        let name = net.replica(0).view(|s| s.folders.get(child)).unwrap();
        assert_eq!(paths, [name.unwrap()], "seed {seed}");
    }
}

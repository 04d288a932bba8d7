//! LwwRegister: `set` writes state as a root field and inside every
//! collection; clones and comparisons never write.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, SortedMap, UnorderedMap, Vector};
use mero_sdk::testing::{Network, Replica};
use serde_json::json;

#[app::state]
pub struct Prefs {
    theme: LwwRegister<String>,
    by_user: UnorderedMap<String, LwwRegister<String>>,
    ordered: SortedMap<u32, LwwRegister<i64>>,
    slots: Vector<LwwRegister<bool>>,
    nested: UnorderedMap<String, Vector<LwwRegister<String>>>,
}

#[app::logic]
impl Prefs {
    #[app::init]
    pub fn init() -> Self {
        let mut slots = Vector::new();
        slots.push(LwwRegister::new(false));
        slots.push(LwwRegister::new(false));
        Self {
            theme: LwwRegister::new("light".into()),
            by_user: UnorderedMap::new(),
            ordered: SortedMap::new(),
            slots,
            nested: UnorderedMap::new(),
        }
    }

    pub fn set_user(&mut self, user: String, theme: String) {
        match self.by_user.get(&user) {
            // No insert: the register writes its own entry.
            Some(mut reg) => reg.set(theme),
            None => self.by_user.insert(user, LwwRegister::new(theme)),
        }
    }

    pub fn user(&self, user: String) -> Option<String> {
        self.by_user.get(&user).map(LwwRegister::into_inner)
    }
}

fn prefs() -> Replica<Prefs> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

#[test]
fn registers_write_through_wherever_they_live() {
    let mut r = prefs();
    r.execute("set_user", json!({"user": "ann", "theme": "dark"}))
        .unwrap();
    r.execute("set_user", json!({"user": "ann", "theme": "solar"}))
        .unwrap();
    assert_eq!(
        r.execute("user", json!({"user": "ann"})).unwrap(),
        json!("solar")
    );
    r.mutate(|s| {
        s.theme.set("dark".into());
        s.ordered.insert(3, LwwRegister::new(30));
        s.ordered.insert(1, LwwRegister::new(10));
        s.nested
            .ensure("n".into())
            .push(LwwRegister::new("a".into()));
        Ok(())
    })
    .unwrap();
    r.mutate(|s| {
        for (_, mut reg) in s.ordered.iter() {
            let v = *reg.get();
            reg.set(v + 1);
        }
        s.slots.get(1).unwrap().set(true);
        for mut reg in s.by_user.entries().into_iter().map(|(_, r)| r) {
            reg.set(format!("{}!", reg.get()));
        }
        s.nested.get("n").unwrap().get(0).unwrap().set("b".into());
        Ok(())
    })
    .unwrap();
    let state = r.state_json();
    assert_eq!(state["theme"], json!("dark"));
    assert_eq!(
        state["by_user"],
        json!({"ann": "solar!"}),
        "plain values in exported state"
    );
    assert_eq!(state["slots"], json!([false, true]));
    assert_eq!(state["nested"], json!({"n": ["b"]}));
    r.view(|s| {
        let vals: Vec<i64> = s.ordered.values().map(LwwRegister::into_inner).collect();
        assert_eq!(vals, [11, 31]);
    })
    .unwrap();
}

#[test]
fn clones_are_detached_and_equality_compares_values() {
    let mut r = prefs();
    r.mutate(|s| {
        let mut copy = s.theme.clone();
        copy.set("ignored".into());
        assert_eq!(copy.get(), "ignored");
        let reg = s.slots.get(0).unwrap();
        let mut copy = reg.clone();
        copy.set(true);
        assert_eq!(reg, LwwRegister::new(false));
        assert_ne!(copy, reg);
        assert_eq!(format!("{reg:?}"), "LwwRegister(false)");
        Ok(())
    })
    .unwrap();
    let state = r.state_json();
    assert_eq!(state["theme"], json!("light"));
    assert_eq!(state["slots"], json!([false, false]));
}

#[test]
fn setting_a_register_read_in_a_view_fails() {
    let mut r = prefs();
    r.execute("set_user", json!({"user": "ann", "theme": "dark"}))
        .unwrap();
    let err = r
        .view(|s| {
            s.by_user.get("ann").unwrap().set("x".into());
        })
        .unwrap_err();
    assert_eq!(
        err.kind,
        mero_sdk::__private::mero_abi::CallErrorKind::Mutability
    );
}

#[test]
fn concurrent_sets_of_one_entry_converge_to_one_writer() {
    for seed in 0..10u64 {
        let mut net = Network::<Prefs>::new(3);
        net.replica(0)
            .execute("set_user", json!({"user": "u", "theme": "t"}))
            .unwrap();
        net.deliver_shuffled(seed);
        for i in 0..3 {
            net.replica(i)
                .execute("set_user", json!({"user": "u", "theme": format!("t{i}")}))
                .unwrap();
        }
        net.deliver_shuffled(seed + 50);
        net.assert_converged();
        let v = net
            .replica(0)
            .execute("user", json!({"user": "u"}))
            .unwrap();
        assert!(["t0", "t1", "t2"].contains(&v.as_str().unwrap()), "{v}");
    }
}

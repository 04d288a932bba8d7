//! The access view of every applied delta: the [`Access`] folded from the
//! control deltas in its causal past. Views are interned by the set of
//! control deltas they fold, so the many deltas between two control deltas
//! share one, and a delta's view costs one index in its DAG entry.
//!
//! A view after a control delta is the view before it plus that delta
//! (it sorts after everything in its own causal past). Where parents have
//! different views and none covers the others, the union is folded from
//! genesis in `(height, id)` order, each delta checked again against the
//! state before it: that is how concurrent control deltas are settled.

use std::collections::HashMap;

use crate::access::Access;
use crate::dag::Notes;
use crate::delta::{DeltaHeader, Op};
use crate::ids::DeltaId;

struct View {
    /// Indices into `Views::control` of the folded deltas, ascending.
    ops: Vec<u32>,
    access: Access,
}

struct Control {
    id: DeltaId,
    height: u64,
    header: DeltaHeader,
    op: Op,
}

/// How a view after genesis was made: what a checkpoint stores instead of
/// the views themselves ([`crate::checkpoint`]), so the same views (same
/// indices, same [`Access`]) are rebuilt from the control deltas alone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Recipe {
    /// View `before` plus the control delta with index `control` (the
    /// `control`-th control delta applied).
    After {
        /// The view the control delta was made on.
        before: u32,
        /// Its index among the control deltas.
        control: u32,
    },
    /// The fold from genesis of these control deltas (indices, ascending)
    /// in `(height, id)` order.
    Union {
        /// The folded control deltas.
        ops: Vec<u32>,
    },
}

/// Every view of one context's DAG; view 0 is genesis.
pub(crate) struct Views {
    control: Vec<Control>,
    views: Vec<View>,
    interned: HashMap<Vec<u32>, u32>,
    /// How each view after genesis was made (`recipes[i]` made view `i + 1`).
    recipes: Vec<Recipe>,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("control", &self.control.len())
            .field("views", &self.views.len())
            .finish()
    }
}

impl Views {
    /// Views of a context whose genesis access is `genesis`.
    pub fn new(genesis: Access) -> Self {
        Self {
            control: Vec::new(),
            views: vec![View {
                ops: Vec::new(),
                access: genesis,
            }],
            interned: HashMap::from([(Vec::new(), 0)]),
            recipes: Vec::new(),
        }
    }

    /// How each view after genesis was made, in view order.
    pub fn recipes(&self) -> &[Recipe] {
        &self.recipes
    }

    /// Number of views, genesis included.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    /// Whether `view` folds every control delta applied so far.
    pub fn folds_all(&self, view: u32) -> bool {
        self.views[view as usize].ops.len() == self.control.len()
    }

    /// Whether `view` is the view after control delta `id` (so `id` is
    /// the control delta that made it).
    pub fn is_after(&self, view: u32, id: &DeltaId) -> bool {
        match view
            .checked_sub(1)
            .and_then(|i| self.recipes.get(i as usize))
        {
            Some(Recipe::After { control, .. }) => self.control[*control as usize].id == *id,
            _ => false,
        }
    }

    /// The access of view `view`.
    pub fn access(&self, view: u32) -> &Access {
        &self.views[view as usize].access
    }

    /// The view after control delta `id` (at DAG `height`), made on view
    /// `before` and allowed there.
    pub fn after(
        &mut self,
        before: u32,
        id: DeltaId,
        height: u64,
        header: &DeltaHeader,
        op: &Op,
    ) -> u32 {
        let base = &self.views[before as usize];
        let mut access = base.access.clone();
        access.apply(id, header, op);
        let mut ops = base.ops.clone();
        // Indices only grow, so `ops` stays sorted.
        let control = self.control.len() as u32;
        ops.push(control);
        self.control.push(Control {
            id,
            height,
            header: header.clone(),
            op: op.clone(),
        });
        // A new control delta makes a set no view folded yet.
        self.recipes.push(Recipe::After { before, control });
        self.intern(ops, access)
    }

    /// The view of a causal past with these parents: one of theirs when it
    /// covers the others (the common case), else the fold of the union.
    pub fn of(&mut self, parents: &[Notes]) -> u32 {
        let mut distinct: Vec<u32> = parents.iter().map(|n| n.view).collect();
        distinct.sort_unstable();
        distinct.dedup();
        match distinct.as_slice() {
            [] => return 0,
            [one] => return *one,
            _ => {}
        }
        let covers = |a: &View, b: &View| {
            b.ops.len() <= a.ops.len() && b.ops.iter().all(|o| a.ops.binary_search(o).is_ok())
        };
        let view = |i: &u32| &self.views[*i as usize];
        if let Some(v) = distinct
            .iter()
            .find(|a| distinct.iter().all(|b| covers(view(a), view(b))))
        {
            return *v;
        }
        let mut ops: Vec<u32> = distinct.iter().flat_map(|v| view(v).ops.clone()).collect();
        ops.sort_unstable();
        ops.dedup();
        self.union(ops)
    }

    /// The view folding exactly `ops` (sorted, distinct control indices),
    /// interned; a new one is folded from genesis in `(height, id)` order.
    pub fn union(&mut self, ops: Vec<u32>) -> u32 {
        if let Some(i) = self.interned.get(&ops) {
            return *i;
        }
        self.recipes.push(Recipe::Union { ops: ops.clone() });
        let mut order = ops.clone();
        order.sort_by_key(|i| {
            let c = &self.control[*i as usize];
            (c.height, c.id)
        });
        let mut access = self.views[0].access.clone();
        for i in order {
            let c = &self.control[i as usize];
            access.fold(c.id, &c.header, &c.op);
        }
        self.intern(ops, access)
    }

    fn intern(&mut self, ops: Vec<u32>, access: Access) -> u32 {
        if let Some(i) = self.interned.get(&ops) {
            return *i;
        }
        let i = self.views.len() as u32;
        self.interned.insert(ops.clone(), i);
        self.views.push(View { ops, access });
        i
    }
}

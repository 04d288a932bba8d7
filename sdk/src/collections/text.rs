use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};

use super::{Collection, container_impls, len_of};
use crate::host::{self, expect_response};

/// Collaborative text. Positions count Unicode scalar values (chars).
///
/// Turn edits into inserts and deletes at positions, never into "replace
/// the whole text": then two people typing into one document at once both
/// keep their words (see `examples/notes`).
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::Text;
///
/// #[app::state]
/// pub struct Doc { body: Text }
///
/// #[app::logic]
/// impl Doc {
///     #[app::init]
///     pub fn init() -> Self { Self { body: Text::new() } }
///
///     pub fn insert(&mut self, pos: usize, text: String) -> app::Result<()> {
///         if pos > self.body.len() {
///             app::bail!("position {pos} is past the end ({})", self.body.len());
///         }
///         self.body.insert(pos, &text);
///         Ok(())
///     }
///
///     pub fn delete(&mut self, pos: usize, len: usize) {
///         self.body.delete(pos, len);
///     }
///
///     pub fn text(&self) -> String { self.body.get() }
/// }
///
/// # fn main() {
/// use mero_sdk::testing::Network;
/// use serde_json::json;
/// // Two replicas type at the same spot at once; both words survive.
/// let mut net = Network::<Doc>::new(2);
/// net.replica(0).execute("insert", json!({"pos": 0, "text": "hello "})).unwrap();
/// net.replica(1).execute("insert", json!({"pos": 0, "text": "world "})).unwrap();
/// net.deliver_shuffled(7);
/// net.assert_converged();
/// let text = net.replica(0).query("text", json!({})).unwrap();
/// assert!(text.as_str().unwrap().contains("hello ") && text.as_str().unwrap().contains("world "));
/// # }
/// ```
pub struct Text {
    pub(crate) handle: Handle,
}

impl Collection for Text {
    const KIND: ContainerKind = ContainerKind::Text;
    fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }
}

container_impls!(Text<> where);

impl Text {
    /// New, empty text.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Inserts `s` at char position `pos`. Fails the call if out of range.
    pub fn insert(&mut self, pos: usize, s: &str) {
        host::call(HostRequest::TextInsert {
            text: self.handle,
            pos: pos as u32,
            s,
        });
    }

    /// Appends `s`.
    pub fn push_str(&mut self, s: &str) {
        let len = self.len();
        self.insert(len, s);
    }

    /// Deletes `len` chars at `pos`. Fails the call if out of range.
    pub fn delete(&mut self, pos: usize, len: usize) {
        host::call(HostRequest::TextDelete {
            text: self.handle,
            pos: pos as u32,
            len: len as u32,
        });
    }

    /// Length in chars.
    pub fn len(&self) -> usize {
        len_of(self.handle)
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole text.
    pub fn get(&self) -> String {
        expect_response!(
            host::call(HostRequest::TextGet { text: self.handle }),
            HostResponse::Str(s) => s
        )
    }
}

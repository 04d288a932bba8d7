use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};

use super::{Collection, container_impls, len_of};
use crate::host::{self, expect_response};

/// Collaborative text. Positions count Unicode scalar values (chars).
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

use std::marker::PhantomData;

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};

use super::{Collection, SlotAt, StoreValue, container_impls, len_of};
use crate::host::{self, expect_response};

/// A positional list CRDT: insert, remove, replace and move items by index;
/// concurrent inserts on different replicas interleave deterministically.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::Vector;
///
/// #[app::state]
/// pub struct Playlist { songs: Vector<String> }
///
/// #[app::logic]
/// impl Playlist {
///     #[app::init]
///     pub fn init() -> Self { Self { songs: Vector::new() } }
///
///     pub fn add(&mut self, song: String) { self.songs.push(song) }
///
///     /// Moves a song; a concurrent move of the same song wins or loses whole.
///     pub fn reorder(&mut self, from: usize, to: usize) -> app::Result<()> {
///         if from >= self.songs.len() || to >= self.songs.len() {
///             app::bail!("the playlist has {} songs", self.songs.len());
///         }
///         self.songs.move_item(from, to);
///         Ok(())
///     }
///
///     pub fn songs(&self) -> Vec<String> { self.songs.to_vec() }
/// }
/// # fn main() {}
/// ```
pub struct Vector<T> {
    pub(crate) handle: Handle,
    _types: PhantomData<fn() -> T>,
}

impl<T> Collection for Vector<T> {
    const KIND: ContainerKind = ContainerKind::List;
    fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }
}

container_impls!(Vector<T> where T: StoreValue);

impl<T: StoreValue> Vector<T> {
    /// A new, empty vector.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        len_of(self.handle)
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Option<T> {
        let index = index as u32;
        expect_response!(
            host::call(HostRequest::ListGet { list: self.handle, index }),
            HostResponse::OptSlot(slot) => slot.map(|s| T::__from_slot_at(s, SlotAt::List(self.handle, index)))
        )
    }

    /// Appends an item.
    pub fn push(&mut self, value: T) {
        let len = self.len();
        self.insert(len, value);
    }

    /// Inserts at `index` (`index == len` appends). Fails the call if out of range.
    pub fn insert(&mut self, index: usize, value: T) {
        value.__with_slot(|value| {
            host::call(HostRequest::ListInsert {
                list: self.handle,
                index: index as u32,
                value,
            })
        });
    }

    /// Replaces the item at `index`. Fails the call if out of range.
    pub fn set(&mut self, index: usize, value: T) {
        value.__with_slot(|value| {
            host::call(HostRequest::ListSet {
                list: self.handle,
                index: index as u32,
                value,
            })
        });
    }

    /// Removes and returns the item at `index`, or `None` if out of range.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        let item = expect_response!(
            host::call(HostRequest::ListGet { list: self.handle, index: index as u32 }),
            HostResponse::OptSlot(slot) => slot.map(T::__from_slot)
        )?;
        host::call(HostRequest::ListDelete {
            list: self.handle,
            index: index as u32,
            len: 1,
        });
        Some(item)
    }

    /// Removes and returns the last item.
    pub fn pop(&mut self) -> Option<T> {
        let len = self.len();
        if len == 0 { None } else { self.remove(len - 1) }
    }

    /// Moves the item at `from` to `to`. Fails the call if either is out of range.
    pub fn move_item(&mut self, from: usize, to: usize) {
        host::call(HostRequest::ListMove {
            list: self.handle,
            from: from as u32,
            to: to as u32,
        });
    }

    /// All items in order.
    pub fn to_vec(&self) -> Vec<T> {
        expect_response!(
            host::call(HostRequest::ListItems { list: self.handle }),
            HostResponse::Items(items) => items
                .into_iter()
                .zip(0u32..)
                .map(|(item, i)| T::__from_slot_at(item, SlotAt::List(self.handle, i)))
                .collect()
        )
    }

    /// Removes every item this replica sees.
    pub fn clear(&mut self) {
        let len = self.len();
        if len > 0 {
            host::call(HostRequest::ListDelete {
                list: self.handle,
                index: 0,
                len: len as u32,
            });
        }
    }
}

//! board: a replicated task board, a mero example written to be read.
//!
//! A board has columns ("To do", "Doing", "Done") holding cards in order;
//! a card can hold sub-tasks, which are cards too. Every member node holds
//! the whole board and changes it locally; the changes reach the other
//! members as deltas and merge, whatever order they arrive in.
//!
//! What it shows, and where:
//!
//! - **A movable [`Tree`]** (`items`): columns are the roots, cards their
//!   children, sub-tasks the children of cards. Moving a card — within its
//!   column, to another column, under another card — is one tree move.
//!   Concurrent moves of one card end with the card in one place on every
//!   node (the move ordered last wins), and two moves that together would
//!   make a cycle (card A under B on one node, B under A on another) never
//!   do: one of them is ignored everywhere alike.
//! - **Fields apart from structure**: a card's title, done flag and
//!   assignee live in three maps keyed by the card's [`NodeId`], not in one
//!   value stored in the tree, so two members changing *different* fields
//!   of one card at the same time both keep their change. Each field alone
//!   is last-writer-wins.
//! - **Owned data** ([`OwnedMap`], `profiles`): each member's display name
//!   and colour. A call can write only the entry of the member executing
//!   it, and every receiving node checks that from the delta itself, so a
//!   modified node cannot forge someone else's profile. A request to
//!   edit another member's profile gets a typed error
//!   ([`BoardError::NotYourProfile`]) rather than quietly editing the
//!   caller's own.
//! - **Typed errors** ([`BoardError`], `#[app::error]`): a client gets
//!   `{kind, code, data}` it can match on (`NotAColumn`, `NoSuchCard`...).
//! - **Views** (`#[app::view]`): [`Board::board`] returns the whole board as
//!   nested JSON ([`ColumnView`], [`CardView`]). Views cannot write.
//! - **Events** ([`Event`]): a card was created, moved or deleted.
//!
//! The app must not trust a client's word on who it is (the member is
//! always the one executing the call, [`OwnedMap::me`]), and must not
//! assume that what one node checked still holds after merging: checks
//! run against the caller's replica, while other members change theirs at
//! the same time. So views read defensively: a card a concurrent move
//! brought back from a concurrent delete shows with an empty title rather
//! than failing the view, and field entries of deleted cards (left by a
//! concurrent edit) are simply never read.
//!
//! ```
//! use mero_sdk::testing::Replica;
//! use serde_json::json;
//!
//! let mut node = Replica::<board::Board>::new(0);
//! node.init(json!({})).unwrap();
//! let todo = node.execute("add_column", json!({"title": "To do"})).unwrap();
//! let card = node
//!     .execute("add_card", json!({"to": {"column": todo}, "title": "write docs"}))
//!     .unwrap();
//! node.execute("set_done", json!({"card": card, "done": true})).unwrap();
//! let board = node.query("board", json!({})).unwrap();
//! assert_eq!(board[0]["cards"][0]["title"], "write docs");
//! assert_eq!(board[0]["cards"][0]["done"], true);
//! ```

use mero_sdk::app;
use mero_sdk::collections::{NodeId, OwnedMap, Tree, UnorderedMap};
use serde::{Deserialize, Serialize};

/// Longest column or card title, in chars.
pub const MAX_TITLE: usize = 200;

/// Longest display name, in chars.
pub const MAX_NAME: usize = 64;

/// The replicated state.
#[app::state(emits = Event)]
pub struct Board {
    /// The structure: columns (roots) and cards (under columns or cards).
    items: Tree<Kind>,
    /// The title of every column and card.
    titles: UnorderedMap<NodeId, String>,
    /// Whether a card is done (absent: not done).
    done: UnorderedMap<NodeId, bool>,
    /// The member key a card is assigned to (absent: nobody).
    assignees: UnorderedMap<NodeId, String>,
    /// Each member's profile, by member key; only that member writes it.
    profiles: OwnedMap<Profile>,
}

/// What a tree node is. Set when it is created and never changed, so
/// every node agrees on it whatever else merges.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A top-level column.
    Column,
    /// A card, under a column or under another card.
    Card,
}

/// A member's profile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Display name.
    pub name: String,
    /// Colour as `#rrggbb`.
    pub colour: String,
}

/// Where a card goes: into a column, or under another card as a sub-task.
/// In JSON, `{"column": "<id>"}` or `{"card": "<id>"}`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// Into this column.
    Column(NodeId),
    /// Under this card.
    Card(NodeId),
}

/// A column as [`Board::board`] shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ColumnView {
    /// The column's id.
    pub id: NodeId,
    /// Its title.
    pub title: String,
    /// Its cards, in order.
    pub cards: Vec<CardView>,
}

/// A card as the views show it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CardView {
    /// The card's id.
    pub id: NodeId,
    /// Its title.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
    /// Who it is assigned to.
    pub assignee: Option<MemberView>,
    /// Its sub-tasks, in order.
    pub subtasks: Vec<CardView>,
}

/// A member with their profile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// The member key (base58).
    pub member: String,
    /// Display name; the member key if they have no profile.
    pub name: String,
    /// Colour; grey if they have no profile.
    pub colour: String,
}

/// What changed, pushed to subscribers of every member node.
#[app::event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A card was created under `parent` (a column or a card).
    CardCreated {
        card: NodeId,
        parent: NodeId,
        title: String,
    },
    /// A card was moved to `index` among `parent`'s children.
    CardMoved {
        card: NodeId,
        parent: NodeId,
        index: usize,
    },
    /// A card was deleted with its sub-tasks: `removed` cards in all.
    CardDeleted { card: NodeId, removed: usize },
}

/// Why a board call was refused. The call leaves no trace.
#[app::error]
#[derive(Debug, PartialEq, Eq)]
pub enum BoardError {
    /// No column with this id (never created, or deleted).
    NoSuchColumn { column: NodeId },
    /// No card with this id (never created, or deleted).
    NoSuchCard { card: NodeId },
    /// The id is a card's where a column's was expected.
    NotAColumn { id: NodeId },
    /// The id is a column's where a card's was expected.
    NotACard { id: NodeId },
    /// Titles must not be empty (or only spaces).
    EmptyTitle,
    /// Titles are at most `max` chars.
    TitleTooLong { max: usize },
    /// A card cannot go under itself or under one of its own sub-tasks.
    IntoItself { card: NodeId },
    /// The index is past the end: there are `len` places before it.
    BadIndex { index: usize, len: usize },
    /// Display names must not be empty.
    EmptyName,
    /// Display names are at most `max` chars.
    NameTooLong { max: usize },
    /// Colours are `#rrggbb`.
    BadColour { colour: String },
    /// This member has no profile yet.
    NoProfile { member: String },
    /// Only `member` can edit their profile.
    NotYourProfile { member: String },
}

impl std::fmt::Display for BoardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use BoardError::*;
        match self {
            NoSuchColumn { column } => write!(f, "no column {column} on the board"),
            NoSuchCard { card } => write!(f, "no card {card} on the board"),
            NotAColumn { id } => write!(f, "{id} is a card, not a column"),
            NotACard { id } => write!(f, "{id} is a column, not a card"),
            EmptyTitle => f.write_str("a title must not be empty"),
            TitleTooLong { max } => write!(f, "a title has at most {max} chars"),
            IntoItself { card } => write!(
                f,
                "card {card} cannot go under itself or one of its sub-tasks"
            ),
            BadIndex { index, len } => {
                write!(f, "index {index} is past the end (at most {len})")
            }
            EmptyName => f.write_str("a display name must not be empty"),
            NameTooLong { max } => write!(f, "a display name has at most {max} chars"),
            BadColour { colour } => write!(f, "colour `{colour}` is not #rrggbb"),
            NoProfile { member } => write!(f, "member {member} has no profile yet"),
            NotYourProfile { member } => {
                write!(f, "only member {member} can edit their profile")
            }
        }
    }
}

#[app::logic]
impl Board {
    /// An empty board.
    #[app::init]
    pub fn init() -> Self {
        Self {
            items: Tree::new(),
            titles: UnorderedMap::new(),
            done: UnorderedMap::new(),
            assignees: UnorderedMap::new(),
            profiles: OwnedMap::new(),
        }
    }

    /// Adds a column after the last one; returns its id.
    pub fn add_column(&mut self, title: String) -> Result<NodeId, BoardError> {
        let title = check_title(title)?;
        let column = self.items.create(None, Kind::Column);
        self.titles.insert(column, title);
        Ok(column)
    }

    /// Renames a column.
    pub fn rename_column(&mut self, column: NodeId, title: String) -> Result<(), BoardError> {
        let title = check_title(title)?;
        self.column(column)?;
        self.titles.insert(column, title);
        Ok(())
    }

    /// Moves a column to `index` among the columns, counted without it.
    pub fn move_column(&mut self, column: NodeId, index: usize) -> Result<(), BoardError> {
        self.column(column)?;
        let len = self.others(None, column);
        if index > len {
            return Err(BoardError::BadIndex { index, len });
        }
        self.items.mov(column, None, index);
        Ok(())
    }

    /// Deletes a column and every card in it; returns how many cards went.
    pub fn delete_column(&mut self, column: NodeId) -> Result<usize, BoardError> {
        self.column(column)?;
        let removed = self.forget(column) - 1;
        self.items.delete(column);
        Ok(removed)
    }

    /// Adds a card at the end of a column, or as the last sub-task of a
    /// card; returns its id.
    pub fn add_card(&mut self, to: Place, title: String) -> Result<NodeId, BoardError> {
        let title = check_title(title)?;
        let parent = self.place(to)?;
        let card = self.items.create(Some(parent), Kind::Card);
        self.titles.insert(card, title.clone());
        app::emit!(Event::CardCreated {
            card,
            parent,
            title
        });
        Ok(card)
    }

    /// Moves a card (with its sub-tasks) to `index` in a column or under a
    /// card, counted without the card itself; at the end if `index` is
    /// absent. Within the same parent this reorders.
    pub fn move_card(
        &mut self,
        card: NodeId,
        to: Place,
        index: Option<usize>,
    ) -> Result<(), BoardError> {
        self.card(card)?;
        let parent = self.place(to)?;
        if self.is_within(parent, card) {
            return Err(BoardError::IntoItself { card });
        }
        let len = self.others(Some(parent), card);
        let index = index.unwrap_or(len);
        if index > len {
            return Err(BoardError::BadIndex { index, len });
        }
        self.items.mov(card, Some(parent), index);
        app::emit!(Event::CardMoved {
            card,
            parent,
            index
        });
        Ok(())
    }

    /// Renames a card.
    pub fn rename_card(&mut self, card: NodeId, title: String) -> Result<(), BoardError> {
        let title = check_title(title)?;
        self.card(card)?;
        self.titles.insert(card, title);
        Ok(())
    }

    /// Marks a card done or not done.
    pub fn set_done(&mut self, card: NodeId, done: bool) -> Result<(), BoardError> {
        self.card(card)?;
        if done {
            self.done.insert(card, true);
        } else {
            self.done.remove(&card);
        }
        Ok(())
    }

    /// Assigns a card to a member who has a profile (`null`: to nobody).
    pub fn assign(&mut self, card: NodeId, member: Option<String>) -> Result<(), BoardError> {
        self.card(card)?;
        match member {
            Some(member) if self.profiles.get(&member).is_none() => {
                Err(BoardError::NoProfile { member })
            }
            Some(member) => {
                self.assignees.insert(card, member);
                Ok(())
            }
            None => {
                self.assignees.remove(&card);
                Ok(())
            }
        }
    }

    /// Deletes a card and its sub-tasks; returns how many cards went.
    pub fn delete_card(&mut self, card: NodeId) -> Result<usize, BoardError> {
        self.card(card)?;
        let removed = self.forget(card);
        self.items.delete(card);
        app::emit!(Event::CardDeleted { card, removed });
        Ok(removed)
    }

    /// Sets the executing member's own profile; returns it.
    pub fn set_profile(&mut self, name: String, colour: String) -> Result<Profile, BoardError> {
        let profile = check_profile(name, colour)?;
        self.profiles.set_mine(profile.clone());
        Ok(profile)
    }

    /// Changes fields of `member`'s profile, which must be the executing
    /// member's: anyone else gets [`BoardError::NotYourProfile`]. The
    /// check gives the client an error it can tell apart; it is not what
    /// protects the profile. `OwnedMap` only writes the executing member's
    /// entry, the host fails a call whose writes touch another member's,
    /// and every receiving node refuses a delta that does.
    pub fn edit_profile(
        &mut self,
        member: String,
        name: Option<String>,
        colour: Option<String>,
    ) -> Result<Profile, BoardError> {
        if member != OwnedMap::<Profile>::me() {
            return Err(BoardError::NotYourProfile { member });
        }
        let Some(old) = self.profiles.mine() else {
            return Err(BoardError::NoProfile { member });
        };
        let profile = check_profile(name.unwrap_or(old.name), colour.unwrap_or(old.colour))?;
        self.profiles.set_mine(profile.clone());
        Ok(profile)
    }

    /// The whole board: columns in order, each with its cards and their
    /// sub-tasks, nested.
    #[app::view]
    pub fn board(&self) -> Vec<ColumnView> {
        self.items
            .roots()
            .into_iter()
            .filter(|c| self.items.get(*c) == Some(Kind::Column))
            .map(|column| ColumnView {
                id: column,
                title: self.title(column),
                cards: self.cards_under(column),
            })
            .collect()
    }

    /// One card, with its sub-tasks.
    #[app::view]
    pub fn card_view(&self, card: NodeId) -> Result<CardView, BoardError> {
        self.card(card)?;
        Ok(self.view_of(card))
    }

    /// Every member who set a profile, by member key.
    #[app::view]
    pub fn profiles(&self) -> Vec<MemberView> {
        self.profiles
            .entries()
            .into_iter()
            .map(|(member, p)| MemberView {
                member,
                name: p.name,
                colour: p.colour,
            })
            .collect()
    }

    /// The member key of the caller's node, as `edit_profile` and
    /// `assign` take it.
    #[app::view]
    pub fn whoami(&self) -> String {
        OwnedMap::<Profile>::me()
    }
}

/// Helpers: not app methods (outside the `#[app::logic]` impl).
impl Board {
    fn column(&self, id: NodeId) -> Result<NodeId, BoardError> {
        match self.items.get(id) {
            Some(Kind::Column) => Ok(id),
            Some(Kind::Card) => Err(BoardError::NotAColumn { id }),
            None => Err(BoardError::NoSuchColumn { column: id }),
        }
    }

    fn card(&self, id: NodeId) -> Result<NodeId, BoardError> {
        match self.items.get(id) {
            Some(Kind::Card) => Ok(id),
            Some(Kind::Column) => Err(BoardError::NotACard { id }),
            None => Err(BoardError::NoSuchCard { card: id }),
        }
    }

    fn place(&self, to: Place) -> Result<NodeId, BoardError> {
        match to {
            Place::Column(id) => self.column(id),
            Place::Card(id) => self.card(id),
        }
    }

    /// How many children `parent` has besides `node`.
    fn others(&self, parent: Option<NodeId>, node: NodeId) -> usize {
        let children = self.items.children(parent);
        children.into_iter().filter(|c| *c != node).count()
    }

    /// Whether `node` is `ancestor` or somewhere under it.
    fn is_within(&self, node: NodeId, ancestor: NodeId) -> bool {
        let mut at = Some(node);
        while let Some(n) = at {
            if n == ancestor {
                return true;
            }
            at = self.items.parent(n);
        }
        false
    }

    /// Removes the fields of `node` and of every node under it; returns
    /// how many nodes that was.
    fn forget(&mut self, node: NodeId) -> usize {
        let mut stack = vec![node];
        let mut n = 0;
        while let Some(at) = stack.pop() {
            stack.extend(self.items.children(Some(at)));
            self.titles.remove(&at);
            self.done.remove(&at);
            self.assignees.remove(&at);
            n += 1;
        }
        n
    }

    fn title(&self, node: NodeId) -> String {
        self.titles.get(&node).unwrap_or_default()
    }

    fn cards_under(&self, parent: NodeId) -> Vec<CardView> {
        let children = self.items.children(Some(parent));
        children.into_iter().map(|c| self.view_of(c)).collect()
    }

    fn view_of(&self, card: NodeId) -> CardView {
        CardView {
            id: card,
            title: self.title(card),
            done: self.done.get(&card).unwrap_or(false),
            assignee: self.assignees.get(&card).map(|m| self.member_view(m)),
            subtasks: self.cards_under(card),
        }
    }

    fn member_view(&self, member: String) -> MemberView {
        match self.profiles.get(&member) {
            Some(p) => MemberView {
                member,
                name: p.name,
                colour: p.colour,
            },
            None => MemberView {
                name: member.clone(),
                member,
                colour: "#888888".into(),
            },
        }
    }
}

fn check_title(title: String) -> Result<String, BoardError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(BoardError::EmptyTitle);
    }
    if title.chars().count() > MAX_TITLE {
        return Err(BoardError::TitleTooLong { max: MAX_TITLE });
    }
    Ok(title.to_owned())
}

fn check_profile(name: String, colour: String) -> Result<Profile, BoardError> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(BoardError::EmptyName);
    }
    if name.chars().count() > MAX_NAME {
        return Err(BoardError::NameTooLong { max: MAX_NAME });
    }
    let hex = colour.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BoardError::BadColour { colour });
    }
    Ok(Profile {
        name,
        colour: colour.to_ascii_lowercase(),
    })
}

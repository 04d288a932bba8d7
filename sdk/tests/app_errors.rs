//! Typed app errors (`#[app::error]`) on the native test host: each
//! variant fails a call with `{kind, code, data}` and a message, and the
//! call leaves no trace; untyped `app::Error` keeps working.

use mero_abi::{AppErrorData, CallErrorKind};
use mero_sdk::app;
use mero_sdk::collections::{Counter, UnorderedMap};
use mero_sdk::testing::{Replica, typed_error};
use serde_json::{Value, json};

#[app::state(emits = Event)]
pub struct Bank {
    balances: UnorderedMap<String, Counter>,
}

#[app::event]
pub enum Event {
    Moved { account: String, by: i64 },
}

/// With `Display`: the message.
#[app::error]
#[derive(Debug, PartialEq)]
pub enum BankError {
    #[code(1001)]
    Insufficient {
        balance: i64,
        wanted: i64,
    },
    NoAccount(String),
    Pair(u8, bool),
    Closed,
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BankError::Insufficient { balance, wanted } => {
                write!(f, "balance {balance} is less than {wanted}")
            }
            other => write!(f, "bank error {other:?}"),
        }
    }
}

/// Also a `std::error::Error`, so it converts into `app::Error` as well: a
/// method returning it must still fail typed.
impl std::error::Error for BankError {}

/// Without `Display`: the message is the variant's name.
#[app::error]
#[derive(Debug, PartialEq)]
pub enum InputError {
    Empty,
    #[code(7)]
    TooLong {
        max: u32,
    },
}

#[app::logic]
impl Bank {
    #[app::init]
    pub fn init() -> Self {
        Self {
            balances: UnorderedMap::new(),
        }
    }

    pub fn deposit(&mut self, account: String, by: i64) -> app::Result<i64, InputError> {
        if account.is_empty() {
            return Err(InputError::Empty);
        }
        if account.len() > 8 {
            return Err(InputError::TooLong { max: 8 });
        }
        let mut c = self.balances.ensure(account.clone());
        c.add(by);
        app::emit!(Event::Moved { account, by });
        Ok(c.value())
    }

    /// Writes and emits first, fails after: the failure must undo both.
    pub fn withdraw(&mut self, account: String, by: i64) -> Result<i64, BankError> {
        let Some(mut c) = self.balances.get(&account) else {
            return Err(BankError::NoAccount(account));
        };
        c.add(-by);
        app::emit!(Event::Moved { account, by: -by });
        if c.value() < 0 {
            return Err(BankError::Insufficient {
                balance: c.value() + by,
                wanted: by,
            });
        }
        Ok(c.value())
    }

    pub fn pair(&mut self) -> Result<(), BankError> {
        Err(BankError::Pair(3, true))
    }

    pub fn close(&mut self) -> Result<(), BankError> {
        Err(BankError::Closed)
    }

    /// Untyped, as before `#[app::error]`.
    pub fn legacy(&mut self, with_data: bool) -> app::Result<()> {
        if with_data {
            return Err(app::Error::msg("legacy failure").with_data(json!({"n": 1})));
        }
        app::bail!("legacy failure")
    }

    /// `?` on a std error inside `app::Result`: untyped, its message.
    pub fn parse(&self, text: String) -> app::Result<i64> {
        Ok(text.parse::<i64>()?)
    }

    pub fn balance(&self, account: String) -> i64 {
        self.balances.get(&account).map_or(0, |c| c.value())
    }
}

fn bank() -> Replica<Bank> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

fn app_error(r: &mut Replica<Bank>, method: &str, args: Value) -> (String, AppErrorData) {
    let err = r.execute(method, args).unwrap_err();
    assert_eq!(err.kind, CallErrorKind::App, "{err}");
    (err.message.clone(), err.app_error().unwrap())
}

#[test]
fn each_variant_shape_reaches_the_caller_as_kind_code_and_data() {
    let mut r = bank();
    r.execute("deposit", json!({"account": "ann", "by": 5}))
        .unwrap();

    // A struct variant with an explicit code and a Display message.
    let (msg, e) = app_error(&mut r, "withdraw", json!({"account": "ann", "by": 9}));
    assert_eq!(msg, "balance 5 is less than 9");
    assert_eq!(
        e,
        AppErrorData::typed("Insufficient", 1001, json!({"balance": 5, "wanted": 9}))
    );
    // A one-field tuple variant: the field is the data; a derived code.
    let (msg, e) = app_error(&mut r, "withdraw", json!({"account": "bob", "by": 1}));
    assert_eq!(msg, r#"bank error NoAccount("bob")"#);
    assert_eq!(
        (e.kind.as_str(), e.code, e.data),
        (
            "NoAccount",
            mero_abi::error::derived_code("NoAccount"),
            json!("bob")
        )
    );
    // A longer tuple variant: an array; a unit variant: null.
    let (_, e) = app_error(&mut r, "pair", json!({}));
    assert_eq!((e.kind.as_str(), e.data), ("Pair", json!([3, true])));
    let (_, e) = app_error(&mut r, "close", json!({}));
    assert_eq!((e.kind.as_str(), e.data), ("Closed", Value::Null));
    assert_eq!(e.code, mero_abi::error::derived_code("Closed"));

    // No Display: the message is the variant's name.
    let (msg, e) = app_error(&mut r, "deposit", json!({"account": "", "by": 1}));
    assert_eq!((msg.as_str(), e.kind.as_str()), ("Empty", "Empty"));
    let (msg, e) = app_error(
        &mut r,
        "deposit",
        json!({"account": "much-too-long", "by": 1}),
    );
    assert_eq!(msg, "TooLong");
    assert_eq!(e, AppErrorData::typed("TooLong", 7, json!({"max": 8})));
}

#[test]
fn derived_codes_are_distinct_and_stable() {
    // Derived from the variant's name alone: the same in every build and
    // on every machine (these numbers are part of an app's contract).
    assert_eq!(mero_abi::error::derived_code("NoAccount"), 168_758_327);
    assert_eq!(mero_abi::error::derived_code("Closed"), 838_978_278);
    assert_ne!(
        mero_abi::error::derived_code("Empty"),
        mero_abi::error::derived_code("Pair")
    );
}

#[test]
fn a_typed_error_decodes_back_into_its_enum() {
    let mut r = bank();
    let err = r
        .execute("withdraw", json!({"account": "zed", "by": 1}))
        .unwrap_err();
    assert_eq!(
        typed_error::<BankError>(&err),
        Some(BankError::NoAccount("zed".into()))
    );
    let err = r.execute("close", json!({})).unwrap_err();
    assert_eq!(typed_error::<BankError>(&err), Some(BankError::Closed));
    // Another enum's variant, an untyped error, a non-app failure: none.
    assert_eq!(typed_error::<InputError>(&err), None);
    let err = r
        .execute("legacy", json!({"with_data": false}))
        .unwrap_err();
    assert_eq!(typed_error::<BankError>(&err), None);
    let err = r.execute("nope", json!({})).unwrap_err();
    assert_eq!(typed_error::<BankError>(&err), None);
}

#[test]
fn a_failed_call_leaves_no_trace() {
    let mut r = bank();
    r.take_deltas();
    r.execute("deposit", json!({"account": "ann", "by": 5}))
        .unwrap();
    let before = (r.state_json(), r.emitted().len(), r.take_deltas().len());
    assert_eq!(before.2, 1, "the deposit wrote a delta");
    // `withdraw` wrote and emitted before it failed.
    r.execute("withdraw", json!({"account": "ann", "by": 50}))
        .unwrap_err();
    assert_eq!(r.state_json(), before.0);
    assert_eq!(r.emitted().len(), before.1);
    assert!(r.take_deltas().is_empty());
    assert_eq!(r.query("balance", json!({"account": "ann"})).unwrap(), 5);
}

#[test]
fn untyped_errors_keep_working() {
    let mut r = bank();
    let (msg, e) = app_error(&mut r, "legacy", json!({"with_data": false}));
    assert_eq!(msg, "legacy failure");
    assert_eq!(e, AppErrorData::untyped(None));
    assert_eq!((e.kind.as_str(), e.code), ("app", 0));
    let (_, e) = app_error(&mut r, "legacy", json!({"with_data": true}));
    assert_eq!(e.data, json!({"n": 1}));
    let err = r.query("parse", json!({"text": "x"})).unwrap_err();
    assert_eq!(err.kind, CallErrorKind::App);
    assert_eq!(err.message, "invalid digit found in string");
    assert_eq!(r.query("parse", json!({"text": "42"})).unwrap(), 42);
}

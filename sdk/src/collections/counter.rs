use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};

use super::{Collection, container_impls};
use crate::host::{self, expect_response};

/// A counter whose concurrent increments and decrements all add up,
/// exactly over the whole `i64` range.
///
/// Each replica keeps its own running total (an exact integer) and only it
/// writes that total, so no add is ever lost or rounded; the value is the
/// sum of the totals. In exported state a counter reads as that list,
/// `[{"peer": "<replica>", "total": 3}, ...]`.
///
/// Overflow: an [`add`](Self::add) that would take the value this replica
/// sees outside `i64` fails the call (use [`try_add`](Self::try_add) to
/// handle it instead). Adds on different replicas that are each in range
/// can still meet outside it: [`value`](Self::value) then saturates at
/// `i64::MIN`/`i64::MAX` and [`total`](Self::total) gives the exact sum;
/// adds that move such a value back towards the range are allowed.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::Counter;
///
/// #[app::state]
/// pub struct Ledger { balance: Counter }
///
/// #[app::logic]
/// impl Ledger {
///     #[app::init]
///     pub fn init() -> Self { Self { balance: Counter::new() } }
///     pub fn deposit(&mut self, amount: i64) -> app::Result<i64> {
///         if self.balance.try_add(amount).is_err() {
///             app::bail!("balance would overflow");
///         }
///         Ok(self.balance.value())
///     }
/// }
///
/// # fn main() {
/// let mut r = mero_sdk::testing::Replica::<Ledger>::new(0);
/// r.init(serde_json::json!({})).unwrap();
/// let big = (1i64 << 53) + 1; // not representable as f64
/// assert_eq!(r.execute("deposit", serde_json::json!({"amount": big})).unwrap(), big);
/// assert!(r.execute("deposit", serde_json::json!({"amount": i64::MAX})).is_err());
/// # }
/// ```
pub struct Counter {
    pub(crate) handle: Handle,
}

/// Why [`Counter::try_add`] refused: the value would leave the `i64` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterOverflow {
    /// The exact value before the add.
    pub value: i128,
    /// The refused amount.
    pub by: i64,
}

impl std::fmt::Display for CounterOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "counter overflow: {} + {} leaves the i64 range",
            self.value, self.by
        )
    }
}

impl std::error::Error for CounterOverflow {}

impl Collection for Counter {
    const KIND: ContainerKind = ContainerKind::Counter;
    fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }
}

container_impls!(Counter<> where);

impl Counter {
    /// A new counter at zero.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Adds `by` (which may be negative). Fails the call if the value would
    /// leave the `i64` range.
    pub fn add(&mut self, by: i64) {
        host::call(HostRequest::CounterAdd {
            counter: self.handle,
            by,
        });
    }

    /// Adds `by` unless the value would leave the `i64` range (as the host
    /// decides for [`add`](Self::add)); the call goes on either way.
    pub fn try_add(&mut self, by: i64) -> Result<(), CounterOverflow> {
        let value = self.total();
        let after = value.saturating_add(i128::from(by));
        if outside(after) > 0 && outside(after) >= outside(value) {
            return Err(CounterOverflow { value, by });
        }
        self.add(by);
        Ok(())
    }

    /// Adds one.
    pub fn increment(&mut self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn decrement(&mut self) {
        self.add(-1);
    }

    /// The current value, saturated to the `i64` range.
    pub fn value(&self) -> i64 {
        let total = self.total();
        i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
    }

    /// The exact current value: differs from [`value`](Self::value) only
    /// when concurrent adds took it outside `i64`.
    pub fn total(&self) -> i128 {
        expect_response!(
            host::call(HostRequest::CounterGet { counter: self.handle }),
            HostResponse::I128(v) => v
        )
    }
}

/// How far `x` lies outside the `i64` range.
fn outside(x: i128) -> i128 {
    x.saturating_sub(i128::from(i64::MAX))
        .max(i128::from(i64::MIN).saturating_sub(x))
        .max(0)
}

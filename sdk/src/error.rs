//! What an app method returns when it fails on purpose: an untyped
//! `app::Error`, or a variant of an `#[app::error]` enum ([`AppError`]).

use mero_abi::AppErrorData;

/// An untyped app-level error: reaches the caller as a JSON-RPC error with
/// `data` `{"kind": "app", "code": 0, "data": <with_data payload or null>}`,
/// and the call leaves no trace in state. For errors clients can tell apart,
/// see [`AppError`].
///
/// ```
/// use mero_sdk::app;
/// fn check(n: u32) -> app::Result<u32> {
///     if n == 0 {
///         app::bail!("n must be positive, got {n}");
///     }
///     Ok(n)
/// }
/// assert_eq!(check(0).unwrap_err().message(), "n must be positive, got 0");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    message: String,
    data: Option<serde_json::Value>,
}

impl Error {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Attaches a structured payload the client receives as `data`.
    pub fn with_data(mut self, data: impl serde::Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The structured payload, if any.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }

    pub(crate) fn into_call_error(self) -> mero_abi::CallError {
        mero_abi::CallError::app(self.message, AppErrorData::untyped(self.data))
    }
}

/// An `#[app::error]` enum: implemented by the macro. A method returning
/// `Result<T, E>` with such an `E` fails with `{kind, code, data}`: the
/// variant's name, its code (`#[code(n)]`, else
/// [`derived_code`](mero_abi::error::derived_code) of the name) and its
/// fields. The message is the enum's `Display` if it implements it, else
/// the variant's name.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::AppError;
///
/// #[app::error]
/// pub enum KvError {
///     #[code(1001)]
///     NotFound { key: String },
///     TooLong(usize),
///     ReadOnly,
/// }
///
/// let e = KvError::NotFound { key: "a".into() }.to_call_error();
/// let data = e.app_error().unwrap();
/// assert_eq!((data.kind.as_str(), data.code), ("NotFound", 1001));
/// assert_eq!(data.data, serde_json::json!({"key": "a"}));
/// assert_eq!(e.message, "NotFound"); // no Display: the variant's name
/// assert_eq!(KvError::TooLong(9).to_call_error().app_error().unwrap().data, 9);
/// let unit = KvError::ReadOnly.to_call_error().app_error().unwrap();
/// assert_eq!(unit.code, mero_abi::error::derived_code("ReadOnly"));
/// assert!(unit.data.is_null());
/// ```
pub trait AppError {
    #[doc(hidden)]
    fn __kind(&self) -> &'static str;
    #[doc(hidden)]
    fn __code(&self) -> u32;
    #[doc(hidden)]
    fn __data(&self) -> serde_json::Value;
    #[doc(hidden)]
    fn __message(&self) -> String;

    /// The call error a method failing with `self` ends in, as the node
    /// reports it.
    fn to_call_error(&self) -> mero_abi::CallError {
        mero_abi::CallError::app(
            self.__message(),
            AppErrorData::typed(self.__kind(), self.__code(), self.__data()),
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Self::msg(e.to_string())
    }
}

/// Decodes `{"kind": kind, "data": data}`, the wire shape of events and
/// `#[app::error]` enums.
pub(crate) fn decode_tagged<E: serde::de::DeserializeOwned>(
    kind: &str,
    data: Option<serde_json::Value>,
) -> serde_json::Result<E> {
    use serde_json::Value;
    let mut tagged = serde_json::Map::new();
    tagged.insert("kind".into(), Value::String(kind.to_owned()));
    if let Some(d) = data.filter(|d| !d.is_null()) {
        tagged.insert("data".into(), d);
    }
    serde_json::from_value(Value::Object(tagged))
}

/// Serializes an id type as its `Display` text and reads it back with its
/// `FromStr`, so it reads the same in JSON arguments, results and state.
macro_rules! serde_as_string {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_string;

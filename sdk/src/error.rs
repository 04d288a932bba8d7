//! `app::Error`: what an app method returns when it fails on purpose.

/// An app-level error: reaches the caller as a structured JSON error with
/// kind `app`, and the call leaves no trace in state.
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
        mero_abi::CallError {
            kind: mero_abi::CallErrorKind::App,
            message: self.message,
            data: self.data,
        }
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

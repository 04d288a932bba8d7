//! `cargo mero call`: one app method on a dev node or a remote node.
//! Views go through `query`, everything else through `execute`, as the
//! app's ABI says.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::client::{CallKind, ClientError, NodeClient};
use crate::network::{DevNetwork, NetworkFileError};

/// What went wrong calling.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No usable dev network.
    #[error(transparent)]
    Network(#[from] NetworkFileError),
    /// The node failed, or the call did.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
}

/// Which node to call.
#[derive(Debug, Clone)]
pub enum CallTarget {
    /// Node `index` (1-based) of the dev network in `dev_dir`.
    Dev {
        /// `target/mero/dev`.
        dev_dir: PathBuf,
        /// 1-based node index.
        index: usize,
    },
    /// Any node.
    Url {
        /// API base URL.
        url: String,
        /// Admin token.
        token: Option<String>,
    },
}

/// Options of `cargo mero call`.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Where.
    pub target: CallTarget,
    /// Context id; the dev network's when omitted.
    pub context: Option<String>,
    /// App method.
    pub method: String,
    /// JSON arguments object.
    pub args: Value,
}

/// A call's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOutput {
    /// The node called.
    pub node: String,
    /// The context.
    pub context: String,
    /// `execute` or `query`.
    pub via: &'static str,
    /// The method's return value.
    pub output: Value,
}

/// Calls the method.
pub fn call(opts: &CallOptions) -> Result<CallOutput, CallError> {
    let (client, dev_context) = match &opts.target {
        CallTarget::Dev { dev_dir, index } => {
            let net = DevNetwork::load(dev_dir)?;
            let node = net.node(*index).ok_or_else(|| {
                CallError::Usage(format!(
                    "the dev network has nodes 1 to {}; there is no node {index}",
                    net.nodes.len()
                ))
            })?;
            (
                NodeClient::new(&node.rpc_url, Some(&node.admin_token)),
                Some(net.context.clone()),
            )
        }
        CallTarget::Url { url, token } => (NodeClient::new(url, token.as_deref()), None),
    };
    let context = opts.context.clone().or(dev_context).ok_or_else(|| {
        CallError::Usage("which context? pass --context ID (required with --url)".into())
    })?;
    if !opts.args.is_object() {
        return Err(CallError::Usage(format!(
            "arguments must be a JSON object of parameter names to values, not {}",
            opts.args
        )));
    }
    let info = client.context(&context)?;
    let abi = client.app_abi(info.app.as_str())?;
    let Some(method) = abi.method(&opts.method) else {
        let names: Vec<&str> = abi
            .methods
            .iter()
            .filter(|m| !m.init)
            .map(|m| m.name.as_str())
            .collect();
        return Err(CallError::Usage(format!(
            "the app has no method `{}`; it has: {}",
            opts.method,
            names.join(", ")
        )));
    };
    let kind = match method.mutability {
        mero_abi::Mutability::View => CallKind::Query,
        mero_abi::Mutability::Mutating => CallKind::Execute,
    };
    let output = client.call(kind, &context, &opts.method, &opts.args)?;
    Ok(CallOutput {
        node: client.url().to_owned(),
        context,
        via: match kind {
            CallKind::Query => "query",
            CallKind::Execute => "execute",
        },
        output,
    })
}

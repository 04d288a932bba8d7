//! `cargo mero deploy`: build for production, upload, install, then create
//! a context or upgrade one (state kept).

use serde::Serialize;

use crate::build::{self, BuildError, BuildOptions};
use crate::client::{ClientError, NodeClient};

/// What went wrong deploying.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The build failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The node could not be used.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The node refused the module.
    #[error("the node rejected the module: {0}")]
    Rejected(String),
    /// `--context` names a context the node does not have.
    #[error(
        "the node has no context {0}; list them with GET /admin/contexts, or pass --new-context"
    )]
    NoContext(String),
    /// The WASM file could not be read.
    #[error("{0}")]
    Io(String),
}

/// What to do with the installed app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployTarget {
    /// Install only.
    InstallOnly,
    /// Create a new context running the app.
    NewContext,
    /// Upgrade this context to the app, keeping its state.
    Upgrade(String),
}

/// Options of `cargo mero deploy`.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// What to build (the deploy sets `opt_level` unless given).
    pub build: BuildOptions,
    /// Node API base URL.
    pub node: String,
    /// Admin token.
    pub token: Option<String>,
    /// What to do after installing.
    pub target: DeployTarget,
}

/// The result of a deploy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployOutput {
    /// The node.
    pub node: String,
    /// Package deployed.
    pub package: String,
    /// App hash.
    pub app: String,
    /// Module size in bytes.
    pub size: u64,
    /// `installed`, `created`, `upgraded` or `unchanged` (the context
    /// already ran this exact module).
    pub action: &'static str,
    /// The context created or upgraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// Deploys. `on_upload(sent, total)` reports upload progress.
pub fn deploy(
    opts: &DeployOptions,
    on_upload: &mut dyn FnMut(u64, u64),
) -> Result<DeployOutput, DeployError> {
    let client = NodeClient::new(&opts.node, opts.token.as_deref());
    // Fail on a wrong URL or token before spending a release build on it.
    client.node_status()?;
    // The app the context runs now, checked before building too.
    let current_app = match &opts.target {
        DeployTarget::Upgrade(ctx) => match client.context(ctx) {
            Ok(info) => Some(info.app.0),
            Err(ClientError::Api {
                status: 400 | 404, ..
            }) => return Err(DeployError::NoContext(ctx.clone())),
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let built = build::build(&opts.build)?;
    let wasm = std::fs::read(&built.wasm)
        .map_err(|e| DeployError::Io(format!("{}: {e}", built.wasm.display())))?;
    let total = wasm.len() as u64;
    let info = client
        .install_app(&wasm, &mut |sent| on_upload(sent, total))
        .map_err(|e| match e {
            ClientError::Api { message, .. } => DeployError::Rejected(message),
            e => e.into(),
        })?;
    let app = info.hash.0;
    let (action, context) = match &opts.target {
        DeployTarget::InstallOnly => ("installed", None),
        DeployTarget::NewContext => {
            let c = client.create_context(&app)?;
            ("created", Some(c.id.0))
        }
        DeployTarget::Upgrade(ctx) if current_app.as_deref() == Some(app.as_str()) => {
            ("unchanged", Some(ctx.clone()))
        }
        DeployTarget::Upgrade(ctx) => {
            client.upgrade(ctx, &app)?;
            ("upgraded", Some(ctx.clone()))
        }
    };
    Ok(DeployOutput {
        node: client.url().to_owned(),
        package: built.package,
        app,
        size: total,
        action,
        context,
    })
}

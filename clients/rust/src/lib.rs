//! `mero-client`: a small blocking client of a mero node's HTTP API, with
//! errors that say what to do. `cargo mero` (`dev`, `deploy`, `call`,
//! `blob`) and `mero-testnet` (an app's multi-node tests) talk to nodes
//! through it.
//!
//! Answers deserialize into `mero-api`'s types, the ones the node
//! serializes: a field the node stops sending is a
//! [`ClientError::BadResponse`] naming it, never an empty value.
//!
//! It must not decide anything or keep state beyond the connection pool:
//! no retries, no caching, no sync or app semantics. It must stay light
//! (ureq, serde, thiserror and our data-only crates; no tokio, no
//! `mero-node`) so an app's tests that use it compile in seconds. Answers
//! are read whole, up to ureq's 10 MiB body limit (a larger answer is a
//! [`ClientError::BadResponse`]).

#![warn(missing_docs)]

use std::io::Read;
use std::time::Duration;

use mero_abi::AppAbi;
use mero_api::{
    AppInfo, ContextInfo, CreateContextRequest, CreateInvitationRequest, ErrorBody, Faults, Health,
    Id, Invitation, JoinRequest, NetStatus, NodeStatus, RpcMethod, RpcRequest, RpcResponse,
    SetFaults, SyncStatus, UpgradeRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection.
    #[error("cannot reach the node at {url} ({reason}); is it running, and is the URL right?")]
    Unreachable {
        /// The node.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// 401 from the node.
    #[error(
        "the node at {url} refused the token; pass its admin token (auth.admin_token in the node's config.toml) with --token or MERO_TOKEN"
    )]
    Unauthorized {
        /// The node.
        url: String,
    },
    /// The node answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The node's error code (`bad_request`, `not_found`, ...).
        code: String,
        /// The node's message.
        message: String,
    },
    /// A JSON-RPC call failed.
    #[error("{message} (JSON-RPC error {code})")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Message.
        message: String,
        /// The app's error, when the app failed.
        data: Option<Value>,
    },
    /// The answer was not what a mero node sends.
    #[error("unexpected answer from {url}: {detail}")]
    BadResponse {
        /// The node.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

/// `execute` (may write) or `query` (read only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A mutating call.
    Execute,
    /// A view.
    Query,
}

/// The HTTP methods the node's API uses.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// A node's API, with an admin token.
#[derive(Clone)]
pub struct NodeClient {
    url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// Counts bytes as a request body is read, for upload progress.
struct Progress<'a, R> {
    inner: R,
    sent: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        (self.report)(self.sent);
        Ok(n)
    }
}

/// The error a failed exchange with the node at `url` is: 401, or the
/// node's `{"error": {...}}` body, or the status and body as they came
/// (cut to 200 characters). For other clients of the same API (blobs).
pub fn failure(url: &str, status: u16, body: &str) -> ClientError {
    if status == 401 {
        return ClientError::Unauthorized {
            url: url.to_owned(),
        };
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => ClientError::Api {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::Api {
            status,
            code: "error".into(),
            message: format!("the node at {url} answered {status}: {body:.200}"),
        },
    }
}

/// Reads a successful answer as a `T`: a field missing or of the wrong type
/// is an error that names it (with the answer's first 200 characters).
pub fn decode<T: DeserializeOwned>(url: &str, body: &str) -> Result<T, ClientError> {
    serde_json::from_str(body).map_err(|e| ClientError::BadResponse {
        url: url.to_owned(),
        detail: format!("{e}; the answer was {body:.200}"),
    })
}

impl NodeClient {
    /// A client for the node at `url` (`http://host:port`).
    pub fn new(url: &str, token: Option<&str>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Self {
            url: url.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            agent,
        }
    }

    /// The node's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One exchange; the body of a 2xx answer, else the node's error.
    /// `GET` and `DELETE` send no body.
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<ureq::SendBody<'_>>,
        content_type: &str,
    ) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.url);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match method {
            Method::Get | Method::Delete => {
                let mut r = match method {
                    Method::Get => self.agent.get(&url),
                    _ => self.agent.delete(&url),
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            Method::Post | Method::Put => {
                let r = match method {
                    Method::Post => self.agent.post(&url),
                    _ => self.agent.put(&url),
                };
                let mut r = r.header("Content-Type", content_type);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => r.send(b),
                    None => r.send_empty(),
                }
            }
        };
        let resp = result.map_err(|e| ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| ClientError::BadResponse {
                url: self.url.clone(),
                detail: e.to_string(),
            })?;
        if !(200..300).contains(&status) {
            return Err(failure(&self.url, status, &text));
        }
        Ok(text)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let text = self.request(Method::Get, path, None, "")?;
        decode(&self.url, &text)
    }

    fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let text = self.request(Method::Delete, path, None, "")?;
        decode(&self.url, &text)
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(Method::Post, path, body)
    }

    fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(Method::Put, path, body)
    }

    fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).expect("API requests serialize");
        let text = self.request(
            method,
            path,
            Some(ureq::SendBody::from_owned_reader(std::io::Cursor::new(
                bytes,
            ))),
            "application/json",
        )?;
        decode(&self.url, &text)
    }

    /// `GET /admin/node`: identity, version, counts. Also checks the token.
    pub fn node_status(&self) -> Result<NodeStatus, ClientError> {
        self.get("/admin/node")
    }

    /// `GET /health`: the node's version; needs no token.
    pub fn health(&self) -> Result<Health, ClientError> {
        self.get("/health")
    }

    /// `GET /admin/network`: peer id, listen addresses, connected peers.
    pub fn network(&self) -> Result<NetStatus, ClientError> {
        self.get("/admin/network")
    }

    /// `GET /admin/contexts/{id}/state`: the context's state as JSON, as
    /// the app's root fields hold it.
    pub fn state(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/admin/contexts/{id}/state"))
    }

    /// `GET /admin/dev/faults`: the faults injected into this node (a
    /// node not started with `merod run --dev` answers 403 `dev_mode_off`).
    pub fn faults(&self) -> Result<Faults, ClientError> {
        self.get("/admin/dev/faults")
    }

    /// `PUT /admin/dev/faults`: replaces this node's faults as a whole.
    pub fn set_faults(&self, faults: &SetFaults) -> Result<Faults, ClientError> {
        self.put("/admin/dev/faults", faults)
    }

    /// `DELETE /admin/dev/faults`: clears every fault of this node; it
    /// redials its peers at once.
    pub fn heal(&self) -> Result<Faults, ClientError> {
        self.delete("/admin/dev/faults")
    }

    /// Uploads and installs an app; `progress` sees bytes sent so far.
    pub fn install_app(
        &self,
        wasm: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<AppInfo, ClientError> {
        let mut reader = Progress {
            inner: wasm,
            sent: 0,
            report: progress,
        };
        let text = self.request(
            Method::Post,
            "/admin/apps",
            Some(ureq::SendBody::from_reader(&mut reader)),
            "application/wasm",
        )?;
        decode(&self.url, &text)
    }

    /// The ABI of an installed app.
    pub fn app_abi(&self, hash: &str) -> Result<AppAbi, ClientError> {
        self.get(&format!("/admin/apps/{hash}"))
    }

    /// Creates a context running `app`.
    pub fn create_context(&self, app: &str) -> Result<ContextInfo, ClientError> {
        let req = CreateContextRequest {
            app: Id::from(app),
            args: None,
        };
        self.post("/admin/contexts", &req)
    }

    /// A context's info: `app`, `member`, `heads`, `joining`, ...
    pub fn context(&self, id: &str) -> Result<ContextInfo, ClientError> {
        self.get(&format!("/admin/contexts/{id}"))
    }

    /// A context's sync status: `digest`, `heads`, `pending`, ...
    pub fn sync_status(&self, id: &str) -> Result<SyncStatus, ClientError> {
        self.get(&format!("/admin/contexts/{id}/sync"))
    }

    /// An invitation token to a context.
    pub fn invite(&self, id: &str) -> Result<String, ClientError> {
        let inv: Invitation = self.post(
            &format!("/admin/contexts/{id}/invitations"),
            &CreateInvitationRequest::default(),
        )?;
        Ok(inv.invitation)
    }

    /// Joins a context with an invitation token.
    pub fn join(&self, invitation: &str) -> Result<ContextInfo, ClientError> {
        let req = JoinRequest {
            invitation: invitation.to_owned(),
        };
        self.post("/admin/contexts/join", &req)
    }

    /// Moves a context to another installed app, keeping its state.
    pub fn upgrade(&self, id: &str, app: &str) -> Result<ContextInfo, ClientError> {
        let req = UpgradeRequest { app: Id::from(app) };
        self.post(&format!("/admin/contexts/{id}/upgrade"), &req)
    }

    /// Calls an app method; returns its output. `args` must be a JSON
    /// object (the node refuses anything else with -32602).
    pub fn call(
        &self,
        kind: CallKind,
        context: &str,
        method: &str,
        args: &Value,
    ) -> Result<Value, ClientError> {
        let rpc = match kind {
            CallKind::Execute => RpcMethod::Execute,
            CallKind::Query => RpcMethod::Query,
        };
        let args = args.as_object().cloned().unwrap_or_default();
        let req = RpcRequest::call(Value::from(1), rpc, context, method, args);
        let resp: RpcResponse = self.post("/jsonrpc", &req)?;
        match (resp.result, resp.error) {
            (_, Some(err)) => Err(ClientError::Rpc {
                code: err.code,
                message: err.message,
                data: err.data,
            }),
            (Some(result), None) => Ok(result.output),
            (None, None) => Err(ClientError::BadResponse {
                url: self.url.clone(),
                detail: "a JSON-RPC answer with neither `result` nor `error`".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_field_is_an_error_that_names_it() {
        let body = r#"{"identifier": "x", "app": "a", "member": "m", "seq": 0, "deltas": 0,
            "heads": [], "members": 1, "joining": false}"#;
        let err = decode::<ContextInfo>("http://node", body).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("unexpected answer from http://node: missing field `id`"),
            "{msg}"
        );
    }

    #[test]
    fn error_bodies_become_the_nodes_message() {
        let err = failure(
            "http://node",
            404,
            r#"{"error": {"code": "unknown_context", "message": "no context x"}}"#,
        );
        assert!(
            matches!(&err, ClientError::Api { status: 404, code, message }
                if code == "unknown_context" && message == "no context x"),
            "{err:?}"
        );
        let err = failure("http://node", 502, "<html>bad gateway</html>");
        assert!(err.to_string().contains("answered 502"), "{err}");
        assert!(matches!(
            failure("http://node", 401, ""),
            ClientError::Unauthorized { .. }
        ));
    }
}

//! A small blocking client for a node's HTTP API: what `dev`, `deploy` and
//! `call` need, with errors that say what to do.

use std::io::Read;
use std::time::Duration;

use mero_abi::AppAbi;
use serde_json::{Value, json};

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

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<ureq::SendBody<'_>>,
        content_type: &str,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.url);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = if method == "GET" {
            let mut r = self.agent.get(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        } else {
            let mut r = self.agent.post(&url).header("Content-Type", content_type);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            match body {
                Some(b) => r.send(b),
                None => r.send_empty(),
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
        if status == 401 {
            return Err(ClientError::Unauthorized {
                url: self.url.clone(),
            });
        }
        let value: Value = serde_json::from_str(&text).map_err(|_| ClientError::BadResponse {
            url: self.url.clone(),
            detail: format!("status {status}, body {text:.200}"),
        })?;
        if !(200..300).contains(&status) {
            let err = &value["error"];
            return Err(ClientError::Api {
                status,
                code: err["code"].as_str().unwrap_or("error").to_owned(),
                message: err["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("the node answered {status}: {text:.200}")),
            });
        }
        Ok(value)
    }

    fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request("GET", path, None, "")
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = serde_json::to_vec(body).expect("JSON serializes");
        self.request(
            "POST",
            path,
            Some(ureq::SendBody::from_owned_reader(std::io::Cursor::new(
                bytes,
            ))),
            "application/json",
        )
    }

    fn field(&self, v: &Value, name: &str) -> Result<String, ClientError> {
        v[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::BadResponse {
                url: self.url.clone(),
                detail: format!("no `{name}` in {v}"),
            })
    }

    /// `GET /admin/node`: identity, version, counts. Also checks the token.
    pub fn node_status(&self) -> Result<Value, ClientError> {
        self.get("/admin/node")
    }

    /// Uploads and installs an app; `progress` sees bytes sent so far.
    /// Returns the node's app info (`hash`, `size`, `name`, `methods`).
    pub fn install_app(
        &self,
        wasm: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Value, ClientError> {
        let mut reader = Progress {
            inner: wasm,
            sent: 0,
            report: progress,
        };
        self.request(
            "POST",
            "/admin/apps",
            Some(ureq::SendBody::from_reader(&mut reader)),
            "application/wasm",
        )
    }

    /// The ABI of an installed app.
    pub fn app_abi(&self, hash: &str) -> Result<AppAbi, ClientError> {
        let v = self.get(&format!("/admin/apps/{hash}"))?;
        serde_json::from_value(v).map_err(|e| ClientError::BadResponse {
            url: self.url.clone(),
            detail: format!("not an ABI: {e}"),
        })
    }

    /// Creates a context running `app`; returns its info (`id`, `member`, ...).
    pub fn create_context(&self, app: &str) -> Result<Value, ClientError> {
        self.post("/admin/contexts", &json!({ "app": app }))
    }

    /// A context's info: `app`, `member`, `heads`, `joining`, ...
    pub fn context(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/admin/contexts/{id}"))
    }

    /// A context's sync status: `digest`, `heads`, `pending`, ...
    pub fn sync_status(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/admin/contexts/{id}/sync"))
    }

    /// An invitation token to a context.
    pub fn invite(&self, id: &str) -> Result<String, ClientError> {
        let v = self.post(&format!("/admin/contexts/{id}/invitations"), &json!({}))?;
        self.field(&v, "invitation")
    }

    /// Joins a context with an invitation token.
    pub fn join(&self, invitation: &str) -> Result<Value, ClientError> {
        self.post("/admin/contexts/join", &json!({ "invitation": invitation }))
    }

    /// Moves a context to another installed app, keeping its state.
    pub fn upgrade(&self, id: &str, app: &str) -> Result<Value, ClientError> {
        self.post(
            &format!("/admin/contexts/{id}/upgrade"),
            &json!({ "app": app }),
        )
    }

    /// Calls an app method; returns its output.
    pub fn call(
        &self,
        kind: CallKind,
        context: &str,
        method: &str,
        args: &Value,
    ) -> Result<Value, ClientError> {
        let rpc = match kind {
            CallKind::Execute => "execute",
            CallKind::Query => "query",
        };
        let req = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": rpc,
            "params": {"context": context, "method": method, "args": args},
        });
        let v = self.post("/jsonrpc", &req)?;
        if let Some(err) = v.get("error") {
            return Err(ClientError::Rpc {
                code: err["code"].as_i64().unwrap_or(0),
                message: err["message"].as_str().unwrap_or("call failed").to_owned(),
                data: err.get("data").cloned(),
            });
        }
        Ok(v["result"]["output"].clone())
    }
}

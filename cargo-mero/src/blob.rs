//! `cargo mero blob put | get`: upload a file as a blob of a context, and
//! download one, through the node's HTTP API (`/contexts/{id}/blobs`).
//! Both stream; a download into a file that already holds the blob's
//! first bytes continues from there (`Range`), and the finished file is
//! checked against the blob id.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::call::CallTarget;
use crate::client::ClientError;
use crate::network::{DevNetwork, NetworkFileError};

/// What went wrong with a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No usable dev network.
    #[error(transparent)]
    Network(#[from] NetworkFileError),
    /// The node refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// A local file.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The downloaded bytes are not the blob.
    #[error("{path} does not hold {id} (its bytes hash to {got}); delete it and download again")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The blob asked for.
        id: String,
        /// The id of what the file holds.
        got: String,
    },
}

/// Which node and context.
#[derive(Debug, Clone)]
pub struct BlobOptions {
    /// Where.
    pub target: CallTarget,
    /// Context id; the dev network's when omitted.
    pub context: Option<String>,
}

/// An uploaded blob.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutOutput {
    /// The node.
    pub node: String,
    /// The context.
    pub context: String,
    /// The blob id, to store in state with a call.
    pub id: String,
    /// Bytes.
    pub size: u64,
    /// Wall time of the upload, in seconds.
    pub secs: f64,
}

/// A downloaded blob.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    /// The node.
    pub node: String,
    /// The context.
    pub context: String,
    /// The blob id.
    pub id: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Bytes the file already held (a resumed download).
    pub resumed_from: u64,
    /// Wall time of the download, in seconds.
    pub secs: f64,
}

struct Node {
    url: String,
    token: Option<String>,
    context: String,
    agent: ureq::Agent,
}

fn resolve(opts: &BlobOptions) -> Result<Node, BlobError> {
    let (url, token, dev_context) = match &opts.target {
        CallTarget::Dev { dev_dir, index } => {
            let net = DevNetwork::load(dev_dir)?;
            let node = net.node(*index).ok_or_else(|| {
                BlobError::Usage(format!(
                    "the dev network has nodes 1 to {}; there is no node {index}",
                    net.nodes.len()
                ))
            })?;
            (
                node.rpc_url.clone(),
                Some(node.admin_token.clone()),
                Some(net.context.clone()),
            )
        }
        CallTarget::Url { url, token } => (url.clone(), token.clone(), None),
    };
    let context = opts.context.clone().or(dev_context).ok_or_else(|| {
        BlobError::Usage("which context? pass --context ID (required with --url)".into())
    })?;
    // No overall deadline: a large blob takes as long as it takes.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .build()
        .into();
    Ok(Node {
        url: url.trim_end_matches('/').to_owned(),
        token,
        context,
        agent,
    })
}

impl Node {
    fn path(&self, rest: &str) -> String {
        format!("{}/contexts/{}/blobs{rest}", self.url, self.context)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> BlobError {
        ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        }
        .into()
    }

    /// The node's error for a failed exchange.
    fn failed(&self, status: u16, body: &str) -> BlobError {
        crate::client::failure(&self.url, status, body).into()
    }
}

/// Counts bytes as a body is read, for the progress bar.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done);
        Ok(n)
    }
}

/// Uploads `file` as a blob; `progress` sees (bytes sent, total).
pub fn put(
    opts: &BlobOptions,
    file: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PutOutput, BlobError> {
    let node = resolve(opts)?;
    let io = |source| BlobError::File {
        path: file.to_owned(),
        source,
    };
    let f = File::open(file).map_err(io)?;
    let total = f.metadata().map_err(io)?.len();
    progress(0, total);
    let started = Instant::now();
    let mut report = |n| progress(n, total);
    let mut body = Counted {
        inner: std::io::BufReader::with_capacity(1 << 20, f),
        done: 0,
        report: &mut report,
    };
    let mut req = node
        .agent
        .post(node.path(""))
        .header("Content-Type", "application/octet-stream");
    if let Some(t) = &node.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = req
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| node.unreachable(e))?;
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    if status != 201 {
        return Err(node.failed(status, &text));
    }
    let up: mero_api::BlobUploaded = crate::client::decode(&node.url, &text)?;
    Ok(PutOutput {
        node: node.url.clone(),
        context: node.context.clone(),
        id: up.id,
        size: up.size,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Downloads blob `id` into `out` (default: a file named after the id in
/// the current directory); `progress` sees (bytes in the file, total). A
/// file that already holds some of the blob continues from its end.
pub fn get(
    opts: &BlobOptions,
    id: &str,
    out: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<GetOutput, BlobError> {
    let parsed: mero_sync::blob::BlobId = id.parse().map_err(BlobError::Usage)?;
    let node = resolve(opts)?;
    let path = out.map_or_else(|| PathBuf::from(hex_of(&parsed.0)), Path::to_path_buf);
    let io = |source| BlobError::File {
        path: path.clone(),
        source,
    };
    let have = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(e)),
    };
    let started = Instant::now();
    let mut req = node.agent.get(node.path(&format!("/{parsed}")));
    if let Some(t) = &node.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| node.unreachable(e))?;
    let status = resp.status().as_u16();
    let from = match status {
        206 => have,
        200 => 0,
        416 if have > 0 => {
            // Nothing after what the file holds: check it is the blob.
            drop(resp);
            return finish(&node, &parsed, path, have, have, started);
        }
        _ => {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            return Err(node.failed(status, &text));
        }
    };
    let length = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let total = from + length;
    // Opened only now: a failed request leaves no empty file behind.
    let mut file = File::options()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    file.set_len(from).map_err(io)?;
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    progress(from, total);
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    loop {
        let n = body.read(&mut buf).map_err(|e| node.unreachable(e))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(io)?;
        at += n as u64;
        progress(at, total);
    }
    file.flush().map_err(io)?;
    if at < total {
        return Err(node.unreachable(format!(
            "the download stopped after {at} of {total} bytes; run the same command again to continue"
        )));
    }
    finish(&node, &parsed, path, at, from, started)
}

fn finish(
    node: &Node,
    id: &mero_sync::blob::BlobId,
    path: PathBuf,
    size: u64,
    resumed_from: u64,
    started: Instant,
) -> Result<GetOutput, BlobError> {
    let got = id_of_file(&path).map_err(|source| BlobError::File {
        path: path.clone(),
        source,
    })?;
    if got != *id {
        return Err(BlobError::Mismatch {
            path,
            id: id.to_string(),
            got: got.to_string(),
        });
    }
    Ok(GetOutput {
        node: node.url.clone(),
        context: node.context.clone(),
        id: id.to_string(),
        path,
        size,
        resumed_from,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The blob id of a file's bytes, as a node computes it.
pub fn id_of_file(path: &Path) -> std::io::Result<mero_sync::blob::BlobId> {
    let mut f = std::io::BufReader::new(File::open(path)?);
    let mut b = mero_sync::blob::ManifestBuilder::default();
    let mut chunk = vec![0u8; mero_sync::blob::CHUNK_SIZE];
    loop {
        let mut filled = 0;
        while filled < chunk.len() {
            let n = f.read(&mut chunk[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled > 0 {
            b.push(&chunk[..filled]);
        }
        if filled < chunk.len() {
            return Ok(b.finish().id());
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

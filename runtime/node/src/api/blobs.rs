//! `POST /contexts/{id}/blobs` and `GET /contexts/{id}/blobs/{blob}`:
//! blob upload and download, both streamed.
//!
//! An upload is cut into chunks as the body arrives; each chunk is sealed
//! and written before more of the body is read, so the node holds at most
//! one chunk of it in memory. A download is a body fed from the chunk files
//! by a task on the blocking pool through a two-chunk queue; a blob the node
//! does not hold is fetched from member peers and streamed as its chunks
//! arrive. `Range: bytes=a-b` (one range; `a-` and `-n` too) answers 206.
//!
//! The admin token may use both. A client token may download blobs of its
//! context, and upload to it if it acts as this node's member there (the
//! member that will store the blob's id in state with a call).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mero_sync::blob::{BlobId, CHUNK_SIZE};

use super::auth::{Principal, forbidden};
use super::{ApiError, parse_id};
use crate::blobs::{self, BlobError, BlobReader, Upload};
use crate::ids::ContextId;
use crate::node::Node;

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        let status = match &e {
            BlobError::NotFound(..) => StatusCode::NOT_FOUND,
            BlobError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BlobError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            BlobError::Busy(_) | BlobError::Corrupt(..) => StatusCode::SERVICE_UNAVAILABLE,
            BlobError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BlobError::Io(_) | BlobError::Node(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match e {
            BlobError::Node(n) => n.into(),
            e => ApiError::new(status, e.code(), e.to_string()),
        }
    }
}

async fn blocking_blob<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(BlobError::Io(format!("blob thread failed: {e}"))))
}

/// Whether `who` may add blobs to `ctx`.
fn may_upload(node: &Node, who: &Principal, ctx: &ContextId) -> Result<(), ApiError> {
    who.check_context(ctx)?;
    if let Principal::Client(c) = who
        && node.member(ctx).ok() != Some(c.sub)
    {
        return Err(forbidden(format!(
            "this token acts as member {}, which this node does not hold in context {ctx}",
            c.sub
        )));
    }
    Ok(())
}

/// `POST /contexts/{id}/blobs`: the body is the blob. Answers its id.
pub(crate) async fn upload(
    State(node): State<Arc<Node>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let ctx: ContextId = parse_id(&id)?;
    may_upload(&node, &who, &ctx)?;
    let max = node.config().blobs.max_blob_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(size) = declared.filter(|s| *s > max) {
        return Err(BlobError::TooLarge { size, max }.into());
    }
    let n = node.clone();
    let up = blocking_blob(move || n.blob_upload(&ctx)).await?;
    let (id, manifest) = stream_in(up, body, max).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(mero_api::BlobUploaded {
            id: id.to_string(),
            size: manifest.size,
            chunks: manifest.count() as u64,
        }),
    ))
}

/// Feeds the body to the upload chunk by chunk; the finished blob.
async fn stream_in(
    mut up: Upload,
    body: Body,
    max: u64,
) -> Result<(BlobId, mero_sync::blob::Manifest), BlobError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_SIZE);
    let mut received: u64 = 0;
    while let Some(frame) = stream.next().await {
        let data = match frame {
            Ok(d) => d,
            Err(e) => {
                abort(up).await;
                return Err(BlobError::BadRequest(format!(
                    "the upload was cut off after {received} bytes: {e}"
                )));
            }
        };
        received += data.len() as u64;
        if received > max {
            abort(up).await;
            return Err(BlobError::TooLarge {
                size: received,
                max,
            });
        }
        let mut data = &data[..];
        while !data.is_empty() {
            let take = (CHUNK_SIZE - buf.len()).min(data.len());
            buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if buf.len() == CHUNK_SIZE {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_SIZE));
                up = write(up, chunk).await?;
            }
        }
    }
    if !buf.is_empty() {
        up = write(up, buf).await?;
    }
    blocking_blob(move || up.finish()).await
}

async fn write(mut up: Upload, chunk: Vec<u8>) -> Result<Upload, BlobError> {
    blocking_blob(move || match up.write(&chunk) {
        Ok(()) => Ok(up),
        Err(e) => {
            up.abort();
            Err(e)
        }
    })
    .await
}

async fn abort(up: Upload) {
    let _ = tokio::task::spawn_blocking(move || up.abort()).await;
}

/// `GET /contexts/{id}/blobs/{blob}`: the blob's bytes, or the range asked.
pub(crate) async fn download(
    State(node): State<Arc<Node>>,
    Extension(who): Extension<Principal>,
    Path((id, blob)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx: ContextId = parse_id(&id)?;
    let blob: BlobId = parse_id(&blob)?;
    who.check_context(&ctx)?;
    node.has_context(&ctx)?;
    let wait = Duration::from_secs(node.config().blobs.fetch_timeout_secs.max(1));
    let n = node.clone();
    let reader = blocking_blob(move || blobs::open(&n, ctx, blob, wait)).await?;
    let size = reader.size();
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(h) => match parse_range(h.to_str().unwrap_or(""), size) {
            Some(r) => Some(r),
            None => return Ok(unsatisfiable(size)),
        },
    };
    let (start, end) = range.unwrap_or((0, size));
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || produce(&reader, start, end, wait, &tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{blob}\"")) {
        h.insert(header::ETAG, etag);
    }
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = format!("bytes {start}-{}/{size}", end.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&cr) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

fn unsatisfiable(size: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "bad_range",
        format!("the blob has {size} bytes; ask for one range `bytes=first-last` within it"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// Sends bytes `start..end` of the blob, chunk by chunk, until the client
/// goes away; an error ends the body early (the client sees it cut short
/// of its `Content-Length`).
fn produce(
    reader: &BlobReader,
    start: u64,
    end: u64,
    wait: Duration,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut at = start;
    while at < end {
        let index = (at / CHUNK_SIZE as u64) as u32;
        let chunk = match reader.chunk(index, wait) {
            Ok(c) => Bytes::from(c),
            Err(e) => {
                tracing::warn!("a blob download stopped: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        let from = (at % CHUNK_SIZE as u64) as usize;
        let take = ((end - at) as usize).min(chunk.len() - from);
        if tx
            .blocking_send(Ok(chunk.slice(from..from + take)))
            .is_err()
        {
            return;
        }
        at += take as u64;
    }
}

/// `first..end` (end exclusive) of a `Range` header for a blob of `size`
/// bytes; `None` if it is not one satisfiable byte range.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>().ok()?.checked_add(1)?.min(size)
        };
        (start, end)
    };
    (start < end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-1000", 100), Some((0, 100)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some((50, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=9-3", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-1", 100), None);
        assert_eq!(parse_range("bytes=0-", 0), None);
        assert_eq!(parse_range("bytes=-0", 100), None);
    }
}

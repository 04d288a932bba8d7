//! The request-response codec: one postcard message per stream, read to
//! the end with a size cap.
//!
//! A request that does not decode is still handed to the node, as
//! [`Frame::Malformed`]: libp2p drops requests its codec fails on without
//! telling anyone which peer sent them, and a peer sending garbage must be
//! known to be scored and banned.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use mero_sync::protocol::{Envelope, Response};

/// Protocol name of mero's catch-up, delta and app requests.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/mero/sync/2");

/// Largest request accepted (vectors and id lists are small).
const MAX_REQUEST: u64 = 1 << 20;
/// Largest response accepted (a page of deltas, or an app's WASM).
const MAX_RESPONSE: u64 = 64 << 20;

/// An inbound request as read off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A well-formed request.
    Request(Envelope),
    /// Bytes that are not a request (or too many of them): why.
    Malformed(String),
}

/// Postcard over a libp2p stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

pub(super) async fn read<T: AsyncRead + Unpin + Send, M: serde::de::DeserializeOwned>(
    io: &mut T,
    max: u64,
) -> io::Result<M> {
    let mut buf = Vec::new();
    io.take(max + 1).read_to_end(&mut buf).await?;
    if buf.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over {max} bytes"),
        ));
    }
    postcard::from_bytes(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(super) async fn write<T: AsyncWrite + Unpin + Send, M: serde::Serialize>(
    io: &mut T,
    msg: &M,
) -> io::Result<()> {
    let bytes =
        postcard::to_allocvec(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Response;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Frame> {
        match read(io, MAX_REQUEST).await {
            Ok(env) => Ok(Frame::Request(env)),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Frame::Malformed(e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response> {
        read(io, MAX_RESPONSE).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame,
    ) -> io::Result<()> {
        match req {
            Frame::Request(env) => write(io, &env).await,
            Frame::Malformed(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only well-formed requests are sent",
            )),
        }
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()> {
        write(io, &res).await
    }
}

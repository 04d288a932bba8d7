//! `/admin/dev/faults`: fault injection (partitions, delay, loss) on a
//! node started with `merod run --dev`. On any other node every route
//! answers 403 `dev_mode_off` before reading the body, and the network
//! holds no fault state to change.
//!
//! The body is admin JSON, bounded all the same: at most [`MAX_BODY`]
//! bytes (413 beyond), at most [`api::MAX_FAULT_PEERS`] blocked peers and
//! links, delays up to [`api::MAX_DELAY_MS`], loss in 0..=100, parsable
//! peer ids (400 otherwise).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use libp2p::PeerId;
use mero_api as api;

use super::{ApiError, bad_request, body_or_error, optional_json};
use crate::net::NetHandle;
use crate::net::faults::{FaultSpec, Link};
use crate::node::Node;

/// Largest body `PUT /admin/dev/faults` reads.
pub const MAX_BODY: usize = 64 << 10;

/// The network, if this node runs in dev mode.
fn dev_net(node: &Node) -> Result<&NetHandle, ApiError> {
    if !node.config().dev {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "dev_mode_off",
            "fault injection exists only on a node started with `merod run --dev`",
        ));
    }
    super::admin::network(node)
}

fn stopped() -> ApiError {
    bad_request("the network task has stopped")
}

/// `GET /admin/dev/faults`.
pub(crate) async fn get_faults(
    State(node): State<Arc<Node>>,
) -> Result<Json<api::Faults>, ApiError> {
    let net = dev_net(&node)?;
    net.faults().await.map(Json).ok_or_else(stopped)
}

/// `PUT /admin/dev/faults`: replaces the faults as a whole.
pub(crate) async fn set_faults(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Faults>, ApiError> {
    let net = dev_net(&node)?;
    let req: api::SetFaults = optional_json(&body_or_error(body)?)?;
    let spec = check(req)?;
    net.set_faults(spec).await.map(Json).ok_or_else(stopped)
}

/// `DELETE /admin/dev/faults`: heals (no fault left).
pub(crate) async fn heal(State(node): State<Arc<Node>>) -> Result<Json<api::Faults>, ApiError> {
    let net = dev_net(&node)?;
    net.set_faults(FaultSpec::default())
        .await
        .map(Json)
        .ok_or_else(stopped)
}

fn peer(s: &str) -> Result<PeerId, ApiError> {
    s.parse()
        .map_err(|_| bad_request(format!("`{s}` is not a peer id")))
}

/// The request's faults, checked against the bounds.
fn check(req: api::SetFaults) -> Result<FaultSpec, ApiError> {
    let max = api::MAX_FAULT_PEERS;
    if req.blocked.len() > max || req.links.len() > max {
        return Err(bad_request(format!(
            "at most {max} blocked peers and {max} links"
        )));
    }
    let blocked = req
        .blocked
        .iter()
        .map(|p| peer(p))
        .collect::<Result<_, _>>()?;
    let mut links = HashMap::new();
    for l in req.links {
        if l.delay_ms > api::MAX_DELAY_MS {
            return Err(bad_request(format!(
                "delayMs {} is over {} ms",
                l.delay_ms,
                api::MAX_DELAY_MS
            )));
        }
        if !(0.0..=100.0).contains(&l.loss_percent) {
            return Err(bad_request("lossPercent must be from 0 to 100"));
        }
        let who = l.peer.as_deref().map(peer).transpose()?;
        let link = Link {
            delay_ms: l.delay_ms,
            loss_percent: l.loss_percent,
        };
        if links.insert(who, link).is_some() {
            return Err(bad_request("two links for the same peer"));
        }
    }
    Ok(FaultSpec {
        isolated: req.isolated,
        blocked,
        links,
        seed: req.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(peer: Option<String>, delay_ms: u32, loss_percent: f64) -> api::LinkFault {
        api::LinkFault {
            peer,
            delay_ms,
            loss_percent,
        }
    }

    #[test]
    fn bounds_and_bad_ids_are_refused() {
        let p = PeerId::random().to_string();
        let ok = api::SetFaults {
            blocked: vec![p.clone()],
            links: vec![link(None, 10_000, 100.0), link(Some(p.clone()), 0, 0.0)],
            ..Default::default()
        };
        let spec = check(ok).expect("within bounds");
        assert_eq!(spec.blocked.len(), 1);
        assert_eq!(spec.links.len(), 2);
        let bad = [
            api::SetFaults {
                blocked: vec!["nope".into()],
                ..Default::default()
            },
            api::SetFaults {
                blocked: vec![p.clone(); api::MAX_FAULT_PEERS + 1],
                ..Default::default()
            },
            api::SetFaults {
                links: vec![link(None, api::MAX_DELAY_MS + 1, 0.0)],
                ..Default::default()
            },
            api::SetFaults {
                links: vec![link(None, 0, 100.5)],
                ..Default::default()
            },
            api::SetFaults {
                links: vec![link(None, 0, f64::NAN)],
                ..Default::default()
            },
            api::SetFaults {
                links: vec![link(None, 1, 0.0), link(None, 2, 0.0)],
                ..Default::default()
            },
        ];
        for b in bad {
            let e = check(b.clone()).expect_err(&format!("{b:?}"));
            assert_eq!(e.0, StatusCode::BAD_REQUEST);
        }
    }
}

//! `cargo mero net`: commands to a running `cargo mero dev` session
//! (partition, heal, kill, restart, delay, loss, add-node), sent to its
//! control server as named in `network.json`.
//!
//! The session does the work (it owns the node processes and the fault
//! plan); this module only posts the request, and for `heal` follows the
//! session's event stream until it reports the convergence time. It must
//! not talk to nodes itself.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crate::dev::control::{ControlAnswer, ControlRequest, Converged, SessionEvent};
use crate::network::{ControlInfo, DevNetwork, NetworkFileError};

/// How long a command may take (a restart or an added node on a busy
/// machine).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(200);
/// How long `heal` waits for the convergence report (the session gives up
/// after 60 s and says why on its console).
pub const HEAL_WAIT: Duration = Duration::from_secs(75);

/// What went wrong sending a command.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No session runs for this project.
    #[error("no running `cargo mero dev` for this project (start one with `cargo mero dev`)")]
    NoSession,
    /// `network.json` is unusable.
    #[error(transparent)]
    NetworkFile(NetworkFileError),
    /// The session did not do it.
    #[error("{0}")]
    Refused(String),
    /// The exchange with the session failed.
    #[error("the session at {url}: {reason}")]
    Failed {
        /// The control server.
        url: String,
        /// What happened.
        reason: String,
    },
    /// No convergence report in time after a heal.
    #[error(
        "healed, but the nodes did not report converging within {}s; see the session's console",
        .0.as_secs()
    )]
    NotConverged(Duration),
}

/// The control server of the session running `dev_dir`'s network.
pub fn session(dev_dir: &Path) -> Result<ControlInfo, NetError> {
    let net = DevNetwork::load(dev_dir).map_err(|e| match e {
        NetworkFileError::Missing(_) => NetError::NoSession,
        other => NetError::NetworkFile(other),
    })?;
    net.control.ok_or(NetError::NoSession)
}

fn agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build()
        .into()
}

fn failed(info: &ControlInfo, reason: impl ToString) -> NetError {
    NetError::Failed {
        url: info.url.clone(),
        reason: reason.to_string(),
    }
}

/// What a failed exchange with the session means: ureq could not connect
/// at all (the session is gone, its `network.json` left behind by a
/// crash), or something else went wrong.
fn unreachable(info: &ControlInfo, e: ureq::Error) -> NetError {
    let refused = matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
        || matches!(e, ureq::Error::ConnectionFailed);
    if refused {
        NetError::NoSession
    } else {
        failed(info, e)
    }
}

/// Posts `request`; the answer whether or not the session did it.
pub fn send(info: &ControlInfo, request: &ControlRequest) -> Result<ControlAnswer, NetError> {
    let resp = agent(Some(COMMAND_TIMEOUT))
        .post(&format!("{}/control", info.url))
        .header("Authorization", &format!("Bearer {}", info.key))
        .send_json(request)
        .map_err(|e| unreachable(info, e))?;
    let status = resp.status().as_u16();
    let text = resp
        .into_body()
        .read_to_string()
        .map_err(|e| failed(info, e))?;
    match status {
        200 => serde_json::from_str(&text).map_err(|e| failed(info, format!("{e} in {text:.200}"))),
        401 => Err(failed(
            info,
            "it refused the key in network.json (another session owns the port now?)",
        )),
        _ => Err(failed(info, format!("status {status}: {text:.200}"))),
    }
}

/// Follows the session's event stream in a thread, passing on every
/// `converged` event; returns once the stream is open.
fn follow_converged(info: &ControlInfo) -> Result<mpsc::Receiver<Converged>, NetError> {
    let resp = agent(None)
        .get(&format!("{}/session/events?key={}", info.url, info.key))
        .call()
        .map_err(|e| unreachable(info, e))?;
    if resp.status().as_u16() != 200 {
        return Err(failed(
            info,
            format!("the event stream answered {}", resp.status()),
        ));
    }
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(resp.into_body().into_reader());
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            if let Ok(SessionEvent::Converged(c)) = serde_json::from_str(data.trim())
                && tx.send(c).is_err()
            {
                break;
            }
        }
    });
    Ok(rx)
}

/// Heals the network; with `wait`, also waits that long for the nodes to
/// converge and returns how long they took.
pub fn heal(
    info: &ControlInfo,
    wait: Option<Duration>,
) -> Result<(ControlAnswer, Option<Converged>), NetError> {
    // Subscribed before the heal, so its report cannot be missed.
    let events = wait.map(|_| follow_converged(info)).transpose()?;
    let answer = send(info, &ControlRequest::Heal)?;
    if !answer.ok {
        return Err(NetError::Refused(answer.message));
    }
    let (Some(events), Some(wait)) = (events, wait) else {
        return Ok((answer, None));
    };
    match events.recv_timeout(wait) {
        Ok(c) => Ok((answer, Some(c))),
        Err(_) => Err(NetError::NotConverged(wait)),
    }
}

//! Terminal keys: a thread that reads stdin *lines* (`p 3`, `h`, `k 3`,
//! ...; see [`KEY_HELP`]) and sends them to the session as
//! [`ControlRequest`]s, which the session answers on the console.
//!
//! Lines, not raw keys: raw mode would garble the multiplexed node logs and
//! take Ctrl-C away from the session's signal handling. It reads only from
//! a pipe or from a terminal whose foreground group is ours, so
//! `cargo mero dev &` is not stopped by SIGTTIN; end of input ends only
//! this reader, never the session.

use std::io::BufRead;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::DevEvent;
use super::console::Console;
use super::control::ControlRequest;

/// The one-line help of the terminal keys.
pub const KEY_HELP: &str = "keys (then Enter): p N.. partition N.. from the rest · h heal · k N kill · r N restart · d N 200ms delay · l N 10% loss · a add a node · s status · ? help";

/// Milliseconds in "200ms", "200", "1.5s".
pub fn parse_ms(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a duration like 200ms or 1s");
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let ms = (v * scale).round();
    if !(0.0..=f64::from(u32::MAX)).contains(&ms) {
        return Err(bad());
    }
    Ok(ms as u32)
}

/// Percent in "10%", "10", "2.5%".
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .strip_suffix('%')
        .unwrap_or(s)
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage like 10%"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{s} is not between 0% and 100%"));
    }
    Ok(v)
}

fn parse_node(s: Option<&&str>, what: &str) -> Result<usize, String> {
    let s = s.ok_or_else(|| format!("{what} needs a node number, e.g. `{what} 3`"))?;
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a node number (nodes are numbered from 1)"
        )),
    }
}

impl ControlRequest {
    /// Parses a terminal line: `p 3`/`partition 2 3`, `h`/`heal`, `k 3`,
    /// `r 3`, `d 2 200ms`, `l 2 10%`, `a`/`add-node`, `s`/`status`. `?`
    /// (and anything unknown) answers with the key help as the error.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line
            .split([' ', '\t', ','])
            .filter(|w| !w.is_empty())
            .collect();
        let Some((cmd, rest)) = words.split_first() else {
            return Err(KEY_HELP.to_owned());
        };
        let cmd = cmd.to_ascii_lowercase();
        let arity = |n: usize| {
            if rest.len() > n {
                Err(format!("`{cmd}` takes {n} argument(s), not {}", rest.len()))
            } else {
                Ok(())
            }
        };
        let req = match cmd.as_str() {
            "p" | "partition" => {
                if rest.is_empty() {
                    return Err("partition needs the nodes of one side, e.g. `p 3`".into());
                }
                let nodes = rest
                    .iter()
                    .map(|w| parse_node(Some(w), "partition"))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Self::Partition { nodes });
            }
            "h" | "heal" => Self::Heal,
            "k" | "kill" => Self::Kill {
                node: parse_node(rest.first(), "kill")?,
            },
            "r" | "restart" => Self::Restart {
                node: parse_node(rest.first(), "restart")?,
            },
            "d" | "delay" => {
                let node = parse_node(rest.first(), "delay")?;
                let ms = rest
                    .get(1)
                    .ok_or("delay needs a duration, e.g. `d 2 200ms`")?;
                arity(2)?;
                return Ok(Self::Delay {
                    node,
                    ms: parse_ms(ms)?,
                });
            }
            "l" | "loss" => {
                let node = parse_node(rest.first(), "loss")?;
                let p = rest
                    .get(1)
                    .ok_or("loss needs a percentage, e.g. `l 2 10%`")?;
                arity(2)?;
                return Ok(Self::Loss {
                    node,
                    percent: parse_percent(p)?,
                });
            }
            "a" | "add" | "add-node" => Self::AddNode,
            "s" | "status" => Self::Status,
            "?" | "help" => return Err(KEY_HELP.to_owned()),
            other => return Err(format!("unknown command `{other}`; {KEY_HELP}")),
        };
        let takes = usize::from(matches!(req, Self::Kill { .. } | Self::Restart { .. }));
        arity(takes)?;
        Ok(req)
    }
}

/// Starts the reader when stdin is a pipe or our foreground terminal;
/// returns whether it did.
pub fn spawn(tx: mpsc::Sender<DevEvent>, console: Console) -> bool {
    if !readable_stdin() {
        return false;
    }
    let started = std::thread::Builder::new()
        .name("mero-keys".into())
        .spawn(move || read_lines(&tx, &console));
    started.is_ok()
}

fn read_lines(tx: &mpsc::Sender<DevEvent>, console: &Console) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match ControlRequest::parse_line(line) {
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if tx.send(DevEvent::Control(request, reply)).is_err() {
                    break;
                }
                // The session prints the answer; waiting keeps one command
                // at a time and the console in order.
                let _ = answer.blocking_recv();
            }
            Err(help) if help == KEY_HELP => console.info(KEY_HELP),
            Err(e) => console.error(&e),
        }
    }
}

#[cfg(unix)]
fn readable_stdin() -> bool {
    // SAFETY: fstat/isatty/tcgetpgrp/getpgrp on fd 0 with a zeroed stat
    // buffer we own; none of them keeps a pointer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(0, &mut st) != 0 {
            return false;
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
            return true;
        }
        libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp()
    }
}

#[cfg(not(unix))]
fn readable_stdin() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terminal_lines() {
        let p = ControlRequest::parse_line;
        assert_eq!(p("p 3"), Ok(ControlRequest::Partition { nodes: vec![3] }));
        assert_eq!(
            p(" partition 2 3 "),
            Ok(ControlRequest::Partition { nodes: vec![2, 3] })
        );
        assert_eq!(p("h"), Ok(ControlRequest::Heal));
        assert_eq!(p("HEAL"), Ok(ControlRequest::Heal));
        assert_eq!(p("k 3"), Ok(ControlRequest::Kill { node: 3 }));
        assert_eq!(p("r 3"), Ok(ControlRequest::Restart { node: 3 }));
        assert_eq!(
            p("d 2 200ms"),
            Ok(ControlRequest::Delay { node: 2, ms: 200 })
        );
        assert_eq!(
            p("delay 2 1.5s"),
            Ok(ControlRequest::Delay { node: 2, ms: 1500 })
        );
        assert_eq!(
            p("l 2 10%"),
            Ok(ControlRequest::Loss {
                node: 2,
                percent: 10.0
            })
        );
        assert_eq!(p("a"), Ok(ControlRequest::AddNode));
        assert_eq!(p("add-node"), Ok(ControlRequest::AddNode));
        assert_eq!(p("s"), Ok(ControlRequest::Status));
        assert_eq!(p("?"), Err(KEY_HELP.to_owned()));
        for bad in [
            "p", "p 0", "p x", "k", "k 1 2", "h 1", "d 2", "d 2 fast", "l 2 150%", "zap",
        ] {
            assert!(p(bad).is_err(), "{bad} parsed");
        }
        assert!(p("zap").unwrap_err().contains("unknown command `zap`"));
    }
}

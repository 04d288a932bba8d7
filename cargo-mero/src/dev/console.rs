//! The dev console: one stream for the nodes' logs, events and our own
//! progress lines, each with a colored per-node prefix.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

/// How much the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: app logs, warnings and errors, our own summaries.
    Quiet,
    /// Default: plus node lifecycle lines and app events.
    Normal,
    /// `-v`: plus the node's debug logs.
    Verbose,
    /// `-vv`: everything the nodes log.
    Trace,
}

impl Verbosity {
    /// The `RUST_LOG` filter the nodes run with.
    pub fn node_filter(self) -> &'static str {
        match self {
            Verbosity::Quiet => "warn,app=info",
            Verbosity::Normal => "warn,app=info,mero_node=info,mero_sync=info",
            Verbosity::Verbose => "info,app=info,mero_node=debug,mero_sync=debug",
            Verbosity::Trace => "debug",
        }
    }
}

const NODE_COLORS: &[&str] = &["36", "35", "33", "32", "34", "96", "95", "93"];

/// Where every dev line goes (stdout; spinners on stderr).
#[derive(Clone)]
pub struct Console {
    color: bool,
    verbosity: Verbosity,
    bars: MultiProgress,
}

/// A node's log line, parsed from `tracing`'s default format.
struct LogLine<'a> {
    level: &'a str,
    target: &'a str,
    message: &'a str,
}

fn parse(line: &str) -> Option<LogLine<'_>> {
    let (_timestamp, rest) = line.split_once(' ')?;
    let rest = rest.trim_start();
    let (level, rest) = rest.split_once(' ')?;
    if !matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") {
        return None;
    }
    let (target, message) = rest.trim_start().split_once(": ")?;
    Some(LogLine {
        level,
        target,
        message,
    })
}

impl Console {
    /// A console; `color` adds ANSI colors.
    pub fn new(color: bool, verbosity: Verbosity) -> Self {
        Self {
            color,
            verbosity,
            bars: MultiProgress::new(),
        }
    }

    /// Whether output is colored.
    pub fn color(&self) -> bool {
        self.color
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn emit(&self, text: &str) {
        // Bars are hidden while the line prints, then redrawn below it.
        self.bars.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        });
    }

    fn prefix(&self, node: usize) -> String {
        let code = NODE_COLORS[(node - 1) % NODE_COLORS.len()];
        self.paint(code, &format!("node{node} │"))
    }

    /// One line a node wrote.
    pub fn node_line(&self, node: usize, line: &str) {
        let Some(log) = parse(line) else {
            // Not a log record: a panic message, a startup line.
            if self.verbosity >= Verbosity::Normal || line.contains("panicked") {
                self.emit(&format!("{} {line}", self.prefix(node)));
            }
            return;
        };
        let text = if log.target == "app" {
            // `app::log!`: the message, without the context/method fields.
            let msg = log
                .message
                .rfind(" context=")
                .map_or(log.message, |i| &log.message[..i]);
            format!("{} {}", self.paint("1;97", "log"), self.paint("1", msg))
        } else {
            let shown = match log.level {
                "ERROR" | "WARN" => true,
                "INFO" => self.verbosity >= Verbosity::Normal,
                _ => self.verbosity >= Verbosity::Verbose,
            };
            if !shown {
                return;
            }
            let level = match log.level {
                "ERROR" => self.paint("1;31", "error"),
                "WARN" => self.paint("33", "warn"),
                other => self.paint("2", &other.to_ascii_lowercase()),
            };
            format!("{level} {}", self.paint("2", log.message))
        };
        self.emit(&format!("{} {text}", self.prefix(node)));
    }

    /// An event a node delivered to subscribers.
    pub fn event(&self, node: usize, kind: &str, data: &str, local: bool) {
        if self.verbosity < Verbosity::Normal {
            return;
        }
        let origin = if local { "local" } else { "remote" };
        self.emit(&format!(
            "{} {} {} {data} {}",
            self.prefix(node),
            self.paint("1;32", "event"),
            self.paint("1", kind),
            self.paint("2", &format!("({origin})"))
        ));
    }

    /// One of our own status lines.
    pub fn info(&self, text: &str) {
        self.emit(&format!("{} {text}", self.paint("1;34", "  mero │")));
    }

    /// A success line.
    pub fn ok(&self, text: &str) {
        self.emit(&format!("{} {}", self.paint("1;32", "  mero │"), text));
    }

    /// A problem.
    pub fn error(&self, text: &str) {
        self.emit(&format!(
            "{} {}",
            self.paint("1;31", "  mero │"),
            self.paint("1;31", text)
        ));
    }

    /// Text as it is (compiler output, tables).
    pub fn raw(&self, text: &str) {
        self.emit(text.trim_end());
    }

    /// A spinner with a message; finish it with `finish_and_clear`.
    pub fn spinner(&self, message: String) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("a valid template"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// Where everything of a started network is and how to call it: the node
/// table, context, app, network file, pages and an example call.
pub(super) fn announcement(
    net: &crate::network::DevNetwork,
    app: &crate::build::BuildOutput,
    network_file: &std::path::Path,
    pages: bool,
) -> String {
    use super::session::ws_base;
    let mut t = String::from("\n");
    let rows: Vec<[String; 4]> = net
        .nodes
        .iter()
        .map(|n| {
            [
                n.index.to_string(),
                n.rpc_url.clone(),
                format!("{}/ws", ws_base(&n.rpc_url)),
                n.member_key.clone(),
            ]
        })
        .collect();
    let header = ["node", "RPC URL", "WebSocket", "member key"].map(str::to_owned);
    let width = |c: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[c].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in std::iter::once(&header).chain(&rows) {
        t += &format!("  {:<w0$}  {:<w1$}  {:<w2$}  {}\n", r[0], r[1], r[2], r[3]);
    }
    t += &format!(
        "\n  context  {}\n  app      {} ({})\n",
        net.context, net.app, app.package
    );
    t += &format!("  network  {}\n", network_file.display());
    if pages {
        t += "\n  pages    one user per node (open two side by side); they reload on save\n";
        for n in &net.nodes {
            if let Some(url) = &n.page_url {
                t += &format!("    node {}  {url}\n", n.index);
            }
        }
    }
    // The mutating method with the most parameters shows the most;
    // handlers and private methods are for nodes, not clients.
    let example = app
        .abi
        .kinds()
        .filter(|(_, kind)| *kind == mero_abi::abi::MethodKind::Mutating)
        .map(|(m, _)| m)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .max_by_key(|m| m.params.len());
    if let Some(m) = example {
        let args = example_args(m);
        let n1 = &net.nodes[0];
        t += &format!("\n  try  cargo mero call {} '{args}' --node 1\n", m.name);
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
            "params": {"context": net.context, "method": m.name, "args": args}});
        t += &format!(
            "       curl -s {}/jsonrpc -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{body}'\n",
            n1.rpc_url, n1.admin_token
        );
    }
    t
}

/// Placeholder arguments for an example call of `m`.
fn example_args(m: &mero_abi::MethodAbi) -> Value {
    let mut args = serde_json::Map::new();
    for p in &m.params {
        let v = match p.ty.trim_start_matches('&') {
            "str" | "String" => Value::from(p.name.as_str()),
            "bool" => Value::from(true),
            "f32" | "f64" => Value::from(1.5),
            t if t.starts_with('u') || t.starts_with('i') => Value::from(1),
            _ => Value::Null,
        };
        args.insert(p.name.clone(), v);
    }
    Value::Object(args)
}

/// Prints the context's events as node `index` delivers them on `url`
/// (its WebSocket), until it stops.
pub(super) fn subscribe_events(index: usize, url: String, console: &Console) {
    let console = console.clone();
    std::thread::spawn(move || {
        let Ok((mut ws, _)) = tungstenite::connect(url.as_str()) else {
            return;
        };
        while let Ok(msg) = ws.read() {
            let tungstenite::Message::Text(text) = msg else {
                continue;
            };
            let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            // Notifications: {"method": "event", "params": <item>}.
            let ev = &msg["params"];
            if msg["method"] == "event"
                && let Some(kind) = ev["kind"].as_str()
            {
                console.event(
                    index,
                    kind,
                    &ev["data"].to_string(),
                    ev["local"].as_bool().unwrap_or(false),
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tracing_lines() {
        let l =
            parse("2026-11-22T03:04:05.123Z  INFO app: set k context=ab method=\"set\"").unwrap();
        assert_eq!((l.level, l.target), ("INFO", "app"));
        assert_eq!(l.message, "set k context=ab method=\"set\"");
        assert!(parse("merod listening on http://127.0.0.1:1").is_none());
    }
}

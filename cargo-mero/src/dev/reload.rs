//! The dev reload signal: a tiny Server-Sent Events endpoint served by
//! `cargo mero dev` itself on loopback, which the pages it serves listen
//! to (through a script injected into their dev copy only, see
//! [`super::pages`]).
//!
//! `GET /reload` is the event stream: `hello` with the current version on
//! connect, `reload` with the new one after each rebuild. `GET /version`
//! answers `{"version": n}`. Both answer CORS only for the nodes' origins
//! (the pages are served by the nodes, the signal by this process).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often open streams get a comment, so closed pages are noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Shared {
    version: AtomicU64,
    origins: Mutex<Vec<String>>,
    streams: Mutex<Vec<TcpStream>>,
}

impl Shared {
    /// Writes `msg` to every open stream; drops the ones whose page went
    /// away (it closed its end, or the write fails).
    fn broadcast(&self, msg: &str) -> usize {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain_mut(|s| {
            !closed(s) && s.write_all(msg.as_bytes()).and_then(|()| s.flush()).is_ok()
        });
        streams.len()
    }
}

/// Whether the page closed its end: a page sends nothing on the stream,
/// so anything readable is the end of it.
fn closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let gone = !matches!(s.peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    gone || s.set_nonblocking(false).is_err()
}

/// The reload endpoint of one dev session.
pub struct ReloadServer {
    port: u16,
    shared: Arc<Shared>,
}

impl ReloadServer {
    /// Listens on a port the OS picks, on loopback.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = accept.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        let beat = Arc::downgrade(&shared);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(KEEPALIVE);
                let Some(shared) = beat.upgrade() else { break };
                shared.broadcast(": keep-alive\n\n");
            }
        });
        Ok(Self { port, shared })
    }

    /// The event stream's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/reload", self.port)
    }

    /// The origins whose pages may listen (the nodes' `http://host:port`).
    pub fn allow(&self, origins: Vec<String>) {
        *self
            .shared
            .origins
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = origins;
    }

    /// Tells every open page to reload; returns how many were listening.
    pub fn reload(&self, reason: &str) -> usize {
        let v = self.shared.version.fetch_add(1, Ordering::SeqCst) + 1;
        let reason = serde_json::to_string(reason).expect("strings serialize");
        let data = format!("{{\"version\":{v},\"reason\":{reason}}}");
        self.shared
            .broadcast(&format!("event: reload\ndata: {data}\n\n"))
    }

    /// The script a dev page loads: reloads on `reload`, and on a `hello`
    /// with another version than the one it first saw (a reload it missed
    /// while reconnecting). Before reloading it refetches the page's own
    /// files past the browser's cache: a reload revalidates only the page
    /// itself, and the node's `Last-Modified` alone lets a browser keep a
    /// script it fetched moments ago.
    pub fn script(&self) -> String {
        let url = serde_json::to_string(&self.url()).expect("strings serialize");
        format!(
            "<script>/* cargo mero dev: reloads this page when the front end or the app is rebuilt; not in `cargo mero build` output */\n\
             (() => {{ const s = new EventSource({url}); let seen;\n\
             const reload = async () => {{ const own = performance.getEntriesByType(\"resource\").map((e) => e.name).filter((u) => u.startsWith(location.origin + \"/app/\"));\n\
             await Promise.all(own.map((u) => fetch(u, {{ cache: \"reload\" }}).catch(() => {{}}))); location.reload(); }};\n\
             s.addEventListener(\"hello\", (e) => {{ const v = JSON.parse(e.data).version; if (seen !== undefined && v !== seen) reload(); seen = v; }});\n\
             s.addEventListener(\"reload\", reload); }})();</script>\n"
        )
    }
}

/// Answers one connection: reads the request head, then streams or answers.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut origin = None;
    let mut head = request_line.len();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) => head += n,
        }
        if head > 16 * 1024 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("origin")
        {
            origin = Some(value.trim().to_owned());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let allowed = shared
        .origins
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let cors = match &origin {
        None => String::new(),
        Some(o) if allowed.contains(o) => {
            format!("Access-Control-Allow-Origin: {o}\r\nVary: Origin\r\n")
        }
        Some(_) => {
            respond(
                stream,
                "403 Forbidden",
                "",
                "text/plain",
                "not a dev node's page\n",
            );
            return;
        }
    };
    let version = shared.version.load(Ordering::SeqCst);
    match (method, path) {
        ("GET", "/reload") => {
            let mut stream = stream;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n{cors}\r\nretry: 1000\n\nevent: hello\ndata: {{\"version\":{version}}}\n\n"
            );
            if stream.write_all(head.as_bytes()).is_ok() && stream.flush().is_ok() {
                shared
                    .streams
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(stream);
            }
        }
        ("GET", "/version") => respond(
            stream,
            "200 OK",
            &cors,
            "application/json",
            &format!("{{\"version\":{version}}}"),
        ),
        _ => respond(
            stream,
            "404 Not Found",
            &cors,
            "text/plain",
            "no such path\n",
        ),
    }
}

fn respond(mut stream: TcpStream, status: &str, cors: &str, kind: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n{cors}\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(port: u16, path: &str, origin: Option<&str>) -> TcpStream {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{origin}\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Reads until `needle` has arrived.
    fn read_until(s: &mut TcpStream, needle: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = s.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn streams_reloads_to_pages_of_allowed_origins() {
        let server = ReloadServer::start().unwrap();
        let port = server.port;
        server.allow(vec!["http://127.0.0.1:1".into()]);
        let mut page = get(port, "/reload", Some("http://127.0.0.1:1"));
        let head = read_until(&mut page, "event: hello\ndata: {\"version\":0}\n\n");
        assert!(
            head.contains("Access-Control-Allow-Origin: http://127.0.0.1:1"),
            "{head}"
        );
        assert!(head.contains("text/event-stream"), "{head}");
        // Wait until the server holds the stream, then signal.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.shared.streams.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.reload("web"), 1);
        read_until(
            &mut page,
            "event: reload\ndata: {\"version\":1,\"reason\":\"web\"}\n\n",
        );
        assert_eq!(server.shared.version.load(Ordering::SeqCst), 1);

        let mut other = get(port, "/reload", Some("http://evil.example"));
        assert!(read_until(&mut other, "\r\n").starts_with("HTTP/1.1 403"));
        let mut v = get(port, "/version", None);
        assert!(read_until(&mut v, "}").ends_with("{\"version\":1}"));
        let mut missing = get(port, "/nope", None);
        assert!(read_until(&mut missing, "\r\n").starts_with("HTTP/1.1 404"));
        // A page that went away is not counted at the next signal.
        drop(page);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(server.reload("app"), 0);
        assert!(server.script().contains(&server.url()));
    }
}

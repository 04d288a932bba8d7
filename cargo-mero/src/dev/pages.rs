//! The front end in a dev session: built like `cargo mero build` builds it,
//! then copied into `<dev dir>/web/`, which every node serves under `/app/`
//! (`server.static_dir`). Only that copy loads the reload script
//! ([`ReloadServer::script`]): what `npm run build` wrote is what
//! production serves, with nothing of the dev session in it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::DevError;
use super::console::Console;
use super::reload::ReloadServer;
use crate::build::BuildError;
use crate::build::web::{Frontend, WebOutput};

/// How long a dev page's client token lives (the node's maximum, 30 days):
/// a page left open keeps working.
const TOKEN_SECS: u64 = 30 * 24 * 3600;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevError + '_ {
    move |source| DevError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The pages of a dev session.
pub(super) struct Pages {
    pub(super) frontend: Frontend,
    /// What the nodes serve.
    pub(super) serve_dir: PathBuf,
    pub(super) reload: ReloadServer,
}

/// Percent-encodes a query parameter value.
fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL of node `index`'s page, for `context`, acting with `token`.
pub(super) fn page_url(node_url: &str, context: &str, token: &str, index: usize) -> String {
    format!(
        "{node_url}/app/index.html?url={}&context={}&token={}&node={index}",
        query_value(node_url),
        query_value(context),
        query_value(token)
    )
}

/// `POST /admin/tokens`: a client token of `context` for the page of the
/// node at `url`.
pub(super) fn client_token(url: &str, admin: &str, context: &str) -> Result<String, DevError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let fail = |why: String| DevError::Node(format!("issuing a client token on {url}: {why}"));
    let body = mero_api::IssueTokenRequest {
        context: mero_api::Id::from(context),
        member: None,
        methods: None,
        ttl_secs: Some(TOKEN_SECS),
    };
    let mut resp = agent
        .post(&format!("{url}/admin/tokens"))
        .header("Authorization", &format!("Bearer {admin}"))
        .send_json(&body)
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| fail(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(fail(format!("status {status}, answer {text:.200}")));
    }
    let tokens: mero_api::Tokens =
        serde_json::from_str(&text).map_err(|e| fail(format!("{e} in {text:.200}")))?;
    Ok(tokens.access_token)
}

/// Puts `script` into an HTML page: before `</head>`, else before
/// `<body`, else first.
fn inject(html: &str, script: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let at = lower
        .find("</head")
        .or_else(|| lower.find("<body"))
        .unwrap_or(0);
    format!("{}{script}{}", &html[..at], &html[at..])
}

fn is_html(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

/// Every file under `root` (relative paths), skipping the `skip` paths.
fn files_under(root: &Path, skip: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Makes `to` hold what `from` holds (HTML pages with `script` injected),
/// writing only files whose contents changed and removing the rest.
/// Returns how many files it wrote. A rewritten file's modification time
/// moves at least a second past the old one: the node's `Last-Modified`
/// has whole seconds, and a page reloaded within the second would
/// otherwise keep its cached copy.
pub(super) fn sync(
    from: &Path,
    to: &Path,
    skip: &[PathBuf],
    script: &str,
) -> Result<usize, DevError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let wanted = files_under(from, skip).map_err(io(from))?;
    let mut written = 0;
    for rel in &wanted {
        let src = from.join(rel);
        let mut bytes = std::fs::read(&src).map_err(io(&src))?;
        if is_html(rel)
            && let Ok(text) = std::str::from_utf8(&bytes)
        {
            bytes = inject(text, script).into_bytes();
        }
        let dest = to.join(rel);
        let old = std::fs::read(&dest).ok();
        if old.as_deref() == Some(&bytes[..]) {
            continue;
        }
        let parent = dest.parent().expect("under the serve dir");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let old_mtime = std::fs::metadata(&dest).and_then(|m| m.modified()).ok();
        let tmp = parent.join(format!(
            ".{}.tmp",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        ));
        std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
        let now = SystemTime::now();
        let mtime = old_mtime
            .map(|t| t + Duration::from_secs(1))
            .filter(|t| *t > now)
            .unwrap_or(now);
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(mtime))
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
        written += 1;
    }
    for rel in files_under(to, &[]).map_err(io(to))? {
        if !wanted.contains(&rel) {
            let path = to.join(&rel);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(written)
}

impl Pages {
    /// The pages of the front end, served from `<dev_dir>/web`.
    pub(super) fn new(frontend: Frontend, dev_dir: &Path) -> Result<Self, DevError> {
        let reload = ReloadServer::start().map_err(io(dev_dir))?;
        Ok(Self {
            frontend,
            serve_dir: dev_dir.join("web"),
            reload,
        })
    }

    /// Builds the front end (quietly; its output is shown only when it
    /// fails) and refreshes the served copy. `None` when the build failed:
    /// the nodes keep serving the previous pages.
    pub(super) fn rebuild(
        &self,
        package: &str,
        bindings: &Path,
        console: &Console,
    ) -> Option<(WebOutput, Duration)> {
        let t0 = Instant::now();
        let bar = console.spinner("building the front end".into());
        let built = self.frontend.build(package, bindings, true);
        bar.finish_and_clear();
        let out = match built {
            Ok(out) => out,
            Err(e) => {
                if let BuildError::Web {
                    output: Some(o), ..
                } = &e
                {
                    console.raw(o);
                }
                console.error(&format!(
                    "{e}\nthe pages stay as they were: fix it and save"
                ));
                return None;
            }
        };
        // With no build step the source is web/ itself: skip what npm or
        // an editor keeps there.
        let skip = if out.built {
            Vec::new()
        } else {
            self.frontend.outputs()
        };
        let script = self.reload.script();
        match sync(&out.dir, &self.serve_dir, &skip, &script) {
            Ok(_) => Some((out, t0.elapsed())),
            Err(e) => {
                console.error(&format!("copying the front end to the nodes: {e}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_carry_the_node_context_and_token() {
        let url = page_url("http://127.0.0.1:5000", "Ctx1", "a.b-c_d", 2);
        assert_eq!(
            url,
            "http://127.0.0.1:5000/app/index.html?url=http%3A%2F%2F127.0.0.1%3A5000&context=Ctx1&token=a.b-c_d&node=2"
        );
    }

    #[test]
    fn scripts_go_into_the_head() {
        let s = "<script>x</script>";
        assert_eq!(
            inject("<html><HEAD><title>t</title></HEAD><body></body>", s),
            "<html><HEAD><title>t</title><script>x</script></HEAD><body></body>"
        );
        assert_eq!(inject("<p>hi", s), "<script>x</script><p>hi");
    }

    #[test]
    fn sync_copies_changes_injects_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("dist"), dir.path().join("serve"));
        std::fs::create_dir_all(from.join("assets")).unwrap();
        std::fs::create_dir_all(from.join("node_modules")).unwrap();
        std::fs::write(from.join("index.html"), "<head></head>").unwrap();
        std::fs::write(from.join("assets/main.js"), "1").unwrap();
        std::fs::write(from.join("node_modules/x.js"), "skip").unwrap();
        let skip = [from.join("node_modules")];
        assert_eq!(sync(&from, &to, &skip, "<s>").unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(to.join("index.html")).unwrap(),
            "<head><s></head>"
        );
        assert!(!to.join("node_modules").exists());
        let first = std::fs::metadata(to.join("assets/main.js"))
            .unwrap()
            .modified()
            .unwrap();
        // Nothing changed: nothing written.
        assert_eq!(sync(&from, &to, &skip, "<s>").unwrap(), 0);
        std::fs::write(from.join("assets/main.js"), "2").unwrap();
        std::fs::remove_file(from.join("index.html")).unwrap();
        assert_eq!(sync(&from, &to, &skip, "<s>").unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(to.join("assets/main.js")).unwrap(),
            "2"
        );
        assert!(!to.join("index.html").exists());
        let second = std::fs::metadata(to.join("assets/main.js"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(second >= first + Duration::from_secs(1));
    }
}

//! An app's front end: the `web/` directory beside its Cargo.toml.
//!
//! With a `web/package.json` that has a `build` script the front end has a
//! build step: its npm packages are installed when `node_modules` is
//! missing or the manifest or lock changed, the app's TypeScript bindings
//! are copied to `web/src/generated/<name>.ts` (where the page imports
//! them), and `npm run build` writes `web/dist`. Without one, `web/` is
//! served as it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::Value;

use super::{BuildError, io, write_atomic};

/// The front end's directory, beside the app's Cargo.toml.
pub const WEB_DIR: &str = "web";
/// Where, under `web/`, the bindings are copied.
pub const GENERATED_DIR: &str = "src/generated";
/// What `npm run build` must write, under `web/`.
pub const DIST_DIR: &str = "dist";
/// Under `node_modules`: the hash of the manifest and lock last installed.
const STAMP: &str = ".mero-install";

/// The result of building a front end.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebOutput {
    /// What to serve: `web/dist` after a build step, else `web/`.
    pub dir: PathBuf,
    /// Whether a build step ran ([`Frontend::has_build`]).
    pub built: bool,
    /// Whether npm packages were installed this time.
    pub installed: bool,
    /// The copy of the bindings the page imports (with a build step).
    pub bindings: Option<PathBuf>,
}

/// An app's front end.
#[derive(Debug, Clone)]
pub struct Frontend {
    /// `web/`.
    pub dir: PathBuf,
    /// Whether it has a build step (a `package.json` with a `build`
    /// script).
    pub has_build: bool,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&(p.len() as u64).to_le_bytes());
        all.extend_from_slice(p);
    }
    mero_node::ids::sha256(&all)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Frontend {
    /// The front end of the app in `project_dir`, if it has one.
    pub fn find(project_dir: &Path) -> Option<Self> {
        let dir = project_dir.join(WEB_DIR);
        if !dir.is_dir() {
            return None;
        }
        // An unreadable manifest counts as a build step: its build then
        // says what is wrong with it.
        let has_build = std::fs::read(dir.join("package.json")).is_ok_and(|m| {
            serde_json::from_slice::<Value>(&m)
                .ok()
                .is_none_or(|m| m["scripts"]["build"].is_string())
        });
        Some(Self { dir, has_build })
    }

    /// What to serve.
    pub fn root(&self) -> PathBuf {
        if self.has_build {
            self.dir.join(DIST_DIR)
        } else {
            self.dir.clone()
        }
    }

    /// Paths under `web/` that builds write (or npm does): a change there
    /// is no edit of the front end.
    pub fn outputs(&self) -> Vec<PathBuf> {
        if !self.has_build {
            return vec![self.dir.join("node_modules")];
        }
        ["node_modules", DIST_DIR, GENERATED_DIR, "package-lock.json"]
            .iter()
            .map(|p| self.dir.join(p))
            .collect()
    }

    /// Builds the front end: installs its packages if needed, copies the
    /// bindings in and runs `npm run build`. `capture` keeps npm's output
    /// for the error instead of letting it through (to stderr: stdout may
    /// carry `--json`).
    pub fn build(
        &self,
        package: &str,
        bindings: &Path,
        capture: bool,
    ) -> Result<WebOutput, BuildError> {
        if !self.has_build {
            return Ok(WebOutput {
                dir: self.dir.clone(),
                built: false,
                installed: false,
                bindings: None,
            });
        }
        check_npm(&self.dir)?;
        let installed = self.install(capture)?;
        let generated = self.dir.join(GENERATED_DIR).join(format!("{package}.ts"));
        let text = std::fs::read(bindings).map_err(io(bindings))?;
        // Rewritten only when it changed, so watchers and bundlers see no
        // edit that is none.
        if std::fs::read(&generated).ok().as_deref() != Some(&text[..]) {
            let parent = generated.parent().expect("under web/");
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            write_atomic(&generated, &text)?;
        }
        npm(
            &self.dir,
            &["run", "--silent", "build"],
            "npm run build",
            capture,
        )?;
        let dist = self.dir.join(DIST_DIR);
        if !dist.join("index.html").is_file() {
            return Err(BuildError::Web {
                step: "npm run build".into(),
                message: format!(
                    "it wrote no {}: the front end's build script must write web/{DIST_DIR}/index.html",
                    dist.join("index.html").display()
                ),
                output: None,
            });
        }
        Ok(WebOutput {
            dir: dist,
            built: true,
            installed,
            bindings: Some(generated),
        })
    }

    /// `npm install` when `node_modules` is missing or the manifest or lock
    /// changed since the last install; then builds local packages it links
    /// (`file:` dependencies, such as a checkout's `@mero/client`) that
    /// were never built. Returns whether it installed.
    fn install(&self, capture: bool) -> Result<bool, BuildError> {
        let manifest_path = self.dir.join("package.json");
        let stamp_path = self.dir.join("node_modules").join(STAMP);
        let current = || -> Result<String, BuildError> {
            let manifest = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
            let lock = std::fs::read(self.dir.join("package-lock.json")).unwrap_or_default();
            Ok(sha256_hex(&[&manifest, &lock]))
        };
        let stamp = std::fs::read_to_string(&stamp_path).ok();
        let installed = stamp.as_deref() != Some(current()?.as_str());
        if installed {
            if !capture {
                eprintln!("  Installing the front end's npm packages (web/)");
            }
            npm(
                &self.dir,
                &["install", "--no-audit", "--no-fund", "--loglevel=error"],
                "npm install",
                capture,
            )?;
        }
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(&manifest_path).map_err(io(&manifest_path))?)
                .map_err(|e| BuildError::Web {
                    step: "reading web/package.json".into(),
                    message: e.to_string(),
                    output: None,
                })?;
        for (name, spec) in ["dependencies", "devDependencies"]
            .iter()
            .filter_map(|k| manifest[k].as_object())
            .flatten()
        {
            if spec.as_str().is_some_and(|s| s.starts_with("file:")) {
                build_linked(&self.dir.join("node_modules").join(name), name, capture)?;
            }
        }
        if installed {
            write_atomic(&stamp_path, current()?.as_bytes())?;
        }
        Ok(installed)
    }
}

/// The files a package's manifest says it provides.
fn entry_files(manifest: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["main", "module", "types"] {
        if let Some(s) = manifest[k].as_str() {
            out.push(s.to_owned());
        }
    }
    let dot = match &manifest["exports"] {
        Value::Object(o) if o.contains_key(".") => &o["."],
        other => other,
    };
    match dot {
        Value::String(s) => out.push(s.clone()),
        Value::Object(o) => out.extend(o.values().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    out
}

/// Builds a linked local package that has a build script and lacks a file
/// its manifest promises (npm links `file:` dependencies; it builds none).
fn build_linked(link: &Path, name: &str, capture: bool) -> Result<(), BuildError> {
    let Ok(dir) = link.canonicalize() else {
        return Ok(());
    };
    let Ok(text) = std::fs::read(dir.join("package.json")) else {
        return Ok(());
    };
    let Ok(manifest) = serde_json::from_slice::<Value>(&text) else {
        return Ok(());
    };
    let missing = entry_files(&manifest).iter().any(|f| !dir.join(f).exists());
    if !missing || manifest["scripts"]["build"].as_str().is_none() {
        return Ok(());
    }
    if !capture {
        eprintln!(
            "  Building {name}, a local package the front end links ({})",
            dir.display()
        );
    }
    if !dir.join("node_modules").is_dir() {
        let install: &[&str] = if dir.join("package-lock.json").is_file() {
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"]
        } else {
            &["install", "--no-audit", "--no-fund", "--loglevel=error"]
        };
        npm(&dir, install, &format!("npm install in {name}"), capture)?;
    }
    npm(
        &dir,
        &["run", "build"],
        &format!("npm run build in {name}"),
        capture,
    )
}

fn check_npm(web: &Path) -> Result<(), BuildError> {
    match Command::new("npm")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(BuildError::Tool(format!(
            "`npm --version` failed ({s}); the front end in {} needs a working Node.js 20 and npm",
            web.display()
        ))),
        Err(e) => Err(BuildError::Tool(format!(
            "the front end in {} has a build script, so building it needs npm, which cannot be run ({e}): install Node.js 20 and npm, then build again",
            web.display()
        ))),
    }
}

/// Runs `npm ARGS` in `dir`.
fn npm(dir: &Path, args: &[&str], step: &str, capture: bool) -> Result<(), BuildError> {
    let mut c = Command::new("npm");
    c.args(args).current_dir(dir).stdin(Stdio::null());
    let (ok, output) = if capture {
        let out = c
            .output()
            .map_err(|e| BuildError::Tool(format!("cannot run npm: {e}")))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), Some(text))
    } else {
        let status = c
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|e| BuildError::Tool(format!("cannot run npm: {e}")))?;
        (status.success(), None)
    };
    if ok {
        return Ok(());
    }
    Err(BuildError::Web {
        step: step.to_owned(),
        message: format!("see its output above (in {})", dir.display()),
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_files_come_from_main_types_and_exports() {
        let m = json!({"main": "dist/index.js", "types": "dist/index.d.ts",
            "exports": {".": {"import": "./dist/index.js", "types": "./dist/index.d.ts"}}});
        assert_eq!(
            entry_files(&m),
            [
                "dist/index.js",
                "dist/index.d.ts",
                "./dist/index.js",
                "./dist/index.d.ts"
            ]
        );
        assert_eq!(entry_files(&json!({"exports": "./x.js"})), ["./x.js"]);
        assert!(entry_files(&json!({"name": "x"})).is_empty());
    }

    #[test]
    fn finds_front_ends_and_what_they_serve() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Frontend::find(dir.path()).is_none());
        std::fs::create_dir(dir.path().join("web")).unwrap();
        let plain = Frontend::find(dir.path()).unwrap();
        assert!(!plain.has_build);
        assert_eq!(plain.root(), dir.path().join("web"));
        // A manifest without a build script (packages for tests, say).
        std::fs::write(dir.path().join("web/package.json"), "{}").unwrap();
        assert!(!Frontend::find(dir.path()).unwrap().has_build);
        std::fs::write(
            dir.path().join("web/package.json"),
            r#"{"scripts": {"build": "node build.mjs"}}"#,
        )
        .unwrap();
        let built = Frontend::find(dir.path()).unwrap();
        assert!(built.has_build);
        assert_eq!(built.root(), dir.path().join("web/dist"));
        assert!(
            built
                .outputs()
                .contains(&dir.path().join("web/src/generated"))
        );
    }
}

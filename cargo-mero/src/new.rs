//! `cargo mero new`: a new app project from an embedded template.
//!
//! Templates are `templates/<name>/` in this repository, embedded at build
//! time (see `templates/README.md` for the layout and variables).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use handlebars::Handlebars;
use serde::{Deserialize, Serialize};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The template used when none is given.
pub const DEFAULT_TEMPLATE: &str = "kv-store";
/// Files every template starts from.
const COMMON: &str = "_common";

/// What went wrong creating a project.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// No such template.
    #[error("no template `{name}`; available: {available}")]
    UnknownTemplate {
        /// What was asked for.
        name: String,
        /// What exists.
        available: String,
    },
    /// The name cannot be a package name.
    #[error("`{name}` cannot be a package name: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The destination has files in it.
    #[error("{0} already exists and is not empty; choose another name or --path")]
    NotEmpty(PathBuf),
    /// A template did not render (a bug in the template).
    #[error("template `{template}`, file {file}: {message}")]
    Render {
        /// Template.
        template: String,
        /// File.
        file: String,
        /// Handlebars' message.
        message: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NewError + '_ {
    move |source| NewError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    description: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// An embedded template.
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    /// Name, as `--template` takes it.
    pub name: &'static str,
    /// One line for `--list`.
    pub description: String,
    /// Template-specific variables.
    pub variables: BTreeMap<String, String>,
}

/// Every embedded template, sorted by name.
pub fn templates() -> Vec<Template> {
    let mut out: Vec<Template> = embedded::FILES
        .iter()
        .filter(|(t, path, _)| *path == "template.toml" && *t != COMMON)
        .map(|(name, _, text)| {
            // The manifests are ours and checked by this crate's tests.
            let m: Manifest = toml::from_str(text)
                .unwrap_or_else(|e| panic!("templates/{name}/template.toml: {e}"));
            Template {
                name,
                description: m.description,
                variables: m.variables,
            }
        })
        .collect();
    out.sort_by_key(|t| t.name);
    out
}

/// How the generated project depends on the SDK.
#[derive(Debug, Clone)]
pub enum SdkSource {
    /// A local checkout (`mero-sdk = { path = ... }`).
    Path(PathBuf),
    /// A registry version.
    Version(String),
}

impl SdkSource {
    /// The checkout `cargo-mero` was built from, when it is still there;
    /// otherwise the registry version matching this binary.
    pub fn detect() -> Self {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        match sdk.canonicalize() {
            Ok(p) if p.join("Cargo.toml").is_file() => SdkSource::Path(p),
            _ => SdkSource::Version(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    fn toml(&self) -> String {
        match self {
            // TOML basic strings take JSON's escapes for paths.
            SdkSource::Path(p) => format!(
                "{{ path = {} }}",
                serde_json::to_string(&p.display().to_string()).expect("strings serialize")
            ),
            SdkSource::Version(v) => format!("\"{v}\""),
        }
    }
}

/// How the generated project's network test depends on `mero-testnet`:
/// the `testnet/` beside a local SDK checkout, else the registry version
/// matching this binary.
fn testnet_dependency(sdk: &SdkSource) -> String {
    let beside = match sdk {
        SdkSource::Path(p) => p.parent().map(|w| w.join("testnet")),
        SdkSource::Version(_) => None,
    };
    match beside {
        Some(t) if t.join("Cargo.toml").is_file() => SdkSource::Path(t).toml(),
        _ => SdkSource::Version(env!("CARGO_PKG_VERSION").to_owned()).toml(),
    }
}

/// How a generated front end (`--template web`) depends on `@mero/client`.
#[derive(Debug, Clone)]
pub enum ClientSource {
    /// A local checkout (`"file:<dir>"`): npm links it, and `cargo mero
    /// build` builds it once if it was never built.
    Path(PathBuf),
    /// A registry version.
    Version(String),
}

impl ClientSource {
    /// The `clients/js` of the checkout `cargo-mero` was built from, when
    /// it is still there; otherwise the registry version matching this
    /// binary.
    pub fn detect() -> Self {
        let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/js");
        match client.canonicalize() {
            Ok(p) if p.join("package.json").is_file() => ClientSource::Path(p),
            _ => ClientSource::Version(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// The dependency as a JSON string, for package.json.
    fn json(&self) -> String {
        let spec = match self {
            ClientSource::Path(p) => format!("file:{}", p.display()),
            ClientSource::Version(v) => v.clone(),
        };
        serde_json::to_string(&spec).expect("strings serialize")
    }
}

/// Options of `cargo mero new`.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// Package name.
    pub name: String,
    /// Template name.
    pub template: String,
    /// Directory to create (default: `./NAME`).
    pub path: Option<PathBuf>,
    /// Where the SDK comes from.
    pub sdk: SdkSource,
    /// Where a front end's `@mero/client` comes from.
    pub client: ClientSource,
    /// Run `git init` unless the directory is already inside a repository.
    pub git: bool,
}

/// What `new` created.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOutput {
    /// The project directory.
    pub dir: PathBuf,
    /// Template used.
    pub template: String,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
    /// Whether `git init` ran.
    pub git_initialized: bool,
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];
const RESERVED_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "mero_sdk",
    "serde_json",
];
/// Type names a generated state struct must not take.
const TAKEN_TYPES: &[&str] = &[
    "Event",
    "Self",
    "Result",
    "Option",
    "Vec",
    "String",
    "Box",
    "Some",
    "None",
    "Ok",
    "Err",
    "Counter",
    "CounterError",
    "KvError",
    "ListError",
    "LwwRegister",
    "OwnedMap",
    "SortedMap",
    "UnorderedMap",
    "UnorderedSet",
    "Vector",
    "Text",
];

fn check_name(name: &str) -> Result<(), NewError> {
    let fail = |reason| {
        Err(NewError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return fail("it is empty");
    };
    if !first.is_ascii_alphabetic() {
        return fail("it must start with a letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return fail("use only letters, digits, `-` and `_`");
    }
    let ident = name.replace('-', "_");
    if KEYWORDS.contains(&ident.as_str()) {
        return fail("it is a Rust keyword");
    }
    if RESERVED_CRATES.contains(&ident.as_str()) {
        return fail("it would shadow a crate the app depends on");
    }
    Ok(())
}

/// `my-app` → `MyApp`, avoiding names the generated code already uses.
fn state_name(name: &str) -> String {
    let mut out: String = name
        .split(['-', '_'])
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            let first = c.next().expect("split parts are not empty");
            first.to_ascii_uppercase().to_string() + c.as_str()
        })
        .collect();
    if TAKEN_TYPES.contains(&out.as_str()) {
        out.push_str("App");
    }
    out
}

/// Renders a template into memory: (relative path, contents).
fn render(
    template: &Template,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, NewError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (t, path, text) in embedded::FILES {
        if (*t != COMMON && *t != template.name) || *path == "template.toml" {
            continue;
        }
        let (out_path, out_text) = match path.strip_suffix(".hbs") {
            Some(stripped) => {
                let text = hb
                    .render_template(text, vars)
                    .map_err(|e| NewError::Render {
                        template: template.name.to_owned(),
                        file: (*path).to_owned(),
                        message: e.to_string(),
                    })?;
                (stripped.to_owned(), text)
            }
            None => ((*path).to_owned(), (*text).to_owned()),
        };
        let out_path = out_path
            .split('/')
            .map(|part| match part.strip_prefix('_') {
                Some(rest) => format!(".{rest}"),
                None => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        // The template's own files come after `_common` only when sorted
        // that way; make the override explicit.
        if *t == COMMON && files.contains_key(&out_path) {
            continue;
        }
        files.insert(out_path, out_text);
    }
    Ok(files.into_iter().collect())
}

fn inside_git_repo(dir: &Path) -> bool {
    Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Creates a project.
pub fn new_project(opts: &NewOptions) -> Result<NewOutput, NewError> {
    check_name(&opts.name)?;
    let all = templates();
    let template = all
        .iter()
        .find(|t| t.name == opts.template)
        .ok_or_else(|| NewError::UnknownTemplate {
            name: opts.template.clone(),
            available: all.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
        })?;
    let dir = opts
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&opts.name));
    if dir.exists() {
        let mut entries = std::fs::read_dir(&dir).map_err(io(&dir))?;
        if entries.next().is_some() {
            return Err(NewError::NotEmpty(dir));
        }
    }

    let mut vars = template.variables.clone();
    vars.insert("name".into(), opts.name.clone());
    vars.insert("crate_name".into(), opts.name.replace('-', "_"));
    vars.insert("state".into(), state_name(&opts.name));
    vars.insert("sdk_dependency".into(), opts.sdk.toml());
    vars.insert("testnet_dependency".into(), testnet_dependency(&opts.sdk));
    vars.insert("client_dependency".into(), opts.client.json());
    vars.insert("description".into(), template.description.clone());
    // Everything renders before anything is written: a broken template
    // leaves no half-made project behind.
    let files = render(template, &vars)?;

    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    // Against a local SDK checkout, start from the checkout's lock file: the
    // project then builds with the exact dependency versions the SDK is
    // tested with (cargo drops the entries it does not need).
    if let SdkSource::Path(sdk) = &opts.sdk
        && let Some(lock) = sdk.parent().map(|w| w.join("Cargo.lock"))
        && lock.is_file()
    {
        let dest = dir.join("Cargo.lock");
        std::fs::copy(&lock, &dest).map_err(io(&dest))?;
    }
    let git_initialized = opts.git
        && !inside_git_repo(&dir)
        && Command::new("git")
            .args(["init", "-q"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
    Ok(NewOutput {
        dir,
        template: template.name.to_owned(),
        files: files.into_iter().map(|(p, _)| p).collect(),
        git_initialized,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_with_the_builtin_variables() {
        let names: Vec<_> = templates().iter().map(|t| t.name).collect();
        assert_eq!(names, ["chat", "counter", "kv-store", "web"]);
        for t in templates() {
            let mut vars = t.variables.clone();
            for k in [
                "name",
                "crate_name",
                "state",
                "sdk_dependency",
                "testnet_dependency",
                "client_dependency",
                "description",
            ] {
                vars.insert(k.into(), "x".into());
            }
            // A JSON string, as package.json takes it.
            vars.insert("client_dependency".into(), "\"file:/x\"".into());
            let files = render(&t, &vars).unwrap();
            let paths: Vec<_> = files.iter().map(|(p, _)| p.as_str()).collect();
            for f in [
                ".gitignore",
                "Cargo.toml",
                "README.md",
                "src/lib.rs",
                "tests/network.rs",
            ] {
                assert!(paths.contains(&f), "{}: {paths:?}", t.name);
            }
            if t.name == "web" {
                for f in ["web/index.html", "web/src/main.ts", "web/tsconfig.json"] {
                    assert!(paths.contains(&f), "{paths:?}");
                }
                let (_, manifest) = files.iter().find(|(p, _)| p == "web/package.json").unwrap();
                let manifest: serde_json::Value = serde_json::from_str(manifest).unwrap();
                assert_eq!(manifest["dependencies"]["@mero/client"], "file:/x");
                assert!(manifest["scripts"]["build"].is_string());
            }
        }
    }

    #[test]
    fn the_network_test_uses_the_checkouts_testnet() {
        let sdk = SdkSource::detect();
        let dep = testnet_dependency(&sdk);
        match sdk {
            SdkSource::Path(p) => {
                let testnet = p.parent().unwrap().join("testnet");
                assert!(dep.contains(&testnet.display().to_string()), "{dep}");
            }
            SdkSource::Version(v) => assert_eq!(dep, format!("\"{v}\"")),
        }
        let registry = SdkSource::Version("9.9.9".into());
        assert_eq!(
            testnet_dependency(&registry),
            format!("\"{}\"", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn names_are_checked_and_turned_into_types() {
        for bad in ["", "1app", "my app", "fn", "std", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("my-app_2").unwrap();
        assert_eq!(state_name("my-app_2"), "MyApp2");
        assert_eq!(state_name("counter"), "CounterApp");
        assert_eq!(state_name("event"), "EventApp");
    }
}

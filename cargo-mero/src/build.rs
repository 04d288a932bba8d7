//! `cargo mero build`: app crate → optimized WASM with its ABI embedded,
//! its TypeScript bindings, and its front end ([`web`]) when it has one.

pub mod web;

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Metadata, MetadataCommand, Package};
use mero_abi::AppAbi;
use serde::Serialize;

/// The WASM target apps compile to.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// What went wrong while building an app.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// cargo metadata failed.
    #[error("cannot read the cargo project: {0}")]
    Metadata(#[from] cargo_metadata::Error),
    /// The package could not be chosen.
    #[error("{0}")]
    Package(String),
    /// A tool could not be run or failed.
    #[error("{0}")]
    Tool(String),
    /// rustc rejected the app's code.
    #[error("compiling `{package}` for {WASM_TARGET} failed (see the errors above)")]
    Compile {
        /// The package.
        package: String,
        /// cargo's output, when it was captured ([`BuildOptions::capture`]).
        output: Option<String>,
    },
    /// The compiled module has no usable ABI.
    #[error("ABI: {0}")]
    Abi(#[from] mero_abi::abi::AbiError),
    /// wasm-opt failed.
    #[error("wasm-opt: {0}")]
    Optimize(String),
    /// A step of the front end's build failed.
    #[error("the front end's `{step}` failed: {message}")]
    Web {
        /// The step (`npm install`, `npm run build`, ...).
        step: String,
        /// What went wrong.
        message: String,
        /// npm's output, when it was captured ([`BuildOptions::capture`]).
        output: Option<String>,
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `-p`: package to build in a workspace.
    pub package: Option<String>,
    /// `--target-dir`.
    pub target_dir: Option<PathBuf>,
    /// wasm-opt level 0-4, or `None` to skip wasm-opt.
    pub opt_level: Option<u8>,
    /// `--features` passed on to cargo.
    pub features: Vec<String>,
    /// Pass `--quiet` to cargo.
    pub quiet: bool,
    /// Capture cargo's output instead of letting it through; a failed
    /// compile then carries it in [`BuildError::Compile`].
    pub capture: bool,
    /// `--color always|never` for cargo (default: cargo decides).
    pub color: Option<bool>,
    /// Also build the front end in `web/`, if the app has one
    /// ([`web::Frontend`]).
    pub frontend: bool,
}

/// The result of a build.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    /// Package name.
    pub package: String,
    /// The final module.
    pub wasm: PathBuf,
    /// The ABI as JSON.
    pub abi_path: PathBuf,
    /// The TypeScript bindings ([`crate::bindings`]).
    pub bindings: PathBuf,
    /// The front end, when it was built ([`BuildOptions::frontend`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<web::WebOutput>,
    /// Size as compiled by rustc.
    pub size_before: u64,
    /// Final size.
    pub size_after: u64,
    /// Content hash, as the node reports it.
    pub hash: String,
    /// Whether wasm-opt ran.
    pub optimized: bool,
    /// The ABI.
    #[serde(skip)]
    pub abi: AppAbi,
}

/// Picks the package to build: `-p`, else the package whose manifest was
/// given (or whose directory we are in).
fn select_package<'a>(meta: &'a Metadata, opts: &BuildOptions) -> Result<&'a Package, BuildError> {
    let members: Vec<&Package> = meta.workspace_packages();
    if let Some(name) = &opts.package {
        return members
            .into_iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| BuildError::Package(format!("no package `{name}` in this workspace")));
    }
    // The package whose manifest was given, or the nearest one above the
    // current directory (`root_package` needs a full resolve, which we skip).
    let manifest = match &opts.manifest_path {
        Some(m) => Some(m.canonicalize().map_err(io(m))?),
        None => std::env::current_dir().ok().and_then(|d| {
            d.ancestors()
                .map(|a| a.join("Cargo.toml"))
                .find(|m| m.is_file())
        }),
    };
    if let Some(manifest) = manifest
        && let Some(p) = members
            .iter()
            .find(|p| p.manifest_path.as_std_path() == manifest)
    {
        return Ok(p);
    }
    let apps: Vec<_> = members.iter().filter(|p| is_app(p)).collect();
    match apps.as_slice() {
        [one] => Ok(one),
        _ => Err(BuildError::Package(format!(
            "this is a workspace; choose the app with -p (apps here: {})",
            apps.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn package_dir(p: &Package) -> PathBuf {
    p.manifest_path
        .parent()
        .map(|d| d.as_std_path().to_owned())
        .unwrap_or_default()
}

fn is_app(p: &Package) -> bool {
    p.targets
        .iter()
        .any(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib"))
}

/// Where an app lives, for commands that work around its builds.
#[derive(Debug, Clone)]
pub struct Project {
    /// Package name.
    pub package: String,
    /// The directory holding its Cargo.toml.
    pub dir: PathBuf,
    /// Its cargo target directory (`--target-dir`, else cargo's).
    pub target_dir: PathBuf,
    /// Directories of the package and of every path dependency it reaches:
    /// the sources a change in which changes the app.
    pub sources: Vec<PathBuf>,
}

/// Finds the app [`build`] would build, and its local sources.
pub fn project(opts: &BuildOptions) -> Result<Project, BuildError> {
    let mut cmd = MetadataCommand::new();
    if let Some(m) = &opts.manifest_path {
        cmd.manifest_path(m);
    }
    let meta = cmd.exec()?;
    let pkg = select_package(&meta, opts)?;
    let dir_of = package_dir;
    // Walk the resolved graph from the app; keep packages with no registry
    // source, i.e. path dependencies.
    let mut sources = vec![dir_of(pkg)];
    if let Some(resolve) = &meta.resolve {
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![pkg.id.clone()];
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(node) = resolve.nodes.iter().find(|n| n.id == id) {
                todo.extend(node.deps.iter().map(|d| d.pkg.clone()));
            }
            if let Some(p) = meta.packages.iter().find(|p| p.id == id)
                && p.source.is_none()
                && p.id != pkg.id
            {
                sources.push(dir_of(p));
            }
        }
    }
    Ok(Project {
        package: pkg.name.to_string(),
        dir: dir_of(pkg),
        target_dir: opts
            .target_dir
            .clone()
            .unwrap_or_else(|| meta.target_directory.clone().into_std_path_buf()),
        sources,
    })
}

/// Makes sure the WASM target's standard library is installed.
fn ensure_target() -> Result<(), BuildError> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| BuildError::Tool(format!("cannot run rustc: {e}")))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .exists()
    {
        return Ok(());
    }
    eprintln!("    Installing the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| BuildError::Tool(format!("the {WASM_TARGET} target is missing and rustup could not be run ({e}); install it with your toolchain manager")))?;
    if !status.success() {
        return Err(BuildError::Tool(format!(
            "`rustup target add {WASM_TARGET}` failed"
        )));
    }
    Ok(())
}

/// Builds an app.
pub fn build(opts: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let mut cmd = MetadataCommand::new();
    cmd.no_deps();
    if let Some(m) = &opts.manifest_path {
        cmd.manifest_path(m);
    }
    let meta = cmd.exec()?;
    let pkg = select_package(&meta, opts)?;
    if !is_app(pkg) {
        return Err(BuildError::Package(format!(
            "`{}` is not an app: add `[lib] crate-type = [\"cdylib\", \"rlib\"]` to its Cargo.toml",
            pkg.name
        )));
    }
    let lib_name = pkg
        .targets
        .iter()
        .find(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib"))
        .map(|t| t.name.replace('-', "_"))
        .expect("is_app checked for a cdylib target");
    ensure_target()?;

    let target_dir: PathBuf = opts
        .target_dir
        .clone()
        .unwrap_or_else(|| meta.target_directory.clone().into_std_path_buf());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "-p",
        pkg.name.as_str(),
    ])
    .arg("--manifest-path")
    .arg(pkg.manifest_path.as_std_path())
    .arg("--target-dir")
    .arg(&target_dir);
    if !opts.features.is_empty() {
        c.arg("--features").arg(opts.features.join(","));
    }
    if opts.quiet {
        c.arg("--quiet");
    }
    if let Some(color) = opts.color {
        c.args(["--color", if color { "always" } else { "never" }]);
    }
    let (ok, output) = if opts.capture {
        let out = c
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| BuildError::Tool(format!("cannot run cargo: {e}")))?;
        (
            out.status.success(),
            Some(String::from_utf8_lossy(&out.stderr).into_owned()),
        )
    } else {
        let status = c
            .status()
            .map_err(|e| BuildError::Tool(format!("cannot run cargo: {e}")))?;
        (status.success(), None)
    };
    if !ok {
        return Err(BuildError::Compile {
            package: pkg.name.to_string(),
            output,
        });
    }
    let compiled = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{lib_name}.wasm"));
    let raw = std::fs::read(&compiled).map_err(io(&compiled))?;
    let fragments = mero_abi::wasm::custom_section(&raw, mero_abi::ABI_FRAGMENT_SECTION)?
        .ok_or_else(|| {
            BuildError::Abi(mero_abi::abi::AbiError(format!(
                "`{}` has no mero ABI: does it use #[app::state] and #[app::logic] from mero-sdk?",
                pkg.name
            )))
        })?;
    let abi = AppAbi::from_fragments(&fragments)?;

    let out_dir = target_dir.join("mero");
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    let wasm_path = out_dir.join(format!("{}.wasm", pkg.name));
    let optimized = match opts.opt_level {
        Some(level) => optimize(&compiled, &temp_path(&wasm_path), level)?,
        None => raw.clone(),
    };
    let abi_json = serde_json::to_vec_pretty(&abi).expect("ABIs serialize");
    // DWARF is useless to a node and often most of the module: drop it along
    // with the raw ABI fragments (wasm-opt keeps both).
    let dropped: Vec<String> = mero_abi::wasm::sections(&optimized)?
        .into_iter()
        .filter_map(|s| s.name)
        .filter(|n| n.starts_with(".debug") || n == mero_abi::ABI_FRAGMENT_SECTION)
        .collect();
    let dropped: Vec<&str> = dropped.iter().map(String::as_str).collect();
    let final_bytes = mero_abi::wasm::replace_custom_section(
        &optimized,
        &dropped,
        mero_abi::ABI_SECTION,
        &serde_json::to_vec(&abi).expect("ABIs serialize"),
    )?;
    write_atomic(&wasm_path, &final_bytes)?;
    let abi_path = out_dir.join(format!("{}.abi.json", pkg.name));
    write_atomic(&abi_path, &abi_json)?;
    let hash = mero_node::ids::AppHash(mero_node::ids::sha256(&final_bytes)).to_string();
    let bindings = out_dir.join(format!("{}.ts", pkg.name));
    let ts = crate::bindings::generate(&abi, pkg.name.as_str(), &hash);
    write_atomic(&bindings, ts.as_bytes())?;
    let web = match (opts.frontend, web::Frontend::find(&package_dir(pkg))) {
        (true, Some(front)) => Some(front.build(pkg.name.as_str(), &bindings, opts.capture)?),
        _ => None,
    };
    Ok(BuildOutput {
        package: pkg.name.to_string(),
        wasm: wasm_path,
        abi_path,
        bindings,
        web,
        size_before: raw.len() as u64,
        size_after: final_bytes.len() as u64,
        hash,
        optimized: opts.opt_level.is_some(),
        abi,
    })
}

/// A sibling path no concurrent build uses.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Writes via a temporary file and a rename, so readers (and concurrent
/// builds of the same app) never see a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn optimize(input: &Path, scratch: &Path, level: u8) -> Result<Vec<u8>, BuildError> {
    use wasm_opt::{Feature, OptimizationOptions};
    let mut o = match level {
        0 => OptimizationOptions::new_opt_level_0(),
        1 => OptimizationOptions::new_opt_level_1(),
        2 => OptimizationOptions::new_opt_level_2(),
        3 => OptimizationOptions::new_opt_level_3(),
        4 => OptimizationOptions::new_opt_level_4(),
        n => {
            return Err(BuildError::Optimize(format!(
                "--opt-level must be 0 to 4, not {n}"
            )));
        }
    };
    // The features rustc enables by default for wasm32-unknown-unknown.
    for f in [
        Feature::MutableGlobals,
        Feature::TruncSat,
        Feature::BulkMemory,
        Feature::SignExt,
        Feature::ReferenceTypes,
        Feature::Multivalue,
    ] {
        o.enable_feature(f);
    }
    let result = o
        .run(input, scratch)
        .map_err(|e| BuildError::Optimize(e.to_string()))
        .and_then(|()| std::fs::read(scratch).map_err(io(scratch)));
    let _ = std::fs::remove_file(scratch);
    result
}

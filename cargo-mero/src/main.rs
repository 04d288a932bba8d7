//! `cargo mero`: scaffold, build, run and deploy mero apps. A thin CLI over
//! the `cargo_mero` library.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use cargo_mero::build::{BuildOptions, BuildOutput, build};
use cargo_mero::call::{CallOptions, CallTarget, call};
use cargo_mero::deploy::{DeployOptions, DeployTarget, deploy};
use cargo_mero::dev::{DevOptions, Verbosity};
use cargo_mero::new::{
    ClientSource, DEFAULT_TEMPLATE, NewOptions, SdkSource, new_project, templates,
};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod cmd;

#[derive(Debug, Parser)]
#[command(
    name = "cargo mero",
    bin_name = "cargo mero",
    version,
    about = "Scaffold, build, run and deploy mero apps",
    after_help = "Start with `cargo mero new my-app && cd my-app && cargo mero dev`."
)]
struct Cli {
    /// When to color output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create an app project from a template.
    New(NewArgs),
    /// Compile the app to WASM, optimize it with wasm-opt and embed its ABI.
    Build(BuildArgs),
    /// Run a local network of nodes with the app; reload it on every save.
    Dev(DevArgs),
    /// Build for production and install on a node; create or upgrade a context.
    Deploy(DeployArgs),
    /// Call an app method on a dev node or any node.
    Call(CallArgs),
    /// Break the running dev network: partition, heal, kill, restart,
    /// delay, loss, add-node.
    Net(cmd::net::NetArgs),
    /// Where each node's replica of the context stands (in sync, behind...).
    Status(cmd::status::StatusArgs),
    /// Upload a file as a blob of a context, or download one.
    Blob {
        #[command(subcommand)]
        command: BlobCmd,
    },
    /// Run the embedded node (same as `merod`).
    Node {
        #[command(subcommand)]
        command: mero_node::cli::Command,
    },
}

#[derive(Debug, Args)]
struct NewArgs {
    /// Package name (also the directory, unless --path is given).
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// Template to start from (see --list).
    #[arg(short, long, default_value = DEFAULT_TEMPLATE)]
    template: String,
    /// Directory to create.
    #[arg(long)]
    path: Option<PathBuf>,
    /// List the templates and exit.
    #[arg(long)]
    list: bool,
    /// Use this mero SDK checkout (its `sdk/` directory) instead of the
    /// one this binary was built from or the published crate.
    #[arg(long)]
    sdk_path: Option<PathBuf>,
    /// Use this `@mero/client` checkout (`clients/js`) in a front end
    /// (`--template web`) instead of the one this binary was built from or
    /// the published package.
    #[arg(long)]
    client_path: Option<PathBuf>,
    /// Do not run `git init`.
    #[arg(long)]
    no_git: bool,
}

/// Which app: the standard cargo selection flags.
#[derive(Debug, Args)]
struct LocateArgs {
    /// Path to the app's Cargo.toml.
    #[arg(long)]
    manifest_path: Option<PathBuf>,
    /// The app's package, in a workspace.
    #[arg(short, long)]
    package: Option<String>,
    /// Directory for build artifacts (and the dev network).
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

/// Which app to build, and how.
#[derive(Debug, Args)]
struct ProjectArgs {
    #[command(flatten)]
    locate: LocateArgs,
    /// Cargo features of the app to enable (comma or space separated).
    #[arg(short = 'F', long)]
    features: Vec<String>,
}

impl ProjectArgs {
    fn options(self, opt_level: Option<u8>, quiet: bool) -> BuildOptions {
        BuildOptions {
            manifest_path: self.locate.manifest_path,
            package: self.locate.package,
            target_dir: self.locate.target_dir,
            opt_level,
            features: self.features,
            quiet,
            capture: false,
            color: None,
            frontend: false,
        }
    }
}

/// wasm-opt settings.
#[derive(Debug, Args)]
struct OptArgs {
    /// wasm-opt optimization level (0-4).
    #[arg(long, default_value_t = 2)]
    opt_level: u8,
    /// Skip wasm-opt.
    #[arg(long)]
    no_opt: bool,
}

impl OptArgs {
    fn level(&self) -> Option<u8> {
        (!self.no_opt).then_some(self.opt_level)
    }
}

#[derive(Debug, Args)]
struct BuildArgs {
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    opt: OptArgs,
    /// Do not build the front end in web/ (the TypeScript bindings are
    /// still written).
    #[arg(long)]
    no_web: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DevArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// How many nodes to run.
    #[arg(long, short = 'n', default_value_t = 3)]
    nodes: usize,
    /// Start a new network and context instead of resuming the saved one.
    #[arg(long)]
    clean: bool,
    /// Do not watch the sources.
    #[arg(long)]
    no_watch: bool,
    /// Optimize the module with wasm-opt, as `deploy` does (slower reloads).
    #[arg(long)]
    release: bool,
    /// More node logs (-v: debug for mero, -vv: everything).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Only app logs, warnings, errors and reload summaries.
    #[arg(short, long)]
    quiet: bool,
    /// Do not read commands (`p 3`, `h`, ...) from stdin lines.
    #[arg(long)]
    no_keys: bool,
}

#[derive(Debug, Args)]
struct DeployArgs {
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    opt: OptArgs,
    /// The node's API URL.
    #[arg(long, env = "MERO_NODE_URL")]
    node: String,
    /// The node's admin token (auth.admin_token in its config.toml).
    #[arg(long, env = "MERO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Upgrade this context to the new code (state is kept).
    #[arg(long, conflicts_with = "new_context")]
    context: Option<String>,
    /// Create a new context running the app.
    #[arg(long)]
    new_context: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The app method.
    method: String,
    /// Arguments as a JSON object, e.g. '{"key":"a"}'.
    #[arg(default_value = "{}")]
    args: String,
    #[command(flatten)]
    on: NodeTarget,
}

#[derive(Debug, Subcommand)]
enum BlobCmd {
    /// Upload FILE (streamed); prints the blob id to store in state.
    Put {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        to: NodeTarget,
    },
    /// Download blob ID; a partial output file is continued.
    Get {
        /// The blob id (`blob:` and 64 hex digits).
        id: String,
        /// Output file (default: the id's hex digits, in the current directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        from: NodeTarget,
    },
}

/// Which node and context a command talks to: the dev network's, or any.
#[derive(Debug, Args)]
struct NodeTarget {
    /// Node of the dev network (1-based, from target/mero/dev/network.json).
    #[arg(long, conflicts_with = "url", default_value_t = 1)]
    node: usize,
    /// Any node's API URL instead of the dev network.
    #[arg(long, env = "MERO_NODE_URL")]
    url: Option<String>,
    /// The node's admin token, or a client token of the context (with --url).
    #[arg(long, env = "MERO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Context id (default: the dev network's).
    #[arg(long)]
    context: Option<String>,
    /// Where the app is, to find its dev network.
    #[command(flatten)]
    locate: LocateArgs,
    /// Print the result as JSON on one line.
    #[arg(long)]
    json: bool,
}

impl NodeTarget {
    fn options(self) -> anyhow::Result<(cargo_mero::blob::BlobOptions, bool)> {
        let (target, context, json) = self.resolve()?;
        Ok((cargo_mero::blob::BlobOptions { target, context }, json))
    }

    /// The node to talk to, the context (if given) and `--json`.
    fn resolve(self) -> anyhow::Result<(CallTarget, Option<String>, bool)> {
        let target = match self.url {
            Some(url) => CallTarget::Url {
                url,
                token: self.token,
            },
            None => {
                let project = cargo_mero::build::project(&BuildOptions {
                    manifest_path: self.locate.manifest_path,
                    package: self.locate.package,
                    target_dir: self.locate.target_dir,
                    ..BuildOptions::default()
                })?;
                CallTarget::Dev {
                    dev_dir: cargo_mero::network::dev_dir(&project),
                    index: self.node,
                }
            }
        };
        Ok((target, self.context, self.json))
    }
}

fn main() -> std::process::ExitCode {
    // Invoked by cargo as `cargo-mero mero ...`; directly as `cargo-mero ...`.
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("mero") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn print_build(out: &BuildOutput) {
    let kib = |n: u64| n as f64 / 1024.0;
    eprintln!(
        "    Finished {} ({} methods, {} events)",
        out.package,
        out.abi.methods.len(),
        out.abi.events.len()
    );
    eprintln!(
        "        size {:.1} KiB -> {:.1} KiB{}",
        kib(out.size_before),
        kib(out.size_after),
        if out.optimized {
            ""
        } else {
            " (wasm-opt skipped)"
        }
    );
    eprintln!("        hash {}", out.hash);
    eprintln!("        wasm {}", out.wasm.display());
    eprintln!("        abi  {}", out.abi_path.display());
    eprintln!("        ts   {}", out.bindings.display());
    if let Some(web) = &out.web {
        eprintln!(
            "        web  {}{}",
            web.dir.display(),
            if web.built { "" } else { " (no build step)" }
        );
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let color = cli.color.enabled();
    match cli.command {
        Cmd::New(a) => {
            if a.list {
                for t in templates() {
                    println!("{:<10} {}", t.name, t.description);
                }
                return Ok(());
            }
            let name = a.name.expect("clap requires NAME without --list");
            let sdk = match a.sdk_path {
                Some(p) => SdkSource::Path(
                    p.canonicalize()
                        .with_context(|| format!("--sdk-path {}", p.display()))?,
                ),
                None => SdkSource::detect(),
            };
            let client = match a.client_path {
                Some(p) => ClientSource::Path(
                    p.canonicalize()
                        .with_context(|| format!("--client-path {}", p.display()))?,
                ),
                None => ClientSource::detect(),
            };
            let out = new_project(&NewOptions {
                name: name.clone(),
                template: a.template,
                path: a.path,
                sdk,
                client,
                git: !a.no_git,
            })?;
            eprintln!(
                "     Created `{name}` from the {} template in {}{}",
                out.template,
                out.dir.display(),
                if out.git_initialized {
                    " (git repository initialized)"
                } else {
                    ""
                }
            );
            eprintln!(
                "\nnext:\n  cd {}\n  cargo test\n  cargo mero dev",
                out.dir.display()
            );
            Ok(())
        }
        Cmd::Build(a) => {
            let mut opts = a.project.options(a.opt.level(), a.json);
            opts.color = Some(color);
            opts.frontend = !a.no_web;
            let out = build(&opts).context("build failed")?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_build(&out);
            }
            Ok(())
        }
        Cmd::Dev(a) => {
            let verbosity = match (a.quiet, a.verbose) {
                (true, _) => Verbosity::Quiet,
                (false, 0) => Verbosity::Normal,
                (false, 1) => Verbosity::Verbose,
                (false, _) => Verbosity::Trace,
            };
            cargo_mero::dev::run(DevOptions {
                build: a.project.options(None, false),
                nodes: a.nodes,
                clean: a.clean,
                watch: !a.no_watch,
                release: a.release,
                verbosity,
                color,
                exe: std::env::current_exe().context("locating the cargo-mero binary")?,
                keys: !a.no_keys,
            })?;
            Ok(())
        }
        Cmd::Deploy(a) => {
            let target = match (a.context, a.new_context) {
                (Some(c), _) => DeployTarget::Upgrade(c),
                (None, true) => DeployTarget::NewContext,
                (None, false) => DeployTarget::InstallOnly,
            };
            let mut build = a.project.options(a.opt.level(), a.json);
            build.color = Some(color);
            let bar = if a.json {
                indicatif::ProgressBar::hidden()
            } else {
                indicatif::ProgressBar::new(0).with_style(
                    indicatif::ProgressStyle::with_template(
                        "   Uploading [{bar:30}] {bytes}/{total_bytes}",
                    )?
                    .progress_chars("=> "),
                )
            };
            let out = deploy(
                &DeployOptions {
                    build,
                    node: a.node,
                    token: a.token,
                    target,
                },
                &mut |sent, total| {
                    bar.set_length(total);
                    bar.set_position(sent);
                },
            )?;
            bar.finish_and_clear();
            if a.json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                eprintln!(
                    "    Deployed {} to {} ({:.1} KiB)",
                    out.package,
                    out.node,
                    out.size as f64 / 1024.0
                );
                eprintln!("         app {}", out.app);
                match &out.context {
                    Some(c) => eprintln!("     context {c} ({})", out.action),
                    None => eprintln!(
                        "              installed only: --new-context creates a context, --context ID upgrades one"
                    ),
                }
            }
            Ok(())
        }
        Cmd::Call(a) => {
            let args: serde_json::Value = serde_json::from_str(&a.args).with_context(|| {
                format!(
                    "ARGS must be JSON, e.g. '{{\"key\":\"a\"}}', not {}",
                    a.args
                )
            })?;
            let (target, context, json) = a.on.resolve()?;
            let out = call(&CallOptions {
                target,
                context,
                method: a.method,
                args,
            })?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&out.output)?);
            }
            Ok(())
        }
        Cmd::Blob { command } => cmd::blob::run(command),
        Cmd::Net(a) => cmd::net::run(a),
        Cmd::Status(a) => cmd::status::run(a),
        Cmd::Node { command } => {
            mero_node::cli::init_tracing();
            mero_node::cli::run(mero_node::cli::Cli { command })
        }
    }
}

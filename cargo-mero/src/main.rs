//! `cargo mero`: build, run and deploy mero apps. A thin CLI over `cargo_mero`.

use std::path::PathBuf;

use anyhow::Context;
use cargo_mero::build::{BuildOptions, build};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo mero",
    bin_name = "cargo mero",
    version,
    about = "Build, run and deploy mero apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Compile the app to WASM, optimize it with wasm-opt and embed its ABI.
    Build(BuildArgs),
    /// Run the embedded node (same as `merod`).
    Node {
        #[command(subcommand)]
        command: mero_node::cli::Command,
    },
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Path to the app's Cargo.toml.
    #[arg(long)]
    manifest_path: Option<PathBuf>,
    /// Package to build, in a workspace.
    #[arg(short, long)]
    package: Option<String>,
    /// Directory for build artifacts.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// wasm-opt optimization level (0-4).
    #[arg(long, default_value_t = 2)]
    opt_level: u8,
    /// Skip wasm-opt.
    #[arg(long)]
    no_opt: bool,
    /// Cargo features of the app to enable (comma or space separated).
    #[arg(short = 'F', long)]
    features: Vec<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Build(a) => {
            let opts = BuildOptions {
                manifest_path: a.manifest_path,
                package: a.package,
                target_dir: a.target_dir,
                opt_level: (!a.no_opt).then_some(a.opt_level),
                features: a.features,
                quiet: a.json,
            };
            let out = build(&opts).context("build failed")?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
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
            }
            Ok(())
        }
        Cmd::Node { command } => {
            mero_node::cli::init_tracing();
            mero_node::cli::run(mero_node::cli::Cli { command })
        }
    }
}

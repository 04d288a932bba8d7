//! `merod`: run a mero node.

use clap::Parser;

fn main() -> std::process::ExitCode {
    mero_node::cli::init_tracing();
    match mero_node::cli::run(mero_node::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

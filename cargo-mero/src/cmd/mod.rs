//! Runners of subcommands kept out of main.rs (binary only): argument
//! structs and printing; the work is in the `cargo_mero` library.

pub(crate) mod blob;
pub(crate) mod net;
pub(crate) mod status;

use std::path::PathBuf;

use cargo_mero::build::BuildOptions;

/// The dev network directory of the app these cargo flags select.
fn dev_dir(
    manifest_path: Option<PathBuf>,
    package: Option<String>,
    target_dir: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    let project = cargo_mero::build::project(&BuildOptions {
        manifest_path,
        package,
        target_dir,
        ..BuildOptions::default()
    })?;
    Ok(cargo_mero::network::dev_dir(&project))
}

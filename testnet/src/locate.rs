//! Which binaries build the app and run its nodes.
//!
//! The order, first match wins:
//! 1. `MERO_BIN`: a `cargo-mero` binary (an error if it does not exist:
//!    a path set on purpose is never silently replaced);
//! 2. `cargo-mero` in the target directory of the running test executable
//!    (`target/<profile>/`), which is where this workspace's own
//!    `cargo build --workspace --bins` puts it: tests inside the mero
//!    workspace then run the node built from the same sources, not an
//!    older one installed on `PATH`;
//! 3. `cargo-mero` on `PATH` (`cargo install --path cargo-mero` in a mero
//!    checkout), which is what an app outside the workspace uses.
//!
//! Nodes run as `cargo-mero node run` (it embeds `merod`), unless `MEROD`
//! names a `merod` binary, which then runs them. Building always needs
//! `cargo-mero`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestnetError;

/// What runs nodes: a program and the arguments before `init`/`run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCommand {
    /// The binary.
    pub program: PathBuf,
    /// `["node"]` for `cargo-mero`, nothing for `merod`.
    pub prefix: Vec<String>,
}

impl NodeCommand {
    /// A command for `program prefix… args…`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix);
        c
    }
}

/// The binaries a network uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `cargo-mero`, which builds the app.
    pub cargo_mero: PathBuf,
    /// What runs the nodes.
    pub node: NodeCommand,
}

/// What the lookup reads from its surroundings, so tests can fake it.
pub struct Surroundings<'a> {
    /// An environment variable.
    pub env: &'a dyn Fn(&str) -> Option<OsString>,
    /// The running executable.
    pub exe: Option<PathBuf>,
    /// Whether a file exists.
    pub exists: &'a dyn Fn(&Path) -> bool,
}

/// Finds the binaries from this process's environment and file system.
pub fn locate_here() -> Result<Binaries, TestnetError> {
    let env = |k: &str| std::env::var_os(k);
    let exists = |p: &Path| p.is_file();
    locate(&Surroundings {
        env: &env,
        exe: std::env::current_exe().ok(),
        exists: &exists,
    })
}

const TOOL: &str = "cargo-mero";

/// The profile directory (`target/<profile>`) of a test executable, which
/// cargo puts in `target/<profile>/deps/`.
pub fn profile_dir(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_owned)
    } else {
        Some(dir.to_owned())
    }
}

/// Finds the binaries, in the order the module describes.
pub fn locate(s: &Surroundings<'_>) -> Result<Binaries, TestnetError> {
    let cargo_mero = find_cargo_mero(s)?;
    let node = match (s.env)("MEROD") {
        Some(m) => {
            let m = PathBuf::from(m);
            if !(s.exists)(&m) {
                return Err(TestnetError::NoNodeBinary(format!(
                    "MEROD is {}, which does not exist",
                    m.display()
                )));
            }
            NodeCommand {
                program: m,
                prefix: Vec::new(),
            }
        }
        None => NodeCommand {
            program: cargo_mero.clone(),
            prefix: vec!["node".into()],
        },
    };
    Ok(Binaries { cargo_mero, node })
}

fn find_cargo_mero(s: &Surroundings<'_>) -> Result<PathBuf, TestnetError> {
    if let Some(p) = (s.env)("MERO_BIN") {
        let p = PathBuf::from(p);
        return if (s.exists)(&p) {
            Ok(p)
        } else {
            Err(TestnetError::NoNodeBinary(format!(
                "MERO_BIN is {}, which does not exist",
                p.display()
            )))
        };
    }
    let beside = s.exe.as_deref().and_then(profile_dir).map(|d| d.join(TOOL));
    if let Some(p) = &beside
        && (s.exists)(p)
    {
        return Ok(p.clone());
    }
    let on_path = (s.env)("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(p) = on_path.iter().map(|d| d.join(TOOL)).find(|p| (s.exists)(p)) {
        return Ok(p);
    }
    let beside = beside.map_or_else(
        || "no target directory".to_owned(),
        |p| p.display().to_string(),
    );
    Err(TestnetError::NoNodeBinary(format!(
        "no {TOOL}: MERO_BIN is not set, {beside} does not exist and none is on PATH; \
         install it (`cargo install --path cargo-mero` in a mero checkout) or set MERO_BIN \
         to a cargo-mero binary"
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn run(env: &[(&str, &str)], files: &[&str]) -> Result<Binaries, TestnetError> {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        locate(&Surroundings {
            env: &|k| env.get(k).cloned(),
            exe: Some("/w/target/release/deps/network-1234".into()),
            exists: &|p| files.iter().any(|f| f == p),
        })
    }

    #[test]
    fn mero_bin_then_the_target_dir_then_path() {
        let all = [
            "/set/cargo-mero",
            "/w/target/release/cargo-mero",
            "/bin2/cargo-mero",
        ];
        let path = ("PATH", "/bin1:/bin2");
        let b = run(&[("MERO_BIN", "/set/cargo-mero"), path], &all).unwrap();
        assert_eq!(b.cargo_mero, PathBuf::from("/set/cargo-mero"));
        let b = run(&[path], &all).unwrap();
        assert_eq!(b.cargo_mero, PathBuf::from("/w/target/release/cargo-mero"));
        let b = run(&[path], &all[2..]).unwrap();
        assert_eq!(b.cargo_mero, PathBuf::from("/bin2/cargo-mero"));
        // Nodes run through cargo-mero unless MEROD names a merod.
        assert_eq!(b.node.prefix, ["node"]);
        assert_eq!(b.node.program, b.cargo_mero);
        let b = run(&[path, ("MEROD", "/m/merod")], &["/m/merod", all[2]]).unwrap();
        assert_eq!(b.node.program, PathBuf::from("/m/merod"));
        assert!(b.node.prefix.is_empty());
    }

    #[test]
    fn a_missing_binary_says_what_was_tried() {
        let err = run(&[("PATH", "/bin1")], &[]).unwrap_err().to_string();
        assert!(err.contains("MERO_BIN is not set"), "{err}");
        assert!(err.contains("/w/target/release/cargo-mero"), "{err}");
        assert!(err.contains("cargo install --path cargo-mero"), "{err}");
        // A path set on purpose is never replaced by another binary.
        let err = run(
            &[("MERO_BIN", "/nope"), ("PATH", "/bin2")],
            &["/bin2/cargo-mero"],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MERO_BIN is /nope"), "{err}");
        let err = run(&[("MEROD", "/nope")], &["/w/target/release/cargo-mero"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("MEROD is /nope"), "{err}");
    }
}

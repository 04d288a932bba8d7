//! Embeds `../templates` into the binary: generates `templates.rs` with one
//! `(template, relative path, contents)` entry per file.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    // Read at run time: cargo may reuse one build-script binary for
    // checkouts at different paths.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("../templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut code = String::from("/// Every template file: (template, path in it, contents).\n");
    code.push_str("pub static FILES: &[(&str, &str, &str)] = &[\n");
    for path in &all {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&root).expect("under the root");
        let mut parts = rel
            .iter()
            .map(|p| p.to_str().expect("UTF-8 template paths"));
        let Some(template) = parts.next() else {
            continue;
        };
        let inner: Vec<&str> = parts.collect();
        if inner.is_empty() {
            continue; // templates/README.md
        }
        code.push_str(&format!(
            "    ({template:?}, {:?}, include_str!({:?})),\n",
            inner.join("/"),
            path.canonicalize().expect("template path").display()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(out, code).expect("writing templates.rs");
}

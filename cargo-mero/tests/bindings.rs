//! The TypeScript bindings `cargo mero build` writes, end to end: built
//! from a real app (runtime/fixtures/policy-app: typed errors, views,
//! private methods, a handler, events), compiled with `tsc --strict`
//! together with code that uses them (tests/ts/use_policy_app.ts, whose
//! `@ts-expect-error` lines must be errors), run against a fake client,
//! and recompiled after a changed Rust signature.
//!
//! Needs Node.js and `npm ci` in tests/ts (run here when node_modules is
//! missing; `scripts/test` does it too). `MERO_SKIP_BROWSER=1` skips the
//! TypeScript part on a machine without Node.js, as for the browser tests.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{cargo_mero, target_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn ts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts")
}

fn skip_ts() -> bool {
    let skip = std::env::var_os("MERO_SKIP_BROWSER").is_some();
    if skip {
        eprintln!("MERO_SKIP_BROWSER is set: skipping the TypeScript checks");
    }
    skip
}

/// tsc, installed in tests/ts.
fn tsc() -> PathBuf {
    support::ts_packages().join("node_modules/typescript/bin/tsc")
}

/// Runs tsc with `args` in `dir`.
fn run_tsc(dir: &Path, args: &[&str]) -> Output {
    Command::new("node")
        .arg(tsc())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running node")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const STRICT: &[&str] = &[
    "--strict",
    "--noEmit",
    "--target",
    "es2022",
    "--module",
    "esnext",
    "--moduleResolution",
    "bundler",
    "--lib",
    "es2022,dom",
];

/// Builds policy-app; returns the build report.
fn build_policy_app() -> Value {
    let td = target_dir();
    let out = cargo_mero(
        &[
            "build",
            "--json",
            "--no-opt",
            "-p",
            "policy-app",
            "--target-dir",
            td.to_str().unwrap(),
        ],
        &workspace(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn generated_bindings_compile_strictly_type_their_users_and_follow_the_rust_code() {
    let report = build_policy_app();
    // Beside the module and its ABI, in the target dir given.
    let bindings = PathBuf::from(report["bindings"].as_str().unwrap());
    assert_eq!(
        bindings.canonicalize().unwrap(),
        target_dir()
            .canonicalize()
            .unwrap()
            .join("mero/policy-app.ts")
    );
    assert_eq!(
        bindings.parent(),
        Path::new(report["wasm"].as_str().unwrap()).parent()
    );
    let ts = std::fs::read_to_string(&bindings).unwrap();
    let hash = report["hash"].as_str().unwrap();
    assert!(
        ts.contains(&format!("export const APP_HASH = \"{hash}\";")),
        "{ts}"
    );
    assert!(
        ts.contains("  deposit(args: { account: string; amount: number }): Promise<number> {"),
        "{ts}"
    );
    assert!(
        ts.contains("this.#client.query<number>(\"balance\", args)"),
        "{ts}"
    );
    assert!(
        !ts.contains("on_deposited("),
        "a handler in the bindings:\n{ts}"
    );
    assert!(
        !ts.contains("freeze("),
        "a private method in the bindings:\n{ts}"
    );
    if skip_ts() {
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("policy-app.ts"), &ts).unwrap();
    for f in ["use_policy_app.ts", "wrong_policy_app.ts"] {
        std::fs::copy(ts_dir().join(f), d.join(f)).unwrap();
    }

    // The generated file alone, then with code using it, right and wrong.
    let alone = run_tsc(d, &[STRICT, &["policy-app.ts"]].concat());
    assert!(alone.status.success(), "{}", text(&alone));
    let used = run_tsc(d, &[STRICT, &["use_policy_app.ts"]].concat());
    assert!(used.status.success(), "{}", text(&used));
    let wrong = run_tsc(d, &[STRICT, &["wrong_policy_app.ts"]].concat());
    assert!(!wrong.status.success(), "a wrong use compiled");
    let err = text(&wrong);
    assert!(
        err.contains("wrong_policy_app.ts(7,") && err.contains("not assignable to type 'number'"),
        "{err}"
    );

    // Compiled and run: views go through `query`, the rest through
    // `execute`, with the arguments as one object; typed errors narrow.
    let emit = run_tsc(
        d,
        &[
            "--strict",
            "--noEmitOnError",
            "--target",
            "es2022",
            "--module",
            "commonjs",
            "--lib",
            "es2022,dom",
            "--outDir",
            "out",
            "use_policy_app.ts",
        ],
    );
    assert!(emit.status.success(), "{}", text(&emit));
    let run = Command::new("node")
        .arg(d.join("out/use_policy_app.js"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let got: Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&run)));
    assert_eq!(got.get("error"), None, "{got}");
    let calls: Vec<(String, String)> = got["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["rpc"].as_str().unwrap().to_owned(),
                c["method"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("execute", "deposit"),
        ("execute", "note"),
        ("query", "balance"),
        ("query", "notes"),
        ("query", "receipts"),
        ("query", "poke"),
        ("execute", "refuse"),
    ];
    for (i, (rpc, method)) in expect.iter().enumerate() {
        assert_eq!(calls[i], (rpc.to_string(), method.to_string()), "{got}");
    }
    assert_eq!(
        got["calls"][0]["args"],
        json!({"account": "ann", "amount": 5})
    );
    assert_eq!(got["calls"][4]["args"], json!({}));
    assert!(calls.contains(&("execute".into(), "withdraw".into())));
    let seen: Vec<&str> = got["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for line in [
        "deposit -> 7",
        "balance -> 3",
        "withdraw failed: Insufficient 1001 ann 5 9",
        "wrong code: false",
        "note error: false",
        "event: bob 3 false",
        "other event: null",
        "Deposited 1001 policy-app true",
    ] {
        assert!(seen.contains(&line), "no {line:?} in {seen:?}");
    }

    // A changed Rust signature changes the types, and the same user code
    // stops compiling where it no longer fits.
    let mut abi: mero_abi::AppAbi =
        serde_json::from_slice(&std::fs::read(report["abiPath"].as_str().unwrap()).unwrap())
            .unwrap();
    let deposit = abi
        .methods
        .iter_mut()
        .find(|m| m.name == "deposit")
        .unwrap();
    assert_eq!(deposit.params[1].ty, "i64");
    deposit.params[1].ty = "String".into();
    let changed = cargo_mero::bindings::generate(&abi, "policy-app", hash);
    assert_ne!(changed, ts);
    assert!(changed.contains("deposit(args: { account: string; amount: string })"));
    std::fs::write(d.join("policy-app.ts"), &changed).unwrap();
    let stale = run_tsc(d, &[STRICT, &["use_policy_app.ts"]].concat());
    assert!(!stale.status.success(), "the old use still compiled");
    let err = text(&stale);
    assert!(
        err.contains("use_policy_app.ts(64,") && err.contains("not assignable to type 'string'"),
        "{err}"
    );
}

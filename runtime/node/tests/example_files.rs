//! Acceptance for examples/files on three real `merod` processes: a file
//! uploaded to node 1 and added there is listed, read inside the app and
//! downloaded byte-identical on node 3; then node 1 upgrades the context to
//! v2, whose migration runs once there: every node ends with the same
//! migrated state, and the files are still readable everywhere.

mod support;

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};
use support::{NodeProc, build_app, build_app_with, cluster, wait_converged, wait_for};

const APP: &str = "examples/files/Cargo.toml";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Uploads `bytes` as a blob of `ctx` to `node`; returns its id.
fn upload(node: &NodeProc, ctx: &str, bytes: &[u8]) -> String {
    let resp = agent()
        .post(&format!("{}/contexts/{ctx}/blobs", node.url))
        .header("Authorization", &format!("Bearer {}", node.token))
        .header("Content-Type", "application/octet-stream")
        .send(bytes)
        .expect("the node answers");
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(status, 201, "upload: {body}");
    assert_eq!(body["size"], json!(bytes.len()));
    body["id"].as_str().unwrap().to_owned()
}

/// Downloads blob `id` of `ctx` from `node` (which fetches it from its
/// peers if it does not hold it).
fn download(node: &NodeProc, ctx: &str, id: &str) -> Vec<u8> {
    let resp = agent()
        .get(&format!("{}/contexts/{ctx}/blobs/{id}", node.url))
        .header("Authorization", &format!("Bearer {}", node.token))
        .call()
        .expect("the node answers");
    assert_eq!(resp.status().as_u16(), 200, "download of {id}");
    let mut body = Vec::new();
    resp.into_body()
        .into_reader()
        .read_to_end(&mut body)
        .unwrap();
    body
}

/// A `query` that succeeds once the node holds the blob it reads: the
/// first tries fail with the app's typed `Unavailable` while it fetches.
fn query_blob(node: &NodeProc, ctx: &str, method: &str, args: Value) -> Value {
    wait_for(Duration::from_secs(60), || {
        let r = node.rpc("query", ctx, method, args.clone());
        match r.get("error") {
            None => Some(r["result"]["output"].clone()),
            Some(e) => {
                assert_eq!(e["data"]["kind"], "Unavailable", "{method}: {r}");
                None
            }
        }
    })
    .unwrap_or_else(|| panic!("{method} never read the blob on {}", node.url))
}

/// `n` bytes that do not compress or repeat.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fastrand::Rng::with_seed(seed).fill(&mut v);
    v
}

fn runs(node: &NodeProc, ctx: &str, app: &str) -> bool {
    node.get(&format!("/admin/contexts/{ctx}"))["app"] == json!(app)
}

#[test]
fn files_cross_three_nodes_and_survive_the_upgrade_to_v2() {
    let v1 = build_app(APP);
    let v2 = build_app_with(APP, &["v2"]);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _) = cluster(&dirs, &v1);
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);

    // Over two 1 MiB chunks, so the fetch pages chunks.
    let report = bytes(2 * (1 << 20) + 12_345, 14);
    let readme = "# Shared files\n\nEvery member's node holds these.\n".as_bytes();
    let report_id = upload(n1, &ctx, &report);
    let readme_id = upload(n1, &ctx, readme);
    let added = n1.execute(
        &ctx,
        "add",
        json!({"name": "docs/report.bin", "blob": report_id}),
    );
    // The size is read from the blob by the app; the author is node 1's member.
    assert_eq!(added["size"], json!(report.len()));
    let member1 = n1.get(&format!("/admin/contexts/{ctx}"))["member"].clone();
    assert_eq!(added["uploaded_by"], member1);
    n1.execute(
        &ctx,
        "add",
        json!({"name": "readme.md", "blob": readme_id, "mime": "text/markdown"}),
    );
    // A typed refusal reaches the client with its kind and code.
    let taken = n1.rpc(
        "execute",
        &ctx,
        "add",
        json!({"name": "readme.md", "blob": readme_id}),
    );
    assert_eq!(taken["error"]["data"]["kind"], "Exists", "{taken}");
    assert_eq!(taken["error"]["data"]["code"], 409, "{taken}");
    wait_converged(&refs, &ctx, Duration::from_secs(30));

    // Node 3 lists the file and downloads it byte-identical.
    let got = n3.query(&ctx, "get", json!({"name": "docs/report.bin"}));
    assert_eq!(got["blob"], json!(report_id));
    assert!(
        download(n3, &ctx, &report_id) == report,
        "node 3's copy differs"
    );
    // Node 2 holds neither blob: the app's read fetches it.
    let head = query_blob(n2, &ctx, "head", json!({"name": "readme.md", "len": 14}));
    assert_eq!(head["text"], "# Shared files");
    assert_eq!(head["size"], json!(readme.len()));

    // Node 2 renames, node 3 adds its own upload; then everyone agrees.
    n2.execute(
        &ctx,
        "rename",
        json!({"from": "readme.md", "to": "docs/readme.md"}),
    );
    let photo = bytes(300_000, 15);
    let photo_id = upload(n3, &ctx, &photo);
    n3.execute(
        &ctx,
        "add",
        json!({"name": "photo.jpg", "blob": photo_id, "mime": "image/jpeg"}),
    );
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    let v1_list = n1.query(&ctx, "list", json!({}));
    assert_eq!(v1_list.as_array().unwrap().len(), 3, "{v1_list}");

    // Node 1 upgrades to v2: its migration runs there once and travels in
    // the upgrade delta.
    let v2 = n1.install(&v2);
    let body = json!({ "app": v2 }).to_string();
    let (status, info) = n1.send(
        "POST",
        &format!("/admin/contexts/{ctx}/upgrade"),
        Some(body.as_bytes()),
        true,
    );
    assert_eq!(status, 200, "{info}");
    for n in &nodes {
        wait_for(Duration::from_secs(30), || runs(n, &ctx, &v2).then_some(()))
            .expect("every node switches to v2");
    }
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    for n in &nodes {
        assert_eq!(n.query(&ctx, "folders", json!({})), json!(["docs"]));
        let docs = n.query(&ctx, "list", json!({"folder": "docs"}));
        let paths: Vec<&str> = docs
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["docs/readme.md", "docs/report.bin"]);
        let report_v2 = n.query(&ctx, "get", json!({"path": "docs/report.bin"}));
        assert_eq!(report_v2["folder"], "docs");
        assert_eq!(report_v2["revision"], 1);
        assert_eq!(report_v2["blob"], json!(report_id));
        assert_eq!(report_v2["uploaded_by"], member1);
        let photo_v2 = n.query(&ctx, "get", json!({"path": "photo.jpg"}));
        assert_eq!(
            (photo_v2["folder"].clone(), photo_v2["mime"].clone()),
            (json!(""), json!("image/jpeg"))
        );
    }

    // The files are still readable, through the app and over HTTP.
    let head = query_blob(
        n3,
        &ctx,
        "head",
        json!({"path": "docs/readme.md", "len": 14}),
    );
    assert_eq!(head["text"], "# Shared files");
    assert!(
        download(n2, &ctx, &report_id) == report,
        "node 2's copy differs"
    );
    assert!(
        download(n1, &ctx, &photo_id) == photo,
        "node 1's copy differs"
    );

    // And v2 works on migrated entries: a new revision from node 3.
    let readme2 = b"# Shared files, revised\n";
    let readme2_id = upload(n3, &ctx, readme2);
    let replaced = n3.execute(
        &ctx,
        "replace",
        json!({"path": "docs/readme.md", "blob": readme2_id}),
    );
    assert_eq!(replaced["revision"], 2);
    assert_eq!(replaced["mime"], "text/markdown");
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    assert!(
        download(n1, &ctx, &readme2_id) == readme2,
        "node 1's copy differs"
    );
}

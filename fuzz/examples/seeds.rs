//! Writes the seed corpora, `fuzz/corpus/<target>/seed-*`: a few valid
//! inputs per target, from the same fixtures the targets use. Run by
//! `scripts/fuzz --seeds` (a plain, uninstrumented build):
//!
//! ```sh
//! cargo run --release --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! It also checks that the fixtures do what the targets rely on (the
//! member-signed form of a chain applies), so a seed that stopped
//! reaching deep code fails here rather than silently.

use std::fs;
use std::path::{Path, PathBuf};

use mero_abi::abi::{AppAbi, Fragment, MethodAbi, Mutability, StateAbi};
use mero_abi::host::{ContainerKind, HostRequest as R, SlotIn, encode_request};
use mero_abi::wasm::replace_custom_section;
use mero_abi::{ABI_FRAGMENT_SECTION, ABI_SECTION};
use mero_fuzz::{
    APP, History, Node, SALT, as_member, context, creator, epoch_key, invite_secret, join_requests,
    receiver,
};
use mero_sync::delta::GENESIS_EPOCH;
use mero_sync::ids::DeltaId;
use mero_sync::protocol::{Request, Response, answer, encode_gossip, next_page};
use mero_sync::{Dag, InvitationToken, Op, SignedDelta};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    remove_old_seeds(&root);
    let history = History::build();
    let h = &history;

    let plain = plain_chain(&h.deltas[..3]);
    check_member_chain(&plain);

    write(&root, "gossip", "history", &encode_gossip(&h.deltas));
    write(&root, "gossip", "one", &encode_gossip(&h.deltas[..1]));
    write(&root, "gossip", "member-chain", &encode_gossip(&plain));

    for (i, d) in h.deltas.iter().enumerate() {
        write(&root, "delta", &format!("history-{i}"), &d.to_bytes());
    }
    write(&root, "delta", "plain-call", &plain[0].to_bytes());
    write(&root, "delta", "plain-invite", &plain[2].to_bytes());
    for (i, d) in h.deltas.iter().enumerate() {
        if let Ok(Op::Call(p)) = d.open(&epoch_key()) {
            write(&root, "delta", &format!("update-{i}"), &p.update);
            write(&root, "loro_update", &format!("call-{i}"), &p.update);
        }
    }

    let dag = h.node.replica.dag();
    let source = h.source();
    let mut requests = vec![
        (
            "digest-same",
            Request::Digest {
                context: context(),
                digest: dag.digest(),
            },
        ),
        (
            "digest-other",
            Request::Digest {
                context: context(),
                digest: [0; 32],
            },
        ),
    ];
    let empty = Dag::new(context());
    requests.push((
        "page-from-start",
        next_page(&empty, context(), true).expect("a page"),
    ));
    let mut half = Node::new(&receiver());
    half.receive(h.deltas[..2].to_vec());
    requests.push((
        "page-from-half",
        next_page(half.replica.dag(), context(), true).expect("a page"),
    ));
    let heads = Response::Digest {
        in_sync: false,
        vector: Some(half.replica.dag().vector()),
        heads: dag.heads(),
    };
    // Equal vectors, other heads: the requester asks for the heads by id.
    let by_id = mero_sync::protocol::after_digest(half.replica.dag(), context(), &heads)
        .expect("a request by id");
    requests.push(("by-id", by_id));
    for (name, req) in &requests {
        write(&root, "sync_request", name, &postcard(req));
        let (resp, _) = answer(dag, &source, req);
        write(&root, "sync_response", name, &postcard(&resp));
    }
    write(
        &root,
        "sync_response",
        "error",
        &postcard(&Response::Error {
            message: "unknown context".into(),
        }),
    );
    write(
        &root,
        "sync_response",
        "app",
        &postcard(&Response::App {
            wasm: Some(b"\0asm\x01\0\0\0".to_vec()),
        }),
    );
    // Blob requests and a sealed chunk answer (mero_sync::blob).
    let blob = mero_sync::blob::id_of(b"a blob");
    let epoch = mero_sync::delta::GENESIS_EPOCH;
    for (name, req) in [
        (
            "blob-manifest",
            Request::BlobManifest {
                context: context(),
                blob,
                epoch,
            },
        ),
        (
            "blob-chunk",
            Request::BlobChunk {
                context: context(),
                blob,
                index: 0,
                epoch,
            },
        ),
    ] {
        write(&root, "sync_request", name, &postcard(&req));
    }
    write(
        &root,
        "sync_response",
        "blob",
        &postcard(&Response::Blob {
            part: Some(mero_sync::blob::Sealed {
                epoch,
                bytes: vec![7; 64],
            }),
        }),
    );

    let token = InvitationToken {
        context: context(),
        creator: creator().public(),
        salt: SALT,
        app: APP,
        invite: h.deltas[2].id(),
        secret: invite_secret().to_bytes(),
        epoch: GENESIS_EPOCH,
        key: epoch_key().0,
        heads: dag.heads(),
        expires_at_ms: 1_900_000_000_000,
        addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        past: vec![],
    };
    token.check(0).expect("the seed token checks out");
    write(&root, "invitation", "token", token.to_string().as_bytes());

    // The snapshot the creator serves a joiner; it must install as is.
    let snapshot = mero_fuzz::snapshot_of(h);
    mero_fuzz::install_signed(&snapshot).expect("the seed snapshot installs");
    write(&root, "snapshot", "history", &postcard(&snapshot));

    meet_requests(&root);
    host_requests(&root);
    jsonrpc(&root, &context().to_string());
    app_abi(&root);
    println!("seeds written under {}", root.display());
}

/// `deltas` in the form `as_member` takes: the payload is the plaintext
/// operation and each parent names the previous one's id in this form.
fn plain_chain(deltas: &[SignedDelta]) -> Vec<SignedDelta> {
    let mut renamed = std::collections::HashMap::<DeltaId, DeltaId>::new();
    let mut out = Vec::new();
    for d in deltas {
        let op = d.open(&epoch_key()).expect("history deltas open");
        let mut p = d.clone();
        p.body.payload = postcard(&op);
        for parent in &mut p.body.header.parents {
            *parent = renamed[parent];
        }
        renamed.insert(d.id(), p.id());
        out.push(p);
    }
    out
}

fn check_member_chain(plain: &[SignedDelta]) {
    let mut node = Node::new(&receiver());
    let out = node.receive(as_member(&creator(), plain));
    assert_eq!(
        out.applied.len(),
        plain.len(),
        "the member-signed chain applies: {:?}",
        out.rejected
    );
}

fn host_requests(root: &Path) {
    let json = |s: &str| s.as_bytes().to_vec();
    let (one, hi) = (json("1"), json("{\"hi\":[1,2]}"));
    // Handles: the base state's roots are fetched in this order.
    let writes: Vec<R> = vec![
        R::Input,
        R::Root {
            name: "items",
            kind: ContainerKind::Map,
        },
        R::MapGet { map: 0, key: "a" },
        R::MapInsert {
            map: 0,
            key: "z",
            value: SlotIn::Value(&one),
        },
        R::MapEnsure {
            map: 0,
            key: "nested",
            kind: ContainerKind::List,
        },
        R::ListInsert {
            list: 1,
            index: 0,
            value: SlotIn::Value(&hi),
        },
        R::MapEntries { map: 0 },
        R::Root {
            name: "text",
            kind: ContainerKind::Text,
        },
        R::TextInsert {
            text: 2,
            pos: 1,
            s: "ü",
        },
        R::TextDelete {
            text: 2,
            pos: 0,
            len: 1,
        },
        R::Root {
            name: "count",
            kind: ContainerKind::Counter,
        },
        R::CounterAdd { counter: 3, by: -2 },
        R::New {
            kind: ContainerKind::Map,
        },
        R::MapInsert {
            map: 4,
            key: "k",
            value: SlotIn::Value(&one),
        },
        R::MapInsert {
            map: 0,
            key: "child",
            value: SlotIn::Container(4),
        },
        R::Root {
            name: "list",
            kind: ContainerKind::List,
        },
        R::ListMove {
            list: 6,
            from: 0,
            to: 2,
        },
        R::ListSet {
            list: 6,
            index: 1,
            value: SlotIn::Value(&one),
        },
        R::ListDelete {
            list: 6,
            index: 0,
            len: 1,
        },
        R::RootValueSet {
            name: "owner",
            value: b"\"you\"",
        },
        R::Emit {
            kind: "Set",
            data: b"{\"key\":\"z\"}",
            handler: Some("on_set"),
        },
        R::PrivateSet {
            key: b"p",
            value: Some(b"v"),
        },
        R::Log { msg: "done" },
        R::Return {
            ok: true,
            data: b"null",
        },
    ];
    let reads: Vec<R> = vec![
        R::ContextId,
        R::ExecutorId,
        R::TimeNanos,
        R::RandomBytes { len: 8 },
        R::PrivateGet { key: b"p" },
        R::RootValueGet { name: "owner" },
        R::Root {
            name: "list",
            kind: ContainerKind::List,
        },
        R::ListItems { list: 0 },
        R::ListGet { list: 0, index: 1 },
        R::Len { handle: 0 },
        R::Root {
            name: "items",
            kind: ContainerKind::Map,
        },
        R::MapContains { map: 1, key: "b" },
        R::Root {
            name: "count",
            kind: ContainerKind::Counter,
        },
        R::CounterGet { counter: 2 },
        R::Root {
            name: "text",
            kind: ContainerKind::Text,
        },
        R::TextGet { text: 3 },
        R::Return {
            ok: true,
            data: b"[1]",
        },
    ];
    let bind: Vec<R> = vec![
        R::New {
            kind: ContainerKind::List,
        },
        R::ListInsert {
            list: 0,
            index: 0,
            value: SlotIn::Value(&one),
        },
        R::BindRoot {
            name: "fresh",
            src: 0,
        },
        R::Root {
            name: "items",
            kind: ContainerKind::Map,
        },
        R::MapRemove { map: 2, key: "a" },
        R::MapClear { map: 2 },
        R::Panic { msg: "boom" },
        R::Return {
            ok: false,
            data: b"{\"kind\":\"app\",\"message\":\"no\"}",
        },
    ];
    let enc = |reqs: &[R]| -> Vec<Vec<u8>> { reqs.iter().map(encode_request).collect() };
    let with = |config: u8, reqs: &[R]| {
        let mut v = vec![config];
        v.extend(join_requests(&enc(reqs)));
        v
    };
    write(root, "host_request", "writes", &with(0, &writes));
    write(root, "host_request", "writes-trap", &with(2, &writes));
    write(root, "host_request", "writes-in-view", &with(1, &writes));
    write(root, "host_request", "reads-view", &with(1, &reads));
    write(root, "host_request", "bind-and-fail", &with(0, &bind));
}

fn jsonrpc(root: &Path, ctx: &str) {
    let call = |id: u32, method: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{"context":"{ctx}","method":"set","args":{{"key":"a","value":"1"}}}}}}"#
        )
    };
    write(root, "jsonrpc", "execute", call(1, "execute").as_bytes());
    write(root, "jsonrpc", "query", call(2, "query").as_bytes());
    let batch = format!(
        r#"[{},{},{{"jsonrpc":"2.0","id":"x","method":"ping"}},{{"jsonrpc":"1.0"}},7]"#,
        call(1, "execute"),
        call(2, "query")
    );
    write(root, "jsonrpc", "batch", batch.as_bytes());
    write(
        root,
        "jsonrpc",
        "no-args",
        format!(r#"{{"jsonrpc":"2.0","id":null,"method":"query","params":{{"context":"{ctx}","method":"get"}}}}"#).as_bytes(),
    );
}

fn app_abi(root: &Path) {
    let method = |name: &str, mutability, init| MethodAbi {
        name: name.into(),
        mutability,
        init,
        params: vec![],
        returns: "()".into(),
        fallible: false,
        private: false,
        xcall: false,
        error: None,
    };
    let state = StateAbi {
        name: "App".into(),
        ..Default::default()
    };
    let methods = vec![
        method("get", Mutability::View, false),
        method("init", Mutability::Mutating, true),
        method("set", Mutability::Mutating, false),
    ];
    let mut fragments = Vec::new();
    for f in [
        Fragment::State(state.clone()),
        Fragment::Methods {
            methods: methods.clone(),
        },
    ] {
        fragments.extend(serde_json::to_vec(&f).expect("JSON"));
        fragments.push(b'\n');
    }
    let magic = b"\0asm\x01\0\0\0";
    let with_fragments =
        replace_custom_section(magic, &[], ABI_FRAGMENT_SECTION, &fragments).expect("a module");
    write(root, "app_abi", "fragments", &with_fragments);
    let abi = AppAbi {
        protocol: mero_abi::PROTOCOL_VERSION,
        state,
        methods,
        events: vec![],
        errors: vec![],
        migrate: None,
    };
    let json = serde_json::to_vec(&abi).expect("JSON");
    let assembled =
        replace_custom_section(&with_fragments, &[ABI_FRAGMENT_SECTION], ABI_SECTION, &json)
            .expect("a module");
    write(root, "app_abi", "assembled", &assembled);
}

fn remove_old_seeds(root: &Path) {
    let Ok(dirs) = fs::read_dir(root) else {
        return;
    };
    for dir in dirs.flatten() {
        for file in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            if file.file_name().to_string_lossy().starts_with("seed-") {
                fs::remove_file(file.path()).expect("old seed removed");
            }
        }
    }
}

/// Two members post their records under the fixture context's tag, one
/// looks them up, one withdraws: `(poster, clock step, request)` each.
fn meet_requests(root: &Path) {
    use mero_sync::gate::Topic;
    use mero_sync::meet::{self, MeetRequest};
    let topic = Topic::of(&context(), &epoch_key());
    let tag = meet::tag(&topic);
    let post = |peer: &[u8]| {
        let record = meet::Record {
            peer: peer.to_vec(),
            addrs: vec![b"/ip4/192.0.2.1/tcp/4001".to_vec()],
            at_ms: 1,
        };
        let sealed = meet::seal(&topic, &record);
        assert_eq!(
            meet::open(&topic, &sealed),
            Some(record),
            "a seed record opens"
        );
        MeetRequest::Post {
            items: vec![(tag, sealed)],
            ttl_secs: 5,
        }
    };
    let mut bytes = Vec::new();
    for (poster, step, req) in [
        (0u8, 0u8, post(b"peer A")),
        (1, 1, post(b"peer B")),
        (
            2,
            1,
            MeetRequest::Lookup {
                tags: vec![tag, [0; 32]],
            },
        ),
        (0, 1, MeetRequest::Withdraw { tags: vec![tag] }),
        (2, 60, MeetRequest::Lookup { tags: vec![tag] }),
    ] {
        bytes.extend([poster, step]);
        bytes.extend(postcard(&req));
    }
    write(root, "meet", "members", &bytes);
}

fn postcard<T: serde::Serialize>(v: &T) -> Vec<u8> {
    ::postcard::to_allocvec(v).expect("serializes")
}

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed written");
}

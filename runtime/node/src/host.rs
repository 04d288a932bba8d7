//! The WASM host: wasmtime engine, compiled-module cache, and one fresh
//! instance per call with memory and wall-time limits.
//!
//! Host functions here only move bytes between guest memory and
//! [`Session::dispatch`]; all semantics live in `mero-engine`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use mero_abi::host::{decode_request, encode_result};
use mero_abi::{AppAbi, CallError, CallErrorKind};
use mero_engine::Session;
use wasmtime::{
    Caller, Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Memory, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};

use crate::config::LimitsConfig;
use crate::error::NodeError;
use crate::ids::AppHash;
use crate::store::Store as Db;

/// How often the epoch advances; the wall-time limit is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);
const WASM_PAGE: usize = 64 << 10;

/// Native stack one call's WASM may use (wasmtime's `max_wasm_stack`),
/// counted from wherever the thread's stack already is.
pub const WASM_STACK: usize = 512 << 10;

/// Most contexts one chain of cross-context calls may span
/// (`[limits] xcall_depth`): each level runs on the same thread.
pub const MAX_XCALL_DEPTH: usize = 8;

/// Stack of the threads calls run on: room for a whole chain of
/// cross-context calls, each level with its WASM stack and the host's
/// frames, so the deepest chain an app can build fails as a call (stack
/// overflow trap) instead of overflowing the thread and aborting the node.
/// An embedder running calls on its own threads gives them at least this.
pub const CALL_THREAD_STACK: usize = (1 << 20) + MAX_XCALL_DEPTH * (WASM_STACK + (512 << 10));

/// Per-call data the host functions reach through the wasmtime store.
struct CallData {
    session: Session,
    memory: Option<Memory>,
    pending: Vec<u8>,
    memory_limit: usize,
    hit_memory_limit: bool,
}

impl ResourceLimiter for CallData {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.hit_memory_limit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A compiled, validated app ready to instantiate.
pub struct AppModule {
    /// Content hash.
    pub hash: AppHash,
    /// Its ABI.
    pub abi: AppAbi,
    /// Size of the WASM in bytes.
    pub size: usize,
    pre: InstancePre<CallData>,
}

/// Bytes of a memory or table slot kept mapped between calls.
const KEEP_RESIDENT: usize = 4 << 20;

/// The wasmtime engine and its settings.
pub struct WasmHost {
    engine: Engine,
    linker: Linker<CallData>,
    limits: LimitsConfig,
    compat: u64,
}

impl WasmHost {
    /// Creates the engine and starts the epoch ticker that enforces wall time.
    pub fn new(limits: LimitsConfig) -> Result<Arc<Self>, NodeError> {
        let mut pool = PoolingAllocationConfig::default();
        let memory_limit = limits.call_memory_mib as usize * (1 << 20);
        pool.total_memories(limits.max_concurrent_calls)
            .total_tables(limits.max_concurrent_calls)
            .total_core_instances(limits.max_concurrent_calls)
            .max_memory_size(memory_limit + WASM_PAGE)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(100_000)
            // Reset slots with memset of the pages a call dirtied instead of
            // madvise: madvise on every call costs a TLB shootdown on every
            // core, which showed up as the largest kernel cost under load.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| NodeError::Wasm(e.to_string()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hasher.finish();

        let mut linker = Linker::new(&engine);
        linker
            .func_wrap(mero_abi::IMPORT_MODULE, mero_abi::IMPORT_CALL, host_call)
            .and_then(|l| l.func_wrap(mero_abi::IMPORT_MODULE, mero_abi::IMPORT_TAKE, host_take))
            .map_err(|e| NodeError::Wasm(e.to_string()))?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("mero-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| NodeError::Wasm(format!("cannot start the epoch thread: {e}")))?;

        Ok(Arc::new(Self {
            engine,
            linker,
            limits,
            compat,
        }))
    }

    fn cache_key(&self, hash: &AppHash) -> Vec<u8> {
        let mut k = hash.0.to_vec();
        k.extend_from_slice(&self.compat.to_be_bytes());
        k
    }

    /// Validates and compiles `wasm`, using (and filling) the on-disk cache of
    /// precompiled modules keyed by content hash and engine version.
    pub fn load(&self, db: &Db, hash: AppHash, wasm: &[u8]) -> Result<AppModule, NodeError> {
        let abi = mero_abi::wasm::read_abi(wasm).map_err(|e| NodeError::InvalidApp(e.0))?;
        if abi.protocol != mero_abi::PROTOCOL_VERSION {
            return Err(NodeError::InvalidApp(format!(
                "the app was built for host protocol {} but this node speaks {}; rebuild it with a matching mero-sdk",
                abi.protocol,
                mero_abi::PROTOCOL_VERSION
            )));
        }
        let key = self.cache_key(&hash);
        let cached = db.module(&key)?.and_then(|bytes| {
            // SAFETY: the bytes were produced by `Module::serialize` of an
            // engine with the same compatibility hash, and the store is ours.
            unsafe { Module::deserialize(&self.engine, bytes) }.ok()
        });
        let module = match cached {
            Some(m) => m,
            None => {
                let m = Module::new(&self.engine, wasm).map_err(|e| {
                    NodeError::InvalidApp(format!("not a valid WASM module: {e:#}"))
                })?;
                if let Ok(bytes) = m.serialize() {
                    db.put_module(&key, &bytes)?;
                }
                m
            }
        };
        check_exports(&module, &abi)?;
        let pre = self.linker.instantiate_pre(&module).map_err(|e| {
            NodeError::InvalidApp(format!(
                "the module imports something this node does not provide: {e:#}"
            ))
        })?;
        Ok(AppModule {
            hash,
            abi,
            size: wasm.len(),
            pre,
        })
    }

    /// Runs export `method` of `app` in a fresh instance. Returns the session
    /// and, if the call did not complete, why.
    pub fn call(
        &self,
        app: &AppModule,
        session: Session,
        method: &str,
    ) -> (Session, Option<CallError>) {
        self.call_within(app, session, method, self.limits.call_timeout_ms)
    }

    /// [`call`](Self::call) with another wall-time limit, in milliseconds.
    pub fn call_within(
        &self,
        app: &AppModule,
        session: Session,
        method: &str,
        timeout_ms: u64,
    ) -> (Session, Option<CallError>) {
        let data = CallData {
            session,
            memory: None,
            pending: Vec::new(),
            memory_limit: self.limits.call_memory_mib as usize * (1 << 20),
            hit_memory_limit: false,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| d);
        let ticks = timeout_ms.div_ceil(EPOCH_TICK.as_millis() as u64);
        store.set_epoch_deadline(ticks.max(1));
        store.epoch_deadline_trap();
        let result = app.pre.instantiate(&mut store).and_then(|instance| {
            let memory = instance.get_memory(&mut store, "memory");
            store.data_mut().memory = memory;
            let f = instance.get_typed_func::<(), ()>(&mut store, method)?;
            f.call(&mut store, ())
        });
        let trap = result
            .err()
            .map(|e| classify(&e, store.data().hit_memory_limit, &self.limits));
        (store.into_data().session, trap)
    }
}

fn check_exports(module: &Module, abi: &AppAbi) -> Result<(), NodeError> {
    let has_memory = module
        .exports()
        .any(|e| e.name() == "memory" && e.ty().memory().is_some());
    if !has_memory {
        return Err(NodeError::InvalidApp(
            "the module does not export its memory as `memory`".into(),
        ));
    }
    for m in &abi.methods {
        let ok = module.get_export(&m.name).is_some_and(|t| {
            t.func()
                .is_some_and(|f| f.params().len() == 0 && f.results().len() == 0)
        });
        if !ok {
            return Err(NodeError::InvalidApp(format!(
                "the ABI lists method `{}` but the module does not export it as a function without parameters",
                m.name
            )));
        }
    }
    Ok(())
}

fn classify(e: &wasmtime::Error, hit_memory_limit: bool, limits: &LimitsConfig) -> CallError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::new(
            CallErrorKind::Timeout,
            format!(
                "the call ran longer than {} ms and was stopped",
                limits.call_timeout_ms
            ),
        ),
        Some(_) if hit_memory_limit => CallError::new(
            CallErrorKind::OutOfMemory,
            format!(
                "the call needed more than {} MiB of memory",
                limits.call_memory_mib
            ),
        ),
        Some(Trap::StackOverflow) => CallError::new(CallErrorKind::Trap, "stack overflow"),
        Some(t) => CallError::new(CallErrorKind::Trap, format!("wasm trap: {t}")),
        None => CallError::new(CallErrorKind::Trap, format!("{e:#}")),
    }
}

/// `mero_host(req_ptr, req_len, out_ptr, out_cap) -> i64`.
fn host_call(
    mut caller: Caller<'_, CallData>,
    req_ptr: u32,
    req_len: u32,
    out_ptr: u32,
    out_cap: u32,
) -> i64 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (mem, data) = memory.data_and_store_mut(&mut caller);
    let (req_ptr, req_len) = (req_ptr as usize, req_len as usize);
    let Some(req_bytes) = req_ptr
        .checked_add(req_len)
        .and_then(|end| mem.get(req_ptr..end))
    else {
        return -1;
    };
    let Ok(req) = decode_request(req_bytes) else {
        return -1;
    };
    let res = data.session.dispatch(req);
    let encoded = encode_result(&res);
    let n = encoded.len();
    let (out_ptr, out_cap) = (out_ptr as usize, out_cap as usize);
    if n <= out_cap {
        match out_ptr
            .checked_add(n)
            .and_then(|end| mem.get_mut(out_ptr..end))
        {
            Some(dst) => dst.copy_from_slice(&encoded),
            None => return -1,
        }
    } else {
        data.pending = encoded;
    }
    n as i64
}

/// `mero_take(ptr)`: copies the pending answer.
fn host_take(mut caller: Caller<'_, CallData>, ptr: u32) {
    let Some(memory) = caller.data().memory else {
        return;
    };
    let (mem, data) = memory.data_and_store_mut(&mut caller);
    let pending = std::mem::take(&mut data.pending);
    let ptr = ptr as usize;
    if let Some(dst) = ptr
        .checked_add(pending.len())
        .and_then(|end| mem.get_mut(ptr..end))
    {
        dst.copy_from_slice(&pending);
    }
}

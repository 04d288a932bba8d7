//! The single channel to the host.
//!
//! In WASM every request goes through the `mero_host` import. Natively (an
//! app's `cargo test`) the request goes straight to the state engine's
//! dispatcher for the current test call, so both paths run the same semantics.

use mero_abi::host::{HostError, HostRequest, HostResponse};
use mero_abi::{CallError, CallErrorKind};

/// Sends `req` to the host. A refusal fails the call with the host's reason.
pub(crate) fn call(req: HostRequest<'_>) -> HostResponse {
    match imp::call(&req) {
        Ok(resp) => resp,
        Err(e) => fail(e),
    }
}

/// Ends the call with the host's error: recorded as the call's outcome, then trap.
pub(crate) fn fail(e: HostError) -> ! {
    let err = CallError::new(e.kind, e.message);
    let data = serde_json::to_vec(&err).unwrap_or_default();
    let _ = imp::call(&HostRequest::Return {
        ok: false,
        data: &data,
    });
    imp::abort(&err.message)
}

/// Fails the call because the app's own state types disagree with what is stored.
pub(crate) fn corrupt(msg: String) -> ! {
    fail(HostError {
        kind: CallErrorKind::Host,
        message: msg,
    })
}

macro_rules! expect_response {
    ($resp:expr, $pat:pat => $out:expr) => {
        match $resp {
            $pat => $out,
            other => $crate::host::corrupt(format!("unexpected host answer {other:?}")),
        }
    };
}
pub(crate) use expect_response;

#[cfg(target_arch = "wasm32")]
mod imp {
    use mero_abi::host::{HostRequest, HostResult, decode_result, encode_request};

    #[link(wasm_import_module = "mero")]
    unsafe extern "C" {
        fn mero_host(req_ptr: u32, req_len: u32, out_ptr: u32, out_cap: u32) -> i64;
        fn mero_take(ptr: u32);
    }

    pub(super) fn call(req: &HostRequest<'_>) -> HostResult {
        let bytes = encode_request(req);
        let mut buf = [0u8; 512];
        // SAFETY: the pointers and lengths describe live buffers we own.
        let n = unsafe {
            mero_host(
                bytes.as_ptr() as u32,
                bytes.len() as u32,
                buf.as_mut_ptr() as u32,
                buf.len() as u32,
            )
        };
        if n < 0 {
            abort("the host rejected a malformed request");
        }
        let n = n as usize;
        let decoded = if n <= buf.len() {
            decode_result(&buf[..n])
        } else {
            let mut big = vec![0u8; n];
            // SAFETY: `big` has exactly the length the host reported.
            unsafe { mero_take(big.as_mut_ptr() as u32) };
            decode_result(&big)
        };
        decoded.unwrap_or_else(|_| abort("undecodable host answer"))
    }

    pub(super) fn abort(_msg: &str) -> ! {
        core::arch::wasm32::unreachable()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use mero_abi::host::{HostRequest, HostResult};

    pub(super) fn call(req: &HostRequest<'_>) -> HostResult {
        crate::testing::upgrade::refuse_in_migration(req)?;
        crate::testing::with_session(|s| s.dispatch(req.clone()))
    }

    pub(super) fn abort(msg: &str) -> ! {
        std::panic::panic_any(crate::testing::HostAbort(msg.to_owned()))
    }
}

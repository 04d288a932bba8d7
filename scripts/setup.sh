# Sourced by scripts/test and scripts/demo: installs what a fresh machine lacks
# and picks the cargo target directory. Idempotent.

have_libclang() {
    ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1
}

if ! have_libclang || ! command -v c++ >/dev/null 2>&1; then
    echo "==> installing libclang-dev and a C++ compiler (rocksdb and binaryen are built from source)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev g++ >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "==> adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# One target dir for every build and test run, outside the clone, so repeated
# runs (and CI on the same machine) reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mero/target}"

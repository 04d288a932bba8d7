//! Just enough of the WASM binary format to find, strip and append custom
//! sections, so the ABI can travel inside the module without extra deps.

use crate::abi::{AbiError, AppAbi};

/// A section of a WASM module: its id, custom-section name, and byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section id (0 for custom sections).
    pub id: u8,
    /// Name, for custom sections.
    pub name: Option<String>,
    /// Range of the whole section (id byte to end) in the module.
    pub range: std::ops::Range<usize>,
    /// Range of the payload after the custom-section name (or the whole payload).
    pub payload: std::ops::Range<usize>,
}

const MAGIC: &[u8] = b"\0asm\x01\0\0\0";

fn leb_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, AbiError> {
    let mut result: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| AbiError("truncated WASM module".into()))?;
        *pos += 1;
        result |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err(AbiError("malformed LEB128 in WASM module".into()))
}

/// Lists the sections of a WASM module.
pub fn sections(module: &[u8]) -> Result<Vec<Section>, AbiError> {
    if !module.starts_with(MAGIC) {
        return Err(AbiError(
            "not a WASM module (bad magic number or version)".into(),
        ));
    }
    let mut out = Vec::new();
    let mut pos = MAGIC.len();
    while pos < module.len() {
        let start = pos;
        let id = module[pos];
        pos += 1;
        let size = leb_u32(module, &mut pos)? as usize;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= module.len())
            .ok_or_else(|| AbiError("WASM section runs past the end of the module".into()))?;
        let (name, payload_start) = if id == 0 {
            let mut p = pos;
            let len = leb_u32(module, &mut p)? as usize;
            let name_end = p
                .checked_add(len)
                .filter(|e| *e <= end)
                .ok_or_else(|| AbiError("malformed custom section name".into()))?;
            let name = std::str::from_utf8(&module[p..name_end])
                .map_err(|_| AbiError("custom section name is not UTF-8".into()))?;
            (Some(name.to_owned()), name_end)
        } else {
            (None, pos)
        };
        out.push(Section {
            id,
            name,
            range: start..end,
            payload: payload_start..end,
        });
        pos = end;
    }
    Ok(out)
}

/// The concatenated payloads of every custom section called `name`.
pub fn custom_section(module: &[u8], name: &str) -> Result<Option<Vec<u8>>, AbiError> {
    let mut found: Option<Vec<u8>> = None;
    for s in sections(module)? {
        if s.name.as_deref() == Some(name) {
            found
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&module[s.payload]);
        }
    }
    Ok(found)
}

fn leb_write(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Returns `module` without the custom sections named in `remove`, with a
/// custom section `name` holding `payload` appended.
pub fn replace_custom_section(
    module: &[u8],
    remove: &[&str],
    name: &str,
    payload: &[u8],
) -> Result<Vec<u8>, AbiError> {
    let mut out = Vec::with_capacity(module.len() + payload.len() + 16);
    out.extend_from_slice(MAGIC);
    for s in sections(module)? {
        let drop = s
            .name
            .as_deref()
            .is_some_and(|n| n == name || remove.contains(&n));
        if !drop {
            out.extend_from_slice(&module[s.range]);
        }
    }
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    leb_write(name.len() as u32, &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    out.push(0);
    leb_write(body.len() as u32, &mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads an app's ABI from its module: the assembled [`ABI_SECTION`](crate::ABI_SECTION)
/// written by `cargo mero build`, or else the raw fragments the macros wrote.
pub fn read_abi(module: &[u8]) -> Result<AppAbi, AbiError> {
    if let Some(json) = custom_section(module, crate::ABI_SECTION)? {
        let mut abi: AppAbi = serde_json::from_slice(&json).map_err(|e| {
            AbiError(format!(
                "the module's `{}` section is not a valid ABI: {e}",
                crate::ABI_SECTION
            ))
        })?;
        abi.sort()?;
        return Ok(abi);
    }
    match custom_section(module, crate::ABI_FRAGMENT_SECTION)? {
        Some(fragments) => AppAbi::from_fragments(&fragments),
        None => Err(AbiError(
            "the module carries no mero ABI: build it with `cargo mero build` from a crate using mero-sdk".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_custom_sections() {
        let module = MAGIC.to_vec();
        let with = replace_custom_section(&module, &[], "x", b"hello").unwrap();
        assert_eq!(custom_section(&with, "x").unwrap().unwrap(), b"hello");
        let replaced = replace_custom_section(&with, &[], "x", b"bye").unwrap();
        assert_eq!(custom_section(&replaced, "x").unwrap().unwrap(), b"bye");
        let stripped = replace_custom_section(&replaced, &["x"], "y", b"").unwrap();
        assert!(custom_section(&stripped, "x").unwrap().is_none());
    }

    /// Found by `fuzz/fuzz_targets/app_abi.rs`: an assembled section
    /// listing methods out of order made `AppAbi::method` miss some.
    #[test]
    fn an_assembled_abi_is_sorted_on_read() {
        let method = |name: &str| {
            format!(r#"{{"name":"{name}","mutability":"view","params":[],"returns":"()"}}"#)
        };
        let section = |names: &[&str]| {
            let methods: Vec<String> = names.iter().map(|n| method(n)).collect();
            let json = format!(
                r#"{{"protocol":1,"state":{{"name":"App","fields":[]}},"methods":[{}],"events":[]}}"#,
                methods.join(",")
            );
            replace_custom_section(MAGIC, &[], crate::ABI_SECTION, json.as_bytes()).unwrap()
        };
        let abi = read_abi(&section(&["get", "zap", "set"])).unwrap();
        for name in ["get", "set", "zap"] {
            assert!(abi.method(name).is_some(), "{name}");
        }
        let err = read_abi(&section(&["get", "get"])).unwrap_err();
        assert!(err.0.contains("exported twice"), "{}", err.0);
    }

    #[test]
    fn rejects_garbage() {
        assert!(sections(b"not wasm").is_err());
        assert!(sections(b"\0asm\x01\0\0\0\x01\xff\xff").is_err());
        assert!(read_abi(MAGIC).unwrap_err().0.contains("cargo mero build"));
    }
}

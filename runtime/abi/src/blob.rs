//! The text form of a blob id, shared by apps (which store ids in state),
//! nodes (whose garbage collector finds them there) and clients.
//!
//! A blob id is 32 bytes (the hash of the blob's manifest, see
//! `mero_sync::blob`). Its text form is [`PREFIX`] followed by 64 lowercase
//! hex digits. The prefix makes an id recognisable wherever it appears in a
//! context's state JSON, so a node can tell exactly which blobs the state
//! still refers to.

/// What every blob id's text form starts with.
pub const PREFIX: &str = "blob:";

/// Length of the text form: the prefix and 64 hex digits.
pub const TEXT_LEN: usize = PREFIX.len() + 64;

/// The text form of a blob id.
///
/// ```
/// let text = mero_abi::blob::format(&[0xab; 32]);
/// assert!(text.starts_with("blob:abab"));
/// assert_eq!(mero_abi::blob::parse(&text), Some([0xab; 32]));
/// ```
pub fn format(id: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(TEXT_LEN);
    s.push_str(PREFIX);
    for b in id {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Parses the text form; also accepts the 64 hex digits alone (either
/// case), as URLs and command lines may carry them. `None` if it is neither.
///
/// ```
/// let id = [7u8; 32];
/// let bare = mero_abi::blob::format(&id)[5..].to_uppercase();
/// assert_eq!(mero_abi::blob::parse(&bare), Some(id));
/// assert_eq!(mero_abi::blob::parse("blob:12"), None);
/// ```
pub fn parse(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix(PREFIX).unwrap_or(text).as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Every blob id whose text form appears in `text` (in order, repeats
/// included): what a node's garbage collector keeps. Only the canonical
/// lowercase form counts, as [`format`] writes it.
///
/// ```
/// let id = mero_abi::blob::format(&[1; 32]);
/// let state = format!(r#"{{"photo":"{id}","note":"see {id}!"}}"#);
/// assert_eq!(mero_abi::blob::find_all(&state), vec![[1; 32], [1; 32]]);
/// assert!(mero_abi::blob::find_all("blob:nothex").is_empty());
/// ```
pub fn find_all(text: &str) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let candidate = &rest[at..];
        let lower = candidate.len() >= TEXT_LEN
            && candidate.as_bytes()[PREFIX.len()..TEXT_LEN]
                .iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        match lower.then(|| parse(&candidate[..TEXT_LEN])).flatten() {
            Some(id) => {
                out.push(id);
                rest = &candidate[TEXT_LEN..];
            }
            None => rest = &candidate[PREFIX.len()..],
        }
    }
    out
}

//! The guest side of the ABI (policies/README.md). Pointers are wasm32 addresses; results are
//! packed as `(ptr << 32) | len` of a UTF-8 JSON document the module leaves in its memory.

use std::cell::RefCell;

use kr_policy_abi::{Metadata, Output, PanicMessage, SettingsAnswer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{Finding, Input, PolicySettings, Rule};

thread_local! {
    // The last panic message: with panic=abort the module traps right after the hook runs, and the
    // host reads this through `kr_panic_message` to say why.
    static PANIC: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Hands the host a buffer of `len` bytes; ownership passes back with the next call that takes it.
pub fn alloc(len: u32) -> u32 {
    let mut buf = Vec::<u8>::with_capacity(len as usize);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as usize as u32
}

/// Takes back a buffer filled by the host.
///
/// # Safety
/// `ptr` must come from [`alloc`] with capacity `len`, filled by the host.
unsafe fn take(ptr: u32, len: u32) -> Vec<u8> {
    Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize)
}

fn emit<T: Serialize>(value: &T) -> u64 {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|e| {
        serde_json::to_vec(&Output::Error(format!("cannot encode output: {e}"))).unwrap_or_default()
    });
    let bytes = bytes.into_boxed_slice();
    let len = bytes.len() as u64;
    let ptr = Box::into_raw(bytes) as *mut u8 as usize as u64;
    (ptr << 32) | len
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().into_bytes();
        PANIC.with(|p| *p.borrow_mut() = msg);
    }));
}

pub fn panic_message() -> u64 {
    let msg = PANIC.with(|p| p.borrow().clone());
    emit(&PanicMessage {
        message: String::from_utf8_lossy(&msg).into_owned(),
    })
}

pub fn metadata(name: &str, version: &str, rules: &[Rule], kinds: &[&[&str]]) -> u64 {
    emit(&Metadata {
        abi: crate::ABI_VERSION,
        name: name.to_string(),
        version: version.to_string(),
        rules: rules.iter().map(Rule::info).collect(),
        kinds: declared_kinds(kinds),
    })
}

/// The kinds a policy declared, in order, each once.
fn declared_kinds(kinds: &[&[&str]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in kinds.iter().flat_map(|k| k.iter()) {
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    }
    out
}

fn parse_settings<S: PolicySettings>(settings: &Value) -> Result<S, String> {
    let settings = if settings.is_null() {
        json!({})
    } else {
        settings.clone()
    };
    let parsed: S = serde_json::from_value(settings).map_err(|e| e.to_string())?;
    parsed.validate()?;
    Ok(parsed)
}

pub fn validate_settings<S: PolicySettings>(ptr: u32, len: u32) -> u64 {
    install_panic_hook();
    // SAFETY: the host filled a buffer it got from `kr_alloc(len)`.
    let bytes = unsafe { take(ptr, len) };
    let result = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| format!("settings are not JSON: {e}"))
        .and_then(|v| parse_settings::<S>(&v).map(|_| ()));
    emit(&SettingsAnswer::from_result(result))
}

pub fn evaluate<S: PolicySettings>(
    ptr: u32,
    len: u32,
    rules: &[Rule],
    f: fn(&Input<'_>, &S) -> Vec<Finding>,
) -> u64 {
    install_panic_hook();
    // SAFETY: the host filled a buffer it got from `kr_alloc(len)`.
    let bytes = unsafe { take(ptr, len) };
    // Read in place: the objects stay in `bytes`, and a rule reads only what it looks at.
    let input = match Input::from_packed(&bytes) {
        Ok(input) => input,
        Err(e) => return emit(&Output::Error(format!("input is not a packed bundle: {e}"))),
    };
    if input.abi != crate::ABI_VERSION {
        return emit(&Output::Error(format!(
            "input is ABI {}, module speaks {}",
            input.abi,
            crate::ABI_VERSION
        )));
    }
    let settings = match parse_settings::<S>(&input.settings) {
        Ok(s) => s,
        Err(e) => return emit(&Output::Error(format!("invalid settings: {e}"))),
    };
    let findings = f(&input, &settings);
    debug_assert!(findings
        .iter()
        .all(|f| rules.iter().any(|r| r.id == f.rule)));
    emit(&Output::Findings(findings))
}

#[cfg(test)]
mod tests {
    #[test]
    fn declared_kinds_keep_order_without_repeats() {
        let kinds =
            super::declared_kinds(&[crate::k8s::CLUSTER_MODE_KINDS, &["Service", "ConfigMap"]]);
        assert_eq!(kinds, ["StatefulSet", "ConfigMap", "Service"]);
        assert!(super::declared_kinds(&[]).is_empty());
    }
}

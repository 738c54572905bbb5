//! The spec loader and the renderer on arbitrary bytes: every input is either loaded and
//! rendered or refused with a `SpecError`; nothing may panic, hang or exhaust memory.
#![no_main]

use std::io::Write as _;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn spec_file() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    // `load` reads files (as `-f` does); one file per process, rewritten every run.
    let path = spec_file().join("spec.yaml");
    let mut file = std::fs::File::create(&path).expect("the spec file");
    file.write_all(data).expect("writing the spec file");
    drop(file);
    if let Ok(spec) = kubectl_redis::spec::load(&[path]) {
        let _ = kubectl_redis::render::render(spec, None, "default");
    }
});

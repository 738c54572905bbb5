//! The release archive: contents, modes, and byte-for-byte determinism.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use xtask::dist::{pack, DEFAULT_MTIME};
use xtask::Platform;

struct Entry {
    path: String,
    mode: u32,
    mtime: u64,
    uid: u64,
    gid: u64,
    owner: String,
    kind: tar::EntryType,
    data: Vec<u8>,
}

fn entries(archive: &Path) -> Vec<Entry> {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            Entry {
                path: e.path().unwrap().to_string_lossy().into_owned(),
                mode: h.mode().unwrap(),
                mtime: h.mtime().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                owner: format!(
                    "{}:{}",
                    h.username().unwrap().unwrap_or_default(),
                    h.groupname().unwrap().unwrap_or_default()
                ),
                kind: h.entry_type(),
                data,
            }
        })
        .collect()
}

fn fixture(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let binary = dir.join("some-build-output");
    std::fs::write(&binary, b"\x7fELF pretend executable").unwrap();
    let license = xtask::workspace::root().join("LICENSE");
    (binary, license)
}

#[test]
fn archive_holds_binary_and_license_with_fixed_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let (binary, license) = fixture(tmp.path());
    let linux = Platform::new("linux", "amd64").unwrap();
    let artifact = pack(
        &binary,
        &license,
        &linux,
        "1.2.3",
        &tmp.path().join("out"),
        DEFAULT_MTIME,
    )
    .unwrap();

    assert_eq!(
        artifact.path,
        tmp.path()
            .join("out/kubectl-redis-v1.2.3-linux-amd64.tar.gz")
    );
    assert_eq!(
        artifact.uri,
        "https://github.com/kubectl-redis/kubectl-redis/releases/download/v1.2.3/kubectl-redis-v1.2.3-linux-amd64.tar.gz"
    );
    let bytes = std::fs::read(&artifact.path).unwrap();
    assert_eq!(artifact.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip header mtime is zero");
    assert_eq!(bytes[3] & 0x08, 0, "gzip header carries no file name");

    let got = entries(&artifact.path);
    let names: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["kubectl-redis", "LICENSE"]);
    assert_eq!(got[0].mode, 0o755);
    assert_eq!(got[1].mode, 0o644);
    assert_eq!(got[0].data, std::fs::read(&binary).unwrap());
    assert_eq!(got[1].data, std::fs::read(&license).unwrap());
    assert!(String::from_utf8_lossy(&got[1].data).contains("Apache License"));
    for e in &got {
        assert_eq!(e.kind, tar::EntryType::Regular, "{}", e.path);
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, DEFAULT_MTIME), "{}", e.path);
        assert_eq!(e.owner, ":", "{}", e.path);
    }
    // No stray files next to the archive.
    let listing: Vec<String> = std::fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listing, ["kubectl-redis-v1.2.3-linux-amd64.tar.gz"]);
}

#[test]
fn archive_is_byte_for_byte_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let (binary, license) = fixture(tmp.path());
    let linux = Platform::new("linux", "arm64").unwrap();
    let a = pack(
        &binary,
        &license,
        &linux,
        "0.1.0",
        &tmp.path().join("a"),
        DEFAULT_MTIME,
    )
    .unwrap();
    // Different file times on the inputs must not matter.
    let copy = tmp.path().join("copy-of-binary");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::copy(&binary, &copy).unwrap();
    let b = pack(
        &copy,
        &license,
        &linux,
        "0.1.0",
        &tmp.path().join("b"),
        DEFAULT_MTIME,
    )
    .unwrap();
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(
        std::fs::read(&a.path).unwrap(),
        std::fs::read(&b.path).unwrap()
    );

    // The mtime really is what the caller asked for (so SOURCE_DATE_EPOCH takes effect).
    let c = pack(
        &binary,
        &license,
        &linux,
        "0.1.0",
        &tmp.path().join("c"),
        DEFAULT_MTIME + 1,
    )
    .unwrap();
    assert_ne!(a.sha256, c.sha256);
    assert!(entries(&c.path)
        .iter()
        .all(|e| e.mtime == DEFAULT_MTIME + 1));
}

#[test]
fn windows_archive_names_the_exe() {
    let tmp = tempfile::tempdir().unwrap();
    let (binary, license) = fixture(tmp.path());
    let windows = Platform::new("windows", "amd64").unwrap();
    let artifact = pack(
        &binary,
        &license,
        &windows,
        "0.1.0",
        tmp.path(),
        DEFAULT_MTIME,
    )
    .unwrap();
    assert!(artifact
        .path
        .ends_with("kubectl-redis-v0.1.0-windows-amd64.tar.gz"));
    let names: Vec<String> = entries(&artifact.path)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(names, ["kubectl-redis.exe", "LICENSE"]);
}

#[test]
fn missing_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, license) = fixture(tmp.path());
    let linux = Platform::new("linux", "amd64").unwrap();
    let err = pack(
        &tmp.path().join("nope"),
        &license,
        &linux,
        "0.1.0",
        tmp.path(),
        0,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("the binary to pack") && err.to_string().contains("nope"),
        "{err}"
    );
    let err = pack(
        &license,
        &tmp.path().join("NOLICENSE"),
        &linux,
        "0.1.0",
        tmp.path(),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("the LICENSE to pack"), "{err}");
}

#[test]
fn platform_names_follow_go() {
    assert_eq!(
        Platform::parse("darwin/arm64").unwrap().to_string(),
        "darwin/arm64"
    );
    assert!(Platform::parse("macos/arm64")
        .unwrap_err()
        .to_string()
        .contains("unknown os `macos`"));
    assert!(Platform::parse("linux/x86_64")
        .unwrap_err()
        .to_string()
        .contains("unknown arch `x86_64`"));
    assert!(Platform::parse("linux").is_err());
    assert_eq!(Platform::all().len(), 6);
}

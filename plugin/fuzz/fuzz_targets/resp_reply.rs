//! The RESP reader on arbitrary bytes from a peer: a reply or a `RespError`, never a panic, a
//! hang or an allocation the bytes do not pay for. A reply that parses is also fed to the
//! `CLUSTER NODES` and `INFO` parsers, as the observer does.
#![no_main]

use std::sync::OnceLock;

use kubectl_redis::cluster::{parse_info, parse_nodes};
use kubectl_redis::cluster::read_reply;
use libfuzzer_sys::fuzz_target;
use tokio::io::BufReader;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut reader = BufReader::new(data);
        // Pipelined replies: read until the bytes run out or stop making sense.
        while let Ok(reply) = read_reply(&mut reader).await {
            if let Some(text) = reply.text() {
                let _ = parse_nodes(&text);
                let _ = parse_info(&text);
            }
            let _ = reply.bulk_items();
            let _ = reply.to_string();
        }
    });
});

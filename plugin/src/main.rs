//! `kubectl-redis`: the command line over the `kubectl_redis` library (see `cmd`).

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not glibc's malloc: see plugin/Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v3, the version the mimalloc crate builds); the test
/// below checks that it is that option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once. mimalloc holds it for a second by default, the
/// whole life of most commands, so a command's peak held the garbage of every stage before it
/// (checking 10,000 objects: 64 MiB, 57 MiB without the delay, in the same time).
/// `MIMALLOC_PURGE_DELAY` in the environment still wins.
#[allow(unsafe_code)] // mimalloc's C API: see the SAFETY comment
fn release_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option, which mimalloc reads at each purge and allows to be
        // set at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> ExitCode {
    release_freed_memory_at_once();
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with 0; a bad flag is bad input: exit 1, as everywhere.
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.global.verbose);
    match cmd::run(&cli) {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `-v` info, `-vv` debug, `-vvv` trace, on stderr; `RUST_LOG` overrides.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("kubectl_redis={level},kube={level}"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)] // reads mimalloc options
    fn the_purge_delay_option_is_mimallocs_purge_delay() {
        // Its default (1000 ms) and its neighbours' differ: the index is not another option.
        // SAFETY: reads integer options.
        let (before, at, after) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY - 1),
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY + 1),
            )
        };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(at, 1000);
        }
        assert_ne!(before, 1000);
        assert_ne!(after, 1000);
        release_freed_memory_at_once();
        // SAFETY: reads an integer option.
        let now = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(now, 0);
        }
    }
}

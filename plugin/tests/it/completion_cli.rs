//! Completion, as shells and kubectl really use it.

use std::process::Command;

use assert_cmd::cargo::{cargo_bin, CommandCargoExt};

fn kubectl_redis_stdout(args: &[&str]) -> String {
    let output = Command::cargo_bin("kubectl-redis")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bash_completion_offers_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("kubectl-redis.bash");
    std::fs::write(&script, kubectl_redis_stdout(&["completion", "bash"])).unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            r#"source {}
COMP_WORDS=(kubectl-redis ''); COMP_CWORD=1; COMP_LINE='kubectl-redis '; COMP_POINT=${{#COMP_LINE}}
function=$(complete -p kubectl-redis | sed 's/.*-F \([^ ]*\).*/\1/')
"$function" kubectl-redis '' kubectl-redis
printf '%s\n' "${{COMPREPLY[@]}}""#,
            script.display()
        ))
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&output.stdout);
    for subcommand in ["render", "completion", "version"] {
        assert!(
            offered.lines().any(|l| l == subcommand),
            "{subcommand} not offered:\n{offered}"
        );
    }
}

#[test]
fn kubectl_completes_the_plugin_through_its_helper() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("kubectl_complete-redis");
    std::fs::write(&helper, kubectl_redis_stdout(&["completion", "kubectl"])).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let binary_dir = cargo_bin("kubectl-redis").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        dir.path().display(),
        binary_dir.display()
    );
    let output = Command::new("kubectl")
        .env("PATH", path)
        .args(["__complete", "redis", "ren"])
        .output()
        .expect("kubectl is not installed (Debian: kubernetes-client)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("render")), "{stdout}");
}

#[test]
fn version_matches_cargo() {
    assert_eq!(
        kubectl_redis_stdout(&["version"]),
        format!("kubectl-redis v{}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_shows_kubectl_usage_and_an_example_for_every_command() {
    for command in [
        "render",
        "check",
        "plan",
        "apply",
        "status",
        "destroy",
        "completion",
        "version",
    ] {
        let help = kubectl_redis_stdout(&[command, "--help"]);
        assert!(
            help.contains(&format!("Usage: kubectl redis {command}")),
            "{command}:\n{help}"
        );
        assert!(
            help.contains("Example"),
            "{command} has an example:\n{help}"
        );
        assert!(
            help.contains(&format!("kubectl redis {command}")),
            "{command}:\n{help}"
        );
    }
}

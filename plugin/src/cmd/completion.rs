//! Shell completion: scripts for bash, zsh and fish, and the protocol kubectl ≥ 1.26 speaks to
//! complete plugins (it runs `kubectl_complete-redis ARGS... PARTIAL` and reads one candidate
//! per line, then `:<directive>`, as cobra does).

use std::io::Write;

use clap::{Args, CommandFactory, ValueEnum};

use super::{Cli, Outcome};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis completion bash > /etc/bash_completion.d/kubectl-redis
  kubectl redis completion kubectl > ~/.local/bin/kubectl_complete-redis && chmod +x ~/.local/bin/kubectl_complete-redis")]
pub(crate) struct CompletionArgs {
    /// `bash`, `zsh` and `fish` complete `kubectl-redis`; `kubectl` prints the
    /// `kubectl_complete-redis` helper that makes `kubectl redis <TAB>` work.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Kubectl,
}

/// The helper kubectl runs; it forwards to the hidden `__complete` subcommand.
pub(crate) const KUBECTL_HELPER: &str = "#!/bin/sh\n# kubectl >= 1.26 runs this to complete `kubectl redis ...`.\nexec kubectl-redis __complete \"$@\"\n";

pub(crate) fn run(args: &CompletionArgs) -> anyhow::Result<Outcome> {
    let mut stdout = std::io::stdout().lock();
    // Completes the binary itself; `kubectl redis` completion goes through the kubectl helper.
    let mut command = Cli::command()
        .name("kubectl-redis")
        .bin_name("kubectl-redis");
    let shell = match args.shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
        CompletionShell::Kubectl => {
            stdout.write_all(KUBECTL_HELPER.as_bytes())?;
            return Ok(Outcome::Success);
        }
    };
    clap_complete::generate(shell, &mut command, "kubectl-redis", &mut stdout);
    Ok(Outcome::Success)
}

/// cobra's directives: 4 = no file completion; 0 = default (complete file names).
const NO_FILE_COMPLETION: u8 = 4;
const FILE_COMPLETION: u8 = 0;

/// Answers kubectl's completion request: `words` are the arguments typed so far, the last one
/// being the (possibly empty) word under the cursor.
pub(crate) fn complete(words: &[String]) -> String {
    let root = Cli::command();
    let (partial, typed) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut command = &root;
    for word in typed {
        if let Some(sub) = command.find_subcommand(word) {
            command = sub;
        }
    }
    let previous = typed.last().map(String::as_str).unwrap_or_default();
    let takes_file = command
        .get_arguments()
        .any(|a| a.get_id() == "files" && (previous == "-f" || previous == "--filename"));
    let mut out = String::new();
    if takes_file {
        out.push_str(&format!(":{FILE_COMPLETION}\n"));
        return out;
    }
    if partial.starts_with('-') {
        for arg in command.get_arguments().chain(root.get_arguments()) {
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                if flag.starts_with(partial) {
                    out.push_str(&flag);
                    out.push('\n');
                }
            }
        }
    } else {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name().starts_with(partial) {
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                out.push_str(&format!("{}\t{about}\n", sub.get_name()));
            }
        }
        for value in command
            .get_positionals()
            .flat_map(|a| a.get_possible_values())
            .filter(|v| v.get_name().starts_with(partial))
        {
            out.push_str(value.get_name());
            out.push('\n');
        }
    }
    out.push_str(&format!(":{NO_FILE_COMPLETION}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn offers_subcommands_then_their_flags_and_files() {
        let top = complete(&words(&[""]));
        assert!(top.contains("render\t"), "{top}");
        assert!(top.ends_with(":4\n"));
        assert!(!top.contains("__complete"), "hidden commands stay hidden");
        assert_eq!(
            complete(&words(&["ren"]))
                .lines()
                .next()
                .unwrap()
                .split('\t')
                .next(),
            Some("render")
        );
        let flags = complete(&words(&["render", "--o"]));
        assert!(flags.contains("--output\n"), "{flags}");
        assert_eq!(complete(&words(&["render", "-f", ""])), ":0\n");
        let shells = complete(&words(&["completion", ""]));
        assert!(
            shells.contains("bash\n") && shells.contains("kubectl\n"),
            "{shells}"
        );
    }
}

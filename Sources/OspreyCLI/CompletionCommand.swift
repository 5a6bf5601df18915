import ArgumentParser

/// `osprey completion bash|zsh|fish`: hubble's `completion` command — the shell's completion
/// script on stdout, for `source <(osprey completion bash)` or a file in the shell's completion
/// directory. It completes subcommands, options and option values; `observe`'s filter flags
/// (`--from-pod`, `--verdict`, …) are read by Osprey's own filter parser, which the script does
/// not know, so they are not offered.
struct CompletionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completion", abstract: "Print the completion script for a shell (bash, zsh or fish).")

    enum Shell: String, CaseIterable, ExpressibleByArgument {
        case bash, zsh, fish

        var completionShell: CompletionShell {
            switch self {
            case .bash: .bash
            case .zsh: .zsh
            case .fish: .fish
            }
        }
    }

    @Argument(help: "The shell: bash, zsh or fish.")
    var shell: Shell

    func run() {
        print(OspreyCommand.completionScript(for: shell.completionShell))
    }
}

import Foundation
import Lab
import TestSupport
import Testing

/// `osprey completion SHELL`, as `hubble completion` is used: the script sourced into a real
/// shell completes what a user types.
@Suite("osprey completion")
struct CompletionCommandTests {
    /// What bash offers for `line` (the word being typed is its last, possibly empty) once the
    /// script is sourced: the completion function bash would call, with bash's own variables.
    static func bashCompletions(_ script: String, _ line: String) throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("osp-completion-\(UUID()).bash")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        var words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if line.hasSuffix(" ") { words.append("") }
        let current = words.last ?? ""
        let previous = words.count > 1 ? words[words.count - 2] : ""
        let quoted = words.map { "'\($0)'" }.joined(separator: " ")
        let result = try Host().execute([
            "bash", "-c",
            """
            source '\(file.path)'
            [ "$(complete -p osprey)" = 'complete -o filenames -F _osprey osprey' ] || exit 3
            COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}
            _osprey osprey '\(current)' '\(previous)'
            printf '%s\\n' "${COMPREPLY[@]}"
            """,
        ])
        try #require(result.status == 0, "bash: \(result.stderr)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    @Test("the bash script completes subcommands and option values in bash")
    func bash() throws {
        let result = try OspreyBinary.cli.run(["completion", "bash"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Self.bashCompletions(result.stdout, "osprey l") == ["list", "lab"])
        #expect(try Self.bashCompletions(result.stdout, "osprey list ").contains("namespaces"))
        #expect(try Self.bashCompletions(result.stdout, "osprey list nodes -o ") == ["table", "wide", "json"])
        #expect(try Self.bashCompletions(result.stdout, "osprey completion ") == ["bash", "zsh", "fish"])
    }

    @Test("zsh and fish get their own scripts; a shell it has no script for is one sentence, exit 64")
    func otherShells() throws {
        let zsh = try OspreyBinary.cli.run(["completion", "zsh"])
        #expect(zsh.status == 0 && zsh.stdout.hasPrefix("#compdef osprey"), "\(zsh.stdout.prefix(80))")
        let fish = try OspreyBinary.cli.run(["completion", "fish"])
        #expect(fish.status == 0 && fish.stdout.contains("complete -c 'osprey'"), "\(fish.stdout.prefix(200))")
        let tcsh = try OspreyBinary.cli.run(["completion", "tcsh"])
        #expect(tcsh.status == 64)
        #expect(
            tcsh.stderr.contains(
                "The value 'tcsh' is invalid for '<shell>'. Please provide one of 'bash', 'zsh' or 'fish'."))
        #expect(tcsh.stdout.isEmpty)
    }
}

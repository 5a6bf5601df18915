import ArgumentParser
import Foundation

/// `osprey`: the command line. Subcommands live in their own files.
public struct OspreyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "osprey",
        abstract: "Network observability for Kubernetes: flows, Hubble-compatible API, lab cluster.",
        version: OspreyVersion.current,
        subcommands: [LabCommand.self])

    public init() {}
}

public enum OspreyVersion {
    public static let current = "0.1.0"
}

/// Runs `body`, turning an Osprey error into one line on stderr and exit status 1.
///
/// ArgumentParser's own errors (unknown flags and the like) keep its usual output.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as any CustomStringConvertible & Error {
        FileHandle.standardError.write(Data("osprey: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
}

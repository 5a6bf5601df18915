import ArgumentParser
import Foundation
import HubbleWire

/// `osprey`: the command line. Subcommands live in their own files.
public struct OspreyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "osprey",
        abstract: "Network observability for Kubernetes: flows, Hubble-compatible API, lab cluster.",
        version: OspreyVersion.current,
        subcommands: [
            ObserveCommand.self, StatusCommand.self, ListCommand.self, WatchCommand.self, ConfigCommand.self,
            UICommand.self, LabCommand.self, VersionCommand.self, CompletionCommand.self,
        ])

    public init() {}
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

/// The same for commands that talk to a server.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as any CustomStringConvertible & Error {
        FileHandle.standardError.write(Data("osprey: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
}

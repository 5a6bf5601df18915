import ArgumentParser
import HubbleWire

/// `osprey version`: hubble's `version` command — the name, the version, and what built it, on one
/// line (`osprey 0.2.0 compiled with Swift 6.3 on linux/amd64`), so a script that reads
/// `hubble version` reads this too. `osprey --version` stays the bare version.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Display detailed version information.")

    func run() {
        print("osprey \(OspreyVersion.current) compiled with Swift \(Self.swiftVersion) on \(Self.platform)")
    }

    /// The language version of the compiler that built this binary (Go's `runtime.Version()` in hubble's).
    static var swiftVersion: String {
        #if swift(>=6.4)
            return "6.4 or later"
        #elseif swift(>=6.3)
            return "6.3"
        #elseif swift(>=6.2)
            return "6.2"
        #elseif swift(>=6.1)
            return "6.1"
        #else
            return "6.0"
        #endif
    }

    /// Go's GOOS/GOARCH spelling, as hubble prints it.
    static var platform: String {
        #if os(Linux)
            let os = "linux"
        #elseif os(macOS)
            let os = "darwin"
        #else
            let os = "unknown"
        #endif
        #if arch(x86_64)
            return "\(os)/amd64"
        #elseif arch(arm64)
            return "\(os)/arm64"
        #else
            return "\(os)/unknown"
        #endif
    }
}

import Foundation
import TestSupport
import Testing

/// The `osprey` binary as a user runs it: bad input gets one sentence and a non-zero exit.
@Suite("osprey lab: bad input")
struct LabCommandLineTests {
    @Test(
        "invalid flags are refused before anything is created",
        arguments: [
            (["lab", "up", "--nodes", "0"], "osprey: --nodes must be between 1 and 4, not 0.\n"),
            (["lab", "up", "--nodes", "9"], "osprey: --nodes must be between 1 and 4, not 9.\n"),
            (["lab", "up", "--topology", "mesh"], "osprey: Unknown topology 'mesh'; use one of: bridge, routed.\n"),
            (
                ["lab", "up", "--name", "prod"],
                "osprey: Lab name 'prod' must be 'osp' followed by at most 5 lowercase letters or digits (e.g. osp, osp2).\n"
            ),
        ])
    func invalidFlags(arguments: [String], message: String) throws {
        let result = try OspreyBinary.cli.run(arguments)
        #expect(result.status == 1)
        #expect(result.stderr == message)
        #expect(result.stdout == "")
    }

    @Test("lab up without root says to use sudo")
    func withoutRoot() throws {
        let result = try OspreyBinary.cli.run(["lab", "up", "--name", "ospnr"], asUser: 65534)
        #expect(result.status == 1)
        #expect(
            result.stderr
                == "osprey: The lab needs root (it creates network namespaces, veths and nftables rules); run it with sudo.\n"
        )
        #expect(!FileManager.default.fileExists(atPath: "/run/netns/ospnr-fabric"))
    }

    @Test("status of a lab that is not up says how to start one")
    func statusWithoutLab() throws {
        let result = try OspreyBinary.cli.run(["lab", "status", "--name", "ospnone"])
        #expect(result.status == 1)
        #expect(
            result.stderr == "osprey: No lab named 'ospnone' is up; start one with `osprey lab up --name ospnone`.\n")
    }

    @Test("an unknown flag is an error with usage, not a crash")
    func unknownFlag() throws {
        let result = try OspreyBinary.cli.run(["lab", "up", "--bogus"])
        #expect(result.status == 64)
        #expect(result.stderr.hasPrefix("Error: Unknown option '--bogus'"))
    }
}

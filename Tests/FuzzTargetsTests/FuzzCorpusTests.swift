import Foundation
import Testing

@testable import FuzzTargets

/// The fuzz corpus (`Fuzz/corpus/<target>/`: seeds, and every input that ever crashed a target,
/// kept as a regression) through every target: none may crash, and each target's seeds still
/// reach its parser's success path.
@Suite("Fuzz corpus replayed")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus").path

    @Test("every corpus file runs through its target without a crash", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let directory = "\(Self.corpus)/\(target.rawValue)"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files.contains { $0.hasPrefix("seed-") }, "\(directory) has its seeds")
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(file)"))
            bytes.withUnsafeBytes { target.run($0) }
        }
    }

    @Test("every seed the seed writer makes is committed (regenerate: osprey-fuzz seed Fuzz/corpus)")
    func seedsCurrent() throws {
        for target in FuzzTarget.allCases {
            for seed in FuzzSeeds.seeds(target) {
                let path = "\(Self.corpus)/\(target.rawValue)/seed-\(seed.name)"
                #expect(!seed.bytes.isEmpty, "\(path)")
                #expect(FileManager.default.fileExists(atPath: path), "\(path) is missing")
            }
        }
    }

    @Test("seeds parse: the fuzzer starts inside each parser, not at its first check")
    func seedsParse() throws {
        #expect(FuzzSeeds.seeds(.dns).allSatisfy { FuzzTarget.parsesDNS($0.bytes) })
        #expect(FuzzTarget.requestValid(FuzzSeeds.requestBytes))
        #expect(
            FuzzSeeds.seeds(.jsonpb).allSatisfy { FuzzTarget.jsonpbValid(String(decoding: $0.bytes, as: UTF8.self)) })
        #expect(FuzzTarget.kubernetesValid(Data(FuzzSeeds.watchEvent)))
        #expect(FuzzTarget.batchValid(FuzzSeeds.batch))
    }
}

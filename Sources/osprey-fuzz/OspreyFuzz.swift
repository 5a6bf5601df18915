import Foundation
import FuzzTargets

#if OSPREY_FUZZ
    // Built by `make fuzz` with -sanitize=fuzzer,address. SwiftPM names an
    // executable's entry point `<module>_main`; here it hands libFuzzer's driver the input
    // function. OSPREY_FUZZ_TARGET names the parser.
    @_silgen_name("LLVMFuzzerRunDriver")
    func llvmFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    @_cdecl("LLVMFuzzerTestOneInput")
    public func ospreyFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        FuzzTarget.selected.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    @_cdecl("osprey_fuzz_main")
    public func ospreyFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        var count = argc
        var arguments = argv
        _ = FuzzTarget.selected  // a missing or unknown target is said before fuzzing starts
        return llvmFuzzerRunDriver(&count, &arguments) { data, size in ospreyFuzzOne(data, size) }
    }
#else
    /// Without the fuzzer: `osprey-fuzz seed DIR` writes the seed corpus, `osprey-fuzz TARGET
    /// FILE…` runs files through a target once (a crash's input, by hand).
    @main
    enum OspreyFuzz {
        static func main() throws {
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "seed", arguments.count == 2 {
                for target in FuzzTarget.allCases {
                    let directory = "\(arguments[1])/\(target.rawValue)"
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    for seed in FuzzSeeds.seeds(target) {
                        try Data(seed.bytes).write(to: URL(fileURLWithPath: "\(directory)/seed-\(seed.name)"))
                    }
                }
                return
            }
            guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
                let targets = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
                FileHandle.standardError.write(
                    Data("usage: osprey-fuzz seed DIR | osprey-fuzz \(targets) FILE…\n".utf8))
                exit(2)
            }
            for path in arguments.dropFirst() {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes.withUnsafeBytes { target.run($0) }
            }
        }
    }
#endif

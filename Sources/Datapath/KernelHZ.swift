import Foundation
import Gzip

extension Datapath {
    /// The kernel's tick rate (CONFIG_HZ), from its build configuration: `/boot/config-<release>`
    /// or `/proc/config.gz`. The programs then time periodic reports by jiffies, a memory read,
    /// instead of the coarse clock, three kernel calls per packet. Nil when neither file is
    /// there (kernels without CONFIG_IKCONFIG_PROC, in a container without /boot): the programs
    /// read the coarse clock, which costs a little more and reports the same.
    static func kernelHZ(bootConfig: String = bootConfigPath, procConfig: String = "/proc/config.gz") -> Int? {
        if let text = try? String(contentsOfFile: bootConfig, encoding: .utf8), let hz = kernelHZ(fromConfig: text) {
            return hz
        }
        guard let packed = FileManager.default.contents(atPath: procConfig),
            let text = try? Gzip.decompress(packed)
        else { return nil }
        return kernelHZ(fromConfig: String(decoding: text, as: UTF8.self))
    }

    static var bootConfigPath: String {
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "/boot/config-\(release)"
    }

    /// CONFIG_HZ of a kernel configuration's text (`CONFIG_HZ=250`); nil if absent or not a rate
    /// a kernel can have.
    static func kernelHZ(fromConfig text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("CONFIG_HZ=") {
            guard let hz = Int(line.dropFirst("CONFIG_HZ=".count)), (24...10_000).contains(hz) else { return nil }
            return hz
        }
        return nil
    }
}

import Foundation
import PackagePlugin

/// Compiles a target's eBPF C (`<target>/bpf/*.c`) with the toolchain's clang and embeds each
/// object in the target as a Swift byte array, so `swift build` is the only build step.
///
/// Per program: `clang -O2 -g -target bpf` → `llvm-objcopy --strip-debug` (BTF stays, CO-RE needs
/// it) → `osprey-embed` writes `<name>.bpf.swift`. Headers: `<target>/bpf/*.h`, the shared ABI
/// header (`Sources/CDatapathABI`), libbpf's, and Debian's multiarch UAPI directory.
@main
struct BPFCompiler: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let bpfDirectory = target.directoryURL.appending(path: "bpf")
        let abiDirectory = context.package.directoryURL.appending(path: "Sources/CDatapathABI")
        let fm = FileManager.default
        let entries = (try? fm.contentsOfDirectory(atPath: bpfDirectory.path)) ?? []
        let headers = entries.filter { $0.hasSuffix(".h") }.map { bpfDirectory.appending(path: $0) }
            + ((try? fm.contentsOfDirectory(atPath: abiDirectory.path)) ?? []).map { abiDirectory.appending(path: $0) }
        let clang = try context.tool(named: "clang").url
        let objcopy = try context.tool(named: "llvm-objcopy").url
        let embed = try context.tool(named: "osprey-embed").url
        var commands: [Command] = []
        for source in entries.filter({ $0.hasSuffix(".c") }).sorted() {
            let name = String(source.dropLast(2))
            let input = bpfDirectory.appending(path: source)
            let object = context.pluginWorkDirectoryURL.appending(path: "\(name).bpf.o")
            let stripped = context.pluginWorkDirectoryURL.appending(path: "\(name).bpf.stripped.o")
            let swift = context.pluginWorkDirectoryURL.appending(path: "\(name).bpf.swift")
            commands.append(
                .buildCommand(
                    displayName: "Compiling eBPF \(source)", executable: clang,
                    arguments: [
                        "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-Wall", "-Werror",
                        "-I", bpfDirectory.path, "-I", abiDirectory.path, "-I", "/usr/include/x86_64-linux-gnu",
                        "-c", input.path, "-o", object.path,
                    ],
                    inputFiles: [input] + headers, outputFiles: [object]))
            commands.append(
                .buildCommand(
                    displayName: "Stripping eBPF \(name).bpf.o", executable: objcopy,
                    arguments: ["--strip-debug", object.path, stripped.path],
                    inputFiles: [object], outputFiles: [stripped]))
            commands.append(
                .buildCommand(
                    displayName: "Embedding eBPF \(name)", executable: embed,
                    arguments: [
                        stripped.path, swift.path, "BPFObjects",
                        name.split(separator: "_").enumerated()
                            .map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined(),
                        "The compiled eBPF object `\(name).bpf.o` (BTF included)",
                    ],
                    inputFiles: [stripped], outputFiles: [swift]))
        }
        return commands
    }
}

import Foundation
import PackagePlugin

/// Embeds every file of a target's `assets/` directory (the web UI's page, styles and script)
/// as a Swift byte array, `WebAssets.<name>` (`app.js` → `appJs`): the binary serves them with no
/// files beside it and no build step beyond `swift build`.
@main
struct AssetEmbedder: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let directory = target.directoryURL.appending(path: "assets")
        let embed = try context.tool(named: "osprey-embed").url
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { name in
            let parts = name.split(separator: ".")
            let identifier =
                parts.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
            let output = context.pluginWorkDirectoryURL.appending(path: "\(identifier).asset.swift")
            return .buildCommand(
                displayName: "Embedding asset \(name)", executable: embed,
                arguments: [directory.appending(path: name).path, output.path, "WebAssets", identifier, "`assets/\(name)`"],
                inputFiles: [directory.appending(path: name)], outputFiles: [output])
        }
    }
}

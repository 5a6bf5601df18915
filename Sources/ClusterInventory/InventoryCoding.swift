import Foundation

/// What can go wrong reading an inventory file, in words an operator can act on.
public enum InventoryError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case unsupportedVersion(path: String, found: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "Cannot read the inventory \(path) (\(reason)); is the lab up (`osprey lab status`)?"
        case .malformed(let path, let reason):
            "The inventory \(path) is not valid JSON of the documented format (\(reason)); see docs/inventory.md."
        case .unsupportedVersion(let path, let found):
            "The inventory \(path) has apiVersion \(found), but this Osprey reads \(Inventory.currentAPIVersion); regenerate it with this version."
        }
    }
}

extension Inventory {
    /// The canonical JSON encoding: sorted keys, ISO 8601 dates, pretty-printed for people.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    /// Decodes an inventory and checks its `apiVersion` and `kind`.
    public static func decode(_ data: Data, path: String = "<data>") throws(InventoryError) -> Inventory {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let inventory: Inventory
        do {
            inventory = try decoder.decode(Inventory.self, from: data)
        } catch let error as DecodingError {
            throw .malformed(path: path, reason: error.shortDescription)
        } catch {
            throw .malformed(path: path, reason: "\(error)")
        }
        guard inventory.apiVersion == currentAPIVersion, inventory.kind == kindName else {
            throw .unsupportedVersion(path: path, found: "\(inventory.apiVersion) \(inventory.kind)")
        }
        return inventory
    }

    /// Reads and decodes the inventory at `path`.
    public static func load(from path: String) throws(InventoryError) -> Inventory {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, path: path)
    }

    /// Writes the inventory atomically, so a reader never sees half a file.
    public func write(to path: String) throws {
        try encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

extension DecodingError {
    /// "missing key 'pods' at …" rather than Foundation's multi-line dump.
    fileprivate var shortDescription: String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty
                ? "top level" : path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch self {
        case .keyNotFound(let key, let context): return "missing key '\(key.stringValue)' at \(at(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(at(context.codingPath))"
        case .dataCorrupted(let context): return "\(context.debugDescription) at \(at(context.codingPath))"
        @unknown default: return "\(self)"
        }
    }
}

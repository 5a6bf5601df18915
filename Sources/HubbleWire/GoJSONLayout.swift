import Foundation
import HubbleAPI
import SwiftProtobuf

/// Lays protobuf JSON out as Hubble's Go tools write it, so `osprey observe -o jsonpb` and the
/// agent's JSON lines are byte for byte what `hubble observe -o jsonpb` prints for the same
/// flow: Go's protojson writes a message's fields in the order the .proto declares them (not by
/// number, as swift-protobuf does) and map entries sorted by key, and Go's JSON encoder then
/// escapes `<`, `>`, `&`, U+2028 and U+2029. The field order comes from the protos'
/// descriptors (`HubbleDescriptors`).
public enum GoJSONLayout {
    /// A message's fields in declaration order: JSON key → (position, message type of the value).
    struct MessageLayout {
        var position: [String: Int] = [:]
        var fieldType: [String: String] = [:]
        var isMap = false
    }

    static let layouts: [String: MessageLayout] = {
        let data = Data(base64Encoded: HubbleDescriptors.fileDescriptorSetBase64) ?? Data()
        let set = (try? Google_Protobuf_FileDescriptorSet(serializedBytes: data)) ?? .init()
        var layouts: [String: MessageLayout] = [:]
        func add(_ message: Google_Protobuf_DescriptorProto, scope: String) {
            let name = scope + message.name
            var layout = MessageLayout(isMap: message.options.mapEntry)
            for (index, field) in message.field.enumerated() {
                layout.position[field.name] = index
                if field.type == .message { layout.fieldType[field.name] = String(field.typeName.dropFirst()) }
            }
            layouts[name] = layout
            for nested in message.nestedType { add(nested, scope: name + ".") }
        }
        for file in set.file {
            for message in file.messageType { add(message, scope: file.package.isEmpty ? "" : file.package + ".") }
        }
        return layouts
    }()

    /// Types whose JSON is not an object of fields (or is one with fixed keys).
    static let opaque: Set<String> = [
        "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
        "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
        "google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value", "google.protobuf.FloatValue", "google.protobuf.DoubleValue",
        "google.protobuf.Value", "google.protobuf.ListValue",
    ]

    /// `json` (compact, as swift-protobuf writes message `type`) in Go's layout.
    public static func relayout(_ json: String, as type: String) -> String {
        var parser = Parser(text: Array(json.utf8))
        guard let tree = parser.value(), parser.atEnd else { return json }
        var out: [UInt8] = []
        emit(tree, type: type, into: &out)
        return escapingHTML(String(decoding: out, as: UTF8.self))
    }

    /// `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`…, as Go's JSON encoder writes them.
    static func escapingHTML(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { "<>&\u{2028}\u{2029}".unicodeScalars.contains($0) }) else {
            return json
        }
        var out = ""
        for scalar in json.unicodeScalars {
            switch scalar {
            case "<", ">", "&", "\u{2028}", "\u{2029}": out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    // MARK: - A JSON tree that keeps every scalar's text as written

    indirect enum Node {
        case object([(key: [UInt8], value: Node)])
        case array([Node])
        case raw([UInt8])
    }

    static func emit(_ node: Node, type: String?, into out: inout [UInt8]) {
        switch node {
        case .raw(let bytes): out += bytes
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                emit(item, type: type, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(var members):
            if type == "google.protobuf.Any" {
                // `@type` first, then the packed message's fields in its own order.
                let packed = packedType(members).flatMap { layouts[$0] }
                members.sort { a, b in
                    let (ka, kb) = (key(a.key), key(b.key))
                    if ka == "@type" || kb == "@type" { return ka == "@type" && kb != "@type" }
                    return (packed?.position[ka] ?? .max) < (packed?.position[kb] ?? .max)
                }
            } else if let type, let layout = layouts[type], !opaque.contains(type) {
                if layout.isMap {
                    members.sort { key($0.key) < key($1.key) }
                } else {
                    members.sort { (layout.position[key($0.key)] ?? .max) < (layout.position[key($1.key)] ?? .max) }
                }
            } else if type == "google.protobuf.Struct" {
                members.sort { key($0.key) < key($1.key) }
            }
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += member.key
                out.append(UInt8(ascii: ":"))
                let name = key(member.key)
                emit(member.value, type: childType(of: type, field: name, in: members), into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// The message type of a member's value: the field's type; inside an `Any`, the packed type
    /// named by `@type` (a well-known type's JSON sits under `value`).
    static func childType(of type: String?, field: String, in members: [(key: [UInt8], value: Node)]) -> String? {
        guard let type else { return nil }
        if type == "google.protobuf.Struct" { return "google.protobuf.Value" }
        if type == "google.protobuf.Any" {
            guard let packed = packedType(members) else { return nil }
            // A well-known type's JSON sits under `value`; other messages' fields sit beside `@type`.
            if packed.hasPrefix("google.protobuf.") { return field == "value" ? packed : nil }
            return layouts[packed]?.fieldType[field]
        }
        guard let layout = layouts[type] else { return nil }
        // A map's entries are keyed by the map's keys; every value has the entry's value type.
        if layout.isMap { return layout.fieldType["value"] }
        return layout.fieldType[field]
    }

    /// The message type an `Any` object holds, from its `@type` URL.
    static func packedType(_ members: [(key: [UInt8], value: Node)]) -> String? {
        guard let url = members.first(where: { key($0.key) == "@type" }), case .raw(let bytes) = url.value else {
            return nil
        }
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self).split(separator: "/").last.map(String.init)
    }

    /// A raw key's text without its quotes (keys from swift-protobuf need no unescaping).
    static func key(_ raw: [UInt8]) -> String { String(decoding: raw.dropFirst().dropLast(), as: UTF8.self) }

    struct Parser {
        let text: [UInt8]
        var index = 0

        var atEnd: Bool { index == text.count }

        mutating func value() -> Node? {
            guard index < text.count else { return nil }
            switch text[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(key: [UInt8], value: Node)] = []
                if peek(UInt8(ascii: "}")) { return .object(members) }
                repeat {
                    guard let key = string(), peek(UInt8(ascii: ":")), let value = value() else { return nil }
                    members.append((key, value))
                } while peek(UInt8(ascii: ","))
                return peek(UInt8(ascii: "}")) ? .object(members) : nil
            case UInt8(ascii: "["):
                index += 1
                var items: [Node] = []
                if peek(UInt8(ascii: "]")) { return .array(items) }
                repeat {
                    guard let item = value() else { return nil }
                    items.append(item)
                } while peek(UInt8(ascii: ","))
                return peek(UInt8(ascii: "]")) ? .array(items) : nil
            case UInt8(ascii: "\""):
                return string().map(Node.raw)
            default:
                let start = index
                while index < text.count, !",}]".utf8.contains(text[index]) { index += 1 }
                return index > start ? .raw(Array(text[start..<index])) : nil
            }
        }

        /// A string token with its quotes and escapes as written.
        mutating func string() -> [UInt8]? {
            guard index < text.count, text[index] == UInt8(ascii: "\"") else { return nil }
            let start = index
            index += 1
            while index < text.count {
                switch text[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return Array(text[start..<index])
                default: index += 1
                }
            }
            return nil
        }

        mutating func peek(_ byte: UInt8) -> Bool {
            guard index < text.count, text[index] == byte else { return false }
            index += 1
            return true
        }
    }
}

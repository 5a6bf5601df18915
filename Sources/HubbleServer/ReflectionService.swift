import Foundation
import GRPCCore
import HubbleAPI
import HubbleWire
import SwiftProtobuf

/// gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) for the services a server
/// offers, as upstream's Hubble servers have it: `grpcurl list`, `grpcurl describe` and calls
/// without local protos. Answers from the descriptors of Osprey's protos (generated with the
/// code by `make proto`); the reflection protocol's few messages are coded by hand here.
public struct ReflectionService: RegistrableRPCService {
    /// The reflection services' own names, listed with the others.
    static let serviceNames = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]

    let catalog: Catalog
    let services: [String]

    /// Reflects `services` (fully qualified names) and itself.
    public init(services: [String]) {
        catalog = Catalog.shared
        self.services = (services + Self.serviceNames).sorted()
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        for name in Self.serviceNames {
            router.registerHandler(
                forMethod: MethodDescriptor(fullyQualifiedService: name, method: "ServerReflectionInfo"),
                deserializer: RawBytes(), serializer: RawBytes()
            ) { request, _ in
                StreamingServerResponse { writer in
                    for try await message in request.messages { try await writer.write(answer(message)) }
                    return [:]
                }
            }
        }
    }

    /// The answer to one ServerReflectionRequest (binary in, binary out).
    func answer(_ request: [UInt8]) -> [UInt8] {
        var response = ProtoWire.field(2, request)  // original_request
        let fields = Wire.fields(request)
        if let name = fields[3].flatMap(Wire.string) {  // file_by_filename
            response += files(catalog.closure(ofFile: name), missing: "file \(name)")
        } else if let symbol = fields[4].flatMap(Wire.string) {  // file_containing_symbol
            let file = catalog.fileDefining[symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol]
            response += files(file.map { catalog.closure(ofFile: $0) } ?? [], missing: "symbol \(symbol)")
        } else if fields[5] != nil {  // file_containing_extension: Osprey's protos declare none
            response += error(5, "Osprey's protos declare no extensions")
        } else if let type = fields[6].flatMap(Wire.string) {  // all_extension_numbers_of_type
            response += ProtoWire.field(5, ProtoWire.field(1, Array(type.utf8)))
        } else if fields[7] != nil {  // list_services
            let list = services.flatMap { ProtoWire.field(1, ProtoWire.field(1, Array($0.utf8))) }
            response += ProtoWire.field(6, list)
        } else {
            response += error(3, "the request asks for nothing this server knows")
        }
        return response
    }

    func files(_ names: [String], missing: String) -> [UInt8] {
        guard !names.isEmpty else { return error(5, "\(missing) not found") }
        return ProtoWire.field(4, names.flatMap { ProtoWire.field(1, catalog.serialized[$0] ?? []) })
    }

    /// ErrorResponse (field 7): a gRPC status code and a sentence.
    func error(_ code: Int, _ message: String) -> [UInt8] {
        ProtoWire.field(7, ProtoWire.varintField(1, UInt64(code)) + ProtoWire.field(2, Array(message.utf8)))
    }

    /// The descriptors, indexed once per process: file name → bytes, symbol → defining file.
    final class Catalog: Sendable {
        static let shared = Catalog()

        let serialized: [String: [UInt8]]
        let dependencies: [String: [String]]
        let fileDefining: [String: String]

        init() {
            let data = Data(base64Encoded: HubbleDescriptors.fileDescriptorSetBase64) ?? Data()
            let set = (try? Google_Protobuf_FileDescriptorSet(serializedBytes: data)) ?? .init()
            var serialized: [String: [UInt8]] = [:]
            var dependencies: [String: [String]] = [:]
            var symbols: [String: String] = [:]
            for file in set.file {
                serialized[file.name] = (try? file.serializedBytes()) ?? []
                dependencies[file.name] = file.dependency
                let prefix = file.package.isEmpty ? "" : file.package + "."
                func messages(_ list: [Google_Protobuf_DescriptorProto], _ scope: String) {
                    for message in list {
                        let name = scope + message.name
                        symbols[name] = file.name
                        for field in message.field { symbols[name + "." + field.name] = file.name }
                        for item in message.enumType { symbols[name + "." + item.name] = file.name }
                        messages(message.nestedType, name + ".")
                    }
                }
                messages(file.messageType, prefix)
                for item in file.enumType { symbols[prefix + item.name] = file.name }
                for service in file.service {
                    symbols[prefix + service.name] = file.name
                    for method in service.method { symbols[prefix + service.name + "." + method.name] = file.name }
                }
            }
            self.serialized = serialized
            self.dependencies = dependencies
            fileDefining = symbols
        }

        /// The file and everything it imports, the file first.
        func closure(ofFile name: String) -> [String] {
            guard serialized[name] != nil else { return [] }
            var order: [String] = []
            var pending = [name]
            while let next = pending.first {
                pending.removeFirst()
                guard !order.contains(next), serialized[next] != nil else { continue }
                order.append(next)
                pending += dependencies[next] ?? []
            }
            return order
        }
    }
}

/// The protobuf wire format, as far as reflection needs it.
enum Wire {
    /// Length-delimited fields by number (the last of each).
    static func fields(_ bytes: [UInt8]) -> [Int: [UInt8]] {
        var result: [Int: [UInt8]] = [:]
        for (number, value) in all(bytes) { result[number] = value }
        return result
    }

    /// Every length-delimited field in order (repeated ones each time); other wire types skipped.
    static func all(_ bytes: [UInt8]) -> [(Int, [UInt8])] {
        var result: [(Int, [UInt8])] = []
        var index = 0
        while index < bytes.count {
            guard let key = varint(bytes, &index) else { break }
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: guard varint(bytes, &index) != nil else { return result }
            case 1: index += 8
            case 2:
                guard let length = varint(bytes, &index), length <= UInt64(bytes.count - index) else { return result }
                result.append((number, Array(bytes[index..<(index + Int(length))])))
                index += Int(length)
            case 5: index += 4
            default: return result
            }
        }
        return result
    }

    static func varint(_ bytes: [UInt8], _ index: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }

    static func string(_ bytes: [UInt8]) -> String? { String(validating: bytes, as: UTF8.self) }

}

/// Messages passed through as their bytes.
public struct RawBytes: MessageSerializer, MessageDeserializer {
    public init() {}
    public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

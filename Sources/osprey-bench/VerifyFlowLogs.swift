import Foundation
import Gzip
import HubbleWire

/// `osprey-bench verify-flowlogs <directory>`: reads every flow log in a directory (rotated and
/// gzipped ones too) and checks what a log shipper relies on: every line is one whole JSON
/// object, a flow or a lost-events record. Prints `files lines flows lost-in-records bad`
/// (tab-separated) for the export flood bench; exits 1 when a line is cut or not JSON.
///
/// Millions of lines are checked by a JSON syntax scan; lost-events records (few) are parsed
/// as jsonpb for their counts, and every 1000th flow line too, as `observe --input-file` would.
enum VerifyFlowLogs {
    static func run(_ arguments: [String]) throws {
        guard arguments.count == 1 else {
            FileHandle.standardError.write(Data("usage: osprey-bench verify-flowlogs <directory>\n".utf8))
            exit(2)
        }
        let directory = arguments[0]
        var (files, lines, flows, lost, bad) = (0, 0, 0, UInt64(0), 0)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            var data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            if Gzip.isCompressed(data) { data = try Gzip.decompress(data) }
            files += 1
            if let last = data.last, last != UInt8(ascii: "\n") {
                FileHandle.standardError.write(Data("\(name): the last line is cut\n".utf8))
                bad += 1
            }
            data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                let bytes = buffer.bindMemory(to: UInt8.self)
                var start = 0
                while start < bytes.count {
                    var end = start
                    while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                    guard end < bytes.count else { break }  // counted above
                    let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                    lines += 1
                    var scanner = JSONScanner(bytes: line)
                    if !scanner.isOneObject() {
                        bad += 1
                    } else if Self.starts(line, with: "{\"flow\":") {
                        flows += 1
                        if flows % 1000 == 0, (try? FlowJSONLines.parse(String(decoding: line, as: UTF8.self))) == nil {
                            bad += 1
                        }
                    } else if let record = try? FlowJSONLines.parse(String(decoding: line, as: UTF8.self)),
                        case .lostEvents(let lostEvents)? = record.responseTypes
                    {
                        lost += lostEvents.numEventsLost
                    } else {
                        bad += 1
                    }
                    start = end + 1
                }
            }
        }
        print("\(files)\t\(lines)\t\(flows)\t\(lost)\t\(bad)")
        if bad > 0 { exit(1) }
    }

    static func starts(_ line: UnsafeBufferPointer<UInt8>, with prefix: StaticString) -> Bool {
        prefix.withUTF8Buffer { prefix in
            line.count >= prefix.count && zip(line, prefix).allSatisfy { $0 == $1 }
        }
    }
}

/// A JSON syntax check over bytes: one object and nothing after it. No values are built.
struct JSONScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func isOneObject() -> Bool {
        guard peek() == UInt8(ascii: "{"), value(depth: 0) else { return false }
        skipSpace()
        return index == bytes.count
    }

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipSpace() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    private mutating func expect(_ byte: UInt8) -> Bool {
        skipSpace()
        guard peek() == byte else { return false }
        index += 1
        return true
    }

    private mutating func value(depth: Int) -> Bool {
        guard depth < 64 else { return false }
        skipSpace()
        switch peek() {
        case UInt8(ascii: "{"):
            index += 1
            skipSpace()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return true
            }
            repeat {
                skipSpace()
                guard string(), expect(UInt8(ascii: ":")), value(depth: depth + 1) else { return false }
            } while expect(UInt8(ascii: ","))
            return expect(UInt8(ascii: "}"))
        case UInt8(ascii: "["):
            index += 1
            skipSpace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return true
            }
            repeat {
                guard value(depth: depth + 1) else { return false }
            } while expect(UInt8(ascii: ","))
            return expect(UInt8(ascii: "]"))
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    private mutating func string() -> Bool {
        guard peek() == UInt8(ascii: "\"") else { return false }
        index += 1
        while let byte = peek() {
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return true
            case UInt8(ascii: "\\"):
                guard peek() != nil else { return false }
                index += 1
            case 0..<0x20: return false
            default: break
            }
        }
        return false
    }

    private mutating func literal(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { text in
            guard bytes.count - index >= text.count, zip(bytes[index...], text).allSatisfy({ $0 == $1 }) else {
                return false
            }
            index += text.count
            return true
        }
    }

    private mutating func number() -> Bool {
        let start = index
        while let byte = peek(),
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e")
                || byte == UInt8(ascii: "E")
        {
            index += 1
        }
        return index > start
    }
}

import CZlib
import Foundation

/// gzip (RFC 1952) through zlib: rotated flow logs are compressed with it, and
/// `osprey observe --input-file` reads them back.
public enum Gzip {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// True when `data` starts with gzip's magic bytes.
    public static func isCompressed(_ data: Data) -> Bool { data.starts(with: [0x1f, 0x8b]) }

    /// `data` as one gzip member.
    public static func compress(_ data: Data, level: Int32 = 6) throws(Failure) -> Data {
        var stream = z_stream()
        // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
        guard
            deflateInit2_(
                &stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { throw Failure(description: "cannot start gzip compression") }
        defer { deflateEnd(&stream) }
        var output = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = [UInt8](data)
        let status: Int32 = input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            var status = Z_OK
            repeat {
                chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    status = deflate(&stream, Z_FINISH)
                    output.append(buffer.baseAddress!, count: buffer.count - Int(stream.avail_out))
                }
            } while status == Z_OK
            return status
        }
        guard status == Z_STREAM_END else { throw Failure(description: "gzip compression failed (\(status))") }
        return output
    }

    /// Every member of a gzip file, concatenated (as `zcat` reads them).
    public static func decompress(_ data: Data) throws(Failure) -> Data {
        var output = Data()
        var input = [UInt8](data)
        var offset = 0
        while offset < input.count {
            var stream = z_stream()
            guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw Failure(description: "cannot start gzip decompression")
            }
            defer { inflateEnd(&stream) }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let (status, consumed): (Int32, Int) = input.withUnsafeMutableBufferPointer { source in
                stream.next_in = source.baseAddress! + offset
                stream.avail_in = uInt(source.count - offset)
                var status = Z_OK
                repeat {
                    chunk.withUnsafeMutableBufferPointer { buffer in
                        stream.next_out = buffer.baseAddress
                        stream.avail_out = uInt(buffer.count)
                        status = inflate(&stream, Z_NO_FLUSH)
                        output.append(buffer.baseAddress!, count: buffer.count - Int(stream.avail_out))
                    }
                } while status == Z_OK
                return (status, source.count - offset - Int(stream.avail_in))
            }
            guard status == Z_STREAM_END else {
                throw Failure(description: "the gzip data is corrupt or cut short (zlib status \(status))")
            }
            offset += consumed
        }
        return output
    }
}

import CBPFGlue
import CLibbpf
import Foundation

/// Typed access to one BPF map by file descriptor. Keys and values are the C structs of
/// osprey_abi.h (trivial types), so they are copied bytewise.
struct BPFMap<Key: BitwiseCopyable, Value: BitwiseCopyable> {
    let name: String
    let fd: Int32

    func update(_ key: Key, _ value: Value) throws(DatapathError) {
        var key = key
        var value = value
        guard bpf_map_update_elem(fd, &key, &value, UInt64(BPF_ANY)) == 0 else {
            throw .map(name: name, operation: "update", errno: errno)
        }
    }

    /// The value for `key`, nil if absent.
    func value(_ key: Key) -> Value? {
        var key = key
        let value = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        defer { value.deallocate() }
        guard bpf_map_lookup_elem(fd, &key, value) == 0 else { return nil }
        return value.pointee
    }

    func delete(_ key: Key) {
        var key = key
        _ = bpf_map_delete_elem(fd, &key)
    }

    /// Every key currently in a hash map.
    func keys() -> [Key] {
        var result: [Key] = []
        var current: Key?
        let next = UnsafeMutablePointer<Key>.allocate(capacity: 1)
        defer { next.deallocate() }
        while true {
            let status: Int32
            if var key = current {
                status = bpf_map_get_next_key(fd, &key, next)
            } else {
                status = bpf_map_get_next_key(fd, nil, next)
            }
            guard status == 0 else { return result }
            current = next.pointee
            result.append(next.pointee)
        }
    }
}

extension BPFMap {
    /// A per-CPU map's value for `key`, one element per possible CPU; nil if absent.
    func perCPU(_ key: Key, cpus: Int) -> [Value]? {
        let stride = (MemoryLayout<Value>.size + 7) & ~7  // the kernel rounds each CPU's slot to 8
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: stride * cpus, alignment: 8)
        defer { buffer.deallocate() }
        var key = key
        guard bpf_map_lookup_elem(fd, &key, buffer.baseAddress) == 0 else { return nil }
        return (0..<cpus).map { buffer.loadUnaligned(fromByteOffset: $0 * stride, as: Value.self) }
    }
}

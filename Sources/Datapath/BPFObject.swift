import CBPFGlue
import CLibbpf
import Foundation

/// One loaded eBPF object: its programs and maps, owned until `close()`.
///
/// Not thread-safe by itself: `Datapath` keeps each one behind a `Mutex`.
final class BPFObject: @unchecked Sendable {
    let name: String
    private var object: OpaquePointer?
    /// libbpf reads the ELF buffer until load: it must outlive `bpf_object__load`.
    private let image: UnsafeMutableRawBufferPointer

    /// Opens and loads the object. Maps named in `sharing` use the given file descriptors
    /// instead of new maps, so programs of different objects count into the same maps.
    /// `constants` gives the initial bytes of read-only data sections (e.g. `.rodata.config`),
    /// written before load; each must be exactly the section's size. `sizes` overrides maps'
    /// `max_entries`.
    init(
        name: String, bytes: [UInt8], sharing: [String: Int32] = [:], constants: [String: [UInt8]] = [:],
        sizes: [String: UInt32] = [:]
    )
        throws(DatapathError)
    {
        self.name = name
        image = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        image.copyBytes(from: bytes)
        let opened = bpf_object__open_mem(image.baseAddress, image.count, nil)
        guard let opened else {
            image.deallocate()
            throw .open(object: name, errno: errno)
        }
        object = opened
        for (mapName, fd) in sharing {
            guard let map = bpf_object__find_map_by_name(opened, mapName), bpf_map__reuse_fd(map, fd) == 0 else {
                bpf_object__close(opened)
                object = nil
                image.deallocate()
                throw .missing(what: "map \(mapName) to share", object: name)
            }
        }
        for (section, value) in constants {
            guard let map = bpf_object__find_map_by_name(opened, section),
                value.withUnsafeBytes({ bpf_map__set_initial_value(map, $0.baseAddress, $0.count) }) == 0
            else {
                bpf_object__close(opened)
                object = nil
                image.deallocate()
                throw .missing(what: "section \(section) of \(value.count) bytes", object: name)
            }
        }
        for (mapName, size) in sizes {
            guard let map = bpf_object__find_map_by_name(opened, mapName), bpf_map__set_max_entries(map, size) == 0
            else {
                bpf_object__close(opened)
                object = nil
                image.deallocate()
                throw .missing(what: "map \(mapName) to size", object: name)
            }
        }
        let status = bpf_object__load(opened)
        guard status == 0 else {
            bpf_object__close(opened)
            object = nil
            image.deallocate()
            throw .load(object: name, errno: -status)
        }
    }

    deinit { close() }

    /// The program and map names an object declares, read without loading it (no privileges
    /// needed); maps the compiler made for data sections (`.rodata…`) are left out.
    static func declarations(of bytes: [UInt8]) -> (programs: Set<String>, maps: Set<String>)? {
        bytes.withUnsafeBytes { image -> (programs: Set<String>, maps: Set<String>)? in
            guard let object = bpf_object__open_mem(image.baseAddress, image.count, nil) else { return nil }
            defer { bpf_object__close(object) }
            var programs: Set<String> = []
            var program = bpf_object__next_program(object, nil)
            while let current = program {
                programs.insert(String(cString: bpf_program__name(current)))
                program = bpf_object__next_program(object, current)
            }
            var maps: Set<String> = []
            var map = bpf_object__next_map(object, nil)
            while let current = map {
                let name = String(cString: bpf_map__name(current))
                if !name.contains(".") { maps.insert(name) }
                map = bpf_object__next_map(object, current)
            }
            return (programs, maps)
        }
    }

    func close() {
        if let object {
            bpf_object__close(object)
            image.deallocate()
        }
        object = nil
    }

    func program(_ programName: String) throws(DatapathError) -> OpaquePointer {
        guard let object, let program = bpf_object__find_program_by_name(object, programName) else {
            throw .missing(what: "program \(programName)", object: name)
        }
        return program
    }

    func programFD(_ programName: String) throws(DatapathError) -> Int32 {
        bpf_program__fd(try program(programName))
    }

    func mapFD(_ mapName: String) throws(DatapathError) -> Int32 {
        guard let object else { throw .missing(what: "map \(mapName)", object: name) }
        let fd = bpf_object__find_map_fd_by_name(object, mapName)
        guard fd >= 0 else { throw .missing(what: "map \(mapName)", object: name) }
        return fd
    }

    /// Attaches a tracepoint program; the returned link detaches when destroyed or when the
    /// process dies (tracepoint links are file descriptors, so a killed agent leaves nothing).
    func attachTracepoint(_ programName: String) throws(DatapathError) -> OpaquePointer {
        guard let link = bpf_program__attach(try program(programName)) else {
            throw .attachTracepoint(program: programName, errno: errno)
        }
        return link
    }
}

import Flows

/// The hot path of the pod-level metrics: what forwarded flows add to
/// `adv_forward_count`, `adv_forward_bytes` and `adv_tcpflags_count`, by context (the labels of
/// one side in local context, of both in remote), found with one hash of numbers per flow side.
/// Labels are written only when Prometheus scrapes.
///
/// A key holds what its labels read as raw bits: endpoints by box identity, addresses and
/// Service names by the 16 bytes of their `String` (a short string's bytes are its text; a
/// long one's are its storage, which the context keeps alive so it cannot be reused). Two keys
/// of the same labels can differ (a pod's endpoint changed); their samples are summed when
/// written.
struct ForwardContexts {
    struct Key: Equatable {
        /// Direction (bits 0–1), is_reply (bits 2–3: none, false, true), which sides (4, 5).
        var code: UInt32 = 0
        /// Source port (bits 32–47), destination port (16–31), which are labelled and known (0–3).
        var ports: UInt64 = 0
        var source: UInt = 0
        var destination: UInt = 0
        var sourceIP = Bits()
        var destinationIP = Bits()
        var sourceService = Bits()
        var destinationService = Bits()

        /// A hash of every field, by multiplication (the table below needs no `Hasher`).
        var mixed: UInt64 {
            var mixed = UInt64(code) << 56 ^ ports
            @inline(__always) func mix(_ word: UInt64) {
                mixed = (mixed ^ word) &* 0x9E37_79B9_7F4A_7C15
                mixed ^= mixed >> 29
            }
            // A string's second word is mostly its length and flags: folded into the first.
            mix(UInt64(source))
            mix(UInt64(destination))
            mix(sourceIP.low ^ sourceIP.high.byteSwapped)
            mix(destinationIP.low ^ destinationIP.high.byteSwapped)
            mix(sourceService.low ^ sourceService.high.byteSwapped)
            mix(destinationService.low ^ destinationService.high.byteSwapped)
            return mixed ^ mixed >> 32
        }
    }

    /// A `String`'s 16 bytes.
    struct Bits: Hashable {
        var low: UInt64 = 0
        var high: UInt64 = 0

        init() {}
        init(_ text: String) { (low, high) = unsafeBitCast(text, to: (UInt64, UInt64).self) }
    }

    /// What one side's labels read.
    struct Reads {
        var endpoint = false
        var ip = false
        var port = false
        var service = false

        init(_ labels: [PodLevelOptions.Label]) {
            for label in labels {
                switch label {
                case .ip: ip = true
                case .port: port = true
                case .service: service = true
                case .namespace, .podname, .workload, .zone: endpoint = true
                }
            }
        }
    }

    /// A context: what its labels are written from, and its counts. (Its key is in `keys`.)
    struct Context {
        /// The key's code: direction, is_reply, which sides.
        var code: UInt32
        var source: Endpoint?
        var destination: Endpoint?
        var sourceSide = RetinaPodMetrics.Side()
        var destinationSide = RetinaPodMetrics.Side()
        var packets = 0.0
        var bytes = 0.0
        var updated: Double
    }

    let source: Reads
    let destination: Reads
    let seriesLimit: Int
    /// An open-addressing table of context slots by their key's hash (-1: free); a power of
    /// two in size, at most half full. Cheaper than a `Dictionary`, which would hash the key
    /// again with its seeded hasher.
    private var table = [Int32](repeating: -1, count: 1024)
    /// Each context's key hash, and its key (apart from the context: comparing it must not
    /// copy the context's references).
    private var hashes: [UInt64] = []
    private var keys: [Key] = []
    private(set) var contexts: [Context] = []
    /// Per context, its count of each Retina flag (`RetinaPodMetrics.flagNames`), flat.
    private(set) var flagCounts: [Double] = []

    /// A context's count of Retina flag `flag`.
    func flags(_ slot: Int, _ flag: Int) -> Double { flagCounts[slot * Self.flagCount + flag] }
    static let flagCount = RetinaPodMetrics.flagNames.count
    /// What the limit kept out: packets, bytes, flags.
    private(set) var overflow = (packets: 0.0, bytes: 0.0, flags: 0.0)

    init(source: Reads, destination: Reads, seriesLimit: Int) {
        self.source = source
        self.destination = destination
        self.seriesLimit = seriesLimit
    }

    /// Adds a forwarded flow's packets, bytes and flags (`RetinaPodMetrics.flagMask`) to one
    /// side's (or the flow's) context.
    mutating func add(
        _ flow: borrowing Flow, sides: (source: Bool, destination: Bool), code: UInt32, flags: UInt16, now: Double
    ) {
        var key = Key(code: code | (sides.source ? 16 : 0) | (sides.destination ? 32 : 0))
        let l4 = flow.l4
        let ports = l4.ports
        let hasPorts =
            switch l4 {
            case .tcp, .udp: true
            default: false
            }
        if sides.source {
            if source.endpoint { key.source = UInt(bitPattern: flow.sourceBoxIdentity) }
            if source.ip { key.sourceIP = Bits(flow.sourceIP) }
            if source.port { key.ports |= hasPorts ? UInt64(ports.source) << 32 | 1 : 0 }
            if source.service { key.sourceService = Bits(flow.sourceService?.name ?? "") }
        }
        if sides.destination {
            if destination.endpoint { key.destination = UInt(bitPattern: flow.destinationBoxIdentity) }
            if destination.ip { key.destinationIP = Bits(flow.destinationIP) }
            if destination.port { key.ports |= hasPorts ? UInt64(ports.destination) << 16 | 2 : 0 }
            if destination.service { key.destinationService = Bits(flow.destinationService?.name ?? "") }
        }
        let hash = key.mixed
        let slot: Int
        if let found = find(key, hash) {
            slot = found
        } else if contexts.count < seriesLimit {
            slot = contexts.count
            contexts.append(context(key, flow, sides: sides, hasPorts: hasPorts, now: now))
            hashes.append(hash)
            keys.append(key)
            insert(slot, hash)
            flagCounts.append(contentsOf: repeatElement(0, count: Self.flagCount))
        } else {
            overflow.packets += Double(flow.packets)
            overflow.bytes += Double(flow.bytes)
            overflow.flags += Double(flags.nonzeroBitCount)
            return
        }
        let packets = Double(flow.packets)
        let bytes = Double(flow.bytes)
        contexts.withUnsafeMutableBufferPointer { contexts in
            contexts[slot].packets += packets
            contexts[slot].bytes += bytes
            contexts[slot].updated = now
        }
        var mask = flags
        while mask != 0 {
            flagCounts[slot * Self.flagCount + mask.trailingZeroBitCount] += 1
            mask &= mask - 1
        }
    }

    private func find(_ key: Key, _ hash: UInt64) -> Int? {
        let mask = table.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = Int(table[position])
            if slot < 0 { return nil }
            if hashes[slot] == hash && keys[slot] == key { return slot }
            position = (position + 1) & mask
        }
    }

    private mutating func insert(_ slot: Int, _ hash: UInt64) {
        if hashes.count * 2 > table.count {
            rebuild(size: table.count * 2)
            return
        }
        let mask = table.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        while table[position] >= 0 { position = (position + 1) & mask }
        table[position] = Int32(slot)
    }

    /// The table again, for every context (after growth or removals).
    private mutating func rebuild(size: Int) {
        table = [Int32](repeating: -1, count: size)
        let mask = size - 1
        for (slot, hash) in hashes.enumerated() {
            var position = Int(truncatingIfNeeded: hash) & mask
            while table[position] >= 0 { position = (position + 1) & mask }
            table[position] = Int32(slot)
        }
    }

    /// A new context, with what its labels will be written from (kept alive with it).
    private func context(
        _ key: Key, _ flow: borrowing Flow, sides: (source: Bool, destination: Bool), hasPorts: Bool, now: Double
    ) -> Context {
        var context = Context(code: key.code, updated: now)
        let ports = flow.l4.ports
        if sides.source {
            if source.endpoint { context.source = flow.source }
            if source.ip { context.sourceSide.ip = flow.sourceIP }
            if source.port { context.sourceSide.port = hasPorts ? Int32(ports.source) : -1 }
            if source.service { context.sourceSide.service = flow.sourceService?.name ?? "" }
        }
        if sides.destination {
            if destination.endpoint { context.destination = flow.destination }
            if destination.ip { context.destinationSide.ip = flow.destinationIP }
            if destination.port { context.destinationSide.port = hasPorts ? Int32(ports.destination) : -1 }
            if destination.service { context.destinationSide.service = flow.destinationService?.name ?? "" }
        }
        return context
    }

    /// Keeps the contexts `keep` says yes to (asked once for each, with its slot); returns how
    /// many went. Nothing is copied when all stay.
    mutating func retain(_ keep: (Context, Int) -> Bool) -> Int {
        let leaving = Set(contexts.indices.filter { !keep(contexts[$0], $0) })
        guard !leaving.isEmpty else { return 0 }
        var kept: [Context] = []
        var keptFlags: [Double] = []
        var keptHashes: [UInt64] = []
        var keptKeys: [Key] = []
        for (slot, context) in contexts.enumerated() where !leaving.contains(slot) {
            kept.append(context)
            keptFlags += flagCounts[slot * Self.flagCount..<(slot + 1) * Self.flagCount]
            keptHashes.append(hashes[slot])
            keptKeys.append(keys[slot])
        }
        let gone = leaving.count
        contexts = kept
        flagCounts = keptFlags
        hashes = keptHashes
        keys = keptKeys
        rebuild(size: table.count)
        return gone
    }
}

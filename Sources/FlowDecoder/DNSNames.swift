import Foundation

/// An address as the datapath's events carry it: 16 bytes, IPv4 in the first 4, the rest zero.
typealias RawAddress = (
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
)

/// A `RawAddress` as two words, for hashing and comparing.
struct AddressBits: Hashable {
    var high: UInt64
    var low: UInt64

    init(_ bytes: RawAddress) { (high, low) = unsafeBitCast(bytes, to: (UInt64, UInt64).self) }

    /// The address in `text` (IPv4 or IPv6), laid out as the datapath does.
    init?(text: String) {
        var bytes: RawAddress = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let family = text.contains(":") ? AF_INET6 : AF_INET
        guard withUnsafeMutableBytes(of: &bytes, { inet_pton(family, text, $0.baseAddress) }) == 1 else { return nil }
        self.init(bytes)
    }
}

/// What each client resolved: (client address, answer address) → the names it asked for,
/// learnt from DNS responses and kept for the answer's TTL (at least `minimumTTL`), as Cilium's
/// DNS cache feeds Hubble's `source_names` and `destination_names`. Bounded in pairs and in
/// names per pair (a wildcard domain answers any name with one address: a pod asking for
/// random names must not grow every flow's name list); most flows are between addresses no
/// DNS answer ever named, and a 4096-bit filter lets those skip the table.
struct DNSNames {
    /// Names stay at least this long: clients keep using an address after a short TTL ends.
    static let minimumTTL: UInt64 = 60
    static let maximumEntries = 65536
    /// Names kept per (client, address) pair: the latest; the one that ends first makes room.
    static let maximumNamesPerPair = 32
    static let filterSlots = 4096

    struct Key: Hashable {
        var client: AddressBits
        var resolved: AddressBits
    }

    /// The names of one pair, each with the moment it stops being valid (`expiresNs[i]` is
    /// `names[i]`'s): while all are valid, every flow shares the one `names` array.
    struct Named {
        var names: [String]
        var expiresNs: [UInt64]

        /// Keeps `name` until `expires` (or longer, if it already was).
        mutating func remember(_ name: String, until expires: UInt64) {
            if let index = names.firstIndex(of: name) {
                expiresNs[index] = max(expiresNs[index], expires)
                return
            }
            if names.count >= DNSNames.maximumNamesPerPair,
                let soonest = expiresNs.indices.min(by: { expiresNs[$0] < expiresNs[$1] })
            {
                names.remove(at: soonest)
                expiresNs.remove(at: soonest)
            }
            names.append(name)
            expiresNs.append(expires)
        }

        func valid(at nowNs: UInt64) -> Named {
            let kept = names.indices.filter { nowNs < expiresNs[$0] }
            return Named(names: kept.map { names[$0] }, expiresNs: kept.map { expiresNs[$0] })
        }
    }

    private var entries: [Key: Named] = [:]
    /// Slot of every answer address in the table set: an unset slot means "no names".
    private var filter = [Bool](repeating: false, count: DNSNames.filterSlots)

    private static func slot(_ address: AddressBits) -> Int {
        Int(truncatingIfNeeded: ((address.high ^ address.low &* 31) &* 0x9E37_79B9_7F4A_7C15) >> 52)
    }

    /// Whether any client may have names for `address` (no false negatives).
    func mayKnow(_ address: RawAddress) -> Bool { filter[Self.slot(AddressBits(address))] }

    /// The names `client` resolved to `resolved` that are still valid at `nowNs`.
    func names(client: RawAddress, resolved: RawAddress, at nowNs: UInt64) -> [String] {
        guard let named = entries[Key(client: AddressBits(client), resolved: AddressBits(resolved))] else { return [] }
        return named.expiresNs.allSatisfy { nowNs < $0 } ? named.names : named.valid(at: nowNs).names
    }

    /// A response to `client` named `addresses` as `name` (with its trailing dot) for `ttl` s.
    mutating func learn(client: RawAddress, name: String, addresses: [String], ttl: UInt32, at nowNs: UInt64) {
        let bare = name.hasSuffix(".") ? String(name.dropLast()) : name
        guard !bare.isEmpty else { return }
        let expires = nowNs &+ max(UInt64(ttl), Self.minimumTTL) * 1_000_000_000
        let clientBits = AddressBits(client)
        for text in addresses {
            guard let resolved = AddressBits(text: text) else { continue }
            let key = Key(client: clientBits, resolved: resolved)
            if entries[key] != nil {
                entries[key]!.remember(bare, until: expires)  // in place: no copy of the lists
            } else if entries.count < Self.maximumEntries {
                entries[key] = Named(names: [bare], expiresNs: [expires])
            }
            filter[Self.slot(resolved)] = true
        }
    }

    /// Drops names whose time is over (and rebuilds the filter from what is left).
    mutating func forgetExpired(at nowNs: UInt64) {
        guard entries.values.contains(where: { $0.expiresNs.contains { nowNs >= $0 } }) else { return }
        entries = entries.compactMapValues { named in
            let kept = named.valid(at: nowNs)
            return kept.names.isEmpty ? nil : kept
        }
        filter = [Bool](repeating: false, count: Self.filterSlots)
        for key in entries.keys { filter[Self.slot(key.resolved)] = true }
    }
}

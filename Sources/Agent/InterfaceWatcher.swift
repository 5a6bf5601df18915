import Datapath
import FlowPipeline
import Foundation
import Locking
import Logging
import Netlink
import NodeMetrics
import ServiceLifecycle
import Synchronization

/// Keeps the datapath attached to exactly the node's uplink(s) and pod veths, the drop
/// program's namespace set equal to the node's and its pods' namespaces, and the names of
/// their interfaces, by which the agent names the interface of each event.
///
/// Driven by rtnetlink link and route events: a pod that appears or disappears is handled within
/// tens of milliseconds. Each event triggers a full resynchronization (links are few; a diff is
/// simpler and cannot drift). The blocking netlink wait runs on its own thread, never on Swift's
/// pool. An uplink that goes away while the agent runs is said once; the pods stay watched and
/// the uplink is attached again when it comes back (a missing uplink is an error only at start).
public final class InterfaceWatcher: Service, Sendable {
    let datapath: Datapath
    let configuredUplinks: [String]
    let logger: Logger
    private let state = Lock(State())

    struct State {
        var namespaces: [NamespaceRef] = []
        var uplinks: [String] = []
        /// Uplinks said to be gone and not back yet.
        var missingUplinks: Set<String> = []
        /// The id the node's namespace gives each pod's, by the pod namespace's inode.
        var namespaceIDs: [UInt64: Int32] = [:]
        var interfaceNames = InterfaceNames(node: [:])
        /// The addresses of the pods behind attached veths, as last given to the datapath.
        var podAddresses: Set<[UInt8]> = []
        var podAddressesFailed = false
    }

    public init(datapath: Datapath, uplinks: [String], logger: Logger) {
        self.datapath = datapath
        self.configuredUplinks = uplinks
        self.logger = logger
    }

    /// The node's namespaces as of the last resynchronization (its own first).
    public var namespaces: [NamespaceRef] { state.withLock { $0.namespaces } }
    public var uplinks: [String] { state.withLock { $0.uplinks } }
    /// Every interface of the node's namespace and of its pods', as of the last
    /// resynchronization: what names the interface of an event, in the namespace it happened in.
    public var interfaceNames: InterfaceNames { state.withLock { $0.interfaceNames } }

    /// Attaches to what exists now; throws if the uplink cannot be found. Call before `run`.
    public func start() throws {
        let netlink = try RouteNetlink()
        try resync(netlink, atStart: true)
    }

    public func run() async throws {
        let stop = Atomic<Bool>(false)
        let finished = AsyncStream<Void>.makeStream()
        let thread = Thread { [self] in
            defer { finished.continuation.finish() }
            do {
                let events = try RouteNetlink(subscribeToChanges: true)
                let addressEvents = followPodAddresses()
                let watched = [events] + (addressEvents.map { [$0] } ?? [])
                let queries = try RouteNetlink()
                // Resync once after subscribing: nothing that changed since start() is missed.
                try? resync(queries)
                var named = ContinuousClock.now
                // Address events come in bursts (each new pod: IPv4, IPv6, link-local): the first
                // is read at once, the rest of a burst at most every `addressesInterval`.
                var addressesPending = false
                var addressesRead = ContinuousClock.now - Self.addressesInterval
                while !stop.load(ordering: .relaxed) {
                    let changed = RouteNetlink.waitForChanges(watched, timeout: 0.2)
                    if changed[0] {
                        do { try resync(queries) } catch {
                            logger.error("interface resync failed", metadata: ["error": "\(error)"])
                        }
                        named = ContinuousClock.now
                        (addressesPending, addressesRead) = (false, named)
                    } else if changed.dropFirst().contains(true) {
                        addressesPending = true
                    }
                    if addressesPending && ContinuousClock.now - addressesRead >= Self.addressesInterval {
                        if let links = try? queries.links() { updatePodAddresses(links, netlink: queries) }
                        (addressesPending, addressesRead) = (false, ContinuousClock.now)
                    }
                    if ContinuousClock.now - named > Self.namesInterval {
                        // A pod's own interfaces change without a link event here (a CNI that
                        // renames the pod's end after moving it): their names are read again,
                        // and their addresses when no address events come.
                        try? refreshInterfaceNames(queries, addresses: addressEvents == nil)
                        named = ContinuousClock.now
                    }
                }
            } catch {
                logger.error("cannot watch links", metadata: ["error": "\(error)"])
            }
        }
        thread.name = "osprey-links"
        thread.start()
        await withGracefulShutdownHandler {
            for await _ in finished.stream {}
        } onGracefulShutdown: {
            stop.store(true, ordering: .relaxed)
        }
    }

    /// One full pass: classify links, attach new ones, forget vanished ones, refresh namespaces.
    /// At start a missing uplink throws; later it is said once and the pass goes on without it.
    func resync(_ netlink: RouteNetlink, atStart: Bool = false) throws {
        let links = try netlink.links()
        // The node's names first: a pod veth attached below has its events named at once.
        state.withLock { $0.interfaceNames.node = Self.byIndex(links) }
        let uplinkNames = try resolveUplinks(links, atStart: atStart)
        let wanted = links.compactMap { link -> (Link, InterfaceRole)? in
            if uplinkNames.contains(link.name) { return (link, .uplink) }
            // A veth whose peer lives in another namespace is a pod's (CNI-agnostic: bridge
            // ports and routed veths alike).
            if link.kind == "veth", link.peerNamespaceID != nil { return (link, .pod) }
            return nil
        }
        let attached = datapath.attachedInterfaces
        for (link, role) in wanted where attached[link.index] != link.name {
            do {
                let replaced = try datapath.attach(interface: link.name, index: link.index, role: role)
                // Uplinks carry no program: their interface counters are read instead.
                let done = role == .uplink ? "watched" : "attached"
                logger.info(
                    replaced ? "\(done), replacing a filter left by an earlier run" : "\(done)",
                    metadata: ["interface": "\(link.name)", "role": "\(role)"])
            } catch {
                logger.warning("attach failed", metadata: ["interface": "\(link.name)", "error": "\(error)"])
            }
        }
        let wantedIndexes = Set(wanted.map(\.0.index))
        for (index, name) in attached where !wantedIndexes.contains(index) {
            datapath.forget(index: index)
            logger.info("detached", metadata: ["interface": "\(name)"])
        }
        let peerIDs = Set(wanted.compactMap { $0.1 == .pod ? $0.0.peerNamespaceID : nil })
        let (namespaces, namespaceIDs) = NamespaceDiscovery.namespaces(peerIDs: peerIDs, netlink: netlink)
        try datapath.setNamespaces(
            Dictionary(namespaces.map { (UInt32(truncatingIfNeeded: $0.inode), $0.role) }) { a, _ in a })
        let names = Self.interfaceNames(links, namespaces: namespaces, namespaceIDs: namespaceIDs, netlink: netlink)
        state.withLock {
            $0.namespaces = namespaces
            $0.namespaceIDs = namespaceIDs
            $0.uplinks = uplinkNames
            $0.interfaceNames = names
        }
        updatePodAddresses(links, netlink: netlink)
    }

    /// Address events of every pod's namespace (`RouteNetlink.addressChanges`), when monitor
    /// aggregation wants the pods' addresses: a pod's address is set after its veth appears
    /// (bridge CNIs set it with nothing changing in the node's namespace), and is read as soon
    /// as it is set. Without CAP_NET_BROADCAST, said once: addresses are then read every
    /// `namesInterval`.
    func followPodAddresses() -> RouteNetlink? {
        guard datapath.localAggregation else { return nil }
        do { return try RouteNetlink.addressChanges() } catch {
            logger.warning(
                "Pod addresses are read every \(Self.namesInterval.components.seconds) s, not as they change: address events of the pods' namespaces need CAP_NET_BROADCAST (\(error)). Until a new pod's address is read, its connections with this node's pods are reported where they leave a pod too."
            )
            return nil
        }
    }

    /// Gives the datapath the addresses of the pods whose veths carry its programs, when they
    /// changed (monitor aggregation: a connection between two of them is reported only where
    /// it enters each). Only attached veths' pods: a pod whose interface reports nothing must
    /// not be counted on to report what enters it. Read from each pod's end of its veth at
    /// every link or route change, at every address change in a pod's namespace
    /// (`followPodAddresses`), or without those every `namesInterval`; until a new pod's
    /// address is read, its connections are reported at both pods.
    func updatePodAddresses(_ links: [Link], netlink: RouteNetlink) {
        guard datapath.localAggregation else { return }
        let attached = datapath.attachedInterfaces
        let uplinks = Set(state.withLock { $0.uplinks })
        var addresses = Set<[UInt8]>()
        for link in links where link.kind == "veth" && attached[link.index] == link.name && !uplinks.contains(link.name)
        {
            guard let id = link.peerNamespaceID, let peer = link.peerIndex,
                let found = try? netlink.addresses(inNamespaceID: id, interfaceIndex: peer)
            else { continue }
            addresses.formUnion(found)
        }
        guard addresses != state.withLock({ $0.podAddresses }) else { return }
        do {
            try datapath.setLocalPods(addresses)
            state.withLock {
                $0.podAddresses = addresses
                $0.podAddressesFailed = false
            }
        } catch {
            // Said once until it works again; each pass tries again.
            guard !state.withLock({ $0.podAddressesFailed }) else { return }
            state.withLock { $0.podAddressesFailed = true }
            logger.warning(
                "The node's pod addresses cannot all be given to the datapath (\(error)): connections with the pods left out are reported both where they leave a pod and where they enter one."
            )
        }
    }

    /// How often the interfaces' names are read again when no link changed.
    static let namesInterval: Duration = .seconds(10)

    /// The shortest time between two reads of the pods' addresses for address events: each read
    /// asks every pod's namespace (two dumps a pod).
    static let addressesInterval: Duration = .milliseconds(500)

    /// Reads the node's and its pods' interface names again, for the namespaces already known,
    /// and, with `addresses`, the pods' addresses.
    func refreshInterfaceNames(_ netlink: RouteNetlink, addresses: Bool) throws {
        let links = try netlink.links()
        let (namespaces, namespaceIDs) = state.withLock { ($0.namespaces, $0.namespaceIDs) }
        let names = Self.interfaceNames(links, namespaces: namespaces, namespaceIDs: namespaceIDs, netlink: netlink)
        state.withLock { $0.interfaceNames = names }
        if addresses { updatePodAddresses(links, netlink: netlink) }
    }

    /// The node's links and each pod namespace's (one dump per pod, asked by the id the node's
    /// namespace gives it). A pod whose links cannot be listed keeps its interfaces unnamed.
    static func interfaceNames(
        _ links: [Link], namespaces: [NamespaceRef], namespaceIDs: [UInt64: Int32], netlink: RouteNetlink
    ) -> InterfaceNames {
        var names = InterfaceNames(node: byIndex(links))
        for namespace in namespaces {
            if namespace.role == .node { names.nodeNamespace = UInt32(truncatingIfNeeded: namespace.inode) }
            guard let id = namespaceIDs[namespace.inode], let podLinks = try? netlink.links(inNamespaceID: id) else {
                continue
            }
            names.namespaces[UInt32(truncatingIfNeeded: namespace.inode)] = byIndex(podLinks)
        }
        return names
    }

    static func byIndex(_ links: [Link]) -> [Int32: String] {
        Dictionary(links.map { ($0.index, $0.name) }) { first, _ in first }
    }

    /// The uplinks to attach: the configured ones, or the interfaces with a default route. At
    /// start, one missing (or none found) is an error; later the ones present are used, the
    /// auto-detected ones are kept while they exist (a default route being replaced is not an
    /// uplink leaving), and each one that goes or comes back is logged once.
    func resolveUplinks(_ links: [Link], atStart: Bool = false) throws(AgentError) -> [String] {
        let names = Set(links.map(\.name))
        let present: [String]
        let missing: [String]
        if !configuredUplinks.isEmpty {
            present = configuredUplinks.filter(names.contains)
            missing = configuredUplinks.filter { !names.contains($0) }
            if atStart, let first = missing.first { throw .unknownUplink(first) }
        } else {
            let detected = DefaultRoutes.interfaces().filter(names.contains)
            if atStart, detected.isEmpty { throw .noUplink }
            let previous = state.withLock { $0.uplinks }
            present = detected.isEmpty ? previous.filter(names.contains) : detected
            missing = previous.filter { !names.contains($0) }
        }
        let (gone, back) = state.withLock { state -> ([String], [String]) in
            let gone = missing.filter { !state.missingUplinks.contains($0) }
            let back = state.missingUplinks.filter(present.contains).sorted()
            state.missingUplinks.formUnion(gone)
            state.missingUplinks.subtract(back)
            return (gone, back)
        }
        for name in gone {
            logger.error(
                "uplink gone: its traffic is not seen until it comes back; pod interfaces stay watched",
                metadata: ["interface": "\(name)"])
        }
        for name in back { logger.info("uplink back", metadata: ["interface": "\(name)"]) }
        return present
    }
}

/// Interfaces that carry a default route: the uplink, when none is configured.
enum DefaultRoutes {
    static func interfaces() -> [String] {
        var result: [String] = []
        let v4 = (try? String(contentsOfFile: "/proc/self/net/route", encoding: .utf8)) ?? ""
        for line in v4.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.count > 7, fields[1] == "00000000", fields[7] == "00000000" { result.append(fields[0]) }
        }
        // Fields: destination, prefix length, source, source prefix, next hop, metric, refs, use,
        // flags, device. Unreachable defaults sit on lo and do not count.
        let v6 = (try? String(contentsOfFile: "/proc/self/net/ipv6_route", encoding: .utf8)) ?? ""
        for line in v6.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 10, fields[0].allSatisfy({ $0 == "0" }), fields[1] == "00", fields[9] != "lo"
            else { continue }
            if !result.contains(String(fields[9])) { result.append(String(fields[9])) }
        }
        return result
    }
}

/// Finds the network namespaces of this node's pods: the namespaces where the peers of its pod
/// veths live. Candidates are every namespace a process is in (/proc/*/ns/net) and every named
/// one (/run/netns); the kernel tells which of them carry the peer namespace ids (RTM_GETNSID).
enum NamespaceDiscovery {
    /// The node's namespace and those of its pods (the peers of its pod veths), with the id the
    /// node's namespace gives each pod's.
    static func namespaces(peerIDs: Set<Int32>, netlink: RouteNetlink) -> ([NamespaceRef], [UInt64: Int32]) {
        var own = stat()
        stat("/proc/self/ns/net", &own)
        var result = [NamespaceRef(inode: UInt64(own.st_ino), path: "/proc/self/ns/net", role: .node)]
        var ids: [UInt64: Int32] = [:]
        guard !peerIDs.isEmpty else { return (result, ids) }
        var seen: Set<UInt64> = [UInt64(own.st_ino)]
        let fm = FileManager.default
        var candidates = ((try? fm.contentsOfDirectory(atPath: "/run/netns")) ?? []).map { "/run/netns/\($0)" }
        // Oldest processes first: a pod's long-lived one (pause, its server) rather than a child
        // that may be gone by the next scrape.
        candidates += ((try? fm.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.sorted()
            .map { "/proc/\($0)/ns/net" }
        var found: Set<Int32> = []
        for path in candidates {
            var info = stat()
            guard stat(path, &info) == 0, seen.insert(UInt64(info.st_ino)).inserted else { continue }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            guard let id = try? netlink.namespaceID(ofNamespaceFD: fd), peerIDs.contains(id) else { continue }
            result.append(NamespaceRef(inode: UInt64(info.st_ino), path: path, role: .pod))
            ids[UInt64(info.st_ino)] = id
            found.insert(id)
            if found == peerIDs { break }
        }
        return (result, ids)
    }
}

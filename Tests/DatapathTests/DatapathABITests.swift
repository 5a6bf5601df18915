import CDatapathABI
import DatapathBPF
import Foundation
import Gzip
import Testing

@testable import Datapath

/// One source of truth for the kernel ↔ user-space ABI: the C (osprey_abi.h and the compiled
/// objects) is the truth, and these tests fail when a Swift copy of a value or a name drifts
/// from it. No root needed: objects are inspected without loading.
@Suite("Datapath ABI: Swift agrees with the C")
struct DatapathABITests {
    @Test("every map and program Swift names exists in the compiled objects, and every map they declare is known")
    func names() throws {
        var programs: Set<String> = []
        for image in Datapath.images {
            let declared = try #require(BPFObject.declarations(of: image.bytes), "\(image.name) does not open")
            // The maps all objects share, and the pod object's own: the slot its hooks' programs
            // pass each packet on through (osp_tc_pod).
            let own: Set<String> = image.name == "pod" ? [Datapath.podBodyMap] : []
            #expect(
                declared.maps == Set(Datapath.MapName.allCases.map(\.rawValue)).union(own),
                "\(image.name) declares maps Swift does not share (or lacks one): \(declared.maps.sorted())")
            programs.formUnion(declared.programs)
        }
        #expect(programs == Set(Datapath.ProgramName.allCases.map(\.rawValue)))
    }

    @Test("enums Swift mirrors have the C's values")
    func enumValues() {
        #expect(InterfaceRole.uplink.rawValue == OSP_IF_UPLINK.rawValue)
        #expect(InterfaceRole.pod.rawValue == OSP_IF_POD.rawValue)
        #expect(InterfaceRole.allCases.count == 2)
        #expect(NamespaceRole.node.rawValue == OSP_NETNS_NODE.rawValue)
        #expect(NamespaceRole.pod.rawValue == OSP_NETNS_POD.rawValue)
        #expect(NamespaceRole.allCases.count == 2)
        #expect(TrafficDirection.ingress.rawValue == Int(OSP_DIR_INGRESS.rawValue))
        #expect(TrafficDirection.egress.rawValue == Int(OSP_DIR_EGRESS.rawValue))
        #expect(TrafficDirection.unknown.rawValue == Int(OSP_DIR_UNKNOWN.rawValue))
        #expect(TrafficDirection.allCases.count == Int(OSP_DIR_MAX.rawValue))
        let flags: [(TCPFlag, osp_tcp_flag)] = [
            (.syn, OSP_TCP_SYN), (.synack, OSP_TCP_SYNACK), (.ack, OSP_TCP_ACK), (.fin, OSP_TCP_FIN),
            (.rst, OSP_TCP_RST), (.psh, OSP_TCP_PSH), (.urg, OSP_TCP_URG), (.ece, OSP_TCP_ECE), (.cwr, OSP_TCP_CWR),
        ]
        for (swift, c) in flags { #expect(swift.rawValue == Int(c.rawValue), "\(swift)") }
        #expect(TCPFlag.allCases.count == Int(OSP_TCP_FLAG_MAX.rawValue))
        let errors: [(ProgramError, osp_error)] = [
            (.tcHeader, OSP_ERR_TC_HEADER), (.dropMapFull, OSP_ERR_DROP_MAP_FULL),
            (.conntrackFull, OSP_ERR_CONNTRACK_FULL),
        ]
        for (swift, c) in errors { #expect(swift.rawValue == Int(c.rawValue), "\(swift)") }
        #expect(ProgramError.allCases.count == Int(OSP_ERR_MAX.rawValue) - 1, "every error but the reserved 0")
    }

    @Test(
        "an event's base is everything up to its Service translation, its header everything up to its DNS message"
    )
    func eventHeader() {
        #expect(MemoryLayout<osp_event>.offset(of: \osp_event.nat) == Int(OSP_EVENT_BASE_SIZE))
        // The Ethernet addresses (a drop's location in their place) end the base.
        var event = osp_event()
        event.dmac = (1, 2, 3, 4, 5, 6)
        #expect(
            withUnsafeBytes(of: event) { Array($0[Int(OSP_EVENT_BASE_SIZE) - 12..<Int(OSP_EVENT_BASE_SIZE)]) } == [
                0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6,
            ])
        event.location = (1, 2, 3, 4, 5, 6, 7, 8)
        #expect(
            withUnsafeBytes(of: event.smac) { Array($0) } == [1, 2, 3, 4, 5, 6],
            "a drop's location is where a trace's MACs are")
        #expect(MemoryLayout<osp_event>.offset(of: \osp_event.payload) == Int(OSP_EVENT_HEADER_SIZE))
        #expect(MemoryLayout<osp_event>.offset(of: \osp_event.payload_len)! < Int(OSP_EVENT_BASE_SIZE))
        #expect(MemoryLayout<osp_event>.size == Int(OSP_EVENT_HEADER_SIZE) + Int(OSP_DNS_SNAPLEN))
    }

    @Test("the load-time settings become the bytes of struct osp_config: interval, per-packet, ignored drop reasons")
    func config() {
        let reasons: [UInt32: String] = [
            2: "NOT_SPECIFIED", 3: "NO_SOCKET", 5: "SOCKET_CLOSE", 7: "NETFILTER_DROP", 70_000: "SOCKET_CLOSE",
        ]
        let bytes = Datapath.config(
            .init(reportInterval: 2.5, perPacket: true), connectionTableSets: 4, dropReasons: reasons)
        #expect(bytes.count == MemoryLayout<osp_config>.size)
        let config = bytes.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self) }
        #expect(config.report_interval_ns == 2_500_000_000)
        #expect(config.per_packet == 1)
        #expect(config.ct_set_mask == 3, "a set is the hash's low bits: 4 sets, mask 3")
        let ignored = withUnsafeBytes(of: config.drops_ignored) { Array($0) }
        #expect(ignored.count == Int(OSP_DROP_REASON_SLOTS))
        #expect(ignored[5] == UInt8(OSP_DROP_IGNORE_ALWAYS.rawValue))
        #expect(
            ignored[2]
                == UInt8(
                    OSP_DROP_IGNORE_MULTICAST.rawValue | OSP_DROP_IGNORE_LOOPBACK.rawValue
                        | OSP_DROP_IGNORE_LIST.rawValue | OSP_DROP_IGNORE_TIME_WAIT.rawValue
                        | OSP_DROP_IGNORE_OPENING.rawValue))
        #expect(config.list_free_start == 0 && config.list_free_end == 0, "no kernel text given: no list rule")
        #expect(config.drop_rx_sk == 0, "no receiving socket said: no TIME-WAIT or SYN rule")
        #expect(ignored[7] == 0, "a network drop is reported")
        #expect(ignored[3] == UInt8(OSP_DROP_IGNORE_ECHO_REPLY.rawValue))
        #expect(ignored.enumerated().filter { $0.element != 0 }.map(\.offset) == [2, 3, 5])
        #expect(config.tick_ns == 0, "no tick known: the programs read the coarse clock")
        let ticked = Datapath.config(.init(), connectionTableSets: 4, dropReasons: reasons, kernelHZ: 250)
        #expect(ticked.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self).tick_ns } == 4_000_000)
        let listed = Datapath.config(
            .init(), connectionTableSets: 4, dropReasons: reasons,
            listFree: 0xffff_ffff_81e9_2930..<0xffff_ffff_81e9_2b00)
        let listedConfig = listed.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self) }
        #expect(listedConfig.list_free_start == 0xffff_ffff_81e9_2930)
        #expect(listedConfig.list_free_end == 0xffff_ffff_81e9_2b00)
        let socketed = Datapath.config(.init(), connectionTableSets: 4, dropReasons: reasons, receivingSocket: true)
        #expect(socketed.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self).drop_rx_sk } == 1)
        let all = Datapath.config(.init(ignoredDrops: [:]), connectionTableSets: 4, dropReasons: reasons)
        #expect(all.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self).per_packet } == 0)
        #expect(
            withUnsafeBytes(of: all.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self) }.drops_ignored) {
                $0.allSatisfy { $0 == 0 }
            })
    }

    @Test("a kernel function's text comes from kallsyms: its address to the next symbol's; hidden or absent, none")
    func kernelFunction() {
        let kallsyms = """
            ffffffff81e926e0 T kfree_skb_list_reason
            ffffffff81e92920 t __pfx_skb_release_data
            ffffffff81e92930 t skb_release_data
            ffffffff81e92b00 T __pfx_pskb_expand_head
            ffffffffc0a01000 t skb_release_data_extra\t[osp_module]
            ffffffffc0a02000 t last_one

            """
        let text = Data(kallsyms.utf8)
        #expect(
            Datapath.kernelFunction("skb_release_data", inKallsyms: text)
                == 0xffff_ffff_81e9_2930..<0xffff_ffff_81e9_2b00)
        #expect(
            Datapath.kernelFunction("kfree_skb_list_reason", inKallsyms: text)
                == 0xffff_ffff_81e9_26e0..<0xffff_ffff_81e9_2920)
        #expect(Datapath.kernelFunction("release_data", inKallsyms: text) == nil, "a suffix of a name is not the name")
        #expect(Datapath.kernelFunction("skb_release_data_extra", inKallsyms: text) == nil, "a module's symbol")
        #expect(Datapath.kernelFunction("last_one", inKallsyms: text) == nil, "no symbol after it: no end")
        #expect(Datapath.kernelFunction("absent", inKallsyms: text) == nil)
        let hidden = Data(
            kallsyms.split(separator: "\n").map { "0000000000000000" + $0.dropFirst(16) }.joined(separator: "\n").utf8)
        #expect(
            Datapath.kernelFunction("skb_release_data", inKallsyms: hidden) == nil, "addresses hidden by kptr_restrict")
        #expect(Datapath.kernelFunction("skb_release_data") != nil, "this kernel's own, from /proc/kallsyms")
    }

    @Test(
        "a kernel text address is named as the kernel prints it: function+offset/size, a module's in brackets; hidden or in no function, none"
    )
    func kernelLocation() throws {
        let kallsyms = """
            ffffffffc0a01000 t osp_mod_rcv	[osp_module]
            ffffffffc0a01080 t osp_mod_next	[osp_module]
            ffffffff81f77040 T __pfx_nf_hook_slow
            ffffffff81f77050 T nf_hook_slow
            ffffffff81f77100 D some_data
            ffffffff81f78000 T tcp_v4_rcv
            ffffffff81f79000 T last_text

            """
        let text = Data(kallsyms.utf8)
        #expect(Datapath.kernelLocation(of: 0xffff_ffff_81f7_70ec, inKallsyms: text) == "nf_hook_slow+0x9c/0xb0")
        #expect(Datapath.kernelLocation(of: 0xffff_ffff_81f7_7050, inKallsyms: text) == "nf_hook_slow+0x0/0xb0")
        #expect(
            Datapath.kernelLocation(of: 0xffff_ffff_81f7_7200, inKallsyms: text) == "nf_hook_slow+0x1b0/0xfb0",
            "past a data symbol, still the function before it (its size runs to the next symbol of any kind)")
        #expect(Datapath.kernelLocation(of: 0xffff_ffff_81f7_8123, inKallsyms: text) == "tcp_v4_rcv+0x123/0x1000")
        #expect(
            Datapath.kernelLocation(of: 0xffff_ffff_c0a0_1010, inKallsyms: text)
                == "osp_mod_rcv+0x10/0x80 [osp_module]",
            "a module's symbols come first in the file, out of address order")
        #expect(
            Datapath.kernelLocation(of: 0xffff_ffff_c0a0_1085, inKallsyms: text) == "osp_mod_next+0x5 [osp_module]",
            "no symbol after it: no size")
        #expect(Datapath.kernelLocation(of: 0xffff_ffff_8000_0000, inKallsyms: text) == nil, "below every function")
        #expect(Datapath.kernelLocation(of: 0, inKallsyms: text) == nil)
        let hidden = Data(
            kallsyms.split(separator: "\n").map { "0000000000000000" + $0.dropFirst(16) }.joined(separator: "\n").utf8)
        #expect(
            Datapath.kernelLocation(of: 0xffff_ffff_81f7_70ec, inKallsyms: hidden) == nil,
            "addresses hidden by kptr_restrict")
        let slow = try #require(Datapath.kernelFunction("nf_hook_slow"), "this kernel has netfilter")
        #expect(
            Datapath.kernelLocation(of: slow.lowerBound + 4)?.hasPrefix("nf_hook_slow+0x4/0x") == true,
            "this kernel's own, from /proc/kallsyms")
    }

    @Test("the kernel's tick rate comes from its configuration, plain in /boot or gzipped in /proc, else none")
    func kernelHZ() throws {
        #expect(Datapath.kernelHZ(fromConfig: "# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n") == 250)
        #expect(Datapath.kernelHZ(fromConfig: "CONFIG_HZ_1000=y\n") == nil)
        #expect(Datapath.kernelHZ(fromConfig: "CONFIG_HZ=0\n") == nil)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-hz-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let plain = directory.appendingPathComponent("config").path
        let packed = directory.appendingPathComponent("config.gz").path
        let missing = directory.appendingPathComponent("absent").path
        try Data("CONFIG_HZ=1000\n".utf8).write(to: URL(fileURLWithPath: plain))
        try Gzip.compress(Data("CONFIG_SMP=y\nCONFIG_HZ=300\n".utf8)).write(to: URL(fileURLWithPath: packed))
        #expect(Datapath.kernelHZ(bootConfig: plain, procConfig: packed) == 1000)
        #expect(Datapath.kernelHZ(bootConfig: missing, procConfig: packed) == 300)
        #expect(Datapath.kernelHZ(bootConfig: missing, procConfig: missing) == nil)
    }
}

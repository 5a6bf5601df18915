import CDatapathABI
import Datapath
import Enricher
import FlowDecoder
import FlowMetrics
import Flows
import Foundation
import Observer
import Synchronization

/// kernel → decoder → enricher → observer and metrics, one batch at a time, on the event
/// reader's thread. Once a second it also reports unanswered DNS queries, events the kernel
/// lost, and pods that went away.
final class FlowPipeline: Sendable {
    let datapath: Datapath
    let enricher: Enricher?
    let inventory: InventoryMetadata?
    let translation: ConntrackServiceTranslation?
    let observer: Observer
    let metrics: HubbleMetrics
    private let decoder: Mutex<FlowDecoder>
    private let bookkeeping = Mutex((lastTick: Date.distantPast, kernelLost: UInt64(0)))

    init(
        datapath: Datapath, nodeName: String, clusterName: String, inventory: InventoryMetadata?,
        translation: ConntrackServiceTranslation?, observer: Observer, metrics: HubbleMetrics
    ) {
        self.datapath = datapath
        self.inventory = inventory
        self.translation = translation
        self.enricher = inventory.map {
            Enricher(metadata: $0, nodeName: nodeName, clusterName: clusterName, translation: translation)
        }
        self.observer = observer
        self.metrics = metrics
        decoder = Mutex(FlowDecoder(nodeName: nodeName, kernelDropReasons: datapath.dropReasons))
    }

    func start() {
        datapath.events.start { [self] events in handle(events) }
    }

    func handle(_ events: UnsafeBufferPointer<osp_event>) {
        var flows: [Flow] = []
        flows.reserveCapacity(events.count)
        let names = events.isEmpty ? [:] : datapath.attachedInterfaces
        decoder.withLock { decoder in
            for event in events {
                flows.append(decoder.decode(event, interfaceName: names[Int32(bitPattern: event.ifindex)]))
            }
        }
        let now = Date()
        let tick = bookkeeping.withLock { state -> Bool in
            guard now.timeIntervalSince(state.lastTick) >= 1 else { return false }
            state.lastTick = now
            return true
        }
        if tick {
            flows += decoder.withLock { $0.unansweredQueries() }
            let lost = datapath.events.kernelLost
            let delta = bookkeeping.withLock { state -> UInt64 in
                defer { state.kernelLost = lost }
                return lost &- state.kernelLost
            }
            observer.recordLost(.perfEventRingBuffer, count: delta)
            if let inventory {
                inventory.reloadIfChanged()
                let gone = inventory.takeDeletedPods()
                if !gone.isEmpty { metrics.podsDeleted(gone.map { "\($0.pod.namespace)/\($0.pod.name)" }) }
            }
        }
        guard !flows.isEmpty else { return }
        if let translation {
            // Translations the packets carried, before any flow of the batch is enriched: a
            // connection's first packet is reported before the reply that carries its NAT.
            var translations: [osp_nat] = []
            for event in events where event.nat.present != 0 { translations.append(event.nat) }
            translation.learn(translations)
        }
        if let enricher {
            enricher.enrich(&flows)
        }
        observer.append(flows)
        metrics.process(flows)
    }
}

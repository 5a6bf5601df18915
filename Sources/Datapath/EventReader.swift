import CDatapathABI
import CLibbpf
import Foundation
import Synchronization

/// Drains the datapath's ring buffer of flow and drop events on its own thread and hands them
/// on in batches (one call per poll, never one per event).
///
/// The producers wake the reader only when 64 KiB are pending, so it polls every `pollInterval`.
/// The handler runs on the reader thread after every poll (with an empty buffer when nothing
/// came) and must not block; the buffer is valid only during the call.
public final class EventReader: Sendable {
    /// A batch, and CLOCK_MONOTONIC nanoseconds taken just before the ring was read: every
    /// event the kernel stamped before then is in this batch or an earlier one.
    public typealias Handler = @Sendable (UnsafeBufferPointer<osp_event>, UInt64) -> Void

    private let ringFD: Int32
    private let lostMap: BPFMap<UInt32, UInt64>
    private let cpus: Int
    private let stopFlag = Atomic<Bool>(false)

    init(ringFD: Int32, lostMap: BPFMap<UInt32, UInt64>, cpus: Int) {
        self.ringFD = ringFD
        self.lostMap = lostMap
        self.cpus = cpus
    }

    /// Events the kernel could not put into the ring since the datapath was loaded.
    public var kernelLost: UInt64 { (lostMap.perCPU(0, cpus: cpus) ?? []).reduce(0, +) }

    /// Starts the reader thread. Call `stop()` to end it.
    public func start(pollInterval: Double = 0.01, handler: @escaping Handler) {
        let thread = Thread { [self] in
            let batch = EventBatch()
            let context = Unmanaged.passRetained(batch)
            defer { context.release() }
            let callback: ring_buffer_sample_fn = { ctx, data, size in
                guard let ctx, let data, size >= MemoryLayout<osp_event>.size else { return 0 }
                Unmanaged<EventBatch>.fromOpaque(ctx).takeUnretainedValue().append(data)
                return 0
            }
            guard let ring = ring_buffer__new(ringFD, callback, context.toOpaque(), nil) else {
                FileHandle.standardError.write(
                    Data("osprey: cannot read the event ring (\(String(cString: strerror(errno))))\n".utf8))
                return
            }
            defer { ring_buffer__free(ring) }
            let timeout = Int32(pollInterval * 1000)
            while !stopFlag.load(ordering: .relaxed) {
                // Producers mostly do not wake us (BPF_RB_NO_WAKEUP), and poll only consumes
                // rings that woke it: wait out the interval, then consume whatever is there.
                _ = ring_buffer__poll(ring, timeout)
                let drainedAt = osp_monotonic_ns()
                _ = ring_buffer__consume(ring)
                batch.flush(handler, drainedAt: drainedAt)
            }
            let drainedAt = osp_monotonic_ns()
            _ = ring_buffer__consume(ring)
            batch.flush(handler, drainedAt: drainedAt)
        }
        thread.name = "osprey-events"
        thread.start()
    }

    public func stop() { stopFlag.store(true, ordering: .relaxed) }
}

/// Events copied out of the ring during one poll. Touched only by the reader thread.
private final class EventBatch: @unchecked Sendable {
    private var events: [osp_event] = []

    init() { events.reserveCapacity(4096) }

    func append(_ data: UnsafeMutableRawPointer) {
        events.append(data.loadUnaligned(as: osp_event.self))
    }

    /// Hands the batch on (possibly empty: the handler also keeps time with it).
    func flush(_ handler: EventReader.Handler, drainedAt: UInt64) {
        events.withUnsafeBufferPointer { handler($0, drainedAt) }
        events.removeAll(keepingCapacity: true)
    }
}

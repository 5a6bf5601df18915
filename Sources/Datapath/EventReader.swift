import CBPFGlue
import CDatapathABI
import Foundation
import Synchronization

/// Drains the datapath's ring buffer of flow and drop events on its own thread and hands them
/// on in batches (one call per poll, never one per event). It reads the ring's mapped pages
/// itself (`osp_ring_drain`) and gives a batch's space back to the programs in one store.
///
/// The producers wake the reader only each time another 64 KiB are pending, so it also polls
/// every `pollInterval`. A batch holds at most `EventBatch.capacity` events: under a flood the
/// reader hands on full batches and reads on, so its memory does not grow with the backlog.
/// The handler runs on the reader thread after every poll (with an empty buffer when nothing
/// came) and must not block; the buffer is valid only during the call.
public final class EventReader: Sendable {
    /// A batch, and CLOCK_MONOTONIC nanoseconds taken just before the ring was read: every
    /// event the kernel stamped before then is in this batch or an earlier one. Nil for a
    /// batch that filled up before the ring was empty (more follow at once), or that stopped
    /// at an event a program was still writing (it follows with the next poll).
    public typealias Handler = @Sendable (UnsafeBufferPointer<osp_event>, UInt64?) -> Void

    private let ringFD: Int32
    private let lostMap: BPFMap<UInt32, UInt64>
    private let cpus: Int
    private let stopFlag = Atomic<Bool>(false)
    private let unreadable = Atomic<UInt64>(0)

    init(ringFD: Int32, lostMap: BPFMap<UInt32, UInt64>, cpus: Int) {
        self.ringFD = ringFD
        self.lostMap = lostMap
        self.cpus = cpus
    }

    /// Events lost before user space could read them since the datapath was loaded: those the
    /// kernel could not put into the ring, and records too short to be an event (none come
    /// from Osprey's own programs).
    public var kernelLost: UInt64 {
        (lostMap.perCPU(0, cpus: cpus) ?? []).reduce(0, +) + unreadable.load(ordering: .relaxed)
    }

    /// Starts the reader thread. Call `stop()` to end it.
    public func start(pollInterval: Double = 0.01, handler: @escaping Handler) {
        let thread = Thread { [self] in
            guard let ring = osp_ring_open(ringFD) else {
                FileHandle.standardError.write(
                    Data("osprey: cannot read the event ring (\(String(cString: strerror(errno))))\n".utf8))
                return
            }
            defer { osp_ring_close(ring) }
            let batch = EventBatch()
            let timeout = Int32(pollInterval * 1000)
            var stopping = false
            while !stopping {
                stopping = stopFlag.load(ordering: .relaxed)
                // Producers mostly do not wake us (BPF_RB_NO_WAKEUP): wait out the interval,
                // then take whatever is there.
                if !stopping { _ = osp_ring_wait(ring, timeout) }
                while true {
                    if batch.isFull { batch.flush(handler, drainedAt: nil) }
                    let drainedAt = osp_monotonic_ns()
                    let caughtUp = batch.fill(from: ring)
                    if batch.isFull { continue }
                    batch.flush(handler, drainedAt: caughtUp ? drainedAt : nil)
                    break
                }
                unreadable.add(batch.takeMalformed(), ordering: .relaxed)
            }
        }
        thread.name = "osprey-events"
        thread.start()
    }

    public func stop() { stopFlag.store(true, ordering: .relaxed) }
}

/// Events copied out of the ring, at most `capacity` at a time. Touched only by the reader
/// thread.
///
/// Events without a DNS message are only `OSP_EVENT_HEADER_SIZE` bytes in the ring: only those
/// bytes are copied, so a slot's payload past its `payload_len` holds an earlier event's bytes
/// (the slots start zeroed and are reused from batch to batch).
private final class EventBatch: @unchecked Sendable {
    /// Most events handed on at once (1.7 MB of slots).
    static let capacity = 4096
    private let slots: UnsafeMutablePointer<osp_event>
    private var count = 0
    /// Records shorter than an event's header since the last `takeMalformed()`.
    private var malformed: UInt64 = 0

    init() {
        slots = .allocate(capacity: Self.capacity)
        slots.initialize(repeating: osp_event(), count: Self.capacity)
    }

    deinit { slots.deallocate() }

    var isFull: Bool { count == Self.capacity }

    /// Copies the ring's committed records into the free slots, then frees their space in the
    /// ring. True when it read up to the producers' position; false when the batch filled or a
    /// record was still being written (the rest waits for the next fill).
    func fill(from ring: OpaquePointer) -> Bool {
        var stoppedAtBusy: Int32 = 0
        let room = Self.capacity - count
        count += Int(
            osp_ring_drain(
                ring, slots + count, MemoryLayout<osp_event>.stride, Int(OSP_EVENT_HEADER_SIZE), Int32(room),
                &malformed, &stoppedAtBusy))
        return count < Self.capacity && stoppedAtBusy == 0
    }

    func takeMalformed() -> UInt64 {
        defer { malformed = 0 }
        return malformed
    }

    /// Hands the batch on (possibly empty: the handler also keeps time with it).
    func flush(_ handler: EventReader.Handler, drainedAt: UInt64?) {
        handler(UnsafeBufferPointer(start: slots, count: count), drainedAt)
        count = 0
    }
}

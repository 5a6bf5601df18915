import CBPFGlue
import CDatapathABI
import Foundation
import Synchronization

/// Drains the datapath's ring buffer of flow and drop events on its own thread and hands them
/// on in batches (one call per poll, never one per event). It reads the ring's mapped pages
/// itself (`osp_ring_drain`) and gives a batch's space back to the programs in one store.
///
/// The producers wake the reader only each time another 64 KiB are pending, so it also polls
/// every `pollInterval`. After `quietPolls` polls in a row that found nothing it polls only
/// every `idleInterval` and sets the `osp_reader` flag, so the next event wakes it at once: an
/// idle node's reader wakes less often, and the first flow after a quiet spell waits for no
/// poll. A batch holds at most `EventBatch.capacity` events: under a flood the reader hands on
/// full batches and reads on, so its memory does not grow with the backlog. The handler runs
/// on the reader thread after every poll (with an empty buffer when nothing came) and must not
/// block; the buffer is valid only during the call.
public final class EventReader: Sendable {
    /// A batch, and CLOCK_MONOTONIC nanoseconds taken just before the ring was read: every
    /// event the kernel stamped before then is in this batch or an earlier one. Nil for a
    /// batch that filled up before the ring was empty (more follow at once), or that stopped
    /// at an event a program was still writing (it follows with the next poll).
    public typealias Handler = @Sendable (UnsafeBufferPointer<osp_event>, UInt64?) -> Void

    /// The ring's mapped pages; the reader thread alone drains it, `stop()` interrupts its wait.
    private nonisolated(unsafe) let ring: OpaquePointer
    private let lostMap: BPFMap<UInt32, UInt64>
    /// `osp_reader`: 1 asks the next event's program to wake the reader (and clear it).
    private let sleepMap: BPFMap<UInt32, UInt32>
    private let cpus: Int
    private let stopFlag = Atomic<Bool>(false)
    /// Whether a reader thread runs that `stop()` has not waited for yet.
    private let running = Atomic<Bool>(false)
    /// Signalled by the reader thread as it ends, after its last batch's handler returned.
    private let ended = DispatchSemaphore(value: 0)
    private let unreadable = Atomic<UInt64>(0)
    private let sleeps = Atomic<UInt64>(0)

    init(
        ringFD: Int32, lostMap: BPFMap<UInt32, UInt64>, sleepMap: BPFMap<UInt32, UInt32>, cpus: Int
    )
        throws(DatapathError)
    {
        guard let ring = osp_ring_open(ringFD) else {
            throw .map(name: Datapath.MapName.events.rawValue, operation: "mapping the ring", errno: errno)
        }
        self.ring = ring
        self.lostMap = lostMap
        self.sleepMap = sleepMap
        self.cpus = cpus
    }

    /// How often the reader has gone over to idle polls since it started.
    public var idleSpells: UInt64 { sleeps.load(ordering: .relaxed) }

    /// Bytes of the ring the reader has drained: each event's record with its 8-byte header.
    var bytesRead: UInt64 { osp_ring_consumed(ring) }

    /// Whether the next event's program is to wake the reader (the `osp_reader` flag is set).
    var wakeRequested: Bool { sleepMap.value(0) == 1 }

    /// Events lost before user space could read them since the datapath was loaded: those the
    /// kernel could not put into the ring, and records too short to be an event (none come
    /// from Osprey's own programs).
    public var kernelLost: UInt64 {
        (lostMap.perCPU(0, cpus: cpus) ?? []).reduce(0, +) + unreadable.load(ordering: .relaxed)
    }

    /// Starts the reader thread. Call `stop()` to end it.
    public func start(
        pollInterval: Double = 0.01, idleInterval: Double = 0.025, quietPolls: Int = 10,
        handler: @escaping Handler
    ) {
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in
            defer { ended.signal() }
            let batch = EventBatch()
            let busyTimeout = Int32(pollInterval * 1000)
            let idleTimeout = Int32(idleInterval * 1000)
            var quiet = 0  // polls in a row that found the ring empty
            var asleep = false
            var lookAgain = false
            var stopping = false
            while !stopping {
                stopping = stopFlag.load(ordering: .relaxed)
                // Producers mostly do not wake us (BPF_RB_NO_WAKEUP): wait out the interval,
                // then take whatever is there.
                if !stopping && !lookAgain { _ = osp_ring_wait(ring, asleep ? idleTimeout : busyTimeout) }
                lookAgain = false
                var read = 0
                var caughtUp = true
                while true {
                    if batch.isFull { batch.flush(handler, drainedAt: nil) }
                    let drainedAt = osp_monotonic_ns()
                    let drained = batch.fill(from: ring)
                    read += drained.read
                    caughtUp = drained.caughtUp
                    if batch.isFull { continue }
                    batch.flush(handler, drainedAt: caughtUp ? drainedAt : nil)
                    break
                }
                unreadable.add(batch.takeMalformed(), ordering: .relaxed)
                if read > 0 || !caughtUp {
                    // The flag, if still set, costs one early wakeup at most.
                    quiet = 0
                    asleep = false
                } else if !asleep {
                    quiet += 1
                    if quiet >= quietPolls, (try? sleepMap.update(0, 1)) != nil {
                        asleep = true
                        sleeps.add(1, ordering: .relaxed)
                        // An event committed before the flag was set woke no one: one more look.
                        lookAgain = true
                    }
                }
            }
        }
        thread.name = "osprey-events"
        thread.start()
    }

    /// Ends the reader thread after one more poll, which drains what the ring holds (it does not
    /// wait out an idle interval), and waits up to `timeout` seconds for that poll's handlers to
    /// return: whatever was in the ring when the agent began to stop is handed on before this
    /// returns. Calls after the first return at once.
    public func stop(timeout: Double = 5) {
        stopFlag.store(true, ordering: .relaxed)
        osp_ring_interrupt(ring)
        if running.exchange(false, ordering: .relaxed) {
            _ = ended.wait(timeout: .now() + timeout)
        }
    }

    deinit { osp_ring_close(ring) }
}

/// Events copied out of the ring, at most `capacity` at a time. Touched only by the reader
/// thread.
///
/// An event takes only the bytes it uses in the ring (`OSP_EVENT_BASE_SIZE` without a Service
/// translation, `OSP_EVENT_HEADER_SIZE` without a DNS message): only those are copied, and the
/// rest of a slot's header is zeroed, so that a slot reads as the whole event. A slot's payload
/// past its `payload_len` holds an earlier event's bytes (the slots start zeroed and are reused
/// from batch to batch).
private final class EventBatch: @unchecked Sendable {
    /// Most events handed on at once (1.7 MB of slots).
    static let capacity = 4096
    private let slots: UnsafeMutablePointer<osp_event>
    private var count = 0
    /// Records shorter than an event's base since the last `takeMalformed()`.
    private var malformed: UInt64 = 0

    init() {
        slots = .allocate(capacity: Self.capacity)
        slots.initialize(repeating: osp_event(), count: Self.capacity)
    }

    deinit { slots.deallocate() }

    var isFull: Bool { count == Self.capacity }

    /// Copies the ring's committed records into the free slots, then frees their space in the
    /// ring. `caughtUp` when it read up to the producers' position; not when the batch filled
    /// or a record was still being written (the rest waits for the next fill).
    func fill(from ring: OpaquePointer) -> (read: Int, caughtUp: Bool) {
        var stoppedAtBusy: Int32 = 0
        let room = Self.capacity - count
        let read = Int(
            osp_ring_drain(
                ring, slots + count, MemoryLayout<osp_event>.stride, Int(OSP_EVENT_BASE_SIZE),
                Int(OSP_EVENT_HEADER_SIZE), Int32(room), &malformed, &stoppedAtBusy))
        count += read
        return (read, count < Self.capacity && stoppedAtBusy == 0)
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

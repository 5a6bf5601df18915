import Foundation

/// What a `ServiceTranslation` knows about connections to Service addresses, each answer kept for
/// a while: the backend a connection went to, that it was not translated, or that the table did
/// not hold it (a miss, believed for a moment). Every connection to a Service has an answer of
/// its own (each DNS query comes from a new client port), so answers past their time are swept
/// out as the clock moves on — a node's steady traffic holds about a lifetime's worth of
/// connections, not every connection it has seen — and a flood of new connections is bounded
/// by `limit`.
public struct TranslationCache: Sendable {
    struct Answer {
        var answer: TranslationAnswer
        var until: Date
    }

    private var answers: [ServiceConnection: Answer] = [:]
    private var nextSweep = Date.distantPast
    /// How often lapsed answers are swept out.
    let sweepInterval: Double
    /// Most answers held: reaching it sweeps at once, and a sweep that leaves three quarters of
    /// it (a flood of new connections, each answer still current) starts over empty, so that the
    /// next forced sweep is a quarter of the limit away.
    let limit: Int

    public init(sweepInterval: Double = 10, limit: Int = 65536) {
        self.sweepInterval = sweepInterval
        self.limit = limit
    }

    /// Answers held, lapsed or not.
    public var count: Int { answers.count }

    /// The remembered answer while it holds, nil when nothing (current) is remembered. Asked
    /// `again` (by a flow held because this question had no answer), a remembered `.unknown` is
    /// not given: the table is worth asking once more.
    public func answer(_ connection: ServiceConnection, now: Date, again: Bool = false) -> TranslationAnswer? {
        guard let remembered = answers[connection], remembered.until > now,
            remembered.answer != .unknown || !again
        else { return nil }
        return remembered.answer
    }

    /// Remembers `answer` for the connection until `until`.
    public mutating func remember(_ connection: ServiceConnection, _ answer: TranslationAnswer, until: Date, now: Date)
    {
        if now >= nextSweep || answers.count >= limit {
            answers = answers.filter { $0.value.until > now }
            if answers.count >= limit * 3 / 4 { answers.removeAll() }
            nextSweep = now.addingTimeInterval(sweepInterval)
        }
        answers[connection] = Answer(answer: answer, until: until)
    }
}

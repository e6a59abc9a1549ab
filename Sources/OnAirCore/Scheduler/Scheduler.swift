import Foundation
import DequeModule
import HeapModule
import Logging

/// A pending job in the firing queue, ordered as jobs fire.
struct QueuedJob: Comparable {
    var job: PlannedJob
    static func < (a: QueuedJob, b: QueuedJob) -> Bool { PlannedJob.firingOrder(a.job, b.job) }
    static func == (a: QueuedJob, b: QueuedJob) -> Bool { a.job.id == b.job.id }
}

/// What the scheduler is doing, for `status` and sd_notify's STATUS=.
public struct SchedulerSnapshot: Sendable {
    public struct OnAir: Sendable, Hashable {
        public var item: String
        public var title: String
        public var since: Date
        public var until: Date
    }

    public var schedule: Schedule
    public var held: Bool
    public var onAir: [OnAir]
    public var next: [PlannedJob]
    public var records: [JobID: JobRecord]
    public var inFlight: Int
}

/// Fires every job of the schedule at its wall-clock instant, exactly once, through the delivery
/// engine, and journals every state change before it counts.
///
/// The firing rule is one for every situation (on time, after a crash, after a clock step,
/// after `resume`): a job fires when the clock has reached its instant and it is not final.
/// A prepare or start whose deadline has passed is missed instead; a stop is always sent, with
/// an hour of retries from the moment it is sent when its own deadline has passed.
public actor Scheduler {
    /// The schedule as the file says, and as in force (with the operators' overrides applied).
    public private(set) var fileSchedule: Schedule
    public private(set) var schedule: Schedule
    private var overrides: [String: ItemOverride] = [:]
    /// Where each item stands in the in-force schedule, and the targets by name, so firing a job
    /// is not a scan of the week (an index rather than a second copy of every item).
    private var itemIndex: [String: Int] = [:]
    private var targetsByName: [String: Target] = [:]
    private let journal: JournalStore
    private let deliverer: Deliverer
    private let time: TimeSource
    private let logger: Logger
    private let lanes = DeliveryLanes()
    private let wake = WakeSignal()

    /// The in-force plan by item: firing checks a job is still planned, operator commands take an
    /// item's jobs. Grouping by item keeps a 30,000-job week to a few megabytes.
    private var plan: [String: [PlannedJob]] = [:]
    private var plannedCount = 0
    private var records: [JobID: JobRecord] = [:]
    private var queue = Heap<QueuedJob>()
    /// Jobs handed to delivery and not finished, with their task.
    private var active: [JobID: Task<Void, Never>] = [:]
    /// Jobs taken for firing whose records are being written and whose calls are not handed over
    /// yet: for everyone else they are already being delivered (not to be queued, sent by hand,
    /// or skipped twice).
    private var claimed: Set<JobID> = []
    /// Deliveries under way per target, at most `deliveriesPerTarget` at once (as many as libcurl
    /// keeps connections to one host). The rest wait here, in firing order, as data: a task each
    /// would hold ~14 KB of frames through an hour of retries when a whole past week's stops are
    /// due at once to a platform that is down.
    private let deliveriesPerTarget: Int
    private var underWay: [String: Int] = [:]
    private var waitingToLaunch: [String: Deque<PendingLaunch>] = [:]
    private var waitingIDs: Set<JobID> = []

    private struct PendingLaunch {
        var firing: Firing
        var after: [Latch]
        var answered: Latch?
    }
    private var held = false
    private var stopping = false
    /// Called on every turn of the loop (the systemd watchdog pings from here) and how often
    /// the loop must turn at least.
    private var tick: (@Sendable (String) -> Void)?
    private var tickInterval: TimeInterval = 3600
    /// Items whose start was delivered and whose stop was not, kept for the cheap status line.
    private var live: Set<String> = []

    /// How long before an instant the connections to its jobs' platforms are opened (0: never),
    /// so the call leaves at the instant rather than a DNS lookup and a TLS handshake later.
    private let warmUpLead: TimeInterval
    /// Every instant up to this one has had its connections warmed.
    private var warmedThrough = Date.distantPast
    /// When each origin was last warmed, so a run of close instants warms a host once.
    private var lastWarmed: [String: Date] = [:]

    /// A job that counts as late when handed to delivery more than this after its instant.
    public static let latenessThreshold: TimeInterval = 1

    public init(schedule: Schedule, journal: JournalStore, deliverer: Deliverer, time: TimeSource, logger: Logger,
                warmUpLead: TimeInterval = 0, deliveriesPerTarget: Int = 64) {
        self.warmUpLead = warmUpLead
        self.deliveriesPerTarget = max(1, deliveriesPerTarget)
        self.fileSchedule = schedule
        self.schedule = schedule
        self.itemIndex = Self.index(schedule.items)
        self.targetsByName = Dictionary(schedule.targets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.journal = journal
        self.deliverer = deliverer
        self.time = time
        self.logger = logger
    }

    /// Loads the journal and builds the queue. Jobs found in flight were cut off by a crash and
    /// are queued again, keeping their send number and so their webhook-id.
    public func recover() async throws {
        records = try await journal.jobRecords()
        overrides = try await journal.overrides()
        rebuildLive()
        held = try await journal.events(limit: 10_000).first { $0.kind == "hold" || $0.kind == "resume" }?.kind == "hold"
        applyOverrides()
        replan()
        let cutOff = records.values.filter { $0.state == .inflight }.count
        try await journal.append(JournalEvent(at: time.now(), kind: "start",
                                              detail: "schedule \(schedule.id): \(plannedCount) jobs, \(queue.count) pending, \(cutOff) cut off"))
        logger.info("journal recovered", metadata: ["jobs": "\(plannedCount)", "pending": "\(queue.count)", "cut_off": "\(cutOff)"])
    }

    /// `tick` is called on every turn of the loop with a one-line status (sd_notify's STATUS= and
    /// WATCHDOG=1 come from here, so a loop that stops turning stops both); the loop turns at
    /// least every `interval` seconds.
    public func setTick(every interval: TimeInterval, _ tick: @escaping @Sendable (String) -> Void) {
        self.tick = tick
        tickInterval = interval
        wake.signal()
    }

    /// "on air: a, b; next: c start 20:30:00" — short enough for systemctl status.
    public func statusLine() -> String {
        var parts: [String] = []
        if held { parts.append("HELD") }
        parts.append(live.isEmpty ? "on air: nothing" : "on air: " + live.sorted().prefix(3).joined(separator: ", ") + (live.count > 3 ? " +\(live.count - 3)" : ""))
        if let next = queue.min?.job {
            parts.append("next: \(next.itemID) \(next.action.rawValue) at \(WallClock.localText(next.instant, in: schedule.timeZone))")
        } else {
            parts.append("no pending jobs")
        }
        return parts.joined(separator: "; ")
    }

    private func rebuildLive() {
        live = []
        for record in records.values.sorted(by: { $0.updatedAt < $1.updatedAt }) { updateLive(record) }
    }

    private func updateLive(_ record: JobRecord) {
        switch (record.id.action, record.state) {
        case (.start, .delivered): live.insert(record.id.item)
        case (.stop, .delivered), (.stop, .cancelled): live.remove(record.id.item)
        default: break
        }
    }

    /// A test hook (the control API exposes it only with ONAIR_DEBUG_STALL=1): blocks the
    /// scheduler's executor, as a wedged loop would, so the watchdog's reaction can be tested.
    public func stall(seconds: Double) {
        Thread.sleep(forTimeInterval: seconds)
    }

    /// The file's schedule with every override applied: a delay shifts the item, an extend
    /// moves its end.
    private func applyOverrides() {
        guard !overrides.isEmpty else {
            schedule = fileSchedule    // shares the file's items rather than copying them
            itemIndex = Self.index(schedule.items)
            targetsByName = Dictionary(schedule.targets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            return
        }
        var effective = fileSchedule
        effective.items = fileSchedule.items.map { item in
            guard let o = overrides[item.id] else { return item }
            var moved = item
            moved.start = item.start.addingTimeInterval(TimeInterval(o.shift))
            moved.end = item.end.addingTimeInterval(TimeInterval(o.shift + o.extension_))
            return moved
        }
        effective.items.sort { ($0.start, $0.end, $0.id) < ($1.start, $1.end, $1.id) }
        schedule = effective
        itemIndex = Self.index(effective.items)
        targetsByName = Dictionary(effective.targets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private static func index(_ items: [Item]) -> [String: Int] {
        var index: [String: Int] = [:]
        index.reserveCapacity(items.count)
        for (position, item) in items.enumerated() where index[item.id] == nil { index[item.id] = position }
        return index
    }

    private func item(_ id: String) -> Item? {
        itemIndex[id].map { schedule.items[$0] }
    }

    /// The planned jobs of one item, optionally of one action only.
    private func jobs(of item: String, _ action: Action? = nil) -> [PlannedJob] {
        let all = plan[item] ?? []
        guard let action else { return all }
        return all.filter { $0.action == action }
    }

    /// Builds the plan and the queue straight from the items: no sorted copy of all jobs (the
    /// heap orders them), and the queue sized once, since a 30,000-job week is planned at every
    /// start, reload and override.
    private func replan() {
        plan = [:]    // let the old plan go before the new one is built (a reload's peak)
        queue = Heap()
        var byItem: [String: [PlannedJob]] = [:]
        byItem.reserveCapacity(schedule.items.count)
        var count = 0
        for item in schedule.items {
            let jobs = Planner.jobs(for: item, in: schedule)
            guard !jobs.isEmpty else { continue }
            byItem[item.id] = jobs
            count += jobs.count
        }
        plannedCount = count
        var pending = Heap<QueuedJob>(minimumCapacity: count)
        for jobs in byItem.values {
            for job in jobs where !(records[job.id]?.state.isFinal ?? false) && !isDelivering(job.id) {
                pending.insert(QueuedJob(job: job))
            }
        }
        plan = byItem
        queue = pending
        warmedThrough = .distantPast    // a reload may bring an earlier instant: warm it too
    }

    // MARK: The loop

    /// Runs until `shutdown()`: fires what is due, then sleeps until the next instant, a change
    /// (reload, override), a step of the clock, or the next tick.
    public func run() async {
        while !stopping {
            tick?(statusLine())
            let now = time.now()
            if !held && !stopping {
                var due: [PlannedJob] = []
                while let first = queue.min, first.job.instant <= now { due.append(queue.removeMin().job) }
                if !due.isEmpty { await fire(due, now: time.now()) }
            }
            if !held && warmUpLead > 0 { warmUpNextInstant(now: now) }
            var wakeAt = now.addingTimeInterval(tickInterval)
            if !held, let next = queue.min?.job.instant {
                let at = warmUpLead > 0 && next > warmedThrough ? next.addingTimeInterval(-warmUpLead) : next
                if at < wakeAt { wakeAt = at }
            }
            if stopping { break }
            await sleep(until: wakeAt)
        }
    }

    /// Once the next instant is within `warmUpLead`, opens the connection to each platform that
    /// its jobs call (once per host), without waiting for the answers.
    private func warmUpNextInstant(now: Date) {
        guard let next = queue.min?.job.instant, next > warmedThrough,
              now >= next.addingTimeInterval(-warmUpLead) else { return }
        warmedThrough = next
        guard next > now else { return }    // already due: it fires now, nothing to gain
        var due: [QueuedJob] = []
        while let first = queue.min, first.job.instant == next { due.append(queue.removeMin()) }
        // By host and CA file: libcurl reuses a connection only for a call with the same TLS settings.
        var origins: [String: (origin: String, target: Target)] = [:]
        for entry in due {
            queue.insert(entry)
            if let target = targetsByName[entry.job.target], let origin = target.origin(for: entry.job.action) {
                origins[origin + " " + (target.caFile ?? "")] = (origin, target)
            }
        }
        for (key, (origin, target)) in origins.sorted(by: { $0.key < $1.key }) {
            if let last = lastWarmed[key], now.timeIntervalSince(last) < warmUpLead { continue }
            lastWarmed[key] = now
            let deliverer = self.deliverer, logger = self.logger
            Task {
                let result = await deliverer.warm(origin: origin, target: target)
                var meta: Logger.Metadata = ["origin": "\(origin)", "target": "\(target.name)",
                                             "seconds": "\(String(format: "%.3f", result.totalTime))"]
                switch result.kind {
                case .response(let response):
                    meta["status"] = "\(response.status)"
                    logger.debug("connection warmed", metadata: meta)
                case .failure(let code, let message):
                    if code == 42 { return }    // CURLE_ABORTED_BY_CALLBACK: the daemon is shutting down
                    meta["error"] = "\(message)"
                    logger.warning("platform not reachable ahead of its call; the call will still be made at its instant", metadata: meta)
                }
            }
        }
    }

    private func sleep(until instant: Date) async {
        let time = self.time, wake = self.wake
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await time.sleep(until: instant) }
            group.addTask { await wake.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// A job about to go out, with everything decided before its record is written.
    private struct Firing {
        var job: PlannedJob
        var record: JobRecord
        var item: Item
        var target: Target
        var deadline: Date
    }

    /// Fires jobs due together (in firing order): decides each one's fate, writes all their
    /// records in one transaction (one fsync for a whole burst, before any call leaves), then
    /// hands the calls to delivery.
    /// Returns false when the records could not be written (nothing was sent).
    @discardableResult
    private func fire(_ jobs: [PlannedJob], now: Date, manualBy: String? = nil) async -> Bool {
        var firings: [Firing] = []
        var missed: [(job: PlannedJob, record: JobRecord)] = []
        firings.reserveCapacity(jobs.count)
        for job in jobs where !isDelivering(job.id) {
            guard let item = item(job.itemID), let target = targetsByName[job.target] else { continue }
            switch decide(job, now: now, manualBy: manualBy, item: item, target: target) {
            case .missed(let record): missed.append((job, record))
            case .fire(let firing): firings.append(firing)
            }
        }
        // From here until each is handed to its lane, the batch is being delivered for everyone
        // else: the awaits below let reloads, overrides and operators in.
        let ids = firings.map(\.job.id)
        claimed.formUnion(ids)
        defer { claimed.subtract(ids) }
        guard await persist(missed.map(\.record) + firings.map(\.record)) else {
            // Not on disk, so it does not count. A scheduled job is tried again shortly rather
            // than sent unrecorded; an operator's send is refused and can be repeated.
            if manualBy == nil { for firing in firings { requeueLater(firing.job) } }
            return false
        }
        for (job, record) in missed {
            logger.warning("job missed", metadata: Self.metadata(job, record, lateness: now.timeIntervalSince(job.instant)))
        }
        // At one instant a stop goes to a platform before another item's prepare or start, and is
        // answered first (its first attempt, not its retries): a start that overtook the stop of
        // the item before could be ended by it.
        // Shut down while the records were written: they are journaled in flight, so they are cut
        // off and go out after restart with the same webhook-id.
        guard !stopping else { return true }
        var stops: [String: [Latch]] = [:]
        for firing in firings {
            let key = "\(firing.job.target) \(firing.job.instant.timeIntervalSince1970)"
            if firing.job.action == .stop {
                let answered = Latch()
                stops[key, default: []].append(answered)
                launch(firing, answered: answered)
            } else {
                launch(firing, after: stops[key] ?? [])
            }
        }
        return true
    }

    /// Handed to delivery, or about to be.
    private func isDelivering(_ id: JobID) -> Bool {
        active[id] != nil || claimed.contains(id) || waitingIDs.contains(id)
    }

    private enum Decision {
        case missed(JobRecord)
        case fire(Firing)
    }

    /// Log metadata for a job, made only when a line is written: a burst of thousands of jobs
    /// must not carry a dictionary each while it waits.
    private static func metadata(_ job: PlannedJob, _ record: JobRecord, lateness: TimeInterval?) -> Logger.Metadata {
        var meta: Logger.Metadata = ["item": "\(job.itemID)", "action": "\(job.action.rawValue)", "target": "\(job.target)",
                                     "webhook_id": "\(WebhookSigner.webhookID(job: job.id, send: record.send))"]
        if let lateness { meta["lateness"] = lateness >= 10 ? "\(Int(lateness))s" : "\(String(format: "%.1f", lateness))s" }
        return meta
    }

    /// The firing rule for one job at `now`: missed, or sent (with the deadline it gets).
    private func decide(_ job: PlannedJob, now: Date, manualBy: String?, item: Item, target: Target) -> Decision {
        var record = records[job.id] ?? JobRecord(id: job.id, state: .planned, instant: job.instant, deadline: job.deadline, updatedAt: now)
        var job = job
        if let by = manualBy {
            // A new send with a new webhook-id, sent now; its body carries the moment it was accepted.
            if records[job.id] != nil { record.send += 1 }
            record.attempts = 0
            record.lateBy = nil
            record.detail = "sent by hand by \(by)"
            job.instant = now
            job.deadline = max(job.deadline, now.addingTimeInterval(Planner.stopGracePeriod))
        }
        let lateness = now.timeIntervalSince(job.instant)
        var deadline = job.deadline
        if now >= job.deadline {
            if job.action == .stop {
                // A stream left live is the worse harm: send it, with an hour of retries from now.
                deadline = now.addingTimeInterval(Planner.stopGracePeriod)
            } else {
                record.state = .missed
                record.updatedAt = now
                record.detail = "\(job.action.rawValue) was due at \(WallClock.utcText(job.instant)); its deadline \(WallClock.utcText(job.deadline)) had passed"
                return .missed(record)
            }
        }
        record.state = .inflight
        record.instant = job.instant
        record.deadline = deadline
        record.updatedAt = now
        if lateness > Self.latenessThreshold { record.lateBy = lateness }
        return .fire(Firing(job: job, record: record, item: item, target: target, deadline: deadline))
    }

    /// Hands a fired job, already journaled in flight, to its delivery lane, or to the target's
    /// waiting line when it has enough deliveries under way. It waits for `after` before its first
    /// attempt, and opens `answered` after it.
    private func launch(_ firing: Firing, after: [Latch] = [], answered: Latch? = nil) {
        logger.info("firing", metadata: Self.metadata(firing.job, firing.record, lateness: firing.record.lateBy))
        let target = firing.job.target
        guard underWay[target, default: 0] < deliveriesPerTarget else {
            waitingToLaunch[target, default: []].append(PendingLaunch(firing: firing, after: after, answered: answered))
            waitingIDs.insert(firing.job.id)
            return
        }
        start(firing, after: after, answered: answered)
    }

    /// Starts the next waiting deliveries of `target` while it has room.
    private func launchWaiting(for target: String) {
        while !stopping, underWay[target, default: 0] < deliveriesPerTarget,
              let next = waitingToLaunch[target]?.popFirst() {
            if waitingToLaunch[target]?.isEmpty == true { waitingToLaunch[target] = nil }
            waitingIDs.remove(next.firing.job.id)
            start(next.firing, after: next.after, answered: next.answered)
        }
    }

    private func start(_ firing: Firing, after: [Latch], answered: Latch?) {
        underWay[firing.job.target, default: 0] += 1
        let job = firing.job, record = firing.record, target = firing.target
        let context = DeliveryContext(schedule: schedule, item: firing.item, job: job, send: record.send, timestamp: job.instant)
        let deliverer = self.deliverer
        let firstAttempt = record.attempts + 1
        let id = job.id
        let finalDeadline = firing.deadline
        // No suspension between handing over and recording: `finished` cannot run in between.
        active[id] = lanes.enqueue(.init(item: job.itemID, target: job.target)) {
            for latch in after { await latch.wait() }
            let result = await deliverer.deliver(context, target: target, deadline: finalDeadline, firstAttempt: firstAttempt) { attempt in
                await self.recordAttempt(attempt, for: id)
                answered?.release()
            }
            answered?.release()    // cancelled before any attempt: do not hold anyone
            await self.finished(id, result)
        }
    }

    /// Several records in one transaction; each counts only once the whole write is on disk.
    @discardableResult
    private func persist(_ batch: [JobRecord]) async -> Bool {
        guard !batch.isEmpty else { return true }
        let before = batch.map { records[$0.id] }
        for record in batch {
            records[record.id] = record
            updateLive(record)
        }
        do {
            try await journal.save(batch)
            return true
        } catch {
            // Not on disk, so it does not count: memory goes back to what the journal says.
            for (record, old) in zip(batch, before) where records[record.id] == record { records[record.id] = old }
            rebuildLive()
            logger.critical("journal write failed", metadata: ["job": "\(batch[0].id)", "jobs": "\(batch.count)", "error": "\(error)"])
            return false
        }
    }

    @discardableResult
    private func persist(_ record: JobRecord) async -> Bool {
        await persist([record])
    }

    private func requeueLater(_ job: PlannedJob) {
        let time = self.time
        Task {
            try? await time.sleep(for: 1)
            self.requeue(job)
        }
    }

    private func requeue(_ job: PlannedJob) {
        guard plan[job.itemID]?.contains(where: { $0.id == job.id }) == true, !(records[job.id]?.state.isFinal ?? false),
              !isDelivering(job.id), !queue.unordered.contains(where: { $0.job.id == job.id }) else { return }
        queue.insert(QueuedJob(job: job))
        wake.signal()
    }

    private func recordAttempt(_ attempt: AttemptRecord, for id: JobID) async {
        guard var record = records[id] else { return }
        record.attempts = attempt.attempt
        record.updatedAt = time.now()
        records[id] = record
        var meta: Logger.Metadata = ["job": "\(id)", "webhook_id": "\(attempt.webhookID)", "attempt": "\(attempt.attempt)",
                                     "outcome": "\(attempt.outcome)"]
        if let status = attempt.status { meta["status"] = "\(status)" }
        if let error = attempt.error { meta["error"] = "\(error)" }
        if let detail = attempt.detail, detail != attempt.error { meta["detail"] = "\(detail)" }
        if attempt.outcome == "delivered" {
            logger.info("delivered", metadata: meta)
        } else {
            logger.warning(attempt.outcome == "retry" ? "attempt failed, will retry" : "delivery failed", metadata: meta)
        }
        do {
            try await journal.save(attempt, job: record)
        } catch {
            logger.critical("journal write failed", metadata: ["job": "\(id)", "error": "\(error)"])
        }
    }

    private func finished(_ id: JobID, _ result: DeliveryResult) async {
        active[id] = nil
        underWay[id.target, default: 1] -= 1
        if underWay[id.target] == 0 { underWay[id.target] = nil }
        launchWaiting(for: id.target)
        guard var record = records[id] else { return }
        record.updatedAt = time.now()
        switch result {
        case .delivered:
            record.state = .delivered
            record.detail = nil
        case .failed(let reason, _):
            record.state = .failed
            record.detail = reason
        case .cancelled:
            // Stays in flight on disk: cut off, to be sent again after restart with the same webhook-id.
            return
        }
        await persist(record)
    }

    // MARK: Control

    /// Puts a new, already validated schedule in force: delivered jobs stay delivered, pending
    /// jobs take the new times, jobs of removed items are dropped.
    public func reload(_ newSchedule: Schedule) async {
        let before = plannedCount
        fileSchedule = newSchedule
        for item in overrides.keys where newSchedule.item(id: item) == nil {
            overrides[item] = nil
            try? await journal.removeOverride(item: item)
        }
        applyOverrides()
        replan()
        try? await journal.append(JournalEvent(at: time.now(), kind: "reload",
                                               detail: "schedule \(newSchedule.id): \(plannedCount) jobs (was \(before)), \(queue.count) pending"))
        logger.info("schedule reloaded", metadata: ["jobs": "\(plannedCount)", "pending": "\(queue.count)"])
        wake.signal()
    }

    /// Records a refused reload; the running schedule stays in force.
    public func reloadRefused(_ error: ScheduleError) async {
        try? await journal.append(JournalEvent(at: time.now(), kind: "reload", detail: error.description, ok: false))
        logger.error("reload refused, running schedule stays in force", metadata: ["errors": "\(error.diagnostics.count)",
                                                                                    "first": "\(error.diagnostics.first?.description ?? "")"])
    }

    public func hold(by: String) async {
        held = true
        try? await journal.append(JournalEvent(at: time.now(), kind: "hold", detail: "by \(by)"))
        logger.notice("hold: no job fires until resume", metadata: ["by": "\(by)"])
        wake.signal()
    }

    /// Goes on; jobs that became due while held follow the firing rule (as after downtime).
    public func resume(by: String) async {
        held = false
        try? await journal.append(JournalEvent(at: time.now(), kind: "resume", detail: "by \(by)"))
        logger.notice("resume", metadata: ["by": "\(by)"])
        wake.signal()
    }

    public var isHeld: Bool { held }

    /// Stops firing new jobs. Deliveries waiting to retry stop at once; a call on the wire gets up to
    /// `grace` seconds to finish and be journaled. What is left stays in flight in the journal (cut
    /// off) and is sent again, with the same webhook-id, after restart.
    public func shutdown(grace: TimeInterval) async {
        stopping = true
        wake.signal()
        // Deliveries still waiting for room are left in flight in the journal: cut off, sent after restart.
        waitingToLaunch.removeAll()
        waitingIDs.removeAll()
        for task in active.values { task.cancel() }
        let deadline = Date().addingTimeInterval(grace)
        while !active.isEmpty && Date() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        let cutOff = records.values.filter { $0.state == .inflight }.count
        try? await journal.append(JournalEvent(at: time.now(), kind: "stop", detail: "\(cutOff) deliveries cut off"))
        logger.info("scheduler stopped", metadata: ["cut_off": "\(cutOff)"])
    }

    // MARK: Operators

    /// Why an operator's command was not carried out; `unknown` marks an item that does not exist.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var description: String
        public var unknown = false
    }

    private func onlineItem(_ id: String) throws(Refusal) -> Item {
        guard let item = item(id) else { throw Refusal(description: "unknown item '\(id)'", unknown: true) }
        guard item.online else { throw Refusal(description: "item '\(id)' is on-site only; nothing is streamed") }
        return item
    }

    private func states(_ item: String, _ action: Action) -> [JobState] {
        jobs(of: item, action).map { records[$0.id]?.state ?? .planned }
    }

    private func hasStarted(_ item: String) -> Bool { states(item, .start).contains { $0 == .delivered || $0 == .inflight } }
    private func hasStopped(_ item: String) -> Bool { states(item, .stop).contains { $0 == .delivered || $0 == .inflight } }

    /// `onair start|stop ITEM`: sends now, as a new send; the scheduled job is then done.
    public func sendNow(item id: String, action: Action, again: Bool, by: String) async throws(Refusal) -> String {
        _ = try onlineItem(id)
        if action == .start, hasStarted(id), !again {
            throw Refusal(description: "'\(id)' was already started; use --again to send the start once more")
        }
        let jobs = self.jobs(of: id, action).sorted { $0.target < $1.target }
        guard !jobs.isEmpty else { throw Refusal(description: "no target of '\(id)' takes a \(action.rawValue) call") }
        if jobs.contains(where: { isDelivering($0.id) }) {
            throw Refusal(description: "a \(action.rawValue) of '\(id)' is being delivered right now; see onair history \(id)")
        }
        let now = time.now()
        if action == .start {
            // A prepare after the stream went live by hand would be wrong: it is done.
            for job in self.jobs(of: id, .prepare) where !(records[job.id]?.state.isFinal ?? false) {
                await persist(JobRecord(id: job.id, state: .cancelled, instant: job.instant, deadline: job.deadline, updatedAt: now,
                                        detail: "item started by hand by \(by)"))
            }
        }
        try? await journal.append(JournalEvent(at: now, kind: action.rawValue, detail: "\(id) sent by hand by \(by)"))
        guard await fire(jobs, now: now, manualBy: by) else {
            throw Refusal(description: "cannot journal the send, so it was not sent; see the daemon's log")
        }
        replan()
        wake.signal()
        return "\(action.rawValue) of '\(id)' sent to \(jobs.map(\.target).joined(separator: ", "))"
    }

    /// `onair extend ITEM DURATION`: moves the item's stop later.
    public func extend(item id: String, by seconds: Int, who: String) async throws(Refusal) -> String {
        let item = try onlineItem(id)
        if hasStopped(id) { throw Refusal(description: "'\(id)' was already stopped; nothing to extend") }
        try await addOverride(id, shift: 0, extension: seconds, who: who)
        return "'\(id)' now ends at \(WallClock.localText(item.end.addingTimeInterval(TimeInterval(seconds)), in: schedule.timeZone))"
    }

    /// `onair delay ITEM DURATION`: shifts prepare, start and stop later; refused once started.
    public func delay(item id: String, by seconds: Int, who: String) async throws(Refusal) -> String {
        let item = try onlineItem(id)
        if hasStarted(id) { throw Refusal(description: "'\(id)' has already started; use extend to move its end") }
        try await addOverride(id, shift: seconds, extension: 0, who: who)
        return "'\(id)' now starts at \(WallClock.localText(item.start.addingTimeInterval(TimeInterval(seconds)), in: schedule.timeZone))"
    }

    /// Adds to the item's stored override (delays and extensions add up) and puts it in force.
    private func addOverride(_ id: String, shift: Int, extension seconds: Int, who: String) async throws(Refusal) {
        var o = overrides[id] ?? ItemOverride(item: id, by: who, at: time.now())
        o.shift += shift
        o.extension_ += seconds
        o.by = who
        o.at = time.now()
        try await store(o)
    }

    private func store(_ o: ItemOverride) async throws(Refusal) {
        do {
            try await journal.save(o)
        } catch {
            throw Refusal(description: "cannot journal the change: \(error)")
        }
        overrides[o.item] = o
        try? await journal.append(JournalEvent(at: time.now(), kind: "override",
                                               detail: "\(o.item): shift \(DurationText.format(o.shift)), extension \(DurationText.format(o.extension_)) by \(o.by)"))
        applyOverrides()
        replan()
        wake.signal()
    }

    /// `onair skip ITEM`: cancels the item's pending jobs; refused while it is on air.
    public func skip(item id: String, who: String) async throws(Refusal) -> String {
        _ = try onlineItem(id)
        if hasStarted(id) && !hasStopped(id) { throw Refusal(description: "'\(id)' is on air; use stop") }
        let now = time.now()
        var cancelled = 0
        for job in jobs(of: id) where !(records[job.id]?.state.isFinal ?? false) && !isDelivering(job.id) {
            await persist(JobRecord(id: job.id, state: .cancelled, send: records[job.id]?.send ?? 0, instant: job.instant,
                                    deadline: job.deadline, updatedAt: now, detail: "skipped by \(who)"))
            cancelled += 1
        }
        try? await journal.append(JournalEvent(at: now, kind: "skip", detail: "\(id) by \(who): \(cancelled) jobs cancelled"))
        replan()
        wake.signal()
        return "'\(id)' skipped: \(cancelled) pending job\(cancelled == 1 ? "" : "s") cancelled"
    }

    public var currentOverrides: [String: ItemOverride] { overrides }

    public func snapshot(nextCount: Int = 10) -> SchedulerSnapshot {
        let onAir = live.sorted().compactMap { id in
            item(id).map { SchedulerSnapshot.OnAir(item: $0.id, title: $0.title, since: $0.start, until: $0.end) }
        }
        var copy = queue
        var next: [PlannedJob] = []
        while next.count < nextCount, let entry = copy.popMin() { next.append(entry.job) }
        return SchedulerSnapshot(schedule: schedule, held: held, onAir: onAir, next: next, records: records, inFlight: active.count + waitingIDs.count)
    }

    /// For tests: waits until no delivery is in flight.
    public func idle() async {
        while let task = active.values.first { await task.value }
    }
}

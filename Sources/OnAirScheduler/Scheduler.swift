import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import DequeModule
import HeapModule
import Logging

/// Fires every job of the schedule at its wall-clock instant, exactly once, through the delivery
/// engine, and journals every state change before it counts.
///
/// The firing rule is one for every situation (on time, after a crash, after a clock step,
/// after `resume`): a job fires when the clock has reached its instant and it is not final.
/// A prepare or start whose deadline has passed is missed instead; a stop is always sent, with
/// an hour of retries from the moment it is sent when its own deadline has passed.
public actor Scheduler {
    /// The schedule as the file says, and as in force (with the operators' overrides applied).
    public internal(set) var fileSchedule: Schedule
    public internal(set) var schedule: Schedule
    var overrides: [String: ItemOverride] = [:]
    /// Where each item stands in the in-force schedule, and the targets by name, so firing a job
    /// is not a scan of the week (an index rather than a second copy of every item).
    private var itemIndex: [String: Int] = [:]
    private var targetsByName: [String: Target] = [:]
    let journal: JournalStore
    private let deliverer: Deliverer
    let time: TimeSource
    let logger: Logger
    private let lanes = DeliveryLanes()
    let wake = WakeSignal()

    /// The in-force plan by item: firing checks a job is still planned, operator commands take an
    /// item's jobs. Grouping by item keeps a 30,000-job week to a few megabytes.
    private var plan: [String: [PlannedJob]] = [:]
    var plannedCount = 0
    var records: [JobID: JobRecord] = [:]
    var queue = Heap<QueuedJob>()
    /// Jobs handed to delivery and not finished: which send of the job, and its task. An
    /// operator's stop can supersede a send still being retried; the old one's answers then no
    /// longer change the job's record.
    struct ActiveDelivery {
        var send: Int
        var task: Task<Void, Never>
    }
    var active: [JobID: ActiveDelivery] = [:]
    /// Jobs whose last attempt failed and that wait for their next one, with the reason.
    var retrying: [JobID: String] = [:]
    /// Set while the journal refuses writes (a full or failing disk); cleared by the next write
    /// that succeeds.
    var journalTrouble: JournalTrouble?
    /// Jobs taken for firing whose records are being written and whose calls are not handed over
    /// yet: for everyone else they are already being delivered (not to be queued, sent by hand,
    /// or skipped twice).
    var claimed: Set<JobID> = []
    /// Deliveries under way per target, at most `deliveriesPerTarget` at once (as many as libcurl
    /// keeps connections to one host). The rest wait here, in firing order, as data: a task each
    /// would hold ~14 KB of frames through an hour of retries when a whole past week's stops are
    /// due at once to a platform that is down.
    private let deliveriesPerTarget: Int
    private var underWay: [String: Int] = [:]
    private var waitingToLaunch: [String: Deque<PendingLaunch>] = [:]
    var waitingIDs: Set<JobID> = []

    private struct PendingLaunch {
        var firing: Firing
        var after: [Latch]
        var answered: Latch?
        var report: FirstAnswerReport?
    }
    var held = false
    var stopping = false
    /// Operator commands run one after the other (SPEC 2.1): each reads the state the one before
    /// it left, even across the journal writes where the actor lets others in.
    private var commandRunning = false
    private var commandWaiters: Deque<CheckedContinuation<Void, Never>> = []
    /// Called on every turn of the loop (the systemd watchdog pings from here) and how often
    /// the loop must turn at least.
    private var tick: (@Sendable (String) -> Void)?
    private var tickInterval: TimeInterval = 3600
    /// Items whose start was delivered and whose stop was not, with when the start was delivered.
    var live: [String: Date] = [:]

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
        try await journal.save(settings: Self.settings(of: schedule))
        let cutOff = records.values.filter { $0.state == .inflight }.count
        try await journal.append(JournalEvent(at: time.now(), kind: "start",
                                              detail: "schedule \(schedule.id): \(plannedCount) jobs, \(queue.count) pending, \(cutOff) cut off"))
        logger.info("journal recovered", metadata: ["jobs": "\(plannedCount)", "pending": "\(queue.count)", "cut_off": "\(cutOff)"])
    }

    static func settings(of schedule: Schedule) -> [String: String] {
        [JournalSetting.event: schedule.id, JournalSetting.timeZone: schedule.timeZone.identifier]
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
        if let trouble = journalTrouble { parts.append("JOURNAL CANNOT BE WRITTEN: \(trouble.error)") }
        let onAir = live.keys.sorted()
        parts.append(onAir.isEmpty ? "on air: nothing" : "on air: " + onAir.prefix(3).joined(separator: ", ") + (onAir.count > 3 ? " +\(onAir.count - 3)" : ""))
        if let next = queue.min?.job {
            parts.append("next: \(next.itemID) \(next.action.rawValue) at \(WallClock.localText(next.instant, in: schedule.timeZone))")
        } else {
            parts.append("no pending jobs")
        }
        return parts.joined(separator: "; ")
    }

    func rebuildLive() {
        live = [:]
        for record in records.values.sorted(by: { $0.updatedAt < $1.updatedAt }) { updateLive(record) }
    }

    private func updateLive(_ record: JobRecord) {
        switch (record.id.action, record.state) {
        case (.start, .delivered): live[record.id.item] = min(live[record.id.item] ?? record.updatedAt, record.updatedAt)
        case (.stop, .delivered), (.stop, .cancelled): live[record.id.item] = nil
        default: break
        }
    }

    /// Waits for the operator command before this one to finish; pair with `endCommand()`.
    func beginCommand() async {
        guard commandRunning else {
            commandRunning = true
            return
        }
        await withCheckedContinuation { commandWaiters.append($0) }
    }

    func endCommand() {
        if let next = commandWaiters.popFirst() { next.resume() } else { commandRunning = false }
    }

    /// A test hook (the control API exposes it only with ONAIR_DEBUG_STALL=1): blocks the
    /// scheduler's executor, as a wedged loop would, so the watchdog's reaction can be tested.
    public func stall(seconds: Double) {
        Thread.sleep(forTimeInterval: seconds)
    }

    /// The file's schedule with every override applied: a delay shifts the item, an extend
    /// moves its end.
    func applyOverrides() {
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

    func item(_ id: String) -> Item? {
        itemIndex[id].map { schedule.items[$0] }
    }

    /// The planned jobs of one item, optionally of one action only.
    func jobs(of item: String, _ action: Action? = nil) -> [PlannedJob] {
        let all = plan[item] ?? []
        guard let action else { return all }
        return all.filter { $0.action == action }
    }

    /// Builds the plan and the queue straight from the items: no sorted copy of all jobs (the
    /// heap orders them), and the queue sized once, since a 30,000-job week is planned at every
    /// start, reload and override.
    func replan() {
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
    struct Firing {
        var job: PlannedJob
        var record: JobRecord
        var item: Item
        var target: Target
        var deadline: Date
    }

    /// How an operator's send hears of each target's first answer.
    typealias FirstAnswerReport = @Sendable (FirstAnswer) -> Void

    /// Fires jobs due together (in firing order): decides each one's fate, writes all their
    /// records in one transaction (one fsync for a whole burst, before any call leaves), then
    /// hands the calls to delivery. `alsoWrite` joins that transaction (an operator's send
    /// cancels or restores other jobs of the item: all of it is on disk, or none).
    /// `superseding`: an operator's stop replaces a send of the same job still under way.
    /// Returns false when the records could not be written (nothing was sent, nothing changed).
    @discardableResult
    func fire(_ jobs: [PlannedJob], now: Date, manualBy: String? = nil, alsoWrite: [JobRecord] = [],
              superseding: Bool = false, report: FirstAnswerReport? = nil) async -> Bool {
        var firings: [Firing] = []
        var missed: [(job: PlannedJob, record: JobRecord)] = []
        firings.reserveCapacity(jobs.count)
        for job in jobs where superseding || !isDelivering(job.id) {
            // A scheduled job an operator settled while it waited in the queue (skip, stop by hand,
            // written in memory before its commit) is not sent: a start that got past a skip would
            // go on air with its stops cancelled.
            if manualBy == nil, records[job.id]?.state.isFinal == true { continue }
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
        guard await persist(alsoWrite + missed.map(\.record) + firings.map(\.record)) else {
            // Not on disk, so it does not count. A scheduled job is tried again shortly rather
            // than sent unrecorded; an operator's send is refused and can be repeated.
            if manualBy == nil { for firing in firings { requeueLater(firing.job) } }
            for (job, _) in missed where manualBy == nil { requeueLater(job) }
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
                launch(firing, answered: answered, report: report)
            } else {
                launch(firing, after: stops[key] ?? [], report: report)
            }
        }
        return true
    }

    /// Handed to delivery, or about to be.
    func isDelivering(_ id: JobID) -> Bool {
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
                let zone = schedule.timeZone
                record.state = .missed
                record.updatedAt = now
                record.detail = "\(job.action.rawValue) was due at \(WallClock.labelledText(job.instant, in: zone)); "
                    + "its deadline \(WallClock.labelledText(job.deadline, in: zone)) had passed"
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
    private func launch(_ firing: Firing, after: [Latch] = [], answered: Latch? = nil, report: FirstAnswerReport? = nil) {
        logger.info("firing", metadata: Self.metadata(firing.job, firing.record, lateness: firing.record.lateBy))
        let target = firing.job.target
        guard underWay[target, default: 0] < deliveriesPerTarget else {
            waitingToLaunch[target, default: []].append(PendingLaunch(firing: firing, after: after, answered: answered, report: report))
            waitingIDs.insert(firing.job.id)
            return
        }
        start(firing, after: after, answered: answered, report: report)
    }

    /// Starts the next waiting deliveries of `target` while it has room.
    private func launchWaiting(for target: String) {
        while !stopping, underWay[target, default: 0] < deliveriesPerTarget,
              let next = waitingToLaunch[target]?.popFirst() {
            if waitingToLaunch[target]?.isEmpty == true { waitingToLaunch[target] = nil }
            waitingIDs.remove(next.firing.job.id)
            start(next.firing, after: next.after, answered: next.answered, report: next.report)
        }
    }

    /// Takes a job's send out of the target's waiting line (an operator's stop supersedes it, or
    /// the daemon shuts down); `send` nil takes every send of it.
    func removeWaiting(_ id: JobID, send: Int? = nil) {
        guard waitingIDs.contains(id) else { return }
        waitingToLaunch[id.target]?.removeAll { $0.firing.job.id == id && (send == nil || $0.firing.record.send == send) }
        if waitingToLaunch[id.target]?.contains(where: { $0.firing.job.id == id }) != true { waitingIDs.remove(id) }
        if waitingToLaunch[id.target]?.isEmpty == true { waitingToLaunch[id.target] = nil }
    }

    /// Shutdown: what waits for room stays in flight in the journal (cut off, sent after restart).
    func dropWaiting() {
        waitingToLaunch.removeAll()
        waitingIDs.removeAll()
    }

    private func start(_ firing: Firing, after: [Latch], answered: Latch?, report: FirstAnswerReport?) {
        underWay[firing.job.target, default: 0] += 1
        let job = firing.job, record = firing.record, target = firing.target
        let context = DeliveryContext(schedule: schedule, item: firing.item, job: job, send: record.send, timestamp: job.instant)
        let deliverer = self.deliverer
        let firstAttempt = record.attempts + 1
        let id = job.id, send = record.send, targetName = target.name
        let finalDeadline = firing.deadline
        // No suspension between handing over and recording: `finished` cannot run in between.
        let task = lanes.enqueue(.init(item: job.itemID, target: job.target)) {
            for latch in after { await latch.wait() }
            let result = await deliverer.deliver(context, target: target, deadline: finalDeadline, firstAttempt: firstAttempt) { attempt in
                await self.recordAttempt(attempt, for: id)
                answered?.release()
                if attempt.attempt == firstAttempt { report?(FirstAnswer(target: targetName, attempt: attempt)) }
            }
            answered?.release()    // cancelled before any attempt: do not hold anyone
            report?(FirstAnswer(target: targetName, attempt: nil))    // only the first report per target counts
            await self.finished(id, send: send, result)
        }
        active[id] = ActiveDelivery(send: send, task: task)
    }

    /// Several records in one transaction; each counts only once the whole write is on disk.
    @discardableResult
    func persist(_ batch: [JobRecord]) async -> Bool {
        guard !batch.isEmpty else { return true }
        let before = batch.map { records[$0.id] }
        for record in batch {
            records[record.id] = record
            updateLive(record)
        }
        do {
            try await journaled { try await journal.save(batch) }
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
    func persist(_ record: JobRecord) async -> Bool {
        await persist([record])
    }

    /// Every journal write goes through here, so that a disk that refuses writes is known
    /// (status is degraded, SPEC 3.2) from the first failure until the first success after it.
    func journaled(_ write: () async throws -> Void) async throws {
        do {
            try await write()
            if journalTrouble != nil {
                logger.notice("the journal takes writes again", metadata: ["since": "\(WallClock.utcText(journalTrouble!.since))"])
                journalTrouble = nil
            }
        } catch {
            if journalTrouble == nil { journalTrouble = JournalTrouble(since: time.now(), error: "\(error)") }
            throw error
        }
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
        guard var record = records[id] else { return }
        // A send that an operator's stop superseded: its attempt is history, the job is the new send's.
        let current = record.send == attempt.send
        if current {
            record.attempts = attempt.attempt
            record.updatedAt = time.now()
            records[id] = record
            retrying[id] = attempt.outcome == "retry" ? (attempt.detail ?? attempt.error ?? "failed") : nil
        }
        do {
            try await journaled { try await journal.save(attempt, job: record) }
        } catch {
            logger.critical("journal write failed", metadata: ["job": "\(id)", "error": "\(error)"])
        }
    }

    private func finished(_ id: JobID, send: Int, _ result: DeliveryResult) async {
        if active[id]?.send == send { active[id] = nil }
        underWay[id.target, default: 1] -= 1
        if underWay[id.target] == 0 { underWay[id.target] = nil }
        launchWaiting(for: id.target)
        guard var record = records[id], record.send == send else { return }
        retrying[id] = nil
        record.updatedAt = time.now()
        switch result {
        case .delivered:
            record.state = .delivered
            record.detail = nil
        case .failed(let reason, _):
            // Superseded by an operator's stop: it stays as the operator left it.
            guard !record.state.isFinal else { return }
            record.state = .failed
            record.detail = reason
        case .cancelled:
            // Stays in flight on disk: cut off, to be sent again after restart with the same webhook-id.
            return
        }
        await persistOutcome(record)
    }

    /// An outcome the journal refused (a full disk) is written again until it is taken: dropping
    /// it would leave the job in flight on disk and out of the queue, and a replan would send a
    /// call that was answered. Meanwhile the job stays claimed, so nothing re-queues it; at
    /// shutdown it is left in flight (cut off), as SPEC 4 recovers it. Tried once a second, as a
    /// job that could not be fired is (`requeueLater`).
    private func persistOutcome(_ record: JobRecord) async {
        claimed.insert(record.id)
        defer { claimed.remove(record.id) }
        while !(await persist(record)) && !stopping {
            try? await time.sleep(for: 1)
            guard records[record.id]?.send == record.send, !(records[record.id]?.state.isFinal ?? false) else { return }
        }
    }
}

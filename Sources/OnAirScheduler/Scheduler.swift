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
/// The decisions are `FiringRule`'s (pure, tested without I/O); this actor is their shell: it owns
/// the plan, the records and each job's `JobPhase`, runs the loop, writes the journal and hands
/// calls to delivery. A job whose instant is ahead is armed `armLead` before it — journaled
/// "armed", rendered, signed and cued in the transport — so at the instant only the send remains.
public actor Scheduler {
    /// The schedule as the file says, and as in force (with the operators' overrides applied).
    public internal(set) var fileSchedule: Schedule
    public internal(set) var schedule: Schedule
    var overrides: [String: ItemOverride] = [:]
    /// Where each item stands in the in-force schedule, and the targets by name, so firing a job
    /// is not a scan of the week (an index rather than a second copy of every item).
    private(set) var itemIndex: [String: Int] = [:]
    var targetsByName: [String: Target] = [:]
    /// Where each target stands in the in-force schedule's targets (a firing keeps the place).
    private(set) var targetIndex: [String: Int] = [:]
    let journal: JournalStore
    let deliverer: Deliverer
    let time: TimeSource
    let logger: Logger
    let lanes = DeliveryLanes()
    let wake = WakeSignal()
    /// The firing state machine: the queue of pending jobs, running/held/stopping, and every
    /// decision about firing and arming (this actor carries out what it decides).
    var machine: FiringMachine

    /// How many jobs the in-force plan has. The plan itself is not kept: an item's jobs are the
    /// planner's, made again from the in-force item when they are asked for (a stored plan was a
    /// second copy of the queue, 3.6 MiB for a 10,000-item week).
    var plannedCount = 0
    var records = RecordTable()
    /// Every job on its way to a platform, and where it is (see `JobPhase`).
    var phases: [JobID: JobPhase] = [:]
    /// Withdrawn jobs whose "armed" row is to be written back as it was (see `flushWriteBacks`).
    var writeBacks: [JobID: JobRecord] = [:]
    /// The deliveries of jobs handed over, by job and send: what shutdown and an operator's stop cancel.
    var tasks: [JobID: (launch: Int, send: Int, handle: DeliveryHandle)] = [:]
    /// Counts hand-overs to delivery, so a finished delivery is told from a later one of the same job.
    var launches = 0
    /// Set while the journal refuses writes (a full or failing disk); cleared by the next write
    /// that succeeds.
    var journalTrouble: JournalTrouble?
    /// Deliveries under way per target, at most `deliveriesPerTarget` at once (as many as libcurl
    /// keeps connections to one host). The rest wait in `waitingToLaunch`, in firing order, as data:
    /// a task each would hold ~14 KB of frames through an hour of retries when a whole past week's
    /// stops are due at once to a platform that is down.
    let deliveriesPerTarget: Int
    var underWay: [String: Int] = [:]
    /// What each target's platform last showed (absent: nothing yet since start), which sets how
    /// many deliveries it gets at once (`room(on:)`).
    var targetHealth: [String: TargetHealth] = [:]
    var waitingToLaunch: [String: Deque<PendingLaunch>] = [:]
    /// Answers waiting for their journal write, put there where they arrive (see `Inbox`).
    let inbox = Inbox<Answer>()
    /// Deliveries between two attempts, as data (see `PendingRetry`), and their due times in order.
    var retries: [JobID: PendingRetry] = [:]
    /// The reasons deliveries keep while they wait for a retry, shared when equal.
    var reasons = SharedTexts()
    var retryQueue = Heap<RetryDue>()
    /// Retries due and waiting for room on their target, in the order they fell due.
    var dueRetries: [String: Deque<RetryDue>] = [:]
    var retriesUnderWay: [String: Int] = [:]
    /// Wall time minus elapsed time at the loop's last turn: a change is a step of the clock.
    var wallMinusElapsed: TimeInterval?
    var state: RunState { machine.state }
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

    /// How long before an instant its jobs are armed (0: never; they are journaled at the instant).
    var armLead: TimeInterval { machine.armLead }
    /// How long before an instant the connections to its jobs' platforms are opened (0: never),
    /// so the call leaves at the instant rather than a DNS lookup and a TLS handshake later.
    var warmUpLead: TimeInterval { machine.warmUpLead }
    /// Every instant up to this one has had its connections warmed.
    var warmedThrough = Date.distantPast
    /// When each origin was last warmed, so a run of close instants warms a host once.
    var lastWarmed: [String: Date] = [:]

    public static var latenessThreshold: TimeInterval { FiringRule.latenessThreshold }

    /// Due jobs fired per turn of the loop, whole instants at a time (see `LoopTurn.take`).
    static let firingSlice = 1024

    public init(schedule: Schedule, journal: JournalStore, deliverer: Deliverer, time: TimeSource, logger: Logger,
                warmUpLead: TimeInterval = 0, armLead: TimeInterval = 2, deliveriesPerTarget: Int = 64) {
        self.machine = FiringMachine(armLead: armLead, warmUpLead: warmUpLead, slice: Self.firingSlice)
        self.deliveriesPerTarget = max(1, deliveriesPerTarget)
        self.fileSchedule = schedule
        self.schedule = schedule
        self.journal = journal
        self.deliverer = deliverer
        self.time = time
        self.logger = logger
        self.itemIndex = Self.index(schedule.items)
        self.targetsByName = Self.targets(of: schedule)
        self.targetIndex = Self.targetPositions(of: schedule)
    }

    var held: Bool { state == .held }
    var stopping: Bool { state == .stopping }

    /// Loads the journal and builds the queue. Jobs found in flight (or armed with their instant
    /// passed) were cut off by a crash and are queued again, keeping their send number and so their
    /// webhook-id; armed ones still ahead are simply pending.
    public func recover() async throws {
        let now = time.now()
        records = RecordTable(try await journal.jobRecords().values.lazy.map { FiringRule.recovered($0, now: now) })
        overrides = try await journal.overrides()
        rebuildLive()
        if try await journal.events(limit: 10_000).first(where: { $0.kind == "hold" || $0.kind == "resume" })?.kind == "hold" {
            _ = machine.handle(.control(.hold))    // nothing is armed yet to withdraw
        }
        applyOverrides()
        replan()
        try await journal.save(settings: Self.settings(of: schedule))
        let cutOff = records.values.filter { $0.state == .inflight }.count
        try await journal.append(JournalEvent(at: time.now(), kind: "start",
                                              detail: "schedule \(schedule.id): \(plannedCount) jobs, \(machine.queue.count) pending, \(cutOff) cut off"))
        logger.info("journal recovered", metadata: ["jobs": "\(plannedCount)", "pending": "\(machine.queue.count)", "cut_off": "\(cutOff)"])
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
        if let next = nextJob() {
            parts.append("next: \(next.itemID) \(next.action.rawValue) at \(WallClock.localText(next.instant, in: schedule.timeZone))")
        } else {
            parts.append("no pending jobs")
        }
        return parts.joined(separator: "; ")
    }

    /// The next job to leave, without copying the queue: the status line is made on every turn.
    func nextJob() -> PlannedJob? {
        let armed = phases.keys.lazy.compactMap(armedJob).min(by: PlannedJob.firingOrder)
        guard let queued = machine.queue.min?.job else { return armed }
        guard let armed else { return queued }
        return PlannedJob.firingOrder(armed, queued) ? armed : queued
    }

    /// An armed job whose call is still waiting for its instant, as planned.
    private func armedJob(_ id: JobID) -> PlannedJob? {
        guard isWaitingForItsInstant(id), let record = records[id] else { return nil }
        return PlannedJob(id: id, instant: record.instant, deadline: record.deadline)
    }

    /// Armed, and its cue not yet let go by the transport.
    func isWaitingForItsInstant(_ id: JobID) -> Bool {
        if case .armed(_, let cue, _, _)? = phases[id] { return cue.current == .waiting }
        return false
    }

    /// The next `count` jobs to leave, armed ones included (they left the queue, not the plan).
    func nextJobs(_ count: Int) -> [PlannedJob] {
        var copy = machine.queue
        var next: [PlannedJob] = []
        while next.count < count, let entry = copy.popMin() { next.append(entry.job) }
        let armed = phases.compactMap { id, _ in armedJob(id) }
        return Array((armed + next).sorted(by: PlannedJob.firingOrder).prefix(count))
    }

    func rebuildLive() {
        live = [:]
        for record in records.values.sorted(by: { $0.updatedAt < $1.updatedAt }) { updateLive(record) }
    }

    func updateLive(_ record: JobRecord) {
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

    /// The file's schedule with every override applied: a delay shifts the item, an extend
    /// moves its end.
    func applyOverrides() {
        var effective = fileSchedule    // shares the file's items when nothing is overridden
        if !overrides.isEmpty {
            effective.items = fileSchedule.items.map { item in
                guard let o = overrides[item.id] else { return item }
                var moved = item
                moved.start = item.start.addingTimeInterval(TimeInterval(o.shift))
                moved.end = item.end.addingTimeInterval(TimeInterval(o.shift + o.extension_))
                return moved
            }
            effective.items.sort { ($0.start, $0.end, $0.id) < ($1.start, $1.end, $1.id) }
        }
        schedule = effective
        itemIndex = Self.index(effective.items)
        targetsByName = Self.targets(of: effective)
        targetIndex = Self.targetPositions(of: effective)
    }

    private static func index(_ items: [Item]) -> [String: Int] {
        var index: [String: Int] = [:]
        index.reserveCapacity(items.count)
        for (position, item) in items.enumerated() where index[item.id] == nil { index[item.id] = position }
        return index
    }

    private static func targetPositions(of schedule: Schedule) -> [String: Int] {
        Dictionary(schedule.targets.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private static func targets(of schedule: Schedule) -> [String: Target] {
        Dictionary(schedule.targets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func item(_ id: String) -> Item? {
        itemIndex[id].map { schedule.items[$0] }
    }

    /// The planned jobs of one item, optionally of one action only.
    func jobs(of item: String, _ action: Action? = nil) -> [PlannedJob] {
        guard let item = self.item(item) else { return [] }
        let all = plannedJobs(of: item)
        guard let action else { return all }
        return all.filter { $0.action == action }
    }

    /// The in-force plan's jobs of `item` (targets found through the index, not a scan).
    func plannedJobs(of item: Item) -> [PlannedJob] {
        Planner.jobs(for: item, in: schedule) { targetsByName[$0] }
    }

    func isPlanned(_ job: PlannedJob) -> Bool {
        jobs(of: job.itemID).contains(job)
    }

    /// Builds the plan and the queue straight from the items: no sorted copy of all jobs (the
    /// heap orders them), and the queue sized once, since a 30,000-job week is planned at every
    /// start, reload and override. Armed jobs whose job the new plan changed or dropped are
    /// withdrawn first (armed again at their new instants).
    func replan() {
        let changed = Set(phases.compactMap { id, phase -> JobID? in
            guard case .armed(_, _, _, let rendered) = phase, let record = records[id] else { return nil }
            return plannedAfterReplan(PlannedJob(id: id, instant: record.instant, deadline: record.deadline), rendered) ? nil : id
        })
        withdrawArmed { changed.contains($0) }
        machine.queue = Heap()    // let the old queue go before the new one is built (a reload's peak)
        // Two passes over the items, so the queue is sized once for what is pending, not for
        // the whole week (a restart after the week finds few jobs pending).
        var count = 0, pendingCount = 0
        for item in schedule.items {
            for job in plannedJobs(of: item) {
                count += 1
                if isPending(job.id) { pendingCount += 1 }
            }
        }
        plannedCount = count
        // Every planned job gets a record once it fires: room for all of them now, so a restart
        // that fires a past week does not grow the table while it fills.
        let online = schedule.items.count { $0.online }
        records.reserve(items: online, jobsPerItem: online == 0 ? 1 : (count + online - 1) / online)
        var pending = Heap<QueuedJob>(minimumCapacity: pendingCount)
        for item in schedule.items {
            for job in plannedJobs(of: item) where isPending(job.id) { pending.insert(QueuedJob(job: job)) }
        }
        machine.queue = pending
        warmedThrough = .distantPast    // a reload may bring an earlier instant: warm it too
    }

    /// Queued unless final or already on its way.
    private func isPending(_ id: JobID) -> Bool {
        !(records[id]?.state.isFinal ?? false) && !isDelivering(id)
    }

    /// Whether the in-force schedule (already changed, not yet re-planned) still has `job` as it is,
    /// rendered from the same item and target.
    private func plannedAfterReplan(_ job: PlannedJob, _ rendered: Rendering) -> Bool {
        guard let item = item(job.itemID), item == rendered.item, targetsByName[job.target] == rendered.target else { return false }
        return plannedJobs(of: item).contains { $0 == job }
    }

    // MARK: The loop

    /// Runs until `shutdown()`: fires what is due, arms what is about to be, then sleeps until the
    /// next moment to act, a change (reload, override), a step of the clock, or the next tick.
    public func run() async {
        while !stopping {
            tick?(statusLine())
            await flushWriteBacks()
            let now = time.now()
            followClockStep(now: now)
            relaunchDueRetries(now: now)
            // Warm first: it looks at the next instant in the queue, which arming takes out of it.
            if state == .running && warmUpLead > 0 { warmUpNextInstant(now: now) }
            for action in machine.handle(.timeReached(now)) { await carryOut(action) }
            if stopping { break }
            await sleep(until: machine.wake(now: now, warmedThrough: warmedThrough, tick: tickInterval, retryDue: nextRetryDue))
        }
    }

    /// Does what the firing machine decided, in its order.
    func carryOut(_ action: FiringMachine.Action) async {
        switch action {
        case .fire(let due):
            await fire(due, now: time.now())
        case .arm(let upcoming):
            // The fire before may have let a hold, a reload or shutdown in: then what was taken to
            // be armed goes back to the queue.
            guard machine.mayArm else {
                for job in upcoming { requeueIfPlanned(job.id) }
                return
            }
            await arm(upcoming, now: time.now())
        case .withdrawArmed:
            withdrawArmed { _ in true }
            await flushWriteBacks()
        case .endDeliveries:
            dropWaiting()
            dropRetries()
            for delivery in tasks.values { delivery.handle.cancel() }
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
}

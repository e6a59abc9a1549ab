import CCurl
import CCurlShim
import DequeModule
import Foundation
import OnAirModel

/// libcurl's multi interface driven by one thread: many calls in flight without a thread each,
/// and one connection pool, so consecutive calls to a target reuse their connection (no new
/// TCP and TLS handshake in front of a live "start").
public final class CurlClient: HTTPTransport, @unchecked Sendable {
    /// Responses are read up to this size; a platform's status page can be large.
    public static let maximumBodySize = 64 * 1024

    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    private let engine: Engine

    /// - Parameters:
    ///   - maxConnectionsPerHost: calls in flight per host. More wait here, per host, as plain
    ///     requests rather than easy handles (each holds buffers of its own): ten thousand calls
    ///     due together to one platform cost kilobytes each while they wait, and a slow platform's
    ///     queue never holds up a call to another.
    ///   - maxTransfers: calls in flight in all, a last bound for bursts to very many hosts.
    public init(maxConnectionsPerHost: Int = 64, maxTransfers: Int = 4096) {
        precondition(Self.globalInit, "curl_global_init failed")
        engine = Engine(maxConnectionsPerHost: maxConnectionsPerHost, maxTransfers: maxTransfers)
        // The thread holds the engine, never the client: a client dropped before its thread got
        // going (a short CLI command, a test) must not be reached through a dead reference.
        let engine = self.engine
        let thread = Thread { engine.run() }
        thread.name = "onair-curl"
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit {
        engine.shutdown()
    }

    /// Stops the worker after failing every call not yet finished. Idempotent.
    public func shutdown() {
        engine.shutdown()
    }

    public func perform(_ request: HTTPRequest) async -> TransferResult {
        await withCheckedContinuation { continuation in
            engine.submit(Engine.Request(request: request) { continuation.resume(returning: $0) })
        }
    }

    public func perform(_ request: HTTPRequest, answer: @escaping TransferAnswer) {
        engine.submit(Engine.Request(request: request, answer: answer))
    }
}

/// The multi handle and the state its thread works on; kept alive by that thread until it ends.
private final class Engine: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let lock = NSLock()
    private let maxTransfers: Int
    private let maxPerHost: Int
    /// Guarded by `lock`: requests handed over by callers, not yet seen by the worker.
    private var incoming: [Request] = []
    private var stopping = false
    /// Guarded by `lock`: the worker thread, once it runs.
    private var worker: pthread_t?
    /// Owned by the worker thread: requests waiting for room, by host, the hosts with waiting
    /// requests in turn, the transfers libcurl has, and how many of those each host has.
    private var waiting: [String: Deque<Request>] = [:]
    private var turns = Deque<String>()
    private var active: [UInt: Transfer] = [:]
    private var perHost: [String: Int] = [:]
    /// Owned by the worker: calls held for their instant, soonest first, and how many of them
    /// have their handle built already (bounded, so a huge instant cannot hold memory unbounded).
    private var cued = Deque<Request>()
    private var prepared = 0
    private static let maximumPrepared = 2048
    private let finished = DispatchSemaphore(value: 0)

    struct Request {
        var request: HTTPRequest
        var answer: TransferAnswer
        /// Built ahead for a cued call, so that at its instant the handle only has to be added.
        var transfer: Transfer?

        /// What libcurl shares connections by: scheme, host and port (or the Unix socket); worked
        /// out when the call is handed over, not at its instant.
        let host: String

        init(request: HTTPRequest, answer: @escaping TransferAnswer) {
            self.request = request
            self.answer = answer
            if let socket = request.unixSocket {
                host = "unix:" + socket
            } else {
                host = URLOrigin.of(request.url) ?? request.url
            }
        }

        func resolve(_ result: TransferResult) {
            if let transfer { transfer.finish(result) } else { answer(result) }
        }

        func fail(_ code: CURLcode, _ message: String) {
            resolve(TransferResult(kind: .failure(code: Int(code.rawValue), message: message), totalTime: 0))
        }

        func notSent(_ reason: String) {
            resolve(TransferResult(kind: .notSent(reason: reason), totalTime: 0))
        }
    }

    /// How close to a cue's instant the worker stops polling and waits for the instant awake.
    private static let preciseWindow: TimeInterval = 0.002

    /// Waits `seconds` (at most `preciseWindow`) awake, yielding the CPU in a loop rather than
    /// sleeping: on a virtual machine a thread that sleeps waits for its idle vCPU to be woken,
    /// which put a sleeping client's p99 at 1.2–3.9 ms against 0.9–1.8 ms awake in alternating runs
    /// (BENCHMARKS.md, `floor`, issue 13). At most 2 ms of one core per instant that has a call.
    /// Timed on the monotonic clock: a step of the wall clock must not make it spin for the step.
    private static func waitAwake(_ seconds: TimeInterval) {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: .nanoseconds(Int64(max(0, seconds) * 1e9)))
        while clock.now < end { sched_yield() }
    }

    init(maxConnectionsPerHost: Int, maxTransfers: Int) {
        self.maxTransfers = max(1, maxTransfers)
        self.maxPerHost = max(1, maxConnectionsPerHost)
        multi = curl_multi_init()!
        _ = onair_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxConnectionsPerHost)
        _ = onair_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(maxConnectionsPerHost, 16) * 4)
    }

    deinit {
        curl_multi_cleanup(multi)
    }

    func submit(_ request: Request) {
        let accepted = lock.withLock { () -> Bool in
            guard !stopping else { return false }
            incoming.append(request)
            return true
        }
        if accepted {
            curl_multi_wakeup(multi)
            // A withdrawn cue is let go at once rather than at its instant.
            request.request.cue?.onWithdraw { [self] in curl_multi_wakeup(self.multi) }
        } else {
            request.notSent("shutting down")
        }
    }

    /// A cued call waits here; its handle is built now, while there is time.
    private func hold(_ request: Request) {
        var request = request
        if prepared < Self.maximumPrepared, request.transfer == nil {
            do {
                request.transfer = try Transfer(request: request.request, host: request.host, answer: request.answer)
                prepared += 1
            } catch {
                request.fail(CURLE_FAILED_INIT, "\(error)")
                return
            }
        }
        let at = request.request.cue!.at
        let position = cued.firstIndex { $0.request.cue!.at > at } ?? cued.endIndex
        cued.insert(request, at: position)
    }

    /// Lets go the cued calls whose instant has come and drops the withdrawn ones. Returns the
    /// seconds until the next cue, if any.
    private func releaseCued() -> TimeInterval? {
        guard !cued.isEmpty else { return nil }
        if cued.contains(where: { $0.request.cue!.current == .withdrawn }) {
            cued.removeAll { request in
                guard request.request.cue!.current == .withdrawn else { return false }
                if request.transfer != nil { prepared -= 1 }
                request.notSent("withdrawn before its instant")
                return true
            }
        }
        let now = Date()
        while let first = cued.first, first.request.cue!.at <= now {
            cued.removeFirst()    // O(1) on a Deque: a thousand calls at one instant are let go at once
            if first.transfer != nil { prepared -= 1 }
            if first.request.cue!.release() { enqueue(first) } else { first.notSent("withdrawn before its instant") }
        }
        return cued.first.map { $0.request.cue!.at.timeIntervalSince(now) }
    }

    private func enqueue(_ request: Request) {
        let host = request.host
        if waiting[host] == nil { turns.append(host) }
        waiting[host, default: []].append(request)
    }

    /// Hands waiting requests to libcurl while their host and the whole client have room, host by
    /// host in turn. Returns whether it started any.
    @discardableResult
    private func admit() -> Bool {
        var started = false
        for _ in 0..<turns.count {
            guard active.count < maxTransfers, let host = turns.popFirst() else { break }
            var queue = waiting.removeValue(forKey: host) ?? []
            while perHost[host, default: 0] < maxPerHost, active.count < maxTransfers, let next = queue.popFirst() {
                do {
                    let transfer = try next.transfer ?? Transfer(request: next.request, host: host, answer: next.answer)
                    active[UInt(bitPattern: transfer.easy)] = transfer
                    perHost[host, default: 0] += 1
                    curl_multi_add_handle(multi, transfer.easy)
                    started = true
                } catch {
                    next.fail(CURLE_FAILED_INIT, "\(error)")
                }
            }
            if !queue.isEmpty {
                waiting[host] = queue
                turns.append(host)
            }
        }
        return started
    }

    /// Fails what is not finished and ends the worker; waits for it, unless called on the worker
    /// itself (an answer's closure that let go of the last reference to the client): waiting there
    /// for the thread to end would never return, so it ends once the closure has.
    func shutdown() {
        let (wasStopping, onWorker) = lock.withLock { () -> (Bool, Bool) in
            defer { stopping = true }
            return (stopping, worker.map { pthread_equal($0, pthread_self()) != 0 } ?? false)
        }
        guard !wasStopping else { return }
        curl_multi_wakeup(multi)
        if !onWorker { finished.wait() }
    }

    func run() {
        lock.withLock { worker = pthread_self() }
        var running: Int32 = 0
        while true {
            let (batch, stop) = lock.withLock { () -> ([Request], Bool) in
                defer { incoming.removeAll() }
                return (incoming, stopping)
            }
            for request in batch {
                if request.request.cue != nil { hold(request) } else { enqueue(request) }
            }
            if stop {
                for transfer in active.values {
                    curl_multi_remove_handle(multi, transfer.easy)
                    transfer.finish(TransferResult(kind: .failure(code: Int(CURLE_ABORTED_BY_CALLBACK.rawValue),
                                                                  message: "shutting down"), totalTime: 0))
                }
                // Never begun: nothing reached a platform.
                for request in waiting.values.joined() { request.notSent("shutting down") }
                for request in cued { request.notSent("shutting down") }
                cued.removeAll()
                active.removeAll()
                waiting.removeAll()
                turns.removeAll()
                finished.signal()
                return
            }
            var untilCue = releaseCued()
            if let wait = untilCue, wait <= Self.preciseWindow {
                // The last stretch is waited on this thread, awake, not polled: curl_multi_poll counts
                // in whole milliseconds, and a call must leave at its instant, not up to 1 ms after.
                Self.waitAwake(wait)
                untilCue = releaseCued()
            }
            admit()
            curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                var easy: UnsafeMutableRawPointer?
                var code = CURLE_OK
                guard onair_multi_done(message, &easy, &code) == 1, let easy else { continue }
                let handle = easy
                curl_multi_remove_handle(multi, handle)
                if let transfer = active.removeValue(forKey: UInt(bitPattern: handle)) {
                    perHost[transfer.host, default: 1] -= 1
                    transfer.complete(code: code)
                }
            }
            if admit() { continue }    // start what was admitted at once rather than after a poll
            var timeout: Int32 = 1000
            if let wait = untilCue ?? (cued.first.map { $0.request.cue!.at.timeIntervalSinceNow }) {
                // poll(2) may wake late by a slack that grows with its timeout (5.8 ms after 691 ms
                // was seen here): aim 1% early, then close in with ever shorter polls.
                timeout = Int32(max(0, min(1000, ((wait * 0.99 - Self.preciseWindow) * 1000).rounded(.down))))
            }
            curl_multi_poll(multi, nil, 0, timeout, nil)
        }
    }
}

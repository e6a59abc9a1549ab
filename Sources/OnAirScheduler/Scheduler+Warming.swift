import Foundation
import OnAirModel
import OnAirDelivery
import Logging

extension Scheduler {
    /// Once the next instant is within `warmUpLead`, opens the connection to each platform that
    /// its jobs call (once per host), without waiting for the answers.
    func warmUpNextInstant(now: Date) {
        guard let next = machine.queue.min?.job.instant, next > warmedThrough,
              now >= next.addingTimeInterval(-warmUpLead) else { return }
        warmedThrough = next
        guard next > now else { return }    // already due: it fires now, nothing to gain
        var due: [QueuedJob] = []
        while let first = machine.queue.min, first.job.instant == next { due.append(machine.queue.removeMin()) }
        // By host and CA file: libcurl reuses a connection only for a call with the same TLS settings.
        // As many connections as the instant's calls to the host will use at once (at most as many
        // as a host may have), so a burst does not wait for handshakes at its instant.
        var origins: [String: (origin: String, target: Target, calls: Int)] = [:]
        for entry in due {
            machine.queue.insert(entry)
            if let target = targetsByName[entry.job.target], let origin = target.origin(for: entry.job.action) {
                let key = origin + " " + (target.caFile ?? "")
                origins[key] = (origin, target, (origins[key]?.calls ?? 0) + 1)
            }
        }
        for (key, (origin, target, calls)) in origins.sorted(by: { $0.key < $1.key }) {
            if let last = lastWarmed[key], now.timeIntervalSince(last) < warmUpLead { continue }
            lastWarmed[key] = now
            for connection in 0..<min(calls, deliveriesPerTarget) {
                warm(origin: origin, target: target, logged: connection == 0)
            }
        }
    }

    /// A platform that answered a warm-up gets its full width of calls at the instant, unless a
    /// call to it has failed since the daemon started.
    /// (A 5xx, a load balancer in front of a dead backend, does not count.)
    private func warmed(_ target: String) {
        guard targetHealth[target] == nil else { return }
        targetHealth[target] = .answering
        launchWaiting(for: target)
    }

    /// One connection opened ahead (a HEAD); only the first of a host's is logged.
    private func warm(origin: String, target: Target, logged: Bool) {
        let deliverer = self.deliverer, logger = self.logger
        Task {
            let result = await deliverer.warm(origin: origin, target: target)
            if case .response(let response) = result.kind, response.status < 500 { await self.warmed(target.name) }
            guard logged else { return }
            var meta: Logger.Metadata = ["origin": "\(origin)", "target": "\(target.name)",
                                         "seconds": "\(String(format: "%.3f", result.totalTime))"]
            switch result.kind {
            case .response(let response):
                meta["status"] = "\(response.status)"
                logger.debug("connection warmed", metadata: meta)
            case .notSent:
                return    // the daemon is shutting down
            case .failure(_, let message):
                meta["error"] = "\(message)"
                logger.warning("platform not reachable ahead of its call; the call will still be made at its instant", metadata: meta)
            }
        }
    }
}

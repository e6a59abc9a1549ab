import Foundation
import Synchronization

/// A call made ready ahead of its instant and held by the transport until then: rendered, signed,
/// its connection open, so that at the instant only the send remains (SPEC 4, "the disk is not on a
/// call's path"). Until the transport lets it go, the scheduler can still take it back — an operator's
/// skip, a hold, a reload — and learns for certain whether it left.
public final class Cue: Sendable {
    public enum State: Sendable, Equatable {
        /// Waiting for its instant.
        case waiting
        /// Let go by the transport at its instant: it may be on the wire.
        case released
        /// Taken back before it left: it was never sent.
        case withdrawn
    }

    /// The wall-clock instant the call leaves at.
    public let at: Date
    private let state = Mutex<(state: State, onWithdraw: [@Sendable () -> Void])>((.waiting, []))

    public init(at: Date) { self.at = at }

    public var current: State { state.withLock { $0.state } }

    /// Takes the call back. True when it had not left (it never will); false when the transport had
    /// already let it go — it is on its way and counts as sent.
    @discardableResult
    public func withdraw() -> Bool {
        let (taken, observers) = state.withLock { s -> (Bool, [@Sendable () -> Void]) in
            switch s.state {
            case .waiting:
                s.state = .withdrawn
                defer { s.onWithdraw = [] }
                return (true, s.onWithdraw)
            case .withdrawn: return (true, [])
            case .released: return (false, [])
            }
        }
        observers.forEach { $0() }
        return taken
    }

    /// Called by the transport at the instant: true when the call may leave now, false when it was
    /// withdrawn. After a true, `withdraw()` answers false.
    public func release() -> Bool {
        state.withLock { s in
            guard s.state == .waiting else { return s.state == .released }
            s.state = .released
            s.onWithdraw = []
            return true
        }
    }

    /// Runs `observer` when the call is withdrawn (at once if it already was), so a transport holding
    /// it can let its resources go without waiting for the instant.
    public func onWithdraw(_ observer: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.state == .waiting { s.onWithdraw.append(observer) }
            return s.state == .withdrawn
        }
        if now { observer() }
    }
}

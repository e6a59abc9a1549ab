import Foundation
import Testing
import Synchronization
@testable import OnAirScheduler

/// The two small pieces that let a call on the wire be data rather than a suspended task: the
/// inbox its answer is put into, and the handle that cancels it.
@Suite("Hand-over: the answers' inbox and a delivery's handle")
struct HandOverTests {
    @Test func theFirstValueIntoAnIdleInboxStartsTheDrainerAndTheRestJoinItsBatches() {
        let inbox = Inbox<Int>()
        #expect(inbox.isIdle)
        #expect(inbox.put(1), "nobody drains yet: the caller starts the drainer")
        #expect(!inbox.put(2) && !inbox.put(3), "the drainer is on its way: no second one")
        #expect(!inbox.isIdle)
        #expect(inbox.takeAll() == [1, 2, 3], "everything waiting, in the order put")
        #expect(!inbox.put(4), "still draining until a take finds nothing")
        #expect(inbox.takeAll() == [4])
        #expect(inbox.takeAll() == nil)
        #expect(inbox.isIdle)
        #expect(inbox.put(5), "after the drainer stopped, the next value starts one again")
    }

    @Test func valuesPutFromManyThreadsAreEachTakenOnceWithOneDrainerAtATime() async {
        let inbox = Inbox<Int>()
        let starts = await withTaskGroup(of: Int.self) { group in
            for n in 0..<2_000 { group.addTask { inbox.put(n) ? 1 : 0 } }
            return await group.reduce(0, +)
        }
        #expect(starts == 1, "no drainer took anything yet, so only the first put started one")
        var taken: [Int] = []
        while let batch = inbox.takeAll() { taken += batch }
        #expect(taken.sorted() == Array(0..<2_000))
        #expect(inbox.isIdle)
    }

    @Test func aHandleCancelledBeforeItsTaskIsKnownCancelsTheTaskWhenItComes() async {
        let handle = DeliveryHandle()
        #expect(!handle.isCancelled)
        handle.cancel()
        #expect(handle.isCancelled)
        let gate = Latch(), sawCancel = Mutex(false)
        let task = Task { await gate.wait(); sawCancel.withLock { $0 = Task.isCancelled } }
        handle.waits(in: task)
        gate.release()
        await task.value
        #expect(sawCancel.withLock { $0 }, "the lane's waiting task learns of the cancel")
    }

    @Test func aHandleCancelledAfterwardsCancelsItsWaitingTask() async {
        let handle = DeliveryHandle()
        let gate = Latch(), sawCancel = Mutex(false)
        let task = Task { await gate.wait(); sawCancel.withLock { $0 = Task.isCancelled } }
        handle.waits(in: task)
        handle.cancel()
        gate.release()
        await task.value
        #expect(sawCancel.withLock { $0 } && handle.isCancelled)
    }
}

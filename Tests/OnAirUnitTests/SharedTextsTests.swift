import Testing
@testable import OnAirScheduler

@Suite("Shared texts")
struct SharedTextsTests {
    /// Where a string's bytes live: two equal strings made apart live in two places.
    func storage(_ s: String) -> UnsafeRawPointer? {
        var s = s
        return s.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    }

    func made(_ port: Int) -> String { "Failed to connect to 127.0.0.1 port \(port) after 0 ms: Couldn't connect to server" }

    @Test func anEqualTextIsHandedBackAsTheOneKeptAndANewOneIsKept() {
        var texts = SharedTexts(capacity: 2)
        let first = texts.shared(made(9))
        let again = made(9)
        #expect(storage(again) != storage(first), "made apart, stored apart")
        #expect(storage(texts.shared(again)) == storage(first))
        let other = texts.shared(made(10))
        #expect(other == made(10) && storage(other) != storage(first))
    }

    @Test func theOldestTextMakesRoomForANewOne() {
        var texts = SharedTexts(capacity: 2)
        let a = texts.shared(made(1))
        _ = texts.shared(made(2))
        _ = texts.shared(made(3))    // replaces made(1)
        #expect(storage(texts.shared(made(1))) != storage(a), "forgotten: kept anew")
        #expect(texts.shared(made(1)) == made(1))
    }
}

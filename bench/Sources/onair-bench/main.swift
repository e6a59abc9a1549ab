import Foundation
import OnAirModel
import OnAirDelivery
import OnAirScheduler

// Delivery benchmark: N signed webhook calls to one loopback receiver, first by OnAir's engine
// (libcurl multi, 64 connections), then by `curl --parallel --parallel-max 64` with the very same
// requests (method, URL, headers, signed body) from a `curl -K` file, alternating, ROUNDS times.
//
// usage: onair-bench delivery URL [N] [ROUNDS]

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func curlConfigQuote(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

func deliveryBenchmark(url: String, count: Int, rounds: Int) async throws {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    let target = Target(name: "site", kind: .standard(url: url, secret: .environment("BENCH_SECRET")))
    let zone = TimeZone(identifier: "Europe/Amsterdam")!
    let day = LocalDate("2021-11-08")!
    let start = Date(timeIntervalSince1970: 1_636_362_000)
    let items = (0..<count).map { i in
        Item(id: "item-\(i)", title: "Item \(i)", kind: "plenary", location: "Utrecht", day: day,
             start: start.addingTimeInterval(Double(i)), end: start.addingTimeInterval(Double(i) + 60), targets: ["site"])
    }
    let schedule = Schedule(id: "bench", title: "Bench", timeZone: zone, targets: [target],
                            days: [Day(date: day, title: "Bench day")], items: items)
    let contexts = items.map { item in
        DeliveryContext(schedule: schedule, item: item, job: Planner.jobs(for: item, in: schedule).first { $0.action == .start }!)
    }
    let builder = RequestBuilder(secrets: SecretResolver(environment: ["BENCH_SECRET": secret]))

    // The same requests for curl, rendered by OnAir's builder.
    let configPath = FileManager.default.temporaryDirectory.appendingPathComponent("onair-bench-\(getpid()).curl").path
    var config = ""
    for (index, context) in contexts.enumerated() {
        // `next` ends each transfer, so its options do not pile up onto the following ones.
        if index > 0 { config += "next\n" }
        let (request, _) = try builder.request(context, target: target, sendingAt: Date())
        config += "url = \(curlConfigQuote(request.url))\nrequest = \"POST\"\noutput = \"/dev/null\"\n"
        config += "header = \(curlConfigQuote("User-Agent: onair/\(OnAirVersion.current)"))\n"
        for header in request.headers { config += "header = \(curlConfigQuote("\(header.name): \(header.value)"))\n" }
        config += "data-binary = \(curlConfigQuote(String(decoding: request.body ?? [], as: UTF8.self)))\n"
    }
    try config.write(toFile: configPath, atomically: true, encoding: .utf8)

    let client = CurlClient(maxConnectionsPerHost: 64)
    let deliverer = Deliverer(transport: client, builder: builder, time: SystemTime())
    var onairTimes: [Double] = [], curlTimes: [Double] = []
    for round in 0..<rounds {
        // OnAir: every call its own task, as the daemon fires them.
        let t0 = Date()
        let delivered = await withTaskGroup(of: Bool.self) { group in
            for context in contexts {
                group.addTask {
                    let r = await deliverer.deliver(context, target: target, deadline: Date().addingTimeInterval(60)) { _ in }
                    if case .delivered = r { return true }
                    return false
                }
            }
            var n = 0
            for await ok in group where ok { n += 1 }
            return n
        }
        let onair = Date().timeIntervalSince(t0)
        guard delivered == count else { throw BenchError( "only \(delivered)/\(count) delivered") }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--parallel", "--parallel-max", "64", "--silent", "--no-progress-meter", "--fail", "-K", configPath]
        let t1 = Date()
        try process.run()
        process.waitUntilExit()
        let curl = Date().timeIntervalSince(t1)
        guard process.terminationStatus == 0 else { throw BenchError( "curl exited \(process.terminationStatus)") }
        if round > 0 {  // the first round warms both up
            onairTimes.append(onair)
            curlTimes.append(curl)
        }
        print(String(format: "round %d: onair %.1f ms, curl %.1f ms", round, onair * 1000, curl * 1000))
    }
    let onairRate = Double(count) / median(onairTimes), curlRate = Double(count) / median(curlTimes)
    print(String(format: "%d calls, median of %d rounds: onair %.1f ms (%.0f calls/s), curl --parallel-max 64 %.1f ms (%.0f calls/s), ratio onair/curl %.2f",
                 count, onairTimes.count, median(onairTimes) * 1000, onairRate, median(curlTimes) * 1000, curlRate, onairRate / curlRate))
    client.shutdown()
    try? FileManager.default.removeItem(atPath: configPath)
}

let args = CommandLine.arguments
guard args.count >= 3, args[1] == "delivery" else {
    FileHandle.standardError.write(Data("usage: onair-bench delivery URL [N] [ROUNDS]\n".utf8))
    exit(2)
}
do {
    try await deliveryBenchmark(url: args[2], count: args.count > 3 ? Int(args[3]) ?? 1000 : 1000,
                                rounds: args.count > 4 ? Int(args[4]) ?? 6 : 6)
} catch {
    FileHandle.standardError.write(Data("onair-bench: \(error)\n".utf8))
    exit(1)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

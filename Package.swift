// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "OnAir",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "onair", targets: ["onair"]),
        .library(name: "OnAirDaemon", targets: ["OnAirDaemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
    ],
    targets: [
        // libcurl from the system (Debian: libcurl4-openssl-dev).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // libyaml from the system (Debian: libyaml-dev): its event API, which Yams does not expose,
        // lets a schedule be read without building a whole-document node tree (memory, issue 4).
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // Typed wrappers for curl's variadic setopt/getinfo, which Swift cannot call.
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        // timerfd (CLOCK_REALTIME, cancel on clock set), which Glibc's Swift module lacks.
        .target(name: "COnAirSystem"),
        // The words everyone shares: schedule, plan, job and attempt records, placeholders, the
        // wall clock and the time-source protocol. Pure values; no I/O but reading a secret.
        .target(
            name: "OnAirModel",
            dependencies: [.product(name: "Mustache", package: "swift-mustache")]
        ),
        // The schedule file: libyaml's events to a validated `Schedule`, with FILE:LINE:COL errors.
        .target(name: "OnAirScheduleFile", dependencies: ["OnAirModel", "CYAML"]),
        // Getting a call to a platform: requests, signing, outcomes, retries, the libcurl engine.
        .target(
            name: "OnAirDelivery",
            dependencies: [
                "OnAirModel", "CCurl", "CCurlShim",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The durable record: the store protocol and its SQLite implementation.
        .target(
            name: "OnAirJournal",
            dependencies: ["OnAirModel", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // When jobs fire: the real clock, the firing state machine and the actor that runs it.
        .target(
            name: "OnAirScheduler",
            dependencies: [
                "OnAirModel", "OnAirDelivery", "OnAirJournal", "COnAirSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The daemon around the core: service lifecycle, the control socket (SwiftNIO), systemd,
        // logging, the demo. The core cannot import it, so the direction is the compiler's to keep.
        .target(
            name: "OnAirDaemon",
            dependencies: [
                "OnAirModel", "OnAirScheduleFile", "OnAirDelivery", "OnAirJournal", "OnAirScheduler",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "onair",
            dependencies: [
                "OnAirModel", "OnAirScheduleFile", "OnAirDelivery", "OnAirJournal", "OnAirDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Linked by lld with packed relative relocations (DT_RELR, glibc 2.36+): the position-
            // independent binary's 107,000 relocations take 20 KiB rather than 2.5 MiB, which the
            // loader read at every start and which stayed in the daemon's memory; and without the
            // driver's -export-dynamic, which exported 24,000 of the package's symbols and kept them
            // from --gc-sections (BENCHMARKS.md, issue 13, sixth session).
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"])]
        ),
        // Benchmarks (bench/), run by hand; see BENCHMARKS.md.
        .executableTarget(
            name: "onair-bench",
            dependencies: ["OnAirModel", "OnAirDelivery", "OnAirScheduler"],
            path: "bench/Sources/onair-bench"
        ),
        // Test support (the loopback receiver, the manual clock, the recording transport, the
        // instrumented journal): never linked into the product.
        .target(
            name: "OnAirTestSupport",
            dependencies: ["OnAirModel", "OnAirDelivery", "OnAirJournal", "OnAirScheduler"],
            path: "Tests/OnAirTestSupport"
        ),
        .testTarget(
            name: "OnAirUnitTests",
            dependencies: ["OnAirModel", "OnAirScheduleFile", "OnAirDelivery", "OnAirJournal", "OnAirScheduler",
                           "OnAirDaemon", "OnAirTestSupport",
                           .product(name: "InMemoryLogging", package: "swift-log"),
                           .product(name: "HeapModule", package: "swift-collections")]
        ),
        // Runs the real `onair` binary: exit statuses, output, end-to-end behaviour.
        .testTarget(
            name: "OnAirCLITests",
            dependencies: ["onair", "OnAirModel", "OnAirScheduleFile", "OnAirJournal", "OnAirScheduler",
                           "OnAirDaemon", "OnAirTestSupport"]
        ),
    ]
)

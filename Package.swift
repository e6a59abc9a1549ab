// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "OnAir",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "onair", targets: ["onair"]),
        .library(name: "OnAirCore", targets: ["OnAirCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
    ],
    targets: [
        // libcurl from the system (Debian: libcurl4-openssl-dev).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Typed wrappers for curl's variadic setopt/getinfo, which Swift cannot call.
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        .target(
            name: "OnAirCore",
            dependencies: [
                "CCurl",
                "CCurlShim",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .executableTarget(
            name: "onair",
            dependencies: [
                "OnAirCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks (bench/), run by hand; see BENCHMARKS.md.
        .executableTarget(
            name: "onair-bench",
            dependencies: ["OnAirCore"],
            path: "bench/Sources/onair-bench"
        ),
        .testTarget(
            name: "OnAirCoreTests",
            dependencies: ["OnAirCore"]
        ),
        // Runs the real `onair` binary: exit statuses, output, end-to-end behaviour.
        .testTarget(
            name: "OnAirCLITests",
            dependencies: ["onair"]
        ),
    ]
)

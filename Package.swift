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
    ],
    targets: [
        .target(
            name: "OnAirCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "onair",
            dependencies: [
                "OnAirCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
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

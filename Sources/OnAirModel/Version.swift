public enum OnAirVersion { public static let current = "0.1.0" }

import Foundation

/// Minimal JSON text helpers for bodies whose key order is part of the contract.
public enum JSON {
    /// `text` as a quoted JSON string.
    public static func string(_ text: String) -> String {
        "\"" + escaped(text) + "\""
    }

    /// `text` escaped for use between the quotes of a JSON string (RFC 8259 section 7): quote,
    /// backslash and every control character are escaped, everything else is kept.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    public static func optional(_ text: String?) -> String {
        text.map(string) ?? "null"
    }
}

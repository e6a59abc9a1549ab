import Foundation
import OnAirModel

/// Decides whether a URL from the schedule can ever be sent (SPEC section 3.2), so that a typo is
/// refused by `validate` instead of failing, or worse being sent as something else, at show time.
///
/// Foundation's URLComponents accepts line breaks, spaces and any port, and libcurl would then
/// send or refuse them at the moment a stream should start; so the authority is parsed here.
/// Pure: `problem(in:templated:)` returns the end of a diagnostic, the caller says which url.
struct URLCheck {
    /// Why the URL cannot be used, as the part of a message that follows "url of X"; nil when it can.
    /// `templated` URLs hold `{{placeholders}}`, which are checked and then stand for a plain word.
    static func problem(in text: String, templated: Bool) -> String? {
        var probe = text
        if templated {
            if let tag = unescapedTag(in: text) {
                return "inserts \(tag) unescaped; write {{\(tagName(tag))}} so that it is percent-encoded"
            }
            probe = withoutPlaceholders(text)
        }
        if let scalar = probe.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "contains \(describe(scalar)) (\(codePoint(scalar))); a URL must be one line without control characters"
        }
        guard let colon = probe.firstIndex(of: ":"), isScheme(probe[..<colon]) else {
            return "'\(text.prefix(80))' is not a valid URL"
        }
        let scheme = probe[..<colon].lowercased()
        guard scheme == "http" || scheme == "https" else {
            return "uses scheme '\(scheme)'; only http and https are allowed"
        }
        if probe.contains(" ") { return "contains a space; percent-encode it as %20" }
        let afterScheme = probe[probe.index(after: colon)...]
        guard afterScheme.hasPrefix("//"), let authority = Authority(afterScheme.dropFirst(2)) else {
            return "'\(text.prefix(80))' is not a valid URL"
        }
        if authority.host.isEmpty { return "'\(text.prefix(80))' has no host" }
        if let port = authority.port, let problem = portProblem(port) { return problem }
        guard URLComponents(string: probe) != nil else { return "'\(text.prefix(80))' is not a valid URL" }
        if authority.userInfo != nil { return "must not carry credentials; use auth: with a secret reference" }
        return nil
    }

    /// The host and port part of a URL (RFC 3986 section 3.2), IPv6 literals in brackets included.
    struct Authority {
        var userInfo: Substring?
        var host: Substring
        var port: Substring?

        /// nil when a bracketed IPv6 literal is not closed or is followed by something other than a port.
        init?(_ rest: Substring) {
            var hostPort = rest.prefix { !"/?#".contains($0) }
            if let at = hostPort.lastIndex(of: "@") {
                userInfo = hostPort[..<at]
                hostPort = hostPort[hostPort.index(after: at)...]
            }
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { return nil }
                host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
                let tail = hostPort[hostPort.index(after: close)...]
                guard tail.isEmpty || tail.hasPrefix(":") else { return nil }
                port = tail.isEmpty ? nil : tail.dropFirst()
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = hostPort[..<colon]
                port = hostPort[hostPort.index(after: colon)...]
            } else {
                host = hostPort
            }
        }
    }

    /// An empty port (`http://h:/`) means the default one, as RFC 3986 allows.
    static func portProblem(_ port: Substring) -> String? {
        guard !port.isEmpty else { return nil }
        guard port.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return "has port '\(port.prefix(20))'; a port is a number 1-65535"
        }
        let digits = port.drop { $0 == "0" }
        guard let value = Int(digits.isEmpty ? "0" : digits), digits.count <= 5, (1...65535).contains(value) else {
            return "has port \(port.prefix(40)); a port is 1-65535"
        }
        return nil
    }

    /// The first tag that would insert a value as it is (`{{{name}}}`, `{{& name}}`). Pragmas and
    /// delimiter changes, which could do the same, are refused as unknown placeholders already.
    static func unescapedTag(in template: String) -> String? {
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            guard let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex) else { return nil }
            var end = close.upperBound
            if rest[end...].hasPrefix("}") { end = rest.index(after: end) }
            let inner = rest[open.upperBound..<close.lowerBound].drop { $0 == " " }
            if let first = inner.first, first == "{" || first == "&" { return String(rest[open.lowerBound..<end]) }
            rest = rest[end...]
        }
        return nil
    }

    /// The placeholder a tag names, for the suggested escaped form.
    static func tagName(_ tag: String) -> String {
        tag.trimmingCharacters(in: CharacterSet(charactersIn: "{}& "))
    }

    /// `template` with each `{{...}}` tag replaced by a plain word, as a value is after percent-encoding.
    static func withoutPlaceholders(_ template: String) -> String {
        var probe = template
        while let open = probe.range(of: "{{"), let close = probe.range(of: "}}", range: open.upperBound..<probe.endIndex) {
            var upper = close.upperBound
            if probe[upper...].hasPrefix("}") { upper = probe.index(after: upper) }
            probe.replaceSubrange(open.lowerBound..<upper, with: "x")
        }
        return probe
    }

    /// RFC 3986 section 3.1: a letter, then letters, digits, `+`, `-` or `.`.
    static func isScheme(_ text: Substring) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
    }

    static func describe(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\r": "a carriage return"
        case "\n": "a line feed"
        case "\t": "a tab"
        default: "a control character"
        }
    }

    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

import Foundation

/// `scheme://host[:port]/` of an http(s) URL: what libcurl keys a kept-alive connection by, so a
/// connection opened ahead of an instant is the one the call then uses. Nil for other schemes
/// and for a templated host, which is known only when the call is built.
public enum URLOrigin {
    public static func of(_ url: String) -> String? {
        guard let separator = url.range(of: "://") else { return nil }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let authority = url[separator.upperBound...].prefix { !"/?#".contains($0) }
        // Never user:password@ in a warm-up: credentials go with the call itself only.
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        guard !host.isEmpty, !host.contains("{{") else { return nil }
        return "\(scheme)://\(host)/"
    }
}

import Foundation
import Mustache

/// Mustache rendering with the escaping each part of a request needs (SPEC section 3.1):
/// placeholders in a URL are percent-encoded, in a header value stripped of line breaks, in a
/// JSON body JSON-escaped (an item titled `Plenaire "opening"` must not break the body), in any
/// other body left as they are.
public enum MustacheEscaping {
    public enum Kind: String, Sendable {
        case url = "ONAIR_URL"
        case headerValue = "ONAIR_HEADER"
        /// Inside a JSON string: the template supplies the quotes, the value is escaped.
        case jsonString = "ONAIR_JSON"
        case text = "TEXT"
    }

    struct URLComponentEscaping: MustacheContentType {
        static let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        func escapeText(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: Self.allowed) ?? ""
        }
    }

    struct HeaderValueEscaping: MustacheContentType {
        func escapeText(_ text: String) -> String {
            String(text.map { $0.isNewline ? " " : $0 })
        }
    }

    struct JSONStringEscaping: MustacheContentType {
        func escapeText(_ text: String) -> String { JSON.escaped(text) }
    }

    private static let registration: Void = {
        MustacheContentTypes.register(URLComponentEscaping(), named: Kind.url.rawValue)
        MustacheContentTypes.register(HeaderValueEscaping(), named: Kind.headerValue.rawValue)
        MustacheContentTypes.register(JSONStringEscaping(), named: Kind.jsonString.rawValue)
    }()

    public static func register() { _ = registration }

    /// Parses a template as the given kind; throws for a syntax error.
    public static func compile(_ text: String, as kind: Kind) throws -> MustacheTemplate {
        register()
        return try MustacheTemplate(string: "{{% CONTENT_TYPE: \(kind.rawValue)}}" + text)
    }

    public static func render(_ text: String, _ values: [String: Any], as kind: Kind) throws -> String {
        do {
            return try compile(text, as: kind).render(values)
        } catch {
            throw TemplateError(description: "template '\(text.prefix(80))' cannot be rendered: \(error)")
        }
    }
}

/// A template that cannot be rendered (a syntax error the loader did not see, a value that breaks it).
public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

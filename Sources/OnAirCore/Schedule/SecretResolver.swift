import Foundation

/// Why a secret reference could not be turned into its value. The message names the reference,
/// never the value.
public struct SecretError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reference: SecretReference
    public var reason: String
    public var description: String { "secret \(reference) cannot be resolved: \(reason)" }
}

/// Reads secrets from where the schedule says they are. Files and credentials are read on every
/// call so that a token another tool keeps fresh (YouTube OAuth2) is picked up without a reload.
public struct SecretResolver: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The secret's value; a trailing newline of a file is dropped, as editors add one.
    public func resolve(_ reference: SecretReference) throws(SecretError) -> String {
        switch reference {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw SecretError(reference: reference, reason: "environment variable \(name) is not set")
            }
            return value
        case .file(let path):
            return try readFile(path, reference: reference)
        case .credential(let name):
            guard let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty else {
                throw SecretError(reference: reference, reason: "CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)")
            }
            return try readFile(dir + "/" + name, reference: reference)
        }
    }

    private func readFile(_ path: String, reference: SecretReference) throws(SecretError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecretError(reference: reference, reason: "file \(path) cannot be read")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw SecretError(reference: reference, reason: "file \(path) is not UTF-8 text")
        }
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else {
            throw SecretError(reference: reference, reason: "file \(path) is empty")
        }
        return text
    }
}

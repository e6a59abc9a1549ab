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

    /// Reads through one open descriptor, so that the mode checked is the mode of the file read.
    private func readFile(_ path: String, reference: SecretReference) throws(SecretError) -> String {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused below).
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw SecretError(reference: reference, reason: "file \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        defer { try? handle.close() }
        if let problem = Self.notASmallFile(handle.fileDescriptor, path: path) ?? Self.writableByOthers(handle.fileDescriptor, path: path) {
            throw SecretError(reference: reference, reason: problem)
        }
        // Read at most one byte past the limit: a file that grew since fstat is still refused.
        guard let data = try? handle.read(upToCount: Self.maximumFileSize + 1) ?? Data() else {
            throw SecretError(reference: reference, reason: "file \(path) cannot be read")
        }
        guard data.count <= Self.maximumFileSize else {
            throw SecretError(reference: reference, reason: "file \(path) is larger than \(Self.maximumFileSize / 1024) KiB; a secret is one line")
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

    /// Secrets are read at every attempt: a path that names a device, a FIFO or a huge file would
    /// stall or swamp each call, so only regular files of at most this size are read.
    static let maximumFileSize = 64 * 1024

    static func notASmallFile(_ descriptor: Int32, path: String) -> String? {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return "file \(path) cannot be read" }
        guard (status.st_mode & S_IFMT) == S_IFREG else { return "\(path) is not a regular file" }
        return status.st_size > maximumFileSize ? "file \(path) is larger than \(maximumFileSize / 1024) KiB; a secret is one line" : nil
    }

    /// A secret that someone else may rewrite is no secret, and a token they may replace lets them
    /// steer the stream (SPEC section 3.2, as sshd's StrictModes): refuse group- or world-write.
    static func writableByOthers(_ descriptor: Int32, path: String) -> String? {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return "file \(path) cannot be read" }
        let mode = Int(status.st_mode) & 0o7777
        guard mode & 0o022 != 0 else { return nil }
        let octal = String(mode, radix: 8)
        return "file \(path) is group- or world-writable (mode \(String(repeating: "0", count: max(0, 4 - octal.count)) + octal)); "
            + "run chmod go-w \(shellQuoted(path))"
    }

    /// `path` as one shell word, so that the suggested command can be pasted as it is.
    static func shellQuoted(_ path: String) -> String {
        let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@,%")
        if !path.isEmpty, path.allSatisfy({ plain.contains($0) }) { return path }
        return "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

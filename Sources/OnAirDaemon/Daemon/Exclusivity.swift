import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
#if canImport(Glibc)
import Glibc
#endif

/// One daemon per state directory and per control socket (SPEC 3.2): an exclusive `flock` on
/// `STATE/daemon.lock` and on `SOCKET.lock`, held for the life of the process (the kernel lets go
/// of it however the process ends, SIGKILL included), with the holder's pid written in the file so
/// a second daemon can name it.
public final class DaemonLock: Sendable {
    public static let fileName = "daemon.lock"
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Checks the directory's mode, creates it (0700) when missing, and takes the lock; exit 75
    /// when another daemon holds it, 73 when the directory cannot be used.
    public static func acquire(_ directory: String) throws(DaemonStartError) -> DaemonLock {
        try checkDirectory(directory)
        return try lock(directory + "/" + fileName, naming: "state directory \(directory)")
    }

    /// One daemon per control socket (SPEC 3.2), whatever their state directories: a lock file
    /// beside the socket, taken before the socket is probed and held while it is bound, so two
    /// daemons starting together cannot both find it free and unlink each other's.
    public static func acquire(socket path: String) throws(DaemonStartError) -> DaemonLock {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        return try lock(path + ".lock", naming: "control socket \(path)")
    }

    /// An exclusive `flock` on `path` with our pid written in it; exit 75 naming the holder.
    private static func lock(_ path: String, naming what: String) throws(DaemonStartError) -> DaemonLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw DaemonStartError(description: "cannot open \(path): \(String(cString: strerror(errno)))", exitStatus: ExitStatus.cantCreate)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = readPID(fd)
            close(fd)
            throw DaemonStartError(description: "\(what) is in use by another onair daemon"
                                   + (holder.map { " (pid \($0))" } ?? "") + "; this one exits and changes nothing",
                                   exitStatus: ExitStatus.tempFail)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DaemonLock(descriptor: fd)
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A state directory that others may write is refused, as sshd's StrictModes refuses a home
    /// directory: whoever can write it can rewrite the journal and make a skipped item fire.
    static func checkDirectory(_ directory: String) throws(DaemonStartError) {
        var info = stat()
        if stat(directory, &info) != 0 {
            guard errno == ENOENT else {
                throw DaemonStartError(description: "state directory \(directory): \(String(cString: strerror(errno)))",
                                       exitStatus: ExitStatus.cantCreate)
            }
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw DaemonStartError(description: "cannot create the state directory \(directory): \(error.localizedDescription)",
                                       exitStatus: ExitStatus.cantCreate)
            }
            return
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw DaemonStartError(description: "state directory \(directory) is not a directory", exitStatus: ExitStatus.cantCreate)
        }
        if info.st_mode & 0o022 != 0 {
            throw DaemonStartError(description: "state directory \(directory) is group- or world-writable (mode "
                                   + String(info.st_mode & 0o7777, radix: 8) + "); run chmod 0700 \(directory)",
                                   exitStatus: ExitStatus.cantCreate)
        }
    }
}

/// Who, if anyone, listens on a control socket: a second daemon must not take over a live
/// daemon's socket (SPEC 3.2), and the CLI must tell "not running" from "not allowed".
public enum ControlSocketProbe {
    public enum Finding: Sendable, Equatable {
        /// A process accepts connections there; its pid from SO_PEERCRED.
        case listening(pid: Int32?)
        /// No file at the path.
        case absent
        /// A socket file that nobody listens on (a daemon that died): safe to replace.
        case stale
        /// The caller may not connect (not in the socket's group).
        case permissionDenied
        case failed(String)
    }

    public static func probe(_ path: String) -> Finding {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(String(cString: strerror(errno))) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return .failed("socket path longer than \(capacity - 1) bytes") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            switch errno {
            case ENOENT: return .absent
            case ECONNREFUSED: return .stale
            case EACCES, EPERM: return .permissionDenied
            default: return .failed(String(cString: strerror(errno)))
            }
        }
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        let ok = getsockopt(fd, SOL_SOCKET, 17 /* SO_PEERCRED */, &credentials, &length) == 0
        return .listening(pid: ok ? credentials.pid : nil)
    }
}

/// Exit statuses of the daemon and the CLI (sysexits where one fits), named once.
public enum ExitStatus {
    public static let ok: Int32 = 0
    /// Refused or failed, with a one-line reason.
    public static let failed: Int32 = 1
    public static let usage: Int32 = 2
    /// The daemon is not running (a command that needs it, or `status`).
    public static let notRunning: Int32 = 3
    /// `status` could not tell (permission denied on the socket and the journal).
    public static let unknown: Int32 = 4
    /// EX_CANTCREAT: the state directory cannot be used.
    public static let cantCreate: Int32 = 73
    /// EX_IOERR: the journal cannot be read.
    public static let ioError: Int32 = 74
    /// EX_TEMPFAIL: another daemon runs on this state directory or socket.
    public static let tempFail: Int32 = 75
    /// EX_CONFIG: the schedule cannot run.
    public static let config: Int32 = 78
}

import CCurl
import CCurlShim
import Foundation
import OnAirModel

/// Receives the body into a bounded buffer. Passed to libcurl as the write callback's userdata.
final class BodySink {
    var bytes: [UInt8] = []
    var overflowed = false
    var limit = CurlClient.maximumBodySize
}

let writeBody: onair_curl_write_callback = { data, size, count, userdata in
    guard let data, let userdata else { return 0 }
    let sink = Unmanaged<BodySink>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    let room = sink.limit - sink.bytes.count
    let taken = min(room, length)
    data.withMemoryRebound(to: UInt8.self, capacity: length) { pointer in
        sink.bytes.append(contentsOf: UnsafeBufferPointer(start: pointer, count: taken))
    }
    if taken < length {
        sink.overflowed = true
        return 0  // abort: we have read all we will ever look at
    }
    return length
}

/// One easy handle with everything it points to, alive until libcurl is done with it.
final class Transfer {
    let easy: UnsafeMutableRawPointer
    private var headers: UnsafeMutablePointer<curl_slist>?
    private let sink = BodySink()
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var answer: TransferAnswer?
    /// The host it counts against (see `Engine.Request.host`).
    let host: String

    /// libcurl's receive buffer per transfer (see `configure`).
    static let receiveBufferBytes = 4096

    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    init(request: HTTPRequest, host: String, answer: @escaping TransferAnswer) throws {
        guard let easy = curl_easy_init() else { throw SetupError(description: "curl_easy_init failed") }
        self.easy = easy
        self.host = host
        self.answer = answer
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        try configure(request)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headers)
        errorBuffer.deallocate()
    }

    private func set(_ option: CURLoption, _ value: Int) throws {
        let code = onair_easy_setopt_long(easy, option, value)
        guard code == CURLE_OK else { throw SetupError(description: "curl option \(option.rawValue): \(String(cString: curl_easy_strerror(code)))") }
    }

    private func set(_ option: CURLoption, _ value: String) throws {
        let code = onair_easy_setopt_string(easy, option, value)
        guard code == CURLE_OK else { throw SetupError(description: "curl option \(option.rawValue): \(String(cString: curl_easy_strerror(code)))") }
    }

    private func configure(_ request: HTTPRequest) throws {
        sink.limit = request.maximumResponseBytes
        try set(CURLOPT_URL, request.url)
        try set(CURLOPT_NOSIGNAL, 1)
        // Only http and https, never a redirect: credentials go to the target's own URL only.
        try set(CURLOPT_PROTOCOLS_STR, "http,https")
        try set(CURLOPT_FOLLOWLOCATION, 0)
        try set(CURLOPT_SSL_VERIFYPEER, 1)
        try set(CURLOPT_SSL_VERIFYHOST, 2)
        if let caFile = request.caFile { try set(CURLOPT_CAINFO, caFile) }
        if let socket = request.unixSocket { try set(CURLOPT_UNIX_SOCKET_PATH, socket) }
        try set(CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        try set(CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        try set(CURLOPT_USERAGENT, "onair/\(OnAirVersion.current)")
        try set(CURLOPT_TCP_NODELAY, 1)
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        // Answers are a status line, headers and a short body: a 4 KiB receive buffer is enough
        // (libcurl's default is 16 KiB). Its effect on the storm's peak was within noise.
        try set(CURLOPT_BUFFERSIZE, Self.receiveBufferBytes)
        _ = onair_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = onair_easy_setopt_write_callback(easy, CURLOPT_WRITEFUNCTION, writeBody)
        _ = onair_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())

        switch request.method {
        case "GET": try set(CURLOPT_HTTPGET, 1)
        case "POST": try set(CURLOPT_POST, 1)
        case "HEAD": try set(CURLOPT_NOBODY, 1)    // a custom "HEAD" would wait for a body that never comes
        default: try set(CURLOPT_CUSTOMREQUEST, request.method)
        }
        // A POST, PUT or PATCH always gets an explicit (possibly empty) body: without one libcurl
        // would read the body from stdin, chunked.
        let body = request.body ?? (["POST", "PUT", "PATCH"].contains(request.method) ? [] : nil)
        if let body {
            _ = onair_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            let code = body.withUnsafeBytes { raw in
                onair_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            guard code == CURLE_OK else { throw SetupError(description: "cannot set request body") }
        }
        if let auth = request.basicAuth {
            try set(CURLOPT_HTTPAUTH, 1)  // CURLAUTH_BASIC, a macro Swift cannot import
            try set(CURLOPT_USERNAME, auth.user)
            try set(CURLOPT_PASSWORD, auth.password)
        }
        // "Expect: 100-continue" would cost a round trip on every POST.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            headers = curl_slist_append(headers, line)
        }
        _ = onair_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
    }

    /// Called on the worker thread when libcurl reports the transfer done.
    func complete(code: CURLcode) {
        var status = 0
        _ = onair_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        var micros: curl_off_t = 0
        _ = onair_easy_getinfo_offset(easy, CURLINFO_TOTAL_TIME_T, &micros)
        let seconds = Double(micros) / 1_000_000
        var connects = 0
        _ = onair_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        // Our own abort after 64 KiB is not a failure: the status line and headers are complete.
        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && sink.overflowed && status > 0) {
            finish(TransferResult(kind: .response(HTTPResponse(status: status, body: sink.bytes, retryAfter: header("Retry-After"))),
                                  totalTime: seconds, newConnections: connects))
        } else {
            var message = String(cString: errorBuffer)
            if message.isEmpty { message = String(cString: curl_easy_strerror(code)) }
            finish(TransferResult(kind: .failure(code: Int(code.rawValue), message: message), totalTime: seconds,
                                  newConnections: connects))
        }
    }

    private func header(_ name: String) -> String? {
        var header: UnsafeMutablePointer<curl_header>?
        guard curl_easy_header(easy, name, 0, UInt32(CURLH_HEADER), -1, &header) == CURLHE_OK,
              let value = header?.pointee.value else { return nil }
        return String(cString: value)
    }

    /// Answers once: a second call (a transfer failed after it was answered) does nothing.
    func finish(_ result: TransferResult) {
        let answer = self.answer
        self.answer = nil
        answer?(result)
    }
}

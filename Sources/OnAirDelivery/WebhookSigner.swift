import Crypto
import Foundation
import OnAirModel

/// Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
public enum WebhookSigner {
    /// The HMAC key of a secret: a `whsec_BASE64` secret is its decoded bytes, any other its UTF-8 bytes.
    public static func key(for secret: String) -> [UInt8] {
        if secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))) {
            return Array(data)
        }
        return Array(secret.utf8)
    }

    public static func signature(id: String, timestamp: Int, body: [UInt8], secret: String) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key(for: secret)))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// Whether a `webhook-signature` header (possibly several space-separated signatures) holds
    /// a valid signature for this message. Used by the demo receiver and the tests.
    public static func verify(header: String, id: String, timestamp: Int, body: [UInt8], secret: String) -> Bool {
        let expected = signature(id: id, timestamp: timestamp, body: body, secret: secret)
        return header.split(separator: " ").contains { constantTimeEqual(Array($0.utf8), Array(expected.utf8)) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// The `webhook-id` of one send of a job: the same on every retry and after any restart,
    /// different per event, item, action, target and manual re-send (`send` 0 is the scheduled one).
    public static func webhookID(job: JobID, send: Int) -> String {
        let digest = SHA256.hash(data: Array("\(job.description)#\(send)".utf8))
        return "msg_" + digest.prefix(16).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

import PodModel

/// The bearer token that guards `/admin/*`.
///
/// `xds serve` takes it from `--admin-token` or `XDS_ADMIN_TOKEN`; when neither is given it calls
/// ``generate()`` and prints the result once (interfaces.md). Randomness from the system generator
/// is fine here: this is a face, not the deterministic core.
///
/// ```swift
/// let token = options.adminToken ?? env["XDS_ADMIN_TOKEN"] ?? AdminToken.generate()
/// print("admin token: \(token)")
/// ```
public enum AdminToken {
    /// 32 random bytes as 64 lowercase hex characters (256 bits).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var token = ""
        for _ in 0..<4 {
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            token += String(repeating: "0", count: 16 - hex.count) + hex
        }
        return token
    }

    /// The token `/admin` is guarded with: `--admin-token`'s, else `XDS_ADMIN_TOKEN`'s, else a
    /// generated one (`generated`: print it once). A token a client could not send back as
    /// `Authorization: Bearer TOKEN` (empty, spaces, control or non-ASCII characters, over 1024
    /// bytes) is refused with one line: the server would start with its admin API closed to
    /// everyone and say nothing. An empty `XDS_ADMIN_TOKEN` counts as unset, as shells treat it.
    public static func resolve(flag: String?, environment: String?, flagName: String = "--admin-token")
        throws(ConfigError) -> (token: String, generated: Bool)
    {
        if let flag {
            try check(flag, source: flagName)
            return (flag, false)
        }
        if let environment, !environment.isEmpty {
            try check(environment, source: "XDS_ADMIN_TOKEN")
            return (environment, false)
        }
        return (generate(), true)
    }

    /// Tokens hold 1…1024 visible ASCII characters (no spaces), what a bearer header carries.
    public static let maxLength = 1024

    private static func check(_ token: String, source: String) throws(ConfigError) {
        guard !token.isEmpty else {
            throw ConfigError("\(source) must not be empty (omit it and xds serve generates a token and prints it)")
        }
        guard token.utf8.count <= maxLength, token.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ConfigError("\(source) must be 1…\(maxLength) visible ASCII characters without spaces "
                + "(what 'Authorization: Bearer TOKEN' carries), got \(InputEcho.quoted(token))")
        }
    }

    /// True when an `Authorization` header value carries `expected` as a bearer token. An empty
    /// `expected` never matches, so a server started without a token keeps admin closed.
    static func authorizes(header: String?, expected: String) -> Bool {
        guard !expected.isEmpty, let header else { return false }
        // RFC 6750: `Bearer` 1*SP token. A token holds no space (``resolve``), so every space
        // between the scheme and the token separates.
        let parts = header.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        return constantTimeEquals(Array(parts[1].utf8), Array(expected.utf8))
    }

    /// Compares without an early exit, so response time does not reveal how many leading bytes
    /// of a guess were right.
    private static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

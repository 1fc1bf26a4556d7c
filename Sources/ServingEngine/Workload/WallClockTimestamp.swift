import Foundation

/// Reads the wall-clock TIMESTAMP of Azure LLM traces, ISO 8601 with a space or `T` between
/// date and time, any number of fractional digits and an optional offset:
/// `2023-11-16 18:17:03.9799600` (2023, no offset: UTC is assumed; only differences matter, so a
/// trace gives an offset on every row or on none),
/// `2024-05-10 00:00:00.009930+00:00` (2024), `2024-05-10T08:00:00Z`, `…+0530`, `…-08`.
///
/// The calendar is Foundation's (`Date.ISO8601FormatStyle`: days per month, leap years, epoch
/// seconds), checked by formatting the date back, since the style alone rolls `02-31` over into
/// March and reads `24:00`. Foundation costs ~10 µs a call here, so it reads each distinct
/// minute once (a trace has at most 1,440 a day): the seconds field is added to that minute's
/// epoch as `Double`, which keeps arrival times to the bit what they were before (reports of
/// existing traces stay byte-identical) and is how the hour-long trace parses in milliseconds.
///
/// ```swift
/// var clock = WallClockTimestamp()
/// let t = try clock.seconds(Array("2024-05-10 00:00:01.5+02:00".utf8)[...])  // 1715292001.5
/// ```
struct WallClockTimestamp {
    struct Problem: Error {
        /// The timestamp is well formed, but gives a UTC offset where the rows before it gave
        /// none, or none where they gave one (``zoned``).
        var mixedOffsets = false
    }

    private static let utc = TimeZone(secondsFromGMT: 0)!
    private static let spaced = style(.space)
    private static let standard = style(.standard)

    private static func style(_ separator: Date.ISO8601FormatStyle.DateTimeSeparator) -> Date.ISO8601FormatStyle {
        Date.ISO8601FormatStyle(dateSeparator: .dash, dateTimeSeparator: separator, timeSeparator: .colon,
                                timeZoneSeparator: .colon, includingFractionalSeconds: false, timeZone: utc)
            .year().month().day().time(includingFractionalSeconds: false)
    }

    /// `YYYY-MM-DD HH:MM:` and the offset of the last minute read, and its epoch second.
    private var cachedHead: [UInt8] = []
    private var cachedTail: [UInt8] = []
    private var cachedMinute = 0
    /// Whether the trace's timestamps give a UTC offset, from its first row. One without among
    /// rows with (or the other way) is refused: "no offset" is taken as UTC, so a trace mixing
    /// `18:17:03+05:00` and `18:17:04` replayed its second row five hours after its first.
    private var zoned: Bool?

    /// Seconds since 1970-01-01 UTC; throws for anything not of the form above, an impossible
    /// date or time, or a year outside ``TraceLimits/years``.
    mutating func seconds(_ text: ArraySlice<UInt8>) throws(Problem) -> Double {
        if let second = secondsInCachedMinute(text) { return second }
        let b = text.startIndex
        // Fixed widths: YYYY-MM-DD?HH:MM:SS (19 bytes), then .fraction, then the offset.
        guard text.count >= 19, text.count <= 64, text[b + 13] == UInt8(ascii: ":"), text[b + 16] == UInt8(ascii: ":")
        else { throw Problem() }
        let head = text[b..<(b + 17)]
        var i = b + 19
        guard Self.digit(text[b + 17]) != nil, Self.digit(text[b + 18]) != nil else { throw Problem() }
        if i < text.endIndex, text[i] == UInt8(ascii: ".") {
            i += 1
            guard i < text.endIndex, Self.digit(text[i]) != nil else { throw Problem() }
            while i < text.endIndex, Self.digit(text[i]) != nil { i += 1 }
        }
        let secondsField = text[(b + 17)..<i]
        let tail = text[i...]
        guard let second = Self.exactDecimal(secondsField) ?? Double(String(decoding: secondsField, as: UTF8.self)),
              second < 60
        else { throw Problem() }
        if !(Self.same(head, cachedHead) && Self.same(tail, cachedTail)) {
            let minute = try Self.minute(head, offset: try Self.offsetSeconds(tail))
            // Checked once the timestamp is known to be well formed (a malformed one is told
            // so); the cached path needs no check: the same tail as the last row, the same answer.
            if let zoned, zoned == tail.isEmpty { throw Problem(mixedOffsets: true) }
            zoned = !tail.isEmpty
            cachedMinute = minute
            cachedHead = Array(head)
            cachedTail = Array(tail)
        }
        return Double(cachedMinute) + second
    }

    /// The common case in one pass over the bytes: the same minute and offset as the last
    /// timestamp (``cachedHead``, ``cachedTail``; they passed every check then) and a seconds
    /// field ``exactDecimal(_:)`` reads. The same value the full path gives, or nil to take it
    /// (issue 12: slicing and comparing field by field was a fifth of reading an Azure trace).
    private func secondsInCachedMinute(_ text: ArraySlice<UInt8>) -> Double? {
        let n = text.count
        guard n >= 19, n <= 64, cachedHead.count == 17, n - cachedTail.count >= 19 else { return nil }
        let parsed: (value: Int, fractionDigits: Int)? = text.withUnsafeBufferPointer { t in
            cachedHead.withUnsafeBufferPointer { head in
                cachedTail.withUnsafeBufferPointer { tail in
                    for k in 0..<17 where t[k] != head[k] { return nil }
                    // SS, then an optional .fraction: at most 15 digits in all, as exactDecimal reads.
                    guard let tens = Self.digit(t[17]), let ones = Self.digit(t[18]) else { return nil }
                    var value = tens * 10 + ones, i = 19, fractionDigits = 0
                    if i < n, t[i] == UInt8(ascii: ".") {
                        i += 1
                        while i < n, let d = Self.digit(t[i]) {
                            // More digits than exactDecimal reads: the full path decides. Counting
                            // on first let `value` overflow (a trap) at the 17th digit or so.
                            guard fractionDigits < 13 else { return nil }
                            value = value * 10 + d
                            fractionDigits += 1
                            i += 1
                        }
                        guard fractionDigits > 0, fractionDigits <= 13 else { return nil }
                    }
                    guard n - i == tail.count else { return nil }
                    for k in 0..<tail.count where t[i + k] != tail[k] { return nil }
                    return (value, fractionDigits)
                }
            }
        }
        guard let parsed else { return nil }
        let second = Double(parsed.value) / Self.powersOfTen[parsed.fractionDigits]
        guard second < 60 else { return nil }
        return Double(cachedMinute) + second
    }

    /// Whether `bytes` are `cached`, compared through their buffers: the generic `elementsEqual`
    /// was a third of this parser's cost per row (the head is compared on every row).
    @inline(__always)
    private static func same(_ bytes: ArraySlice<UInt8>, _ cached: [UInt8]) -> Bool {
        guard bytes.count == cached.count else { return false }
        return bytes.withUnsafeBufferPointer { a in
            cached.withUnsafeBufferPointer { b in
                for i in 0..<a.count where a[i] != b[i] { return false }
                return true
            }
        }
    }

    /// Epoch second of `YYYY-MM-DD HH:MM:00` at `offset` seconds east of UTC, by Foundation.
    private static func minute(_ head: ArraySlice<UInt8>, offset: Int) throws(Problem) -> Int {
        let separator = head[head.startIndex + 10]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "T") else { throw Problem() }
        let style = separator == UInt8(ascii: " ") ? spaced : standard
        let text = String(decoding: head, as: UTF8.self) + "00"
        guard let date = try? style.parse(text), style.format(date) == text,
              let year = Int(text.prefix(4)), TraceLimits.years.contains(year)
        else { throw Problem() }
        return Int(date.timeIntervalSince1970.rounded()) - offset
    }

    /// `` (none), `Z`, `±HH`, `±HHMM` or `±HH:MM` (HH 00–23, MM 00–59), in seconds east of UTC.
    private static func offsetSeconds(_ tail: ArraySlice<UInt8>) throws(Problem) -> Int {
        if tail.isEmpty { return 0 }
        let t = Array(tail)
        if t == [UInt8(ascii: "Z")] { return 0 }
        guard t[0] == UInt8(ascii: "+") || t[0] == UInt8(ascii: "-") else { throw Problem() }
        let rest = t[1...].filter { $0 != UInt8(ascii: ":") }
        let colons = t.count - 1 - rest.count
        guard rest.count == 2 || rest.count == 4, colons == 0 || (colons == 1 && t.count == 6 && t[3] == UInt8(ascii: ":")),
              rest.allSatisfy({ digit($0) != nil })
        else { throw Problem() }
        let digits = rest.map { Int($0 - 0x30) }
        let hours = digits[0] * 10 + digits[1]
        let minutes = rest.count == 4 ? digits[2] * 10 + digits[3] : 0
        guard hours <= 23, minutes <= 59 else { throw Problem() }
        return (t[0] == UInt8(ascii: "-") ? -1 : 1) * (hours * 3_600 + minutes * 60)
    }

    /// `SS[.fraction]` of at most 15 digits as `Double(String)` reads it, without the String:
    /// the digits as an integer and the power of ten are both exact doubles, and IEEE division
    /// rounds their quotient correctly, as strtod rounds the decimal (the same double, so arrival
    /// times and reports stay byte-identical). Longer fields return nil and take the String way.
    /// (The String way was 1.6% of an Azure code replay.)
    private static func exactDecimal(_ field: ArraySlice<UInt8>) -> Double? {
        var digits = 0, fractionDigits = 0, value = 0
        var afterPoint = false
        for c in field {
            if c == UInt8(ascii: ".") {
                if afterPoint { return nil }
                afterPoint = true
                continue
            }
            guard let d = digit(c) else { return nil }
            value = value * 10 + d
            digits += 1
            if afterPoint { fractionDigits += 1 }
            if digits > 15 { return nil }
        }
        guard digits > 0 else { return nil }
        return Double(value) / powersOfTen[fractionDigits]
    }

    private static let powersOfTen: [Double] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15]

    private static func digit(_ c: UInt8) -> Int? { c >= 0x30 && c <= 0x39 ? Int(c - 0x30) : nil }
}

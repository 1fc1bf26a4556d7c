import Foundation

/// The fields of one CSV record by RFC 4180: comma-separated; a field may be quoted with `"`,
/// and then holds commas, line breaks and `""` for a quote; a quote anywhere else is an error
/// (the writer meant something the reader would only guess at). Spaces and tabs around a field
/// are not part of it (trace exports write `a, b` and `"a", "b"`; no trace field has edge spaces).
///
/// Why not a package (issue 14 asks for a mirrored CSV package; checked 2026-12-01 against both
/// mirrored ones, yaslab/CSV.swift 2.5.2 `CSVReader(stream:hasHeaderRow: true)` + `next()`, and
/// swiftcsv/SwiftCSV 0.10.0 `EnumeratedCSV(string:delimiter: .comma, loadColumns: false)`, in a
/// throwaway package outside the repo). A trace error must refuse the run with file:line; neither
/// can say where a record starts, and both take malformed quoting as data:
/// - unclosed quote, `"2023-11-16 18:17:03,4808,10\n2023-11-16 18:17:04,100,5\n`: both return ONE
///   row whose single field is the rest of the file (`2023-11-16 18:17:03,4808,10\n2023-11-16 …`),
///   no error (CSV.swift: `reader.error == nil`; SwiftCSV: no throw).
/// - text after a closing quote, `"2023-11-16 18:17:03"x,4808,10`: CSV.swift keeps the quote,
///   drops the `x`, and reads on to the end of the file as one field, no error. SwiftCSV throws
///   `quotation(message: "Can't have non-quote here: x")`, with no line or offset.
/// - a quote inside an unquoted field, `2023-11-16 18:17:03,48"08,10`: CSV.swift returns the
///   field `48"08`, no error (SwiftCSV throws, again with no position).
/// - CSV.swift's `CSVError` has no parse case at all (only I/O and encoding); SwiftCSV's parser is
///   internal and its public initialisers take the whole file as one `String` (`init(url:)` calls
///   `String(contentsOf:)`), so it cannot stream, and neither can be forked at a byte offset the
///   way ``LineReader`` is for replay.
/// This reader is fed line by line by ``LineReader`` (constant memory), tells when a quoted field
/// runs on to the next line, and refuses each case above with the line its record starts on
/// (TraceFormatsTests.quotingErrorsNameTheLineTheRecordStartsOn pins the three messages).
///
/// ```swift
/// switch try CSVRecord.split(Array("\"2023-11-16 18:17:03\",4808,10".utf8)[...]) {
/// case .fields(let fields): fields.count  // 3
/// case .continues: break  // append "\n" and the next line, then split again
/// }
/// ```
enum CSVRecord {
    enum Split {
        case fields([ArraySlice<UInt8>])
        /// A quoted field is still open at the end of the text: the record goes on on the next line.
        case continues
    }

    struct Problem: Error {
        let message: String
    }

    /// The fields of a record with no quote in it, into `fields` (emptied first): what
    /// ``split(_:)`` gives such a record, found in one pass over the bytes and kept in the
    /// caller's array, not a new one per row (issue 12: splitting was a fifth of reading an
    /// Azure trace). False when the text holds a quote: then ``split(_:)`` reads it.
    static func splitUnquoted(_ text: ArraySlice<UInt8>, into fields: inout [ArraySlice<UInt8>]) -> Bool {
        let base = text.startIndex
        // Quote and commas found by libc's memchr; the fields overwrite the last row's in place
        // (emptying the array each row was a generic replaceSubrange).
        let count: Int? = text.withUnsafeBufferPointer { bytes in
            guard let start = bytes.baseAddress else {
                Self.store(text[base..<base], at: 0, in: &fields)
                return 1
            }
            let n = bytes.count
            if memchr(start, Int32(UInt8(ascii: "\"")), n) != nil { return nil }
            @inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
            var fieldStart = 0, stored = 0
            while true {
                let comma = memchr(start + fieldStart, Int32(UInt8(ascii: ",")), n - fieldStart)
                    .map { start.distance(to: $0.assumingMemoryBound(to: UInt8.self)) } ?? n
                // Spaces and tabs around the field are not part of it, as in split(_:).
                var first = fieldStart, last = comma
                while first < last, isSpace(bytes[first]) { first += 1 }
                while last > first, isSpace(bytes[last - 1]) { last -= 1 }
                Self.store(text[(base + first)..<(base + last)], at: stored, in: &fields)
                stored += 1
                if comma == n { return stored }
                fieldStart = comma + 1
            }
        }
        guard let count else { return false }
        if fields.count > count { fields.removeLast(fields.count - count) }
        return true
    }

    @inline(__always)
    private static func store(_ field: ArraySlice<UInt8>, at index: Int, in fields: inout [ArraySlice<UInt8>]) {
        if index < fields.count { fields[index] = field } else { fields.append(field) }
    }

    static func split(_ text: ArraySlice<UInt8>) throws(Problem) -> Split {
        var fields: [ArraySlice<UInt8>] = []
        // Room for a trace's columns at once (growing from empty reallocated twice a row).
        fields.reserveCapacity(8)
        var i = text.startIndex
        let end = text.endIndex
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        while true {
            // Leading spaces of a field.
            var start = i
            while start < end, isSpace(text[start]) { start += 1 }
            if start < end, text[start] == UInt8(ascii: "\"") {
                // Quoted: up to the closing quote; "" is a quote inside.
                var j = start + 1
                var value: [UInt8]? = nil  // a copy only when the field holds ""
                var runStart = j
                while true {
                    guard let q = text[j..<end].firstIndex(of: UInt8(ascii: "\"")) else { return .continues }
                    if q + 1 < end, text[q + 1] == UInt8(ascii: "\"") {
                        value = (value ?? []) + text[runStart...q]
                        j = q + 2
                        runStart = j
                        continue
                    }
                    let field: ArraySlice<UInt8> = value.map { ($0 + text[runStart..<q])[...] } ?? text[(start + 1)..<q]
                    fields.append(field)
                    j = q + 1
                    break
                }
                while j < end, isSpace(text[j]) { j += 1 }
                if j == end { return .fields(fields) }
                guard text[j] == UInt8(ascii: ",") else {
                    throw Problem(message: "field \(fields.count) has text after its closing quote; "
                                  + "a quote inside a quoted field is written \"\"")
                }
                i = j + 1
            } else {
                let comma = text[start..<end].firstIndex(of: UInt8(ascii: ",")) ?? end
                var last = comma
                while last > start, isSpace(text[last - 1]) { last -= 1 }
                let field = text[start..<last]
                if field.contains(UInt8(ascii: "\"")) {
                    throw Problem(message: "field \(fields.count + 1) has a quote but does not start with one; "
                                  + "quote the whole field and write a quote inside it as \"\"")
                }
                fields.append(field)
                if comma == end { return .fields(fields) }
                i = comma + 1
            }
        }
    }
}

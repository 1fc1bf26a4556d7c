/// The fields of one CSV record by RFC 4180: comma-separated; a field may be quoted with `"`,
/// and then holds commas, line breaks and `""` for a quote; a quote anywhere else is an error
/// (the writer meant something the reader would only guess at). Spaces and tabs around a field
/// are not part of it (trace exports write `a, b` and `"a", "b"`; no trace field has edge spaces).
///
/// Why not a package: the mirrored CSV readers accept malformed quoting silently (CSV.swift
/// drops the character after a stray quote and reads an unclosed quote to the end of the file),
/// SwiftCSV reads the whole file into one String first, and neither says on which line a record
/// starts, which every trace error must name. This reader is fed line by line by ``LineReader``
/// (constant memory) and tells when a quoted field runs on to the next line.
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

    static func split(_ text: ArraySlice<UInt8>) throws(Problem) -> Split {
        var fields: [ArraySlice<UInt8>] = []
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

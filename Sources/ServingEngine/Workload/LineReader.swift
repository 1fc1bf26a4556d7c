import Foundation

/// Reads a file line by line in 64 KiB chunks, so multi-gigabyte traces stream in constant
/// memory. Lines are returned as raw UTF-8 bytes without the terminator (`\n` or `\r\n`).
struct LineReader {
    let path: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var exhausted = false
    private(set) var lineNumber = 0

    init(path: String) throws(WorkloadError) {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw WorkloadError("\(path): cannot open file")
        }
        self.handle = handle
    }

    /// The next line, or nil at end of file.
    mutating func nextLine() -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                var line = buffer[start..<newline]
                start = newline + 1
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                lineNumber += 1
                return line
            }
            if exhausted {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                lineNumber += 1
                return line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            }
            buffer.removeFirst(start)
            start = 0
            let chunk = (try? handle.read(upToCount: 1 << 16)) ?? nil
            if let chunk, !chunk.isEmpty { buffer.append(contentsOf: chunk) } else { exhausted = true }
        }
    }
}

import Foundation

/// Reads a file line by line in 64 KiB chunks, so multi-gigabyte traces stream in constant
/// memory. Lines are returned as raw UTF-8 bytes without the terminator (`\n` or `\r\n`).
/// A line longer than ``maxLineBytes`` is an error, not an ever-growing buffer.
///
/// ```swift
/// var reader = try LineReader(path: "trace.jsonl")
/// while let line = try reader.nextLine() { print(reader.lineNumber, line.count) }
/// ```
struct LineReader {
    /// Longest line accepted: 1 MiB. A trace line holds one request; the longest Mooncake line
    /// for a 10-million-token prompt (19,532 hash ids) is well under 200 KB.
    static let maxLineBytes = 1 << 20

    let path: String
    private var handle: FileHandle?
    private var buffer: [UInt8] = []
    private var start = 0
    private var exhausted = false
    private(set) var lineNumber = 0

    init(path: String) throws(WorkloadError) {
        self.path = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw WorkloadError("\(path): is a directory, not a trace file")
        }
        // A trace is read more than once (its format, its check, the replay), so it must be a
        // file: a pipe (`--workload <(zcat t.gz)`, `/dev/stdin`) was consumed by the first read
        // and then refused as "the trace has no requests".
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
            throw WorkloadError(
                "\(path): is a pipe or device, not a regular file; xds reads a trace more than once (its check, then "
                    + "the replay): save it to a file first")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw WorkloadError("\(path): cannot open file")
        }
        self.handle = handle
    }

    /// Reads `bytes` as if they were the file `name` (tests and the fuzz harness).
    init(bytes: [UInt8], name: String) {
        path = name
        handle = nil
        buffer = bytes
        exhausted = true
    }

    /// A reader of its own over the same file, at the same point: the file reopened and
    /// positioned where this one's handle stands, with the same unread buffer and line count.
    /// Two readers never share a handle (a shared one would advance both).
    func forked() throws -> LineReader {
        var copy = self
        guard let handle else { return copy }
        let offset = try handle.offset()
        guard let reopened = FileHandle(forReadingAtPath: path) else {
            throw WorkloadError("\(path): cannot reopen file")
        }
        try reopened.seek(toOffset: offset)
        copy.handle = reopened
        return copy
    }

    /// The next line, or nil at end of file; throws for an over-long line or a read error.
    mutating func nextLine() throws(WorkloadError) -> ArraySlice<UInt8>? {
        var searchFrom = start
        while true {
            if let newline = Self.firstNewline(in: buffer, from: searchFrom) {
                let end = newline > start && buffer[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
                let line = buffer[start..<end]
                start = newline + 1
                lineNumber += 1
                try checkLength(line.count, line: lineNumber)
                return line
            }
            try checkLength(buffer.count - start, line: lineNumber + 1)
            if exhausted {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                lineNumber += 1
                return line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            }
            buffer.removeFirst(start)
            start = 0
            searchFrom = buffer.count
            let chunk: Data?
            do { chunk = try handle?.read(upToCount: 1 << 16) } catch {
                throw WorkloadError("\(path): cannot read the file after line \(lineNumber)")
            }
            if let chunk, !chunk.isEmpty { buffer.append(contentsOf: chunk) } else { exhausted = true }
        }
    }

    /// Index of the first `\n` at or after `from`, by libc's `memchr` (the generic
    /// `firstIndex(of:)` cost about ten instructions a byte; issue 12).
    private static func firstNewline(in buffer: [UInt8], from: Int) -> Int? {
        buffer.withUnsafeBufferPointer { bytes in
            guard from < bytes.count, let base = bytes.baseAddress,
                  let hit = memchr(base + from, Int32(UInt8(ascii: "\n")), bytes.count - from)
            else { return nil }
            return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
    }

        private func checkLength(_ count: Int, line: Int) throws(WorkloadError) {
        guard count > Self.maxLineBytes else { return }
        throw WorkloadError.at(
            path, line, "line longer than \(Self.maxLineBytes) bytes; a trace line holds one request")
    }
}

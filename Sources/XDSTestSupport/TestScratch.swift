import Foundation

/// A scratch directory for the files tests write (traces, themes, heads of real traces), one per
/// test process and removed when the process exits, so that a test run leaves nothing behind in
/// the temporary directory (runs used to leave a file per trace test and, from atomic writes, a
/// `TemporaryDirectory.*` folder each: thousands after a day of runs).
///
/// ```swift
/// let path = try TestScratch.write("TIMESTAMP,ContextTokens,GeneratedTokens\n…", name: "trace.csv")
/// ```
public enum TestScratch {
    /// `<tmp>/xds-tests-<pid>`, created on first use; an exit handler removes it.
    public static var directory: URL { created }

    private static let created: URL = {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("xds-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit {
            // No captures in a C handler: the path is derived again from the process id.
            let path = NSTemporaryDirectory() + "/xds-tests-\(getpid())"
            try? FileManager.default.removeItem(atPath: path)
        }
        return url
    }()

    /// A fresh path in the scratch directory; `name` keeps its extension readable in messages.
    public static func path(_ name: String = "file") -> String {
        directory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    }

    /// A fresh, empty directory in the scratch directory (removed with it), for a test whose
    /// files must sit together under names of their own (a traces folder, a themes folder).
    public static func makeDirectory(_ name: String = "dir") throws -> URL {
        let url = URL(fileURLWithPath: path(name))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `text` to a fresh scratch file (not atomically: an atomic write leaves a folder
    /// behind on Linux) and returns its path.
    public static func write(_ text: String, name: String = "file") throws -> String {
        let path = path(name)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }
}

import Foundation

/// Locates the shared real traces (`<package root>/../shared/traces`) that tests replay.
/// They are never copied into the repository; tests skip when they are absent.
///
/// ```swift
/// @Test(.enabled(if: SharedTraces.available)) func replay() throws {
///     let path = try #require(SharedTraces.path("mooncake_conversation.jsonl"))
/// }
/// ```
public enum SharedTraces {
    /// The package root, derived from this source file's location.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    public static var directory: URL {
        packageRoot.deletingLastPathComponent().appendingPathComponent("shared/traces")
    }

    public static let azureCode = "azure_llm_2023_code.csv"
    public static let mooncakeConversation = "mooncake_conversation.jsonl"

    /// Full path of a trace file, or nil if it is not there.
    public static func path(_ name: String) -> String? {
        let path = directory.appendingPathComponent(name).path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// True when both published traces are present.
    public static var available: Bool { path(azureCode) != nil && path(mooncakeConversation) != nil }
}

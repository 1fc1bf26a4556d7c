import PodModel
import SimKit

/// `preview COMMAND [for DURATION]` (interfaces.md, "Operator command language, new verbs"):
/// what-if, the command's effect over the next DURATION of simulated time, computed on forks of
/// the live engine (ServingEngine+Preview). Parsed here, not as an ``OperatorCommand`` case: a
/// preview changes nothing, so it never enters the command log.
///
/// ```swift
/// let request = try PreviewRequest.parse("preview drain node 20 for 5m").get()
/// // request.command == .drain(node: 20), request.duration == 300
/// ```
public struct PreviewRequest: Sendable, Equatable, CustomStringConvertible {
    public var command: OperatorCommand
    /// Simulated seconds to run ahead, within ``durationRange``.
    public var duration: SimTime

    /// Ten minutes of simulated time unless the line says otherwise.
    public static let defaultDuration: SimTime = 600
    /// One simulated second to one simulated hour: a preview is a question asked before an
    /// action, answered in about a second of wall time on the default pod for 10 minutes.
    public static let durationRange: ClosedRange<SimTime> = 1...3_600

    public init(command: OperatorCommand, duration: SimTime = PreviewRequest.defaultDuration) {
        self.command = command
        self.duration = duration
    }

    public var description: String { "preview \(command) for \(Self.format(duration: duration))" }

    /// True if `line` asks for a preview (its first word is `preview`).
    public static func isPreview(_ line: String) -> Bool {
        line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first?.lowercased() == "preview"
    }

    /// Parses `preview COMMAND [for DURATION]` (the keyword `preview` may be left out). With
    /// `pod` (the pod the preview forks), a bad node, NPU or die word names that pod's range, as
    /// the same command sent to the engine does (``OperatorCommand/parse(_:on:)``).
    public static func parse(_ line: String, on pod: PodTopology? = nil) -> Result<PreviewRequest, CommandParseError> {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if words.first?.lowercased() == "preview" { words.removeFirst() }
        var duration: String?
        if words.count >= 2, words[words.count - 2].lowercased() == "for" {
            duration = words.removeLast()
            words.removeLast()
        } else if words.last?.lowercased() == "for" {
            return .failure(CommandParseError("expected a duration after 'for' (e.g. 'for 10m', at most 1h)"))
        }
        return parse(command: words.joined(separator: " "), duration: duration, on: pod)
    }

    /// The admin API's form: the command line and an optional duration (`"10m"`, `"600s"`, `"600"`).
    public static func parse(command line: String, duration: String?, on pod: PodTopology? = nil)
        -> Result<PreviewRequest, CommandParseError>
    {
        if PreviewRequest.isPreview(line) {
            return .failure(CommandParseError("a preview cannot preview a preview; give the command itself"))
        }
        if line.split(whereSeparator: { $0 == " " || $0 == "\t" }).isEmpty {
            return .failure(CommandParseError("expected a command to preview, e.g. 'preview drain node 20 for 10m'"))
        }
        let command: OperatorCommand
        switch OperatorCommand.parse(line, on: pod) {
        case .failure(let error): return .failure(error)
        case .success(let parsed): command = parsed
        }
        switch command {
        case .speed, .speedMax, .pause, .resume:
            return .failure(CommandParseError(
                "'\(command)' changes only the pace of the live run, not what happens in it; nothing to preview"))
        default: break
        }
        var seconds = defaultDuration
        if let duration {
            switch parseDuration(duration) {
            case .failure(let error): return .failure(error)
            case .success(let value): seconds = value
            }
        }
        return .success(PreviewRequest(command: command, duration: seconds))
    }

    /// `600`, `600s`, `10m`, `10min`, `1h`, `1.5m`, `1m30s`: simulated seconds within
    /// ``durationRange``. Read by ``SimTime/checkedDuration(_:)``, the reader of `--duration` and
    /// scenario `at =`, so one rule holds everywhere: this reader of its own summed nothing
    /// (`for 1m30s` was refused) while `--duration 1h1h` ran two hours.
    public static func parseDuration(_ text: String) -> Result<SimTime, CommandParseError> {
        let expected = "a duration from 1s to 1h, such as 90s, 10m or 1h"
        let seconds: SimTime
        do {
            seconds = try SimTime.checkedDuration(text)
        } catch {
            switch error.reason {
            case .malformed:
                return .failure(CommandParseError("expected \(expected), got \(InputEcho.quoted(text))"))
            case .unitOrder:
                return .failure(CommandParseError("\(InputEcho.quoted(text)) repeats a unit or puts a smaller one first; "
                    + "write \(SimTime.compoundForm)"))
            case .outOfRange:
                seconds = .infinity  // refused just below, with the preview's own range
            }
        }
        guard durationRange.contains(seconds) else {
            return .failure(CommandParseError(
                "a preview runs from 1s to 1h of simulated time (\(expected)); got \(InputEcho.quoted(text))"))
        }
        return .success(seconds)
    }

    /// The command words a preview takes: the parser's list (``OperatorCommand/keywords``) less
    /// the words of a whole command the parser takes and the preview parser refuses (`speed
    /// max`, `pause`, `resume`: they change only the pace). The console's and the admin API's
    /// hints for an empty preview both list these.
    public static let commandWords: [String] = {
        let refused = OperatorCommand.completions(for: "").filter { phrase in
            (try? OperatorCommand.parse(phrase).get()) != nil && (try? parse(command: phrase, duration: nil).get()) == nil
        }
        return OperatorCommand.keywords.filter { word in !refused.contains { $0.split(separator: " ").first == Substring(word) } }
    }()

    /// The durations a preview takes, for hints: "1s…1h, default 10m".
    public static var durationsText: String {
        "\(format(duration: durationRange.lowerBound))…\(format(duration: durationRange.upperBound)), "
            + "default \(format(duration: defaultDuration))"
    }

    /// `10m`, `90s`, `1h`, `2.5m`: the shortest exact form.
    public static func format(duration: SimTime) -> String {
        if duration >= 3_600, duration.truncatingRemainder(dividingBy: 3_600) == 0 { return "\(Int(duration / 3_600))h" }
        if duration >= 60, duration.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(duration / 60))m" }
        return "\(OperatorCommand.format(duration))s"
    }
}

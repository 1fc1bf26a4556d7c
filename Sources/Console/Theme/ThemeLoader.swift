import PodModel
import Foundation
import ServingEngine
import TOMLKit

/// Finds and parses `themes/*.toml`. A malformed file is reported and skipped; the
/// compiled-in dark theme is always available, so the console never starts colourless.
///
/// ```swift
/// let catalog = ThemeCatalog.load(directory: ThemeCatalog.findDirectory())
/// for problem in catalog.problems { log(problem) }
/// ```
public struct ThemeCatalog: Sendable {
    public var themes: [Theme]
    /// One line per theme file that could not be used: "path:line:column: what is wrong", or
    /// "path:line: key: what is wrong" for a key's value.
    public var problems: [String]

    /// The order `t` cycles through; other files follow alphabetically.
    static let preferredOrder = ["dark", "light", "high-contrast", "mono"]

    public static func load(directory: URL?) -> ThemeCatalog {
        var themes: [Theme] = []
        var problems: [String] = []
        if let directory,
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path)
        {
            let files = names.filter { $0.hasSuffix(".toml") }.sorted { a, b in
                let ia = preferredOrder.firstIndex(of: String(a.dropLast(5))) ?? preferredOrder.count
                let ib = preferredOrder.firstIndex(of: String(b.dropLast(5))) ?? preferredOrder.count
                return ia != ib ? ia < ib : a < b
            }
            for file in files {
                let url = directory.appendingPathComponent(file)
                let fallbackName = String(file.dropLast(5))
                let source: String
                do { source = try String(contentsOf: url, encoding: .utf8) } catch {
                    problems.append("\(url.path.terminalSafe): \(ErrorLine.describe(error))")
                    continue
                }
                do { themes.append(try parse(source, fallbackName: fallbackName)) } catch {
                    problems.append("\(url.path.terminalSafe):\(placed(error, in: source))")
                }
            }
        }
        if !themes.contains(where: { $0.name == "dark" }) { themes.insert(.builtinDark, at: 0) }
        return ThemeCatalog(themes: themes, problems: problems)
    }

    /// `themes/` in the working directory, else the one beside the package root that
    /// holds the executable (…/.build/debug/xds → …/themes), else the source checkout.
    public static func findDirectory(cwd: String = FileManager.default.currentDirectoryPath) -> URL? {
        var candidates = [URL(fileURLWithPath: cwd).appendingPathComponent("themes")]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? cwd).resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent("themes"))
            dir.deleteLastPathComponent()
        }
        // Sources/Console/Theme/ThemeLoader.swift → package root.
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(sourceRoot.appendingPathComponent("themes"))
        var isDirectory: ObjCBool = false
        return candidates.first {
            FileManager.default.fileExists(atPath: $0.path, isDirectory: &isDirectory)
                && isDirectory.boolValue
                && ((try? FileManager.default.contentsOfDirectory(atPath: $0.path))?.contains {
                    $0.hasSuffix(".toml")
                }
                    ?? false)
        }
    }

    public func index(named name: String) -> Int? { themes.firstIndex { $0.name == name } }

    /// The themes `t` cycles through, the one to start with, whether the terminal gets colour,
    /// and a line for the operator when the choice was not what was asked for.
    public struct Start: Equatable {
        public var themes: [Theme]
        public var index: Int
        public var monochrome: Bool
        public var notice: String?
    }

    /// `--theme NAME` picks a theme and, as an explicit choice, wins over `NO_COLOR`
    /// (no-color.org: command-line arguments override it); without one `NO_COLOR` means the
    /// mono theme. An unknown name, or theme files that failed to load, give a notice that
    /// names what there is: both were only in the log, so `--theme solarized` or a typo in
    /// `themes/mine.toml` quietly showed the dark theme.
    public func start(named name: String?, noColor: Bool, logPath: String) -> Start {
        var notices: [String] = []
        if let name {
            if let index = index(named: name) {
                return Start(themes: themes, index: index, monochrome: false, notice: nil)
            }
            let fallback = noColor ? "mono (NO_COLOR)" : themes[0].name
            notices.append(
                "no theme named \(InputEcho.quoted(name)); using \(fallback) · themes: \(themes.map(\.name).joined(separator: ", "))")
        }
        if !problems.isEmpty {
            let files = problems.map { ($0.split(separator: ":").first.map(String.init) ?? $0) }
                .map { ($0 as NSString).lastPathComponent }
            notices.append(
                "\(files.count == 1 ? "theme file" : "theme files") \(files.joined(separator: ", ")) skipped: see \(logPath)")
        }
        let notice = notices.isEmpty ? nil : notices.joined(separator: " · ")
        guard noColor else { return Start(themes: themes, index: 0, monochrome: false, notice: notice) }
        return Start(themes: [themes.first { $0.monochrome } ?? .builtinMono], index: 0, monochrome: true, notice: notice)
    }
}

/// Why a theme file was rejected, with the place in the file.
public struct ThemeError: Error, Equatable {
    public var location: String
    public var message: String
}

extension ThemeCatalog {
    /// Parses one theme file (format: themes/README.md). Entries left out fall back to the
    /// built-in dark theme, so a theme may override only what it changes.
    public static func parse(_ source: String, fallbackName: String) throws(ThemeError) -> Theme {
        let table: TOMLTable
        // What TOML forbids and the TOML library would abort on is refused first (issue 10).
        if let (line, message) = TOMLPreflight.problem(in: source) {
            throw ThemeError(location: "\(line):1", message: message)
        }
        do {
            table = try TOMLTable(string: source)
        } catch let error as TOMLParseError {
            throw ThemeError(
                location: "\(error.source.begin.line):\(error.source.begin.column)",
                message: error.description.terminalSafe)
        } catch {
            throw ThemeError(location: "1:1", message: ErrorLine.describe(error))
        }
        // A misspelt table or key (`[colours]`, `ramps`) or a value of the wrong type was passed
        // over without a word: the file loaded as the dark palette under its own name, and the
        // console log said nothing. Each is a problem of the file, as an unknown role is.
        if let key = TOMLDocument.unknownKey(in: table, known: topKeys) {
            throw ThemeError(location: key, message: "unknown field; expected one of \(topKeys.joined(separator: ", "))")
        }
        var theme = Theme.builtinDark
        theme.name = fallbackName
        if let name = table["name"] {
            guard let text = name.string else { throw ThemeError(location: "name", message: "expected a string") }
            theme.name = text
        }
        if let monochrome = table["monochrome"] {
            guard let flag = monochrome.bool else {
                throw ThemeError(location: "monochrome", message: "expected true or false")
            }
            theme.monochrome = flag
        }
        if let colors = table["colors"] {
            guard let colors = colors.table else {
                throw ThemeError(location: "colors", message: "expected a table")
            }
            for key in colors.keys {
                guard Theme.roleKeys.contains(key) else {
                    throw ThemeError(
                        location: "colors.\(key)",
                        message: "unknown role; expected one of \(Theme.roleKeys.joined(separator: ", "))")
                }
                theme.colors[key] = try color(colors[key], path: "colors.\(key)")
            }
        }
        if let roles = table["roles"] {
            guard let roles = roles.table else {
                throw ThemeError(location: "roles", message: "expected a table")
            }
            for key in roles.keys {
                guard let role = NPURole(rawValue: key) else {
                    let expected = NPURole.allCases.map(\.rawValue).joined(separator: ", ")
                    throw ThemeError(
                        location: "roles.\(key)", message: "unknown NPU role; expected one of \(expected)")
                }
                theme.roles[role] = try color(roles[key], path: "roles.\(key)")
            }
        }
        if let heat = table["heat"] {
            guard let heat = heat.table else {
                throw ThemeError(location: "heat", message: "expected a table")
            }
            if let key = TOMLDocument.unknownKey(in: heat, known: ["ramp", "ramp8"]) {
                throw ThemeError(location: "heat.\(key)", message: "unknown field; expected ramp, ramp8")
            }
            if heat["ramp"] != nil { theme.heat = try indices(heat["ramp"], path: "heat.ramp") }
            if heat["ramp8"] != nil { theme.heat8 = try indices(heat["ramp8"], path: "heat.ramp8", limit: 7) }
        }
        return theme
    }

    /// A problem as the log shows it after `file:`: `line:column: message` for a parse error,
    /// `line: key: message` for a key's (`12: colors.text: expected …`), the key alone when its
    /// line is not found. A key's problem named the key path only, leaving the author to search.
    static func placed(_ error: ThemeError, in source: String) -> String {
        guard error.location.first?.isNumber != true else { return "\(error.location): \(error.message)" }
        return (line(ofPath: error.location, in: source).map { "\($0): " } ?? "") + "\(error.location): \(error.message)"
    }

    /// The line of a key path such as `colors.header.fg` or `heat.ramp[2]`: the deepest part
    /// found written as a key (`fg` under `[colors.header]`, else `header = { fg = … }` under
    /// `[colors]`), else the deepest table header (`[colours]`). The scan is the deployment
    /// reader's (``TOMLDocument``), for messages only.
    static func line(ofPath path: String, in source: String) -> Int? {
        let parts = (path.firstIndex(of: "[").map { String(path[..<$0]) } ?? path)
            .split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for k in stride(from: parts.count, to: 0, by: -1) {
            let table = parts[0..<(k - 1)].joined(separator: ".")
            if let line = TOMLDocument.line(ofKey: parts[k - 1], inTable: table, text: source) { return line }
        }
        for k in stride(from: parts.count, to: 0, by: -1) {
            if let line = TOMLDocument.line(ofTable: parts[0..<k].joined(separator: "."), text: source) { return line }
        }
        return nil
    }

    /// The fields a theme file may hold (themes/README.md).
    static let topKeys = ["name", "monochrome", "colors", "roles", "heat"]

    private static func index(_ value: TOMLValueConvertible?, path: String, limit: Int = 255)
        throws(ThemeError) -> Int
    {
        guard let n = value?.int, n >= -1, n <= limit else {
            throw ThemeError(location: path, message: "expected a colour index -1…\(limit)")
        }
        return n
    }

    private static func indices(_ value: TOMLValueConvertible?, path: String, limit: Int = 255)
        throws(ThemeError) -> [Int]
    {
        guard let array = value?.array, !array.isEmpty else {
            throw ThemeError(location: path, message: "expected a non-empty array of colour indices")
        }
        var result: [Int] = []
        for (i, item) in array.enumerated() {
            result.append(try index(item, path: "\(path)[\(i)]", limit: limit))
        }
        return result
    }

    private static func color(_ value: TOMLValueConvertible?, path: String) throws(ThemeError) -> ThemeColor {
        if let n = value?.int { return ThemeColor(fg: try index(n, path: path)) }
        guard let t = value?.table else {
            throw ThemeError(
                location: path,
                message: "expected a colour index or { fg = N, bg = N, fg8 = N, bg8 = N, attrs = [...] }")
        }
        let fg = t["fg"] == nil ? -1 : try index(t["fg"], path: "\(path).fg")
        let bg = t["bg"] == nil ? nil : try index(t["bg"], path: "\(path).bg")
        let fg8 = t["fg8"] == nil ? nil : try index(t["fg8"], path: "\(path).fg8", limit: 7)
        let bg8 = t["bg8"] == nil ? nil : try index(t["bg8"], path: "\(path).bg8", limit: 7)
        var attributes = TextAttributes()
        if let attrs = t["attrs"] {
            guard let array = attrs.array else {
                throw ThemeError(location: "\(path).attrs", message: "expected an array")
            }
            for item in array {
                switch item.string {
                case "bold": attributes.bold = true
                case "dim": attributes.dim = true
                case "reverse": attributes.reverse = true
                case "underline": attributes.underline = true
                default:
                    throw ThemeError(
                        location: "\(path).attrs",
                        message: "unknown attribute; expected bold, dim, reverse, underline")
                }
            }
        }
        return ThemeColor(fg: fg, bg: bg, fg8: fg8, bg8: bg8, attributes: attributes)
    }
}

import ArgumentParser
import PodModel

/// Checks of a command line that ArgumentParser does not make: a misspelt subcommand.
enum CommandLineChecks {
    /// `xds rn`: the console (the default subcommand) was told "Unexpected argument 'rn'", with no
    /// word of `run`. A word where a subcommand goes that names none but is close to one (a typo
    /// of one or two letters, a different case, or the start of just one name) gets the name.
    /// Nil when the line names its subcommands right or no name is close.
    static func subcommandSuggestion(for arguments: [String]) -> String? {
        var command: any ParsableCommand.Type = XDS.self
        var path = ["xds"]
        for word in arguments {
            let subcommands = command.configuration.subcommands
            guard !word.hasPrefix("-"), !subcommands.isEmpty else { return nil }
            let names = subcommands.map { $0.configuration.commandName ?? "" }
            if let index = names.firstIndex(of: word) {
                command = subcommands[index]
                path.append(word)
                continue
            }
            // ArgumentParser's own `help` subcommand (`xds help run`) is one too, at the top only.
            guard let close = closest(to: word, in: path.count == 1 ? names + ["help"] : names) else { return nil }
            return "unknown subcommand \(InputEcho.quoted(word)) of '\(path.joined(separator: " "))'; did you mean '\(close)'? "
                + "(its subcommands: \(names.joined(separator: ", ")))"
        }
        return nil
    }

    /// The one name within reach of `word`, nil when none is (or two are equally close).
    static func closest(to word: String, in names: [String]) -> String? {
        let typed = word.lowercased()
        guard typed.count >= 2 else { return nil }
        var best: [(name: String, distance: Int)] = []
        for name in names where !name.isEmpty {
            // One edit for a name of up to four letters (`rn` → run), two beyond.
            let reach = name.count <= 4 ? 1 : 2
            let d = editDistance(typed, name)
            if d <= reach { best.append((name, d)) }
        }
        if let least = best.map(\.distance).min() {
            let at = best.filter { $0.distance == least }
            return at.count == 1 ? at[0].name : nil
        }
        let starting = names.filter { $0.hasPrefix(typed) }
        return starting.count == 1 ? starting[0] : nil
    }

    /// Edits (insert, delete, replace, swap two neighbours) between `a` and `b`.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[x.count][y.count]
    }
}

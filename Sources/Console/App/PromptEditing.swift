import ServingEngine

/// The `:` command line and the `/` event filter: editing, history and Tab completion.
enum PromptEditing {
    /// Words of the operator command language (interfaces.md) offered by Tab.
    static let keywords = [
        "drain", "undrain", "fault", "heal", "rebalance", "rate", "speed", "pause", "resume",
        "node", "die", "npu", "link", "straggler", "hbm", "glitch", "all", "max", "degrade", "slowdown",
        "preview", "for",
        "policy",
    ]

    static func handle(_ key: Key, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        guard var prompt = s.prompt else { return }
        switch key {
        case .escape:
            // Esc leaves the prompt; for a filter it also drops the filter (k9s).
            s.prompt = nil
            applyFilter(prompt.purpose, "", &s)
            return
        case .enter:
            s.prompt = nil
            submit(prompt, &s, &effects)
            return
        case .backspace:
            if prompt.text.isEmpty {
                s.prompt = nil
                return
            }
            prompt.text.removeLast()
        case .up where prompt.purpose == .command:
            guard !s.history.isEmpty else { break }
            let index = max(0, (prompt.historyIndex ?? s.history.count) - 1)
            prompt.historyIndex = index
            prompt.text = s.history[index]
        case .down where prompt.purpose == .command:
            guard let index = prompt.historyIndex else { break }
            if index + 1 < s.history.count {
                prompt.historyIndex = index + 1
                prompt.text = s.history[index + 1]
            } else {
                prompt.historyIndex = nil
                prompt.text = ""
            }
        case .tab where prompt.purpose == .command:
            let (text, note) = complete(prompt.text)
            prompt.text = text
            s.status = note.map { StatusLine($0) }
        case .char(let c) where !c.isNewline && c.asciiValue.map({ $0 >= 32 }) ?? true:
            prompt.text.append(c)
            prompt.historyIndex = nil
        default:
            break
        }
        s.prompt = prompt
        applyFilter(prompt.purpose, prompt.text.trimmedBlanks, &s)
    }

    /// Live filtering: the list follows the prompt's text as it is typed.
    static func applyFilter(_ purpose: PromptState.Purpose, _ text: String, _ s: inout ConsoleState) {
        switch purpose {
        case .eventFilter:
            if s.eventFilter != text { s.eventScroll = 0 }
            s.eventFilter = text
        case .requestFilter:
            if s.requestFilter != text { s.requestScroll = 0 }
            s.requestFilter = text
        case .expertFilter: s.expertFilter = text
        case .command, .noList: break
        }
    }

    static func submit(_ prompt: PromptState, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        let line = prompt.text.trimmedBlanks
        switch prompt.purpose {
        case .eventFilter, .requestFilter, .expertFilter, .noList:
            applyFilter(prompt.purpose, line, &s)
        case .command:
            guard !line.isEmpty else { return }
            if s.history.last != line { s.history.append(line) }
            if s.history.count > 100 { s.history.removeFirst(s.history.count - 100) }
            if PreviewKeys.isPreview(line) { return PreviewKeys.start(line, &s, &effects) }
            effects.append(.send(commandLine: line))
            s.status = StatusLine("sent: \(line)")
        }
    }

    /// Completes the last word; with several candidates, extends to their common prefix
    /// and returns them as a note for the footer.
    static func complete(_ text: String) -> (String, String?) {
        let endsWithSpace = text.isEmpty || text.last == " "
        let partial = endsWithSpace ? "" : String(text.split(separator: " ").last ?? "")
        let base = String(text.dropLast(partial.count))
        // After `policy` the slots, after `policy SLOT` that slot's names (from the registries).
        let words = base.split(separator: " ").map { $0.lowercased() }
        let candidates = (Policies.completionWords(after: words) ?? keywords).filter { $0.hasPrefix(partial) }
        switch candidates.count {
        case 0:
            return (text, "no completion for '\(partial)'")
        case 1:
            return (base + candidates[0] + " ", nil)
        default:
            var common = candidates[0]
            for c in candidates.dropFirst() {
                while !c.hasPrefix(common) { common.removeLast() }
            }
            return (base + common, candidates.joined(separator: " "))
        }
    }
}

extension String {
    /// Spaces and tabs removed at both ends (keeps Foundation out of the state machine).
    var trimmedBlanks: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

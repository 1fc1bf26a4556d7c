import ServingEngine

/// The `:` command line and the `/` event filter: editing, history and Tab completion.
enum PromptEditing {
    /// The operator command language (interfaces.md) as a tree: what may follow the words
    /// typed so far. "<…>" entries are placeholders (a number to type), shown but not inserted.
    static func followers(_ words: [String]) -> [String] {
        switch words {
        case []:
            return [
                "drain", "undrain", "fault", "heal", "rebalance", "rate", "speed", "pause", "resume", "scale",
                "autoscale", "policy", "preview", "clear",
            ]
        case ["drain"], ["undrain"]: return ["node"]
        case ["drain", "node"], ["undrain", "node"]: return ["<N>"]
        case ["fault"]: return ["die", "npu", "node", "link", "straggler", "hbm", "glitch"]
        case ["fault", "die"]: return ["<D>"]
        case ["fault", "npu"]: return ["<N>"]
        case ["fault", "node"]: return ["<N>"]
        case ["fault", "link"]: return ["<A-B>"]
        case ["fault", "straggler"], ["fault", "hbm"]: return ["die"]
        case ["fault", "straggler", "die"], ["fault", "hbm", "die"]: return ["<D>"]
        case ["heal"]: return ["all", "<FAULT_ID>"]
        case ["rate"]: return ["<R>"]
        case ["speed"]: return ["max", "<S>"]
        case ["scale"]: return ["prefill", "decode", "colocated"]
        case ["scale", "prefill"], ["scale", "decode"], ["scale", "colocated"]: return ["<N>", "<+K>", "<-K>"]
        case ["autoscale"]: return ["off", "slo"]
        case ["clear"]: return ["faults"]
        default: break
        }
        if words.count == 4, words[0] == "fault", words[1] == "straggler" { return ["slowdown"] }
        if words.count == 3, words[0] == "fault", words[1] == "link" { return ["degrade"] }
        if words.first == "preview" { return previewFollowers(Array(words.dropFirst())) }
        // After `policy` the slots, after `policy SLOT` that slot's names (from the registries).
        if words.first == "policy" { return Policies.completionWords(after: words.map { $0.lowercased() }) ?? [] }
        return []
    }

    /// After `preview`: the commands a preview can run (not the pace, another preview or the
    /// console's own `clear`, which it refuses), and once the command is whole its optional
    /// `for DURATION`, which the completion never offered ("nothing follows" after
    /// `preview drain node 20 `).
    private static func previewFollowers(_ rest: [String]) -> [String] {
        let unpreviewable = ["speed", "pause", "resume", "preview", "clear"]
        guard let first = rest.first else { return followers([]).filter { !unpreviewable.contains($0) } }
        guard followers([]).contains(first), !unpreviewable.contains(first) else { return [] }
        if let i = rest.firstIndex(of: "for") { return i == rest.count - 1 ? ["<DURATION>"] : [] }
        let next = followers(rest)
        let optional = ["degrade", "slowdown"]
        // Whole: nothing more is needed (what may follow is optional); not after `degrade`, whose factor is due.
        let whole = next.isEmpty ? !optional.contains(rest[rest.count - 1]) : next.allSatisfy(optional.contains)
        return whole ? next + ["for"] : next
    }

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
        case .char(let c) where isText(c):
            prompt.text.append(c)
            prompt.historyIndex = nil
        default:
            break
        }
        s.prompt = prompt
        applyFilter(prompt.purpose, prompt.text.trimmedBlanks, &s)
    }

    /// What a typed or pasted character may add to the prompt: no control characters (typed
    /// ones are keys, pasted ones would only draw as `?`).
    static func isText(_ c: Character) -> Bool {
        !c.isNewline && c.asciiValue.map { $0 >= 32 && $0 != 127 } ?? true
    }

    /// Bracketed paste (the terminal marks pasted text): a paste is text, never keys.
    ///
    /// - A prompt is open: its first non-blank line is added to the prompt's text (tabs as
    ///   blanks, control characters dropped) and nothing runs, even with a newline at the end:
    ///   Enter stays the operator's. Further lines are dropped and the footer says so: the `:`
    ///   language asks no confirmation, so a pasted script must not run line after line.
    /// - No prompt open (a view, help, a menu, a y/n question, a preview): nothing happens but
    ///   a footer note. A pasted `d`, space or `y` never acts and never answers a question.
    static func paste(_ text: String, _ s: inout ConsoleState) {
        guard var prompt = s.prompt else {
            s.status = StatusLine(
                s.confirmation != nil ? "paste ignored — answer with y or n" : "paste ignored — press : to type a command",
                isError: true)
            return
        }
        let lines = text.split(whereSeparator: \.isNewline).map { line in
            String(String(line).compactMap { c -> Character? in c == "\t" ? " " : isText(c) ? c : nil })
        }.filter { !$0.trimmedBlanks.isEmpty }
        guard let first = lines.first else { return }
        prompt.text += first
        prompt.historyIndex = nil
        s.prompt = prompt
        applyFilter(prompt.purpose, prompt.text.trimmedBlanks, &s)
        if lines.count > 1 {
            s.status = StatusLine(
                "pasted \(lines.count) lines: kept the first only"
                    + (prompt.purpose == .command ? " — run commands one at a time" : ""))
        }
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
            // The one console-local command: the engine never sees it.
            // Read as the engine reads its commands (any case, any blanks): "Clear Faults" went
            // to the engine, which knows no `clear`.
            if line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map({ $0.lowercased() }) == ["clear", "faults"] {
                let healed = s.memory.faults.filter { $0.healedAt != nil }.count
                s.memory.faults.removeAll { $0.healedAt != nil }
                s.status = StatusLine("cleared \(healed) healed faults from the console's history")
                return
            }
            effects.append(.send(commandLine: line))
            s.status = StatusLine("sent: \(line)")
        }
    }

    /// Completes the last word from what may follow the words before it; with several
    /// candidates, extends to their common prefix and lists them (placeholders included) as a
    /// note for the footer.
    static func complete(_ text: String) -> (String, String?) {
        let endsWithSpace = text.isEmpty || text.last == " "
        let words = text.split(separator: " ").map(String.init)
        let partial = endsWithSpace ? "" : (words.last ?? "")
        let before = endsWithSpace ? words : Array(words.dropLast())
        let base = String(text.dropLast(partial.count))
        // The engine reads keywords in any case ("Drain Node 3"), so completion does too.
        let options = followers(before.map { $0.lowercased() })
        let candidates = options.filter { !$0.hasPrefix("<") && $0.hasPrefix(partial.lowercased()) }
        let placeholders = options.filter { $0.hasPrefix("<") }
        switch candidates.count {
        case 0:
            if !placeholders.isEmpty { return (text, "next: " + placeholders.joined(separator: " or ")) }
            return (text, options.isEmpty ? "nothing follows '\(text.trimmedBlanks)'" : "no completion for '\(partial)'")
        case 1 where placeholders.isEmpty:
            return (base + candidates[0] + " ", nil)
        default:
            var common = candidates[0]
            for c in candidates.dropFirst() {
                while !c.hasPrefix(common) { common.removeLast() }
            }
            return (base + common, (candidates + placeholders).joined(separator: " "))
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

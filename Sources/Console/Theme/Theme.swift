import ServingEngine

/// How many colours the terminal offers; the backend picks it, ``Theme/resolve(_:depth:)`` obeys it.
public enum ColorDepth: Sendable, Equatable {
    case colors256, colors8, monochrome
}

/// Text attributes that survive even in monochrome.
public struct TextAttributes: Sendable, Hashable {
    public var bold = false, dim = false, reverse = false, underline = false
    public init(bold: Bool = false, dim: Bool = false, reverse: Bool = false, underline: Bool = false) {
        self.bold = bold
        self.dim = dim
        self.reverse = reverse
        self.underline = underline
    }
    func union(_ o: TextAttributes) -> TextAttributes {
        TextAttributes(
            bold: bold || o.bold, dim: dim || o.dim, reverse: reverse || o.reverse,
            underline: underline || o.underline)
    }
}

/// One theme entry: 256-colour indices, their 8-colour fallbacks and attributes. `-1` is
/// the terminal's default colour.
public struct ThemeColor: Sendable, Equatable {
    public var fg: Int
    public var bg: Int?
    public var fg8: Int
    public var bg8: Int?
    public var attributes: TextAttributes
    public init(
        fg: Int, bg: Int? = nil, fg8: Int? = nil, bg8: Int? = nil, attributes: TextAttributes = .init()
    ) {
        self.fg = fg
        self.bg = bg
        self.fg8 = fg8 ?? Self.nearest8(fg)
        self.bg8 = bg8 ?? bg.map(Self.nearest8)
        self.attributes = attributes
    }

    /// The basic colour closest to a 256-colour index, so themes need not spell out fallbacks.
    static func nearest8(_ index: Int) -> Int {
        switch index {
        case ..<0: return -1
        case 0..<16: return index % 8
        case 16..<232:
            let i = index - 16
            let r = i / 36, g = (i / 6) % 6, b = i % 6
            let threshold = max(1, max(r, g, b) - 1)
            let basic = (r >= threshold ? 1 : 0) | (g >= threshold ? 2 : 0) | (b >= threshold ? 4 : 0)
            // An orange (hue 30° or more, e.g. 214, the dark theme's warn) is the terminal's
            // yellow, which many draw as orange or brown; taken as red it looked like `bad`.
            let level = [0, 95, 135, 175, 215, 255]
            let (R, G, B) = (level[r], level[g], level[b])
            if basic == 1, G > B, (G - B) * 2 >= R - B { return 3 }
            return basic
        default: return index < 244 ? 0 : 7
        }
    }
}

/// A terminal style after theme resolution: colour numbers and attributes.
public struct ResolvedStyle: Sendable, Hashable {
    public var fg: Int
    public var bg: Int
    public var attributes: TextAttributes
}

/// Maps colour roles to terminal colours; loaded from `themes/*.toml` (see themes/README.md).
///
/// ```swift
/// let theme = Theme.builtinDark
/// let r = theme.resolve(Style(fg: .bad), depth: .colors256)   // r.fg == 203
/// ```
public struct Theme: Sendable, Equatable {
    public var name: String
    /// Attributes only, never colour (the `mono` theme, and any theme under `NO_COLOR`).
    public var monochrome: Bool
    /// Keys: text, dim, accent, good, warn, bad, border, title, header, tab_active, selection.
    public var colors: [String: ThemeColor]
    public var roles: [NPURole: ThemeColor]
    public var heat: [Int]
    public var heat8: [Int]

    public init(
        name: String, monochrome: Bool = false, colors: [String: ThemeColor],
        roles: [NPURole: ThemeColor], heat: [Int], heat8: [Int]
    ) {
        self.name = name
        self.monochrome = monochrome
        self.colors = colors
        self.roles = roles
        self.heat = heat
        self.heat8 = heat8
    }

    public static let roleKeys = [
        "text", "dim", "accent", "good", "warn", "bad", "border", "title", "header", "tab_active",
        "selection", "background",
    ]

    static func key(of role: ColorRole) -> String? {
        switch role {
        case .text: "text"
        case .dim: "dim"
        case .accent: "accent"
        case .good: "good"
        case .warn: "warn"
        case .bad: "bad"
        case .border: "border"
        case .title: "title"
        case .header: "header"
        case .tabActive: "tab_active"
        case .selection: "selection"
        case .plain, .heat, .role: nil
        }
    }

    func entry(_ role: ColorRole) -> ThemeColor {
        switch role {
        case .plain: return ThemeColor(fg: -1)
        case .heat(let v):
            func pick(_ ramp: [Int]) -> Int {
                ramp.isEmpty
                    ? -1 : ramp[min(ramp.count - 1, max(0, Int((v * Double(ramp.count - 1)).rounded())))]
            }
            let hot = v >= 0.75
            return ThemeColor(fg: pick(heat), fg8: pick(heat8), attributes: TextAttributes(bold: hot))
        case .role(let r):
            return roles[r] ?? colors["text"] ?? ThemeColor(fg: -1)
        default:
            let key = Self.key(of: role) ?? "text"
            return colors[key] ?? Theme.builtinDark.colors[key] ?? ThemeColor(fg: -1)
        }
    }

    /// Attributes that carry a role's meaning when there is no colour.
    static func monochromeAttributes(_ role: ColorRole) -> TextAttributes {
        switch role {
        case .dim, .border: TextAttributes(dim: true)
        case .accent, .title, .warn: TextAttributes(bold: true)
        case .bad: TextAttributes(bold: true, underline: true)
        case .header, .tabActive, .selection: TextAttributes(reverse: true)
        case .heat(let v): TextAttributes(bold: v >= 0.75, dim: v < 0.25)
        case .role(let r): TextAttributes(dim: r == .spare)
        case .plain, .text, .good: TextAttributes()
        }
    }

    public func resolve(_ style: Style, depth: ColorDepth) -> ResolvedStyle {
        let own = TextAttributes(
            bold: style.bold, dim: style.dim, reverse: style.reverse, underline: style.underline)
        if monochrome || depth == .monochrome {
            var attrs = own.union(Self.monochromeAttributes(style.fg))
            if monochrome, let key = Self.key(of: style.fg), let e = colors[key] {
                attrs = own.union(e.attributes)
            }
            if let bg = style.bg, case .heat(let v) = bg, v >= 0.5 { attrs.reverse = true }
            // A figure drawn on the header bar (the SLO figures, a faults or drains count in a
            // warning state) keeps the bar's reverse: resolved by its own role alone it cut a
            // hole in the bar (a good TPOT99 as plain text); its state is the attributes on top.
            if style.bg == .header { attrs.reverse = true }
            return ResolvedStyle(fg: -1, bg: -1, attributes: attrs)
        }
        let fgEntry = entry(style.fg)
        let wide = depth == .colors256
        var bg = wide ? (fgEntry.bg ?? -1) : (fgEntry.bg8 ?? -1)
        if let bgRole = style.bg {
            let e = entry(bgRole)
            bg = wide ? (e.bg ?? e.fg) : (e.bg8 ?? e.fg8)
        }
        var fg = wide ? fgEntry.fg : fgEntry.fg8
        // A theme with its own background (the light one) paints every cell, so it reads the
        // same on a dark terminal; the terminal's default ink would vanish on it, so plain text
        // takes the theme's text colour.
        let painted = bg >= 0
        if let back = colors["background"] {
            if bg < 0 { bg = wide ? back.fg : back.fg8 }
            if fg < 0, let text = colors["text"] { fg = wide ? text.fg : text.fg8 }
        }
        var attributes = own.union(fgEntry.attributes)
        // Eight colours have one black and one white for all 24 greys: the dark theme's border
        // and spare NPUs (240, 242) became black on a black terminal, the light theme's dim text
        // and border (245, 249) white on its white background. Ink that would vanish into the
        // ground it is drawn on (the theme's background, else the terminal's, taken as dark as
        // the palettes are) takes the other one, dimmed. A cell with a colour of its own behind
        // it (heat ▀, the header bar) is left as the theme says.
        if !wide, !painted, fg >= 0, fg == max(bg, 0) {
            fg = [0, 1, 4, 5].contains(fg) ? 7 : 0
            attributes.dim = true
        }
        return ResolvedStyle(fg: fg, bg: bg, attributes: attributes)
    }
}

extension Theme {
    /// Compiled in so the console has colours even without a themes/ folder; themes/dark.toml
    /// is the same palette.
    public static let builtinDark = Theme(
        name: "dark",
        colors: [
            "text": ThemeColor(fg: 252), "dim": ThemeColor(fg: 244), "accent": ThemeColor(fg: 39),
            "good": ThemeColor(fg: 78), "warn": ThemeColor(fg: 214), "bad": ThemeColor(fg: 203),
            "border": ThemeColor(fg: 240), "title": ThemeColor(fg: 117),
            "header": ThemeColor(fg: 255, bg: 236, fg8: 7, bg8: 4),
            "tab_active": ThemeColor(fg: 16, bg: 39, fg8: 0, bg8: 6),
            "selection": ThemeColor(fg: 16, bg: 229, fg8: 0, bg8: 3),
        ],
        roles: [
            .prefill: ThemeColor(fg: 75), .decode: ThemeColor(fg: 114), .attention: ThemeColor(fg: 180),
            .expert: ThemeColor(fg: 176), .colocated: ThemeColor(fg: 80), .spare: ThemeColor(fg: 242),
        ],
        heat: [17, 18, 19, 25, 31, 37, 43, 49, 82, 118, 154, 190, 226, 220, 214, 208, 196],
        heat8: [4, 4, 6, 6, 2, 2, 3, 3, 1]
    )

    /// Used when `NO_COLOR` is set and no `mono` theme file is found.
    public static let builtinMono = Theme(
        name: "mono", monochrome: true, colors: [:], roles: [:], heat: [], heat8: [])
}

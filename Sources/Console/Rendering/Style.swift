import ServingEngine

/// What a cell's colour *means*; a ``Theme`` turns meanings into terminal colours.
///
/// Views never name a colour number, so the same screen works in 256 colours,
/// 8 colours and monochrome:
///
/// ```swift
/// buffer.put("SLO met", x: 0, y: 0, style: Style(fg: .good, bold: true))
/// ```
public enum ColorRole: Sendable, Hashable {
    /// The terminal's own foreground/background.
    case plain
    case text, dim, accent, good, warn, bad
    case border, title, header, tabActive, selection
    /// A point on the theme's heat ramp, 0 = cold, 1 = hot.
    case heat(Double)
    /// The colour that identifies an NPU role in the Pod view.
    case role(NPURole)

    /// The heat ramp is quantised so that equal-looking cells compare equal in the diff.
    public static func heatLevel(_ value: Double) -> ColorRole {
        let clamped = value.isFinite ? min(max(value, 0), 1) : 0
        return .heat((clamped * 16).rounded() / 16)
    }
}

/// Foreground/background roles plus attributes of one cell.
public struct Style: Sendable, Hashable {
    public var fg: ColorRole
    /// `nil` = the theme's background for `fg` (usually the terminal default).
    public var bg: ColorRole?
    public var bold: Bool
    public var dim: Bool
    public var reverse: Bool
    public var underline: Bool

    public init(
        fg: ColorRole = .text, bg: ColorRole? = nil, bold: Bool = false, dim: Bool = false,
        reverse: Bool = false, underline: Bool = false
    ) {
        self.fg = fg
        self.bg = bg
        self.bold = bold
        self.dim = dim
        self.reverse = reverse
        self.underline = underline
    }

    public static let text = Style()
    public static let dim = Style(fg: .dim)
    public static let accent = Style(fg: .accent, bold: true)
    public static let good = Style(fg: .good)
    public static let warn = Style(fg: .warn)
    public static let bad = Style(fg: .bad, bold: true)
    public static let border = Style(fg: .border)
    public static let title = Style(fg: .title, bold: true)

    public func with(reverse: Bool) -> Style {
        var copy = self
        copy.reverse = reverse
        return copy
    }
}

/// One terminal cell: a single-width character and its style.
public struct Cell: Sendable, Hashable {
    public var character: Character
    public var style: Style
    public init(character: Character = " ", style: Style = .text) {
        self.character = character
        self.style = style
    }
    public static let blank = Cell()
}

/// A rectangle of cells, in buffer coordinates.
public struct Rect: Sendable, Hashable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = max(0, width)
        self.height = max(0, height)
    }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    /// The area inside a one-cell border.
    public var inner: Rect { Rect(x: x + 1, y: y + 1, width: width - 2, height: height - 2) }
    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }
    /// Splits off the top `rows` rows; returns (top, rest).
    public func splitTop(_ rows: Int) -> (Rect, Rect) {
        let r = min(max(rows, 0), height)
        return (
            Rect(x: x, y: y, width: width, height: r), Rect(x: x, y: y + r, width: width, height: height - r)
        )
    }
    /// Splits off the left `columns` columns; returns (left, rest).
    public func splitLeft(_ columns: Int) -> (Rect, Rect) {
        let c = min(max(columns, 0), width)
        return (
            Rect(x: x, y: y, width: c, height: height), Rect(x: x + c, y: y, width: width - c, height: height)
        )
    }
}

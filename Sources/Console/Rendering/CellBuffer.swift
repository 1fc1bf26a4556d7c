/// An off-screen grid of styled cells that every view renders into.
///
/// The terminal backend only copies it to the screen (and only what changed, see
/// ``diff(from:)``), so every view is testable by comparing ``text``:
///
/// ```swift
/// var b = CellBuffer(width: 20, height: 3)
/// b.box(Rect(x: 0, y: 0, width: 20, height: 3), title: "sim")
/// print(b.text)
/// ```
public struct CellBuffer: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Cell = .blank) {
        self.width = max(0, width)
        self.height = max(0, height)
        self.cells = Array(repeating: fill, count: self.width * self.height)
    }

    public var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            cells[y * width + x] = newValue
        }
    }

    /// Lines joined with "\n", trailing spaces trimmed per line: what a test compares.
    public var text: String { lines.joined(separator: "\n") }

    public var lines: [String] {
        (0..<height).map { line($0) }
    }

    public func line(_ y: Int) -> String {
        var s = String(cells[(y * width)..<(y * width + width)].map(\.character))
        while s.last == " " { s.removeLast() }
        return s
    }

    /// Writes `string` from (x, y), clipped to `clip` (default: the whole buffer).
    /// Returns the x after the last written character.
    ///
    /// A control character (C0 such as ESC or newline, DEL, C1) is written as `?`: names come
    /// from files and trace lines, and a raw ESC copied to the terminal would let a file
    /// recolour, move or clear the screen. One `?` per character keeps column arithmetic intact.
    @discardableResult
    public mutating func put(_ string: String, x: Int, y: Int, style: Style = .text, clip: Rect? = nil) -> Int
    {
        let area = clip ?? bounds
        guard y >= area.y, y < area.maxY, y >= 0, y < height else { return x + string.count }
        var cx = x
        let limit = min(area.maxX, width)
        let lower = max(area.x, 0)
        for ch in string {
            if cx >= limit { break }
            if cx >= lower { cells[y * width + cx] = Cell(character: Self.printable(ch), style: style) }
            cx += 1
        }
        return cx
    }

    /// `ch`, or `?` when a terminal would not give it exactly one column: a control character
    /// (C0 such as ESC or newline, DEL, C1) it would act on, a wide one (CJK, emoji) that takes
    /// two, or a lone zero-width one (a combining mark, ZWSP). Each cell is drawn at its own
    /// column, so a wide character's second half was overwritten by the next cell and the rest
    /// of the line shifted or left half-glyphs behind (`:` typed 你好 or 🚀, a name from a file).
    static func printable(_ ch: Character) -> Character {
        if let ascii = ch.asciiValue { return ascii < 0x20 || ascii == 0x7F ? "?" : ch }
        let scalars = ch.unicodeScalars
        if scalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) { return "?" }
        guard let first = scalars.first else { return "?" }
        // Latin, Greek, Cyrillic and the console's own glyphs (box drawing, blocks, arrows) are
        // one column; only the rest needs the tables.
        if first.value < 0x300 || (0x2500...0x259F).contains(first.value) { return ch }
        return isSingleColumn(first) && !scalars.contains("\u{FE0F}") ? ch : "?"
    }

    /// East Asian Wide and Fullwidth blocks (UAX #11) that are not emoji.
    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
        0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19,
        0xFE30...0xFE6F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x16FE0...0x18CFF, 0x1B000...0x1B2FF,
        0x1F200...0x1F2FF, 0x20000...0x3FFFD,
    ]

    private static func isSingleColumn(_ scalar: Unicode.Scalar) -> Bool {
        let p = scalar.properties
        if p.isEmojiPresentation { return false }
        switch p.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return false
        default: break
        }
        return !wideRanges.contains { $0.contains(scalar.value) }
    }

    /// Fills a rectangle with one cell.
    public mutating func fill(_ rect: Rect, with cell: Cell = .blank) {
        let x0 = max(rect.x, 0), x1 = min(rect.maxX, width)
        let y0 = max(rect.y, 0), y1 = min(rect.maxY, height)
        guard x0 < x1, y0 < y1 else { return }
        for y in y0..<y1 {
            for x in x0..<x1 { cells[y * width + x] = cell }
        }
    }

    /// Restyles the cells of a rectangle, keeping their characters (selection highlight).
    public mutating func restyle(_ rect: Rect, _ transform: (inout Style) -> Void) {
        let x0 = max(rect.x, 0), x1 = min(rect.maxX, width)
        let y0 = max(rect.y, 0), y1 = min(rect.maxY, height)
        guard x0 < x1, y0 < y1 else { return }
        for y in y0..<y1 {
            for x in x0..<x1 { transform(&cells[y * width + x].style) }
        }
    }

    /// Copies another buffer in at (x, y), clipped.
    public mutating func blit(_ other: CellBuffer, x: Int, y: Int) {
        for oy in 0..<other.height {
            for ox in 0..<other.width { self[x + ox, y + oy] = other[ox, oy] }
        }
    }
}

/// A horizontal run of cells that changed since the previous frame.
public struct CellRun: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var cells: [Cell]
}

extension CellBuffer {
    /// The runs of cells that differ from `previous`; everything when there is no previous
    /// frame of the same size (first frame, resize, theme change).
    public func diff(from previous: CellBuffer?) -> [CellRun] {
        guard let previous, previous.width == width, previous.height == height else {
            return (0..<height).map { y in
                CellRun(x: 0, y: y, cells: Array(cells[(y * width)..<((y + 1) * width)]))
            }
        }
        var runs: [CellRun] = []
        for y in 0..<height {
            var x = 0
            while x < width {
                let i = y * width + x
                if cells[i] == previous.cells[i] {
                    x += 1
                    continue
                }
                let start = x
                while x < width, cells[y * width + x] != previous.cells[y * width + x] { x += 1 }
                runs.append(
                    CellRun(x: start, y: y, cells: Array(cells[(y * width + start)..<(y * width + x)])))
            }
        }
        return runs
    }
}

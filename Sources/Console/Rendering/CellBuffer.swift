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

    /// `ch`, or `?` when any scalar of it is a control character a terminal would act on.
    static func printable(_ ch: Character) -> Character {
        if let ascii = ch.asciiValue { return ascii < 0x20 || ascii == 0x7F ? "?" : ch }
        return ch.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) } ? "?" : ch
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

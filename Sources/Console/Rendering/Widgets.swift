/// Clamps to 0…1; NaN and infinities (a glitching engine) draw as empty rather than crash.
@inline(__always) func unitInterval(_ value: Double) -> Double {
    value.isFinite ? min(max(value, 0), 1) : 0
}

/// Drawing helpers shared by all views: boxes, bars, sparklines, heat maps, tables.
extension CellBuffer {
    static let sparkGlyphs: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    static let shadeGlyphs: [Character] = [" ", "░", "▒", "▓", "█"]

    /// The shade a monochrome heat map draws for `value` (0…1); its legend uses the same.
    static func shadeGlyph(_ value: Double) -> Character {
        shadeGlyphs[min(4, Int((unitInterval(value) * 4).rounded()))]
    }

    /// A Unicode box with an optional title in the top border.
    public mutating func box(
        _ rect: Rect, title: String = "", style: Style = .border, titleStyle: Style = .title
    ) {
        guard rect.width >= 2, rect.height >= 2 else { return }
        let top = rect.y, bottom = rect.maxY - 1, left = rect.x, right = rect.maxX - 1
        for x in (left + 1)..<right {
            self[x, top] = Cell(character: "─", style: style)
            self[x, bottom] = Cell(character: "─", style: style)
        }
        for y in (top + 1)..<bottom {
            self[left, y] = Cell(character: "│", style: style)
            self[right, y] = Cell(character: "│", style: style)
        }
        self[left, top] = Cell(character: "┌", style: style)
        self[right, top] = Cell(character: "┐", style: style)
        self[left, bottom] = Cell(character: "└", style: style)
        self[right, bottom] = Cell(character: "┘", style: style)
        if !title.isEmpty, rect.width > 6 {
            let room = rect.width - 2
            if title.count + 1 <= room {
                // Whole, even when only its closing blank is lost at the corner.
                put(" \(title) ", x: left + 1, y: top, style: titleStyle, clip: Rect(x: left + 1, y: top, width: room, height: 1))
            } else {
                // A title too long for the border ends in "…" with a border cell before the
                // corner: cut at the edge, it read as whole.
                put(cutting: " \(title)", x: left + 1, y: top, style: titleStyle,
                    clip: Rect(x: left + 1, y: top, width: room - 1, height: 1))
            }
        }
    }

    /// `text` from `x`, cut at `clip`'s right edge with "…" in the last column when it does not
    /// fit, so a cut line never reads as whole. ``put(_:x:y:style:clip:)`` stops at the edge and
    /// returns that column, so its result cannot tell a cut text from one that fits.
    @discardableResult
    public mutating func put(cutting text: String, x: Int, y: Int, style: Style, clip: Rect) -> Int {
        let room = clip.maxX - max(x, clip.x)
        guard text.count > room, room >= 1 else { return put(text, x: x, y: y, style: style, clip: clip) }
        return put(String(text.prefix(room - 1)) + "…", x: x, y: y, style: style, clip: clip)
    }

    /// The first of `forms` (longest first) that fits whole in `clip` from `x` with a blank left
    /// before its right edge (a panel's border), else the last, cut there: a long caption's end
    /// (its scale, its threshold) was lost at the edge, and one that filled the row to the edge
    /// ran into the border ("(5 dies per column)│").
    @discardableResult
    public mutating func put(firstFitting forms: [String], x: Int, y: Int, style: Style, clip: Rect) -> Int {
        let room = Rect(x: clip.x, y: clip.y, width: max(0, clip.width - 1), height: clip.height)
        return put(forms.first { $0.count <= room.maxX - x } ?? forms.last ?? "", x: x, y: y, style: style, clip: room)
    }

    /// A box titled by the first of `titles` (longest first) that fits whole, else the last:
    /// a title cut at the box's edge lost what it ended with (a filter's text, "(Esc clears").
    public mutating func box(_ rect: Rect, titles: [String], style: Style = .border) {
        box(rect, title: titles.first { $0.count + 2 <= rect.width - 2 } ?? titles.last ?? "", style: style)
    }

    /// A horizontal bar of `width` cells filled to `fraction`, with eighth-block resolution.
    public mutating func bar(
        _ fraction: Double, x: Int, y: Int, width: Int, style: Style, track: Style = .dim
    ) {
        guard width > 0 else { return }
        let f = fraction.isFinite ? min(max(fraction, 0), 1) : 0
        let eighths = Int((f * Double(width * 8)).rounded())
        let partial: [Character] = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        for i in 0..<width {
            let filled = eighths - i * 8
            if filled >= 8 {
                self[x + i, y] = Cell(character: "█", style: style)
            } else if filled > 0 {
                self[x + i, y] = Cell(character: partial[filled], style: style)
            } else {
                self[x + i, y] = Cell(character: "·", style: track)
            }
        }
    }

    /// The newest `width` values as ▁…█, from `min` (default 0) to `max` (default: the largest
    /// value shown); the caller prints the range beside it.
    public mutating func sparkline(
        _ values: [Double], x: Int, y: Int, width: Int, min minValue: Double = 0, max maxValue: Double? = nil,
        style: Style = .accent
    ) {
        guard width > 0, !values.isEmpty else { return }
        let shown = values.suffix(width)
        let top = (maxValue ?? (shown.filter(\.isFinite).max() ?? 1)) - minValue
        for (i, v) in shown.enumerated() {
            // A missing point (not a number) is a gap: the points after it keep their places in time.
            guard v.isFinite else {
                self[x + i, y] = Cell(character: " ", style: style)
                continue
            }
            let level = top > 0 ? Int((unitInterval((v - minValue) / top) * 7).rounded()) : 0
            self[x + i, y] = Cell(character: Self.sparkGlyphs[level], style: style)
        }
    }

    /// A heat map of `matrix` (rows × columns, values 0…1) folded into `rect`, two matrix
    /// rows per cell with ▀ (fg = upper row, bg = lower row). Folding takes the maximum of
    /// each bin so that one hot expert stays visible. Monochrome falls back to shade glyphs.
    public mutating func heatMap(_ matrix: [[Double]], in rect: Rect, monochrome: Bool) {
        guard rect.width > 0, rect.height > 0, let columns = matrix.first?.count, columns > 0 else { return }
        let pixelRows = rect.height * 2
        func binned(_ r0: Int, _ r1: Int, _ c0: Int, _ c1: Int) -> Double {
            var m = 0.0
            for r in r0..<max(r1, r0 + 1) where r < matrix.count {
                let row = matrix[r]
                for c in c0..<max(c1, c0 + 1) where c < row.count { m = max(m, row[c]) }
            }
            return m
        }
        let usedColumns = min(rect.width, columns)
        for cy in 0..<rect.height {
            for cx in 0..<usedColumns {
                let c0 = cx * columns / usedColumns, c1 = (cx + 1) * columns / usedColumns
                let rowsPerPixel = Double(matrix.count) / Double(pixelRows)
                func rows(_ p: Int) -> (Int, Int) {
                    (Int(Double(p) * rowsPerPixel), Int(Double(p + 1) * rowsPerPixel))
                }
                let (a0, a1) = rows(cy * 2), (b0, b1) = rows(cy * 2 + 1)
                let upper = a0 < matrix.count ? binned(a0, a1, c0, c1) : 0
                let lower = b0 < matrix.count ? binned(b0, b1, c0, c1) : 0
                if monochrome {
                    self[rect.x + cx, rect.y + cy] = Cell(character: Self.shadeGlyph(max(upper, lower)), style: .text)
                } else {
                    self[rect.x + cx, rect.y + cy] = Cell(
                        character: "▀", style: Style(fg: .heatLevel(upper), bg: .heatLevel(lower)))
                }
            }
        }
    }

    /// A multi-row bar chart of the newest `rect.width` values, eighth-block resolution.
    public mutating func verticalBars(
        _ values: [Double], in rect: Rect, max maxValue: Double? = nil, style: Style
    ) {
        guard rect.width > 0, rect.height > 0, !values.isEmpty else { return }
        let shown = values.suffix(rect.width)
        let top = maxValue ?? (shown.filter(\.isFinite).max() ?? 1)
        guard top > 0 else { return }
        for (c, v) in shown.enumerated() {
            let eighths = Int((unitInterval(v / top) * Double(rect.height * 8)).rounded())
            for r in 0..<rect.height {
                let level = eighths - r * 8
                guard level > 0 else { break }
                let glyph = level >= 8 ? "█" : Self.sparkGlyphs[level - 1]
                self[rect.x + c, rect.maxY - 1 - r] = Cell(character: glyph, style: style)
            }
        }
    }

    /// One value per cell (0…1) as a block whose height shows the level, in the style the
    /// caller gives for that cell (a state, keyed beside it), so the strip reads without colour.
    public mutating func levelStrip(_ values: [Double], styles: [Style], in rect: Rect) {
        guard rect.width > 0 else { return }
        for (i, v) in values.enumerated() {
            let row = i / rect.width, col = i % rect.width
            guard row < rect.height else { break }
            let level = Int((unitInterval(v) * 7).rounded())
            self[rect.x + col, rect.y + row] = Cell(
                character: Self.sparkGlyphs[level], style: i < styles.count ? styles[i] : .text)
        }
    }

    /// A table: a header row, then rows of cells; columns have fixed widths
    /// (negative = right-aligned). Rows beyond the rect are dropped.
    public mutating func table(
        columns: [(title: String, width: Int)], rows: [[(String, Style)]], in rect: Rect,
        headerStyle: Style = Style(fg: .title, bold: true, underline: true)
    ) {
        guard rect.height > 0 else { return }
        func cellText(_ s: String, _ w: Int) -> String {
            let width = abs(w)
            // A cut cell ends in "…": "NPU 140 lost during deco" and an age cut to "10485."
            // read as whole values.
            let clipped = s.count <= width ? s : width >= 2 ? String(s.prefix(width - 1)) + "…" : String(s.prefix(width))
            let pad = String(repeating: " ", count: width - clipped.count)
            return w < 0 ? pad + clipped : clipped + pad
        }
        var x = rect.x
        for col in columns {
            put(cellText(col.title, col.width), x: x, y: rect.y, style: headerStyle, clip: rect)
            x += abs(col.width) + 1
        }
        for (r, row) in rows.enumerated() {
            let y = rect.y + 1 + r
            guard y < rect.maxY else { break }
            var cx = rect.x
            for (i, col) in columns.enumerated() where i < row.count {
                put(cellText(row[i].0, col.width), x: cx, y: y, style: row[i].1, clip: rect)
                cx += abs(col.width) + 1
            }
        }
    }
}

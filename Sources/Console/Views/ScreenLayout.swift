/// Where the fixed parts of the screen are; shared by the views and by mouse handling.
enum ScreenLayout {
    static let headerRows = 2
    static let tabRow = 2
    static let contentTop = 3

    static func content(width: Int, height: Int) -> Rect {
        Rect(x: 0, y: contentTop, width: width, height: height - contentTop - 1)
    }

    /// The label of each tab, e.g. " 2 Experts ".
    static func tabLabel(_ view: ConsoleView) -> String { " \(view.rawValue) \(view.title) " }

    /// Column ranges of the tabs in the tab bar.
    static var tabRanges: [(view: ConsoleView, columns: Range<Int>)] {
        var x = 1
        return ConsoleView.allCases.map { view in
            let w = tabLabel(view).count
            defer { x += w + 1 }
            return (view, x..<(x + w))
        }
    }

    static func tab(atX x: Int) -> ConsoleView? {
        tabRanges.first { $0.columns.contains(x) }?.view
    }
}

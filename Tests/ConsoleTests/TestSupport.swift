import ServingEngine
import XDSTestSupport

@testable import Console

/// Renders the fixture the way the app does: state primed with a tick, dark theme.
func renderFixture(
    _ view: ConsoleView, width: Int = 80, height: Int = 24,
    _ adjust: (inout ConsoleState) -> Void = { _ in }
) -> [String] {
    var state = ConsoleState(width: width, height: height)
    state = ConsoleUpdate.update(state, .tick(SnapshotFixtures.superpod)).0
    state.view = view
    adjust(&state)
    return ConsoleScreen.render(
        state, SnapshotFixtures.superpod, theme: .builtinDark, width: width, height: height
    ).lines
}

/// Feeds keys through the full loop (update + effects against the link + replies).
func drive(_ state: ConsoleState, _ link: FakeEngineLink, keys: [Key]) -> ConsoleState {
    keys.reduce(state) { ConsoleApp.dispatch(.key($1), to: $0, link: link) }
}

/// Keys for typing a string.
func typed(_ text: String) -> [Key] { text.map { Key.char($0) } }

/// A state primed with the superpod fixture.
func primedState(
    width: Int = 80, height: Int = 24, capabilities: Set<EngineCapability> = Set(EngineCapability.allCases)
) -> ConsoleState {
    ConsoleUpdate.update(
        ConsoleState(width: width, height: height, capabilities: capabilities),
        .tick(SnapshotFixtures.superpod)
    ).0
}

/// `left` and `right` on one line of `width` columns (for wide-screen expectations).
func spread(_ left: String, _ right: String, width: Int) -> String {
    left + String(repeating: " ", count: width - left.count - right.count) + right
}

import Foundation
import Testing
import XDSTestSupport

@testable import Console

@Suite struct ThemeTests {
    static let themesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("themes")

    @Test func shippedThemesAllLoadInCycleOrder() {
        let catalog = ThemeCatalog.load(directory: Self.themesDirectory)
        #expect(catalog.problems == [])
        #expect(catalog.themes.map(\.name) == ["dark", "light", "high-contrast", "mono"])
        #expect(catalog.themes.last?.monochrome == true)
    }

    @Test func darkFileMatchesTheCompiledInFallback() {
        let catalog = ThemeCatalog.load(directory: Self.themesDirectory)
        #expect(catalog.themes.first == Theme.builtinDark)
    }

    @Test func malformedFileIsReportedAndTheDefaultStillLoads() throws {
        let dir = try TestScratch.makeDirectory("xds-themes")
        try "name = \"broken\"\n[colors\ntext = 1\n".write(
            to: dir.appendingPathComponent("broken.toml"), atomically: false, encoding: .utf8)
        try "[colors]\nsparkle = 3\n".write(
            to: dir.appendingPathComponent("odd.toml"), atomically: false, encoding: .utf8)
        try "[roles]\ndecode = 300\n".write(
            to: dir.appendingPathComponent("range.toml"), atomically: false, encoding: .utf8)
        let catalog = ThemeCatalog.load(directory: dir)
        #expect(catalog.themes.map(\.name) == ["dark"])
        #expect(catalog.problems.count == 3)
        #expect(catalog.problems.contains { $0.contains("broken.toml:2:") })
        #expect(catalog.problems.contains { $0.contains("odd.toml:2: colors.sparkle: unknown role") })
        #expect(
            catalog.problems.contains {
                $0.contains("range.toml:2: roles.decode: expected a colour index -1…255")
            })
    }

    /// A misspelt table or key, or a value of the wrong type, loaded silently as the dark palette
    /// under the file's name; it is a problem of the file now, as an unknown role is.
    @Test func unknownFieldsAndWrongTypesAreReported() throws {
        let cases: [(text: String, problem: String)] = [
            ("name = \"warm\"\n[colours]\ntext = 1\n", "colours: unknown field; expected one of name, monochrome, colors, roles, heat"),
            ("name = 7\n", "name: expected a string"),
            ("monochrome = \"yes\"\n", "monochrome: expected true or false"),
            ("[heat]\nramps = [1, 2]\n", "heat.ramps: unknown field; expected ramp, ramp8"),
        ]
        for (text, problem) in cases {
            #expect(throws: ThemeError.self, "\(text)") { try ThemeCatalog.parse(text, fallbackName: "t") }
            do {
                _ = try ThemeCatalog.parse(text, fallbackName: "t")
            } catch {
                #expect("\(error.location): \(error.message)" == problem)
            }
        }
        // The fields the README lists still load.
        let theme = try ThemeCatalog.parse(
            "name = \"n\"\nmonochrome = true\n[colors]\ntext = 1\n[roles]\ndecode = 2\n[heat]\nramp = [1]\nramp8 = [2]\n",
            fallbackName: "t")
        #expect(theme.name == "n" && theme.monochrome && theme.heat == [1] && theme.heat8 == [2])
    }

    /// A theme file's problem with a key names the key's line, as a deployment file's does: it
    /// gave the key path only (`mine.toml:colors.sparkle: …`), leaving the author to search.
    @Test func keyProblemsNameTheirLine() throws {
        let dir = try TestScratch.makeDirectory("xds-theme-lines")
        let files = [
            "odd.toml": "name = \"odd\"\n\n[colors]\ntext = 1\nsparkle = 3\n",
            "ramp.toml": "# warm\n[heat]\nramp = [1, 2, 300]\n",
            "inline.toml": "[colors]\ntext = 1\nheader = { fg = 999 }\n",
            "sub.toml": "[colors.header]\nbg = 1\nfg = 999\n",
            "top.toml": "\nmonochrome = \"yes\"\n",
        ]
        for (name, text) in files {
            try text.write(to: dir.appendingPathComponent(name), atomically: false, encoding: .utf8)
        }
        let problems = ThemeCatalog.load(directory: dir).problems.map { $0.replacingOccurrences(of: dir.path + "/", with: "") }
        #expect(problems.sorted() == [
            "inline.toml:3: colors.header.fg: expected a colour index -1…255",
            "odd.toml:5: colors.sparkle: unknown role; expected one of " + Theme.roleKeys.joined(separator: ", "),
            "ramp.toml:3: heat.ramp[2]: expected a colour index -1…255",
            "sub.toml:3: colors.header.fg: expected a colour index -1…255",
            "top.toml:2: monochrome: expected true or false",
        ])
    }

    @Test func missingDirectoryFallsBackToBuiltInDark() {
        let catalog = ThemeCatalog.load(directory: nil)
        #expect(catalog.themes == [Theme.builtinDark])
    }

    @Test func resolutionFollowsColourDepth() throws {
        let dark = Theme.builtinDark
        let bad = Style(fg: .bad, bold: true)
        #expect(
            dark.resolve(bad, depth: .colors256)
                == ResolvedStyle(fg: 203, bg: -1, attributes: TextAttributes(bold: true)))
        #expect(dark.resolve(bad, depth: .colors8).fg == 1)  // 203 is a red
        let mono = dark.resolve(bad, depth: .monochrome)
        #expect(mono.fg == -1 && mono.bg == -1 && mono.attributes.underline)
        // Roles with their own background (the header bar) keep it; heat as background wins.
        #expect(dark.resolve(Style(fg: .header), depth: .colors256).bg == 236)
        #expect(
            dark.resolve(Style(fg: .heat(0), bg: .heat(1)), depth: .colors256)
                == ResolvedStyle(fg: 17, bg: 196, attributes: TextAttributes()))
    }

    @Test func monoThemeUsesAttributesOnly() throws {
        let mono = try #require(
            ThemeCatalog.load(directory: Self.themesDirectory).themes.first { $0.name == "mono" })
        let r = mono.resolve(Style(fg: .selection), depth: .colors256)
        #expect(r == ResolvedStyle(fg: -1, bg: -1, attributes: TextAttributes(reverse: true)))
    }

    @Test func nearestBasicColourFallbacks() {
        #expect(ThemeColor.nearest8(196) == 1)  // red
        #expect(ThemeColor.nearest8(46) == 2)  // green
        #expect(ThemeColor.nearest8(21) == 4)  // blue
        #expect(ThemeColor.nearest8(226) == 3)  // yellow
        #expect(ThemeColor.nearest8(16) == 0)
        #expect(ThemeColor.nearest8(252) == 7)
    }
}

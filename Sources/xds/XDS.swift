import ArgumentParser

@main
struct XDS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "xds", abstract: "xDeepServe digital twin")
    func run() throws { print("xds") }
}

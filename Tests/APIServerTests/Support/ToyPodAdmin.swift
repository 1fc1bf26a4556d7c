import APIServer
import EngineRuntime
import ServingEngine
import XDSTestSupport

/// A started host over the toy pod (seed 3, no expert skew) at `rate` requests/s, paced 20×, and
/// an admin server in front of it (token "tok", events every 50 ms), for the admin route tests.
/// The caller runs the server (``whileServing(_:_:)``) and stops the host.
func toyPodAdmin(rate: Double, bounds: EngineHost.Bounds = EngineHost.Bounds()) throws -> (EngineHost, APIServer) {
    var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 3, syntheticRate: rate)
    config.expertSkew = false
    let host = EngineHost(core: try ServingEngine(configuration: config), speed: 20, publishInterval: 0.05, bounds: bounds)
    host.start()
    let server = APIServer(configuration: .init(adminToken: "tok", adminEventInterval: .milliseconds(50)),
                           link: host, backend: host)
    return (host, server)
}

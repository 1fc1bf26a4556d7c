import APIServer
import EngineRuntime

/// `/metrics` times HTTP requests from their arrival at the server (issue 14).
extension EngineHost: ArrivalStamping {}

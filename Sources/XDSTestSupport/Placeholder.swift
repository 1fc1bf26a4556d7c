// XDSTestSupport

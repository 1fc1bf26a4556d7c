// SimKit

import Testing
import XDSTestSupport

/// Inputs that once broke a reader (a trap, a hang, a multi-line or empty message), kept as
/// regression cases: every fuzz run replays them first. Add a failing input here before
/// fixing it; a fixed one stays. Each line says what it used to do.
enum FuzzCorpus {
    static let commands: [String] = [
        "drain node 99999999999999999999",  // Int(word) nil: "a node number" with no range named
        "rate 1e308",  // accepted: arrivals at one instant flood the engine
        "rate 1e-300 ",  // accepted; the pending arrival lands 1e300 s ahead (now refused: below 0.0001/s)
        "speed 1e-300",  // accepted: a paced engine never advances
        "speed inf",  // refused, but without the range
        "fault straggler die 1 slowdown 1e308",  // accepted: step times overflow to infinity
        "fault link 1-2 degrade 1e308",  // accepted: transfer times overflow to infinity
        "fault link 99999999999999999999-1",  // refused without naming the range
        "pause\nresume",  // newline echoed raw inside the message
        "\u{1B}[2Jdrain",  // terminal escape echoed raw
        "rate 0x10",  // hexadecimal accepted by Double(String)
        "heal 0",  // accepted by the parser; fault ids start at 1
        "heal 9223372036854775808",
        String(repeating: "9", count: 5_000),  // echoed whole in the message
    ]

    static let durations: [String] = [
        "1e400", "1e12", "inf", "nan", "-0", "0x10", "1e", "5m3", "٣s", "½h", "1.2.3s",
        // A unit repeated or after a smaller one: refused, not summed.
        "1h1h", "30m1h", "10s10s", "1m1min", "500ms1s",
        String(repeating: "1h", count: 2_000),
    ]

    static let scenarios: [String] = [
        // toml++ (inside TOMLKit) aborted the process on an assertion for these table headers.
        "name = \"t\"\n[[step]]\nat = 30\ncommand = \"drain node 3\"\n[[\u{5}step]]\nat = \"1m\"\n\ns",
        "nam2 = \"x\"\n[[\u{FFFD}tep]]\nat = -2147483647\ncommand = \"pause\"\n",
        "name = \"x\"\n[[\rstep]]\n[[ste]\np}]]\n1e",
        "[ =]\n", "[[#]]\n", "[\t\u{E9}]\n",
        // toml++ asserted in parse_value on a '}' where an array value belongs.
        "name = [}]\n", "name = [[[\n\u{2028}", "[[st\u{E9}p]]\n", "name = \"x\"\n[[step]]\nat = [1, # c\n}]\n",
        // Steps naming hardware the pod does not have: refused only when the engine got there.
        "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"fault npu 999\"\n",
        "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"heal 3\"\n",
        // 'at' beyond any run, as a TOML float and as a string.
        "name = \"x\"\n[[step]]\nat = 1e300\ncommand = \"pause\"\n",
        "name = \"x\"\n[[step]]\nat = nan\ncommand = \"pause\"\n",
        "name = \"x\"\n[[step]]\nat = -5\ncommand = \"pause\"\n",
        "name = \"x\"\n[[step]]\nat = \"99999999999h\"\ncommand = \"pause\"\n",
        // A terminal escape in the name reached the console raw.
        "name = \"\\u001B[2J\"\n[[step]]\nat = \"1s\"\ncommand = \"pause\"\n",
        "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = \"pause\"\n\u{1B}[2J = 1\n",
        "name = \"x\"\nstep = 5\n",
        "name = \"x\"\n[[step]]\n[[step]]\n",
        "name = \"x\"\n[[step]]\nat = \"1s\"\ncommand = 5\n",
        "name = 1\n",
    ]

    static let azure: [String] = [
        // abs(Int.min) trapped in the token-count range check (found by a 40 s soak, seed 777).
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,-9223372036854775808,922337203685477",
        // Year 9223372036854775807 overflowed the day arithmetic.
        "TIMESTAMP,ContextTokens,GeneratedTokens\n9223372036854775807-01-01 00:00:00,1,1\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:nan,1,1\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:1e1,1,1\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,99999999999999999999,1\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,9223372036854775807,9223372036854775807\n2023-11-16 18:17:03,9223372036854775807,1\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,1\n9999-12-31 23:59:59,1,1\n",
        "\u{FEFF}TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,1\n",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,\u{1B}[2J,1\n",
        // A long fraction in the cached minute overflowed Int (a trap; 15 s soak, seed 4711).
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.5,1,1\n2023-11-16 18:17:04.12345678901234567890123,1,1\n",
    ]

    static let burstGPT: [String] = [
        // Every row failed in the source: refused as "no requests", as if the file were empty.
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,0,472,Conversation log\n",
        "\u{FEFF}Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\r\n5,ChatGPT,1,1,2,API log\r\n",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,100,10,999,API log\n",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1e3,ChatGPT,1,1,2,API log\n",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,1,1,2,API log\n1,ChatGPT,1,1,2,API log\n",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\r5,ChatGPT,1,1,2,API log\r",
        "Timestamp,Request tokens,Response tokens,Request tokens\n5,1,1,1\n",
        "Timestamp,Model,Request tokens,Response tokens\n5,ChatGPT,-1,1\n5,ChatGPT,1,-1\n",
        "Timestamp,Model,Request tokens,Response tokens\n99999999999,ChatGPT,1,1\n",
    ]

    static let mooncake: [String] = [
        // Int64(Double) trapped on hash ids beyond Int64 and on nan.
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [1e19]}\n",
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [-1e300]}\n",
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [1e400]}\n",
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [-1]}\n",
        "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [0.5]}\n",
        "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [1, 2, 3]}\n",
        "{\"timestamp\": 1e400, \"input_length\": 1, \"output_length\": 1}\n",
        "{\"timestamp\": -5, \"input_length\": 1, \"output_length\": 1}\n",
        "{\"timestamp\": 0, \"input_length\": 1e15, \"output_length\": 1}\n",
        "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 9e15}\n",
        // A 10^12 ms gap is fine (idle time is free).
        "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 1000000000000, \"input_length\": 1, \"output_length\": 1}\n",
        "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"x\": \"\\",
        "{\"input_length\": 1, \"output_length\": 1, \"timestamp\": 0, \"hash_ids\": [",
    ]
}

/// Runs seeded schedules `0..<count` off the cooperative pool, each adding its problems and what
/// it reached to `coverage`; records the first 20 problems and fails on any. Returns the coverage
/// for the caller's own expectations.
func runSchedules<Coverage: Sendable>(_ count: Int, coverage: Coverage,
                                      _ run: @escaping @Sendable (Int, inout Coverage) throws -> [String]) async throws -> Coverage {
    let (problems, seen) = try await offPool { () throws -> ([String], Coverage) in
        var problems: [String] = []
        var seen = coverage
        for schedule in 0..<count { problems += try run(schedule, &seen) }
        return (problems, seen)
    }
    for problem in problems.prefix(20) { Issue.record("\(problem)") }
    #expect(problems.isEmpty, "\(problems.count) problems")
    return seen
}

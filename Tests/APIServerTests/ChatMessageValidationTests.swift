import Foundation
import Testing

@testable import APIServer

/// Chat messages as OpenAI's endpoint takes them: a known role, and content unless the message
/// is an assistant's (tool-calling) or a legacy function result. Both were served before.
@Suite struct ChatMessageValidationTests {
    static func validate(_ json: String) -> String? {
        do {
            let body = try JSONDecoder().decode(ChatCompletionBody.self, from: Data(json.utf8))
            _ = try BodyFuzzTests.validator.validate(body)
            return nil
        } catch let error as APIError {
            return error.message
        } catch {
            return "undecodable: \(error)"
        }
    }

    @Test func unknownRolesAndMissingContentAreRefusedNamingTheMessage() {
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "alien", "content": "x"}]}"#)
                == "'messages[1].role' must be one of system, developer, user, assistant, tool, function (got 'alien')")
        #expect(Self.validate(#"{"messages": [{"role": "user"}]}"#)
                == "'messages[0].content' is missing; a user message needs content")
        #expect(Self.validate(#"{"messages": [{"role": "system", "content": null}, {"role": "user", "content": "x"}]}"#)
                == "'messages[0].content' is missing; a system message needs content")
        // What OpenAI takes is still served.
        for role in ["system", "developer", "user", "tool"] {
            #expect(Self.validate(#"{"messages": [{"role": "\#(role)", "content": "x"}]}"#) == nil, "\(role)")
        }
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant"}, {"role": "user", "content": "y"}]}"#) == nil)
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}"#) == nil)
    }
}

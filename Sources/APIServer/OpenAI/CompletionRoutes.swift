import ServingEngine
import Foundation
import Hummingbird
import NIOCore

/// The OpenAI-compatible routes: `POST /v1/chat/completions`, `POST /v1/completions`,
/// `GET /v1/models`.
///
/// A request is sized (``PromptTokenizer``), submitted to the ``CompletionBackend``, and answered
/// as the engine's events arrive: tokens are streamed when the simulated engine produces them, so
/// the latency a client measures is the simulated engine's latency (paced at 1×).
struct CompletionRoutes: Sendable {
    let backend: any CompletionBackend
    let metrics: ServingMetrics
    let validator: CompletionValidator
    let maxBodyBytes: Int
    /// Unix time the server started; `created` of the served model.
    let startedAt: Int

    func register(on router: Router<ServerContext>) {
        router.post("/v1/chat/completions") { request, context in
            let arrived = ContinuousClock.now
            var request = request
            let body = try await request.decodeJSON(ChatCompletionBody.self, limitBytes: maxBodyBytes,
                                                  maxModelLen: validator.maxModelLen)
            return try await serve(
                try validator.validate(body), flavor: .chat, channel: context.channel, arrived: arrived)
        }
        router.post("/v1/completions") { request, context in
            let arrived = ContinuousClock.now
            var request = request
            let body = try await request.decodeJSON(TextCompletionBody.self, limitBytes: maxBodyBytes,
                                                  maxModelLen: validator.maxModelLen)
            return try await serve(
                try validator.validate(body), flavor: .text, channel: context.channel, arrived: arrived)
        }
        router.get("/v1/models") { _, _ in
            JSONWire.response(ModelList(data: [.init(id: backend.modelName, created: startedAt, maxModelLen: validator.maxModelLen)]))
        }
        // The openai package's `models.retrieve(id)`: the served model, else OpenAI's 404.
        router.get("/v1/models/:id") { _, context in
            let id = context.pathParameter("id")
            guard id == backend.modelName else { throw APIError.modelNotFound(id) }
            return JSONWire.response(ModelList.Model(id: id, created: startedAt, maxModelLen: validator.maxModelLen))
        }
        // vLLM's extras that benchmark clients probe.
        router.get("/version") { _, _ in
            JSONWire.response(["version": Self.version])
        }
        router.post("/tokenize") { request, _ in
            var request = request
            let body = try await request.decodeJSON(TokenizeBody.self, limitBytes: maxBodyBytes)
            if let model = body.model, model != validator.servedModel { throw APIError.modelNotFound(model) }
            let text: String
            if body.prompt != nil, body.messages != nil {
                throw APIError.invalidRequest("send 'prompt' or 'messages', not both", param: "messages")
            }
            if let prompt = body.prompt {
                text = prompt
            } else if let messages = body.messages {
                try validator.check(messages)
                text = PromptTokenizer.chatPrompt(messages.map { ($0.role, $0.content?.text ?? "") })
            } else {
                throw APIError.invalidRequest("'prompt' or 'messages' is required", param: "prompt")
            }
            let tokens = PromptTokenizer.tokenIDs(text)
            return JSONWire.response(
                TokenizeReply(count: tokens.count, tokens: tokens, maxModelLen: validator.maxModelLen))
        }
    }

    /// What `GET /version` reports.
    static var version: String { APIServer.version }


    /// Submits and waits for admission, which decides the status: a refusal is a plain JSON error
    /// (429/503), an admission becomes a 200 (streamed or whole). `arrived`: when the request's
    /// head reached the handler; its latencies run from there (reading, parsing and tokenizing
    /// the prompt are the server's time too).
    private func serve(
        _ completion: ValidatedCompletion, flavor: CompletionFlavor, channel: any Channel,
        arrived started: ContinuousClock.Instant
    ) async throws -> Response {
        let submitted = ContinuousClock.now
        let stream = backend.submit(
            CompletionRequest(
                promptTokens: completion.promptTokens, maxTokens: completion.maxTokens, user: completion.user,
                minTokens: completion.minTokens, ignoreEOS: completion.ignoreEOS,
                prefixHashes: PromptTokenizer.blockKeys(completion.promptTokenIDs),
                prefixBlockTokens: PromptTokenizer.prefixBlockTokens)
        )
        var events = stream.makeAsyncIterator()
        // The backend answers admission at once (the contract); waiting here is not a client wait.
        let requestID: Int
        switch await events.next() {
        case .accepted(let id):
            requestID = id
            metrics.noteTimeBeforeSubmission(requestID: id, seconds: CompletionSession.seconds(submitted - started))
        case .failed(let reason, let status):
            metrics.record(RequestOutcome(admitted: false, rejectedStatus: status))
            throw APIError.engine(reason: reason, status: status)
        default:
            metrics.record(RequestOutcome(admitted: false, rejectedStatus: 503))
            throw APIError.engine(reason: "the engine did not admit the request", status: 503)
        }
        let header = CompletionHeader(
            id: flavor.idPrefix + String(requestID), created: Int(Date().timeIntervalSince1970),
            model: completion.model, flavor: flavor)
        let session = CompletionSession(
            requestID: requestID, header: header, promptTokens: completion.promptTokens, events: events,
            started: started, backend: backend, metrics: metrics, stop: completion.stop,
            keepsStopString: completion.includeStopString, minTokens: completion.minTokens)
        if completion.stream {
            return streamingResponse(
                session, includeUsage: completion.includeUsageInStream, continuousUsage: completion.continuousUsage,
                echo: completion.echo, channel: channel)
        }
        return try await wholeResponse(session, echo: completion.echo, channel: channel)
    }

    /// Waits for the whole completion. If the client hangs up meanwhile, the engine is told.
    /// `echo`: text the reply starts with (legacy `echo: true`, the prompt).
    private func wholeResponse(_ session: CompletionSession, echo: String?, channel: any Channel) async throws
        -> Response
    {
        let content: String
        let finishReason: String
        do {
            (content, finishReason) = try await ClientWatch.run(on: channel) {
                var content = ""
                while true {
                    switch try await session.next() {
                    case .text(let text): content += text
                    case .finished(let reason): return (content, reason)
                    case .failed(let error): throw error
                    }
                    // Cancellation (the client left) ends the wait even between engine events.
                    try Task.checkCancellation()
                }
            }
        } catch let error as APIError {
            throw error
        } catch is ServerStopping {
            session.clientLeft()
            throw APIError.serverStopping
        } catch {
            session.clientLeft()
            throw error
        }
        let choice = Choice(
            flavor: session.header.flavor, streaming: false, content: (echo ?? "") + content,
            finishReason: finishReason)
        let body = CompletionBody(
            header: session.header, streaming: false, choices: [choice], usage: session.usage)
        // The connection stays open for the client's next request (HTTP/1.1 keep-alive).
        return JSONWire.response(body)
    }

    /// Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`. A failure after the
    /// stream started becomes an error chunk (OpenAI's error shape), then `[DONE]`. An `echo` is the
    /// first chunk's text, before any token, as vLLM streams it.
    private func streamingResponse(
        _ session: CompletionSession, includeUsage: Bool, continuousUsage: Bool, echo: String?, channel: any Channel
    ) -> Response
    {
        let header = session.header
        @Sendable func chunk(_ choice: Choice?, usage: Usage? = nil) -> ByteBuffer {
            let body = CompletionBody(
                header: header, streaming: true, choices: choice.map { [$0] } ?? [], usage: usage)
            return ServerSentEvent.data(json: body)
        }
        let body = ResponseBody { writer in
            do {
                try await ClientWatch.run(on: channel) {
                    if header.flavor == .chat {
                        // The role and an empty content, as OpenAI's and vLLM's opening delta
                        // (without `content` a client reading `delta["content"]` raised). Empty, it
                        // is no token: aiperf and the openai package count the first token from
                        // the next chunk, whose text is not empty. With continuous usage it carries
                        // the usage so far (0 completion tokens), as vLLM's, as every chunk with
                        // a content does.
                        try await writer.write(
                            chunk(Choice(flavor: .chat, streaming: true, role: "assistant", content: ""),
                                  usage: continuousUsage ? session.usage : nil))
                    }
                    if let echo, !echo.isEmpty {
                        try await writer.write(chunk(Choice(flavor: header.flavor, streaming: true, content: echo)))
                    }
                    while true {
                        switch try await session.next() {
                        case .text(let text):
                            guard !text.isEmpty else { continue }
                            try await writer.write(
                                chunk(Choice(flavor: header.flavor, streaming: true, content: text),
                                      usage: continuousUsage ? session.usage : nil))
                            try Task.checkCancellation()
                            continue
                        case .finished(let reason):
                            try await writer.write(
                                chunk(Choice(flavor: header.flavor, streaming: true, finishReason: reason)))
                            if includeUsage { try await writer.write(chunk(nil, usage: session.usage)) }
                        case .failed(let error):
                            try await writer.write(ServerSentEvent.data(json: error))
                        }
                        try await writer.write(ByteBuffer(string: ServerSentEvent.done))
                        return
                    }
                }
            } catch is ServerStopping {
                // The server is stopping: the request is cancelled, and the client told so in
                // the stream's own error shape before its end.
                session.clientLeft()
                do {
                    try await writer.write(ServerSentEvent.data(json: APIError.serverStopping))
                    try await writer.write(ByteBuffer(string: ServerSentEvent.done))
                } catch {
                    return  // the client left meanwhile
                }
            } catch {
                // The connection closed or a write failed: nobody is listening any more.
                session.clientLeft()
                return
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: body)
    }
}

/// The body of `POST /tokenize` (vLLM's): a prompt, or chat messages joined as for a chat completion.
struct TokenizeBody: Decodable {
    var model: String?
    var prompt: String?
    var messages: [ChatMessage]?

    enum CodingKeys: String, CodingKey { case model, prompt, messages }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        messages = try c.decodeIfPresent([ChatMessage].self, forKey: .messages)
        // As on vLLM, only text is tokenized here; the generic message listed token-id arrays,
        // which /v1/completions takes but this route does not.
        do {
            prompt = try c.decodeIfPresent(String.self, forKey: .prompt)
        } catch {
            // Only a value that is not a string is told to be one; a string the decoder could not
            // take (a lone surrogate escape) is left to ``Request/decodeJSON``, which says so.
            let notString = (try? c.decode(Double.self, forKey: .prompt)) != nil
                || (try? c.decode(Bool.self, forKey: .prompt)) != nil
                || (try? c.nestedUnkeyedContainer(forKey: .prompt)) != nil
                || (try? c.nestedContainer(keyedBy: CodingKeys.self, forKey: .prompt)) != nil
            guard notString else { throw error }
            // A list of prompts (which /v1/completions takes) was told "token ids need no
            // tokenizing", which says nothing of what it is: one string is taken, one per request.
            if let texts = try? c.decode([String].self, forKey: .prompt), !texts.isEmpty {
                throw APIError.invalidRequest(
                    "'prompt' of /tokenize must be one string, not a list of prompts: send each prompt in a request of its own",
                    param: "prompt")
            }
            throw APIError.invalidRequest("'prompt' of /tokenize must be a string (token ids need no tokenizing)", param: "prompt")
        }
    }
}

/// `{"count", "tokens", "max_model_len"}`: the ids of ``PromptTokenizer/tokenIDs(_:)``.
struct TokenizeReply: Encodable {
    var count: Int
    var tokens: [Int]
    var maxModelLen: Int
    enum CodingKeys: String, CodingKey {
        case count, tokens
        case maxModelLen = "max_model_len"
    }
}

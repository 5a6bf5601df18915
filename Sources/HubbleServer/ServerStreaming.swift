import GRPCCore

extension RPCRouter {
    /// Registers a server-streaming method (one request, a stream of responses) with chosen
    /// (de)serializers, for the methods Osprey serves as bytes rather than as generated
    /// messages: the relay's GetFlows passthrough and the agent's FlowBatches. `handler` gets
    /// the request, its headers and the call's context, and writes the responses.
    public mutating func registerServerStreaming<Request: Sendable, Response: Sendable>(
        _ descriptor: MethodDescriptor, deserializer: some MessageDeserializer<Request>,
        serializer: some MessageSerializer<Response>,
        handler:
            @escaping @Sendable (Request, Metadata, ServerContext, RPCWriter<Response>) async throws -> Void
    ) {
        registerHandler(forMethod: descriptor, deserializer: deserializer, serializer: serializer) {
            request, context in
            let message = try await request.messages.first { _ in true }
            guard let message else {
                throw RPCError(code: .invalidArgument, message: "\(descriptor.method) needs a request.")
            }
            return StreamingServerResponse { writer in
                try await handler(message, request.metadata, context, writer)
                return [:]
            }
        }
    }
}

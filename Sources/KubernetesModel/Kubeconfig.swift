/// A kubeconfig with one cluster, one user and one context (the current one), as `kubectl`
/// and the agent's `--kubeconfig` read it: what the lab, its tests and the benchmark write.
public enum Kubeconfig {
    /// How the user proves who it is.
    public enum Credential: Sendable {
        case token(String)
        /// A file holding the token, re-read as it rotates.
        case tokenFile(String)
    }

    /// The file's text: cluster, user and context all named `name`.
    public static func render(
        name: String, server: String, certificateAuthority: String, credential: Credential, comment: String? = nil
    ) -> String {
        let user: String
        switch credential {
        case .token(let token): user = "token: \(token)"
        case .tokenFile(let path): user = "tokenFile: \(path)"
        }
        return (comment.map { "# \($0)\n" } ?? "") + """
            apiVersion: v1
            kind: Config
            current-context: \(name)
            clusters:
            - name: \(name)
              cluster:
                server: \(server)
                certificate-authority: \(certificateAuthority)
            users:
            - name: \(name)
              user:
                \(user)
            contexts:
            - name: \(name)
              context:
                cluster: \(name)
                user: \(name)

            """
    }
}

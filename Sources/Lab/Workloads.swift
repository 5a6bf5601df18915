import HubbleTransport
import KubernetesModel

/// How one pod's process is started, and where its files go.
public struct WorkloadLaunch: Sendable, Equatable {
    public var pod: PlannedPod
    /// The program and its arguments, as the pod runs them.
    public var podCommand: [String]
    /// Files the program needs, written before it starts.
    public var files: [(path: String, contents: String)]
    /// A socket the pod listens on once it is ready (`tcp`/`udp`, port), if it serves anything.
    public var readiness: (proto: String, port: UInt16)?
    public var logPath: String
    public var pidPath: String

    /// The program's name (`nginx`, `dnsmasq`, `sh`).
    public var program: String { podCommand[0] }
    /// The command line that runs it inside the pod's network namespace.
    public var command: [String] { ["ip", "netns", "exec", pod.netns] + podCommand }

    public static func == (a: WorkloadLaunch, b: WorkloadLaunch) -> Bool {
        a.pod == b.pod && a.podCommand == b.podCommand && a.logPath == b.logPath
            && a.files.map(\.path) == b.files.map(\.path) && a.files.map(\.contents) == b.files.map(\.contents)
    }
}

/// Renders each pod's workload: nginx and dnsmasq configurations, client loops, resolv.conf.
public struct Workloads: Sendable {
    public let plan: LabPlan
    public static let clusterDomain = "cluster.local"

    public init(plan: LabPlan) { self.plan = plan }

    /// Directory of one pod's configuration, log and pid files.
    public func directory(of pod: PlannedPod) -> String {
        "\(plan.config.stateDirectory)/pods/\(pod.namespace)_\(pod.name)"
    }

    /// `ip netns exec` bind-mounts `/etc/netns/<netns>/resolv.conf` over `/etc/resolv.conf`,
    /// which is how each pod gets its own resolver configuration.
    public static func resolvConfPath(netns: String) -> String { "/etc/netns/\(netns)/resolv.conf" }

    public func launches() -> [WorkloadLaunch] { plan.pods.map(launch(for:)) }

    /// How the agent of `node` runs: in the node's namespace (whose private mount namespace,
    /// as `ip netns exec` gives it, has no tracefs: the agent needs none).
    public func agentLaunch(
        for node: PlannedNode, agentPath: String
    ) -> (command: [String], logPath: String, pidPath: String) {
        let dir = plan.config.nodeDirectory(node.name)
        return (
            [
                "ip", "netns", "exec", node.netns, agentPath, "--node-name", node.name,
                "--cluster", plan.config.name, "--metrics-address", "0.0.0.0:\(LabConfig.agentMetricsPort)",
                "--uplink", LabNames.nodeUplink,
            ] + metadataArguments + [
                "--hubble-listen-address", ":\(LabConfig.hubblePort)", "--hubble-socket-path", "\(dir)/hubble.sock",
                // Flow logs where a DaemonSet's hostPath would keep them.
                "--export-file-path", "\(dir)/flows.log",
                // Dynamic flow logs, as a mounted ConfigMap would give them (absent: none).
                "--flowlogs-config-path", "\(dir)/flowlogs.yaml",
                // Settings from a file, as a mounted ConfigMap gives them (see agentConfig).
                "--config", agentConfig(for: node).path,
            ] + agentTLSArguments + plan.config.agentArguments,
            plan.config.agentLogPath(node.name), plan.config.agentPIDPath(node.name)
        )
    }

    /// The agent's configuration file: Retina's pod-level metrics, labelled as its Standard Pod
    /// Level dashboard reads them, in the keys of Retina's own configuration.
    public func agentConfig(for node: PlannedNode) -> (path: String, contents: String) {
        (
            "\(plan.config.nodeDirectory(node.name))/agent.yaml",
            """
            # osprey-agent settings for \(node.name), as a ConfigMap would mount them: flag names
            # without dashes, or Retina's keys.
            enablePodLevel: true
            remoteContext: true

            """
        )
    }

    /// Where the agents learn pods and services: the lab's Kubernetes API when it serves one,
    /// else its inventory file.
    var metadataArguments: [String] {
        plan.config.apiServerPath == nil
            ? ["--metadata", "inventory", "--inventory", plan.config.inventoryPath]
            : ["--metadata", "kubernetes", "--kubeconfig", plan.config.nodeKubeconfigPath]
    }

    /// The lab's Kubernetes API server in the first node (a control-plane node): TLS on :6443
    /// there and on a unix socket for the host's port forward, objects from the inventory file.
    public func apiServerLaunch(ospreyPath: String) -> (command: [String], logPath: String, pidPath: String) {
        let config = plan.config
        let certificate = LabCertificates(config: config).apiServerCertificate
        return (
            [
                "ip", "netns", "exec", plan.nodes[0].netns, ospreyPath, "lab", "serve-api", "--inventory",
                config.inventoryPath, "--listen-address", ":\(LabConfig.apiServerPort)", "--listen-address",
                "unix://\(config.apiSocketPath)", "--tls-cert-file", certificate.cert, "--tls-key-file",
                certificate.key,
                "--token-file", config.apiTokenPath,
                // kube-state-metrics' node and pod series, for Prometheus beside it.
                "--state-metrics-address", "127.0.0.1:\(LabConfig.kubeStateMetricsPort)",
            ], "\(config.kubernetesDirectory)/apiserver.log", "\(config.kubernetesDirectory)/apiserver.pid.osprey"
        )
    }

    /// The host's `127.0.0.1:<port>` forwarded to the API server's socket (TLS passes through).
    public func apiServerForwardLaunch(port: Int) -> (command: [String], logPath: String, pidPath: String) {
        let config = plan.config
        return (
            [
                "socat", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork", "UNIX-CONNECT:\(config.apiSocketPath)",
            ], "\(config.kubernetesDirectory)/port-forward.log", "\(config.kubernetesDirectory)/port-forward.pid.osprey"
        )
    }

    /// A kubeconfig for the lab's API server at `server`, with the token file and the lab's CA.
    public func kubeconfig(server: String) -> String {
        let config = plan.config
        return Kubeconfig.render(
            name: config.name, server: server, certificateAuthority: LabCertificates(config: config).caFile,
            credential: .tokenFile(config.apiTokenPath),
            comment: "Written by `osprey lab up` for lab \(config.name): its Kubernetes API.")
    }

    /// With TLS: the agents' certificate, and the CA a client (the relay) must be signed by.
    var agentTLSArguments: [String] {
        guard plan.config.tls else { return [] }
        let certificates = LabCertificates(config: plan.config)
        return [
            "--hubble-tls-cert-file", certificates.agentCertificate.cert, "--hubble-tls-key-file",
            certificates.agentCertificate.key, "--hubble-tls-client-ca-files", certificates.caFile,
        ]
    }

    /// osprey-relay in the first node, as a relay pod: it serves on `:4245` there and on the
    /// lab's relay socket, and starts from that node's agent as its peer service.
    public func relayLaunch(relayPath: String) -> (command: [String], logPath: String, pidPath: String) {
        let config = plan.config
        let node = plan.nodes[0]
        var command = [
            "ip", "netns", "exec", node.netns, relayPath, "--listen-address", ":\(LabConfig.relayPort)",
            "--listen-address", "unix://\(config.relaySocketPath)", "--peer-service",
            "\(node.ipv4):\(LabConfig.hubblePort)", "--retry-timeout", "1s",
            "--ui-listen-address", "unix://\(config.uiSocketPath)",
        ]
        if config.tls {
            let certificates = LabCertificates(config: config)
            command += [
                "--tls-relay-server-cert-file", certificates.relayCertificate.cert, "--tls-relay-server-key-file",
                certificates.relayCertificate.key, "--tls-relay-client-ca-files", certificates.caFile,
                "--tls-hubble-server-ca-files", certificates.caFile, "--tls-client-cert-file",
                certificates.clientCertificate.cert, "--tls-client-key-file", certificates.clientCertificate.key,
                "--tls-peer-service-server-name", HubbleTLSNames.agent(node: node.name, cluster: config.name),
            ]
        }
        let dir = "\(config.stateDirectory)/relay"
        return (command, "\(dir)/osprey-relay.log", "\(dir)/osprey-relay.pid.osprey")
    }

    /// The host's `127.0.0.1:<port>` forwarded to the relay's socket (what `kubectl
    /// port-forward` does for a cluster), so that `osprey observe` works with its default server.
    public func relayForwardLaunch(port: Int) -> (command: [String], logPath: String, pidPath: String) {
        let config = plan.config
        let dir = "\(config.stateDirectory)/relay"
        return (
            [
                "socat", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork",
                "UNIX-CONNECT:\(config.relaySocketPath)",
            ], "\(dir)/port-forward.log", "\(dir)/port-forward.pid.osprey"
        )
    }

    /// The host's `127.0.0.1:<port>` forwarded to the relay's web UI socket.
    public func uiForwardLaunch(port: Int) -> (command: [String], logPath: String, pidPath: String) {
        let config = plan.config
        let dir = "\(config.stateDirectory)/relay"
        return (
            ["socat", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork", "UNIX-CONNECT:\(config.uiSocketPath)"],
            "\(dir)/ui-forward.log", "\(dir)/ui-forward.pid.osprey"
        )
    }

    /// The host's `127.0.0.1:<port>` forwarded to Prometheus inside the first node (each
    /// connection goes through `ip netns exec`, as `kubectl port-forward` would).
    public func prometheusForwardLaunch(port: Int) -> (command: [String], logPath: String, pidPath: String) {
        let node = plan.nodes[0]
        let dir = "\(plan.config.stateDirectory)/prometheus"
        return (
            [
                "socat", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork",
                "EXEC:ip netns exec \(node.netns) socat STDIO TCP\\:127.0.0.1\\:\(LabConfig.prometheusPort)",
            ], "\(dir)/port-forward.log", "\(dir)/port-forward.pid.osprey"
        )
    }

    /// Prometheus in the first node, scraping every node's agent every 5 s with the given rules:
    /// its files (config, rules) and command line.
    public func prometheusLaunch(
        rules: String
    ) -> (
        files: [(path: String, contents: String)], command: [String], logPath: String, pidPath: String
    ) {
        let dir = "\(plan.config.stateDirectory)/prometheus"
        let node = plan.nodes[0]
        let targets = plan.nodes.map { node in
            """
                  - targets: ["\(node.ipv4):\(LabConfig.agentMetricsPort)"]
                    labels: {cluster: \(plan.config.name), instance: \(node.name)}
            """
        }
        let config = """
            # Generated by `osprey lab up` for lab \(plan.config.name): every node's osprey-agent.
            global:
              scrape_interval: 5s
              evaluation_interval: 5s
            rule_files: [osprey-alerts.yaml]
            scrape_configs:
              - job_name: osprey
                honor_labels: true
                static_configs:
            \(targets.joined(separator: "\n"))
            \(plan.config.apiServerPath == nil ? "" : stateMetricsJob)

            """
        return (
            [("\(dir)/prometheus.yml", config), ("\(dir)/osprey-alerts.yaml", Self.firingAtOnce(rules))],
            [
                "ip", "netns", "exec", node.netns, "prometheus", "--config.file=\(dir)/prometheus.yml",
                "--storage.tsdb.path=\(dir)/data", "--web.listen-address=0.0.0.0:\(LabConfig.prometheusPort)",
                "--storage.tsdb.retention.time=1d",
            ],
            "\(dir)/prometheus.log", "\(dir)/prometheus.pid.osprey"
        )
    }

    /// kube-state-metrics' series (served by the lab's API server), as a cluster's Prometheus
    /// scrapes them.
    var stateMetricsJob: String {
        """
          - job_name: kube-state-metrics
            honor_labels: true
            static_configs:
              - targets: ["127.0.0.1:\(LabConfig.kubeStateMetricsPort)"]
                labels: {cluster: \(plan.config.name), instance: kube-state-metrics}
        """
    }

    /// The rules with every `for:` set to 0s: the lab's scenarios run for seconds, not the
    /// minutes production rules wait before firing.
    static func firingAtOnce(_ rules: String) -> String {
        rules.replacingOccurrences(
            of: #"(?m)^(\s+)for: [0-9]+[smh]\s*$"#, with: "$1for: 0s", options: .regularExpression)
    }

    public func launch(for pod: PlannedPod) -> WorkloadLaunch {
        let dir = directory(of: pod)
        var files = [(Self.resolvConfPath(netns: pod.netns), resolvConf(for: pod))]
        let program: [String]
        var readiness: (String, UInt16)?
        switch pod.spec.role {
        case .httpServer(let port):
            files.append(("\(dir)/nginx.conf", nginxConfig(for: pod, port: port, directory: dir)))
            program = ["nginx", "-c", "\(dir)/nginx.conf"]
            readiness = ("tcp", port)
        case .dnsServer:
            files.append(("\(dir)/cluster.hosts", clusterHosts()))
            program = [
                "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--addn-hosts=\(dir)/cluster.hosts",
                // Authoritative for every name: what is not in the hosts file is NXDOMAIN.
                "--local=/#/", "--user=root", "--group=root", "--pid-file=\(dir)/dnsmasq.pid",
                "--log-facility=-",
            ]
            readiness = ("udp", 53)
        case .client(let behavior):
            program = ["sh", "-c", clientScript(behavior)]
        }
        return WorkloadLaunch(
            pod: pod, podCommand: program, files: files, readiness: readiness,
            logPath: "\(dir)/\(program[0]).log", pidPath: "\(dir)/\(program[0]).pid.osprey")
    }

    /// The pod's /etc/resolv.conf as the kubelet writes it for its DNS policy.
    public func resolvConf(for pod: PlannedPod) -> String {
        switch pod.spec.dns {
        case .clusterFirst:
            let domain = Self.clusterDomain
            return """
                search \(pod.namespace).svc.\(domain) svc.\(domain) \(domain)
                nameserver \(plan.clusterDNS.clusterIP)
                options ndots:5 timeout:1 attempts:2

                """
        case .nameserver(let address):
            return "nameserver \(address)\noptions timeout:1 attempts:1\n"
        }
    }

    /// The cluster DNS records: every service name and every pod's dashed-IPv4 name.
    public func clusterHosts() -> String {
        var lines = plan.services.map {
            "\($0.clusterIP) \($0.spec.name).\($0.spec.namespace).svc.\(Self.clusterDomain)"
        }
        lines += plan.pods.map {
            "\($0.ipv4) \(AddressPlan.podDNSName(ipv4: $0.ipv4, namespace: $0.namespace, clusterDomain: Self.clusterDomain))"
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func nginxConfig(for pod: PlannedPod, port: UInt16, directory dir: String) -> String {
        """
        daemon off;
        worker_processes 1;
        pid \(dir)/nginx.pid;
        error_log stderr warn;
        events { worker_connections 256; }
        http {
          access_log off;
          client_body_temp_path \(dir)/client_body;
          proxy_temp_path \(dir)/proxy;
          fastcgi_temp_path \(dir)/fastcgi;
          uwsgi_temp_path \(dir)/uwsgi;
          scgi_temp_path \(dir)/scgi;
          server {
            listen \(port);
            listen [::]:\(port);
            location / {
              default_type text/plain;
              return 200 "\(pod.qualifiedName) on \(pod.node.name)\\n";
            }
          }
        }

        """
    }

    /// A POSIX shell loop; each request has a 2 s limit so one stuck request never stalls it.
    func clientScript(_ behavior: ClientBehavior) -> String {
        let curl = "curl -s -o /dev/null -m 2"
        let body: String
        switch behavior {
        case .browse(let urls, let missingName):
            body = urls.map { "\(curl) \($0)" }.joined(separator: "; ") + "; getent hosts \(missingName) > /dev/null"
        case .blockedByPolicy(let url), .closedPort(let url):
            body = "\(curl) \(url)"
        case .unansweredDNS(let name):
            body = "getent hosts \(name) > /dev/null"
        }
        return "while :; do \(body); sleep 1; done"
    }
}

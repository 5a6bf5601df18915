import Foundation
import Lab
import TestSupport
import Testing

/// The web UI in headless Chromium against the relay of a 2-node lab, as a user sees it: the
/// namespace picker and URL, the shop's map and what its edges say, the live table with pause,
/// the verdict menu and the filter bar, a DNS row's details, the all-namespaces view, a node
/// going away and coming back, and a hostile DNS name shown as text.
extension AgentIntegration {
    @Suite("web UI in Chromium")
    struct WebUILabTests {
        /// A 2-node lab with the relay, its UI forwarded to a free port on the host.
        static func labConfig(_ tag: Character) throws -> LabConfig {
            var config = try LabConfig(
                name: LabFixture.uniqueName(tag), nodeCount: 2, topology: .bridge, agentPath: OspreyBinary.agent.path)
            config.relayPath = OspreyBinary.relay.path
            config.relayPort = nil
            config.uiPort = try Browser.freePort()
            return config
        }

        @Test("the shop's map, table, filters, details, node status and a hostile name, in a real browser")
        func browser() async throws {
            let config = try Self.labConfig("w")
            try await LabFixture.withLab(config) { plan, _ in
                let browser = try Browser()
                defer { browser.close() }
                /// Records a failed step with the screenshot that shows it.
                func step(_ name: String, _ passed: Bool, _ what: String) {
                    guard !passed else { return }
                    Issue.record("\(what) (screenshot: \(browser.saveScreenshot("\(config.name)-\(name)")))")
                }
                func bool(_ script: String, _ arguments: [Any] = []) -> Bool {
                    ((try? browser.run(script, arguments)) as? Bool) == true
                }
                func text(_ script: String, _ arguments: [Any] = []) -> String {
                    ((try? browser.run(script, arguments)) as? String) ?? ""
                }
                // An edge's label, its lines joined as one.
                let edgeLabel =
                    "const l = document.querySelector(`[data-test=edge-label][data-edge=\"${arguments[0]}\"]`); return l ? [...l.children].map((line) => line.textContent).join(' · ') : ''"

                try browser.open("http://127.0.0.1:\(config.uiPort!)/")
                try browser.run("window.alert = () => { window.__alerted = true }")
                // Namespace picker and the URL.
                step(
                    "namespaces",
                    browser.waitFor(
                        "return [...document.querySelectorAll('#namespace option')].map(o => o.value).join(',') === ',billing,kube-system,shop'",
                        timeout: 30), "the namespace picker lists All, billing, kube-system, shop")
                try browser.run(
                    "const s = document.getElementById('namespace'); s.value = 'shop'; s.dispatchEvent(new Event('change'))"
                )
                step("url", (try browser.url).hasSuffix("?namespace=shop"), "the URL holds the namespace")

                // The shop's map: its cards, the billing box, the world by address.
                let cards =
                    "return [...document.querySelectorAll('[data-test=card]')].map(c => c.dataset.card + '|' + c.querySelector('[data-test=card-sub]').textContent).sort().join(',')"
                step(
                    "cards",
                    browser.waitFor(
                        """
                        const cards = \(cards.dropFirst(7));
                        return ['shop/frontend|2 pods', 'shop/loadgen|1 pod', 'shop/untrusted|1 pod', 'shop/checkout|1 pod',
                          'shop/reporter|1 pod', 'billing/ledger|1 pod', 'world/192.0.2.53|world'].every(c => cards.includes(c))
                        """, timeout: 30), "the shop map's cards: \(text(cards))")
                // coredns answers DNS on 53/UDP: one line for the port, though its datagrams are
                // also reported without DNS (where they enter the pod).
                let dnsPorts =
                    "return [...document.querySelectorAll('[data-card=\"kube-system/coredns\"] [data-test=card-port]')].map(p => p.textContent).join(',')"
                step(
                    "dns-port",
                    browser.waitFor("return (() => { \(dnsPorts) })() === '53 • UDP • DNS'", timeout: 20),
                    "the coredns card lists 53/UDP once, as DNS: \(text(dnsPorts))")
                step(
                    "billing-box",
                    bool(
                        """
                        const box = state.map.boxes.find(b => b.namespace === 'billing');
                        const card = state.map.cards.find(c => c.id === 'billing/ledger');
                        return !!box && card.x >= box.x && card.y >= box.y && card.x + card.width <= box.x + box.width
                        """), "ledger is drawn inside the billing box")

                // loadgen → frontend: forwarded, a rising count, a handshake RTT.
                let web = "shop/loadgen→shop/frontend:TCP/80"
                _ = browser.waitFor("const f = () => { \(edgeLabel) }; return / rtt /.test(f())", [web])
                let first = text(edgeLabel, [web])
                Thread.sleep(forTimeInterval: 3)
                let second = text(edgeLabel, [web])
                /// The number a label gives for `what` ("12 conn", "3 dropped"), if it says it.
                func count(_ what: String, in label: String) -> Int? {
                    label.split(separator: "·").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
                        .compactMap { part in
                            part.hasSuffix(" \(what)") ? Int(part.dropLast(what.count + 1)) : nil
                        }.first
                }
                /// A step: every connection of `edge` went `what` ("dropped", "RST"), counted once each.
                func everyConnection(_ name: String, _ edge: String, _ what: String) {
                    let label = text(edgeLabel, [edge])
                    let opened = count("conn", in: label) ?? -10
                    let failed = count(what, in: label) ?? 0
                    step(
                        name, failed >= 1 && abs(opened - failed) <= 2,
                        "\(edge): every connection is \(what), counted once each: \(label)")
                }
                step(
                    "web-edge",
                    first.hasPrefix("80/TCP") && first.contains("rtt")
                        && (count("conn", in: second) ?? 0) > (count("conn", in: first) ?? .max),
                    "loadgen → frontend says 80/TCP, a rising count of connections and an RTT: \(first) then \(second)")
                step(
                    "web-edge-forwarded",
                    bool(
                        "return !document.querySelector(`[data-test=edge][data-edge=\"${arguments[0]}\"]`).classList.contains('dropped')",
                        [web]), "loadgen → frontend is not drawn as dropped")

                // untrusted → frontend: dropped, with its reason in the details. Each denied
                // connection counts once, though its SYN is a flow leaving the pod and each of
                // its tries a drop.
                let denied = "shop/untrusted→shop/frontend:TCP/80"
                everyConnection("denied-count", denied, "dropped")
                try browser.run(
                    "document.querySelector(`[data-test=edge-label][data-edge=\"${arguments[0]}\"]`).dispatchEvent(new MouseEvent('click'))",
                    [denied])
                let details = "return document.getElementById('details-body').textContent"
                step(
                    "denied",
                    text(details).contains("POLICY_DENIED")
                        && bool(
                            "return document.querySelector(`[data-test=edge][data-edge=\"${arguments[0]}\"]`).classList.contains('dropped')",
                            [denied]),
                    "untrusted → frontend is dropped with its reason: \(text(details))")

                // checkout → ledger:8080 resets; the reporter's unanswered DNS.
                step(
                    "resets",
                    browser.waitFor(
                        "const f = () => { \(edgeLabel) }; return / RST/.test(f())",
                        ["shop/checkout→billing/ledger:TCP/8080"]),
                    "checkout → ledger:8080 is marked with resets: \(text(edgeLabel, ["shop/checkout→billing/ledger:TCP/8080"]))"
                )
                // Every connection to the closed port is reset, and each counts once, though its
                // SYN and RST are flows on both nodes.
                everyConnection("reset-count", "shop/checkout→billing/ledger:TCP/8080", "RST")
                step(
                    "unanswered",
                    browser.waitFor(
                        "const f = () => { \(edgeLabel) }; return /unanswered/.test(f())",
                        ["shop/reporter→world/192.0.2.53:UDP/53"], timeout: 20),
                    "the reporter's DNS to 192.0.2.53 is marked unanswered: \(text(edgeLabel, ["shop/reporter→world/192.0.2.53:UDP/53"]))"
                )
                // DNS edges count queries, one each whichever node reported it.
                let lookups = text(edgeLabel, ["shop/loadgen→kube-system/coredns:UDP/53"])
                step(
                    "dns-queries", (count("queries", in: lookups) ?? 0) > 0,
                    "loadgen → coredns counts DNS queries: \(lookups)")

                // The page stays responsive while it streams: a script call answers within 250 ms.
                var calls: [Double] = []
                for _ in 0..<5 {
                    let began = Date()
                    try browser.run("return document.querySelectorAll('[data-test=flow-row]').length")
                    calls.append(Date().timeIntervalSince(began))
                }
                step(
                    "responsive", calls.sorted()[2] < 0.25,
                    "a script call while streaming took \(calls.sorted()[2]) s (median of 5)")

                // The table streams; pause holds new rows, resume brings them.
                let firstRow = "const r = document.querySelector('[data-test=flow-row]'); return r ? r.textContent : ''"
                let before = text(firstRow)
                step(
                    "stream",
                    browser.waitFor(
                        "const f = () => { \(firstRow) }; return f() !== arguments[0]", [before], timeout: 2),
                    "new rows within 2 s")
                try browser.run("document.getElementById('pause').click()")
                let held = text(firstRow)
                Thread.sleep(forTimeInterval: 1.5)
                step(
                    "pause",
                    text(firstRow) == held
                        && text("return document.getElementById('new-rows').textContent").hasSuffix(" new"),
                    "paused: the rows stay and \"N new\" counts what waits")
                try browser.run("document.getElementById('pause').click()")
                step(
                    "resume",
                    text(firstRow) != held && text("return document.getElementById('new-rows').textContent").isEmpty,
                    "resumed: the held rows are shown")

                /// Waits until the table and the map both show something and every row (`r`) and
                /// every edge (`e`) passes its JavaScript condition.
                func onlyShown(rows: String, edges: String) -> Bool {
                    browser.waitFor(
                        """
                        const rows = [...document.querySelectorAll('[data-test=flow-row]')];
                        const edges = [...document.querySelectorAll('[data-test=edge]')];
                        return rows.length > 0 && edges.length > 0 && rows.every(r => \(rows))
                          && edges.every(e => \(edges))
                        """, timeout: 20)
                }

                // The verdict menu changes map and table.
                try browser.run(
                    "const s = document.getElementById('verdict'); s.value = 'DROPPED'; s.dispatchEvent(new Event('change'))"
                )
                step(
                    "verdict",
                    onlyShown(rows: "r.textContent.includes('DROPPED')", edges: "e.classList.contains('dropped')"),
                    "DROPPED: only dropped rows and edges")
                step("verdict-url", (try browser.url).contains("verdict=DROPPED"), "the URL holds the verdict")
                try browser.run(
                    "const s = document.getElementById('verdict'); s.value = ''; s.dispatchEvent(new Event('change'))")

                // A DNS answer's details: query, rcode, latency.
                step(
                    "dns-details",
                    browser.waitFor(
                        """
                        const shown = state.rows.filter(r => !hidden(r.flow));
                        const i = shown.findIndex(r => r.flow.l7 && r.flow.l7.dns && r.flow.l7.dns.rcode);
                        if (i < 0) return false;
                        document.querySelectorAll('[data-test=flow-row]')[i].click();
                        const field = (name) => document.querySelector(`#details-body dd[data-field="${name}"]`);
                        return !!field('l7.dns.query') && !!field('l7.dns.rcode') && !!field('l7.latency_ns')
                        """, timeout: 20), "a DNS answer's details show its query, rcode and latency")
                // The filter bar changes map and table.
                try browser.run(
                    "document.getElementById('filter-input').value = 'from:label=app=loadgen'; document.getElementById('filter-form').requestSubmit()"
                )
                step(
                    "filter",
                    onlyShown(
                        rows: "r.firstChild.textContent === 'shop/loadgen'",
                        edges: "e.dataset.source === 'shop/loadgen'"),
                    "from:label=app=loadgen: only loadgen's rows and edges")
                step(
                    "filter-url", (try browser.url).contains("filter=from%3Alabel%3Dapp%3Dloadgen"),
                    "the URL holds the filter: \(try browser.url)")

                try browser.run("removeFilter('from:label=app=loadgen')")

                // Clicking a card shows its pods and labels and filters on it.
                _ = browser.waitFor(
                    "const c = document.querySelector('[data-test=card][data-card=\"shop/frontend\"]'); if (!c) return false; c.dispatchEvent(new MouseEvent('click')); return true"
                )
                step(
                    "card-click",
                    browser.waitFor(
                        """
                        const body = document.getElementById('details-body').textContent;
                        const chips = [...document.querySelectorAll('[data-test=filter-chip]')].map(c => c.firstChild.textContent);
                        return body.includes('frontend-') && body.includes('k8s:app=frontend') && chips.includes('workload=shop/frontend')
                        """), "a card's details list its pods and labels, and it becomes a filter")
                try browser.run("removeFilter('workload=shop/frontend')")

                // Exports: the flows as lines `osprey observe --input-file` reads; the map as JSON.
                let exported = "/tmp/osprey-ui-export-\(config.name).json"
                defer { try? FileManager.default.removeItem(atPath: exported) }
                let download = try Host().execute([
                    "curl", "-s", "-o", exported, "http://127.0.0.1:\(config.uiPort!)/api/flows?namespace=shop",
                ])
                let read = try OspreyBinary.cli.run(["observe", "--input-file", exported, "-o", "json"])
                step(
                    "export-flows",
                    download.status == 0 && read.status == 0 && read.stdout.contains("\"namespace\":\"shop\""),
                    "the exported flows read back with osprey observe --input-file: \(read.stderr)")
                let map = try Host().execute([
                    "curl", "-s", "http://127.0.0.1:\(config.uiPort!)/api/map?namespace=shop",
                ])
                let mapObject = try? JSONSerialization.jsonObject(with: Data(map.stdout.utf8)) as? [String: Any]
                step("export-map", (mapObject?["cards"] as? [Any])?.isEmpty == false, "the map exports as JSON")

                // The theme toggle switches light and dark.
                let background = "return getComputedStyle(document.body).backgroundColor"
                let light = text(background)
                try browser.run("document.getElementById('theme').click()")
                step("theme", text(background) != light, "the theme toggle changes the page's colours")
                try browser.run("document.getElementById('theme').click()")

                // All namespaces: every card, none overlapping another.
                try browser.run(
                    "const s = document.getElementById('namespace'); s.value = ''; s.dispatchEvent(new Event('change'))"
                )
                step(
                    "all-namespaces",
                    browser.waitFor(
                        """
                        const rects = [...document.querySelectorAll('[data-test=card] rect')].map(r => r.getBoundingClientRect());
                        if (rects.length < 8) return false;
                        for (let i = 0; i < rects.length; i++) for (let j = i + 1; j < rects.length; j++) {
                          const a = rects[i], b = rects[j];
                          if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) return false;
                        }
                        return true
                        """, timeout: 20), "the all-namespaces view has its cards and none overlap")

                // A pod asks DNS for a hostile name: the UI shows the text, never runs it. The
                // name is in presentation format (a label's spaces and parentheses escaped), which
                // leaves the markup in it intact.
                let reporter = try #require(plan.pods.first { $0.name.hasPrefix("reporter") })
                let hostile = #"<img\ src=x\ onerror=alert\(1\)>"#
                let query = """
                    import socket, struct
                    labels = [b'<img src=x onerror=alert(1)>', b'evil']
                    name = b''.join(bytes([len(l)]) + l for l in labels) + b'\\x00'
                    packet = struct.pack('>HHHHHH', 0x5151, 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 1, 1)
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    for _ in range(3): s.sendto(packet, ('192.0.2.53', 53))
                    """
                _ = try LabFixture.exec(reporter.netns, ["python3", "-c", query])
                step(
                    "xss",
                    browser.waitFor(
                        """
                        const i = state.rows.filter(r => !hidden(r.flow)).findIndex(r => r.flow.l7 && r.flow.l7.dns && r.flow.l7.dns.query.startsWith(arguments[0]));
                        if (i < 0) return false;
                        document.querySelectorAll('[data-test=flow-row]')[i].click();
                        const query = document.querySelector('#details-body dd[data-field="l7.dns.query"]');
                        return !!query && query.textContent === arguments[0] + '.evil.'
                        """, [hostile], timeout: 20), "the hostile DNS name is shown as text in the details")
                step(
                    "xss-inert",
                    bool("return document.querySelectorAll('img').length === 0 && window.__alerted !== true"),
                    "no element was made of it and nothing ran")

                // A node goes away: the status bar says 1/2 within 10 s, and 2/2 when it is back.
                step(
                    "nodes",
                    browser.waitFor("return /2\\/2 nodes/.test(document.getElementById('status').textContent)"),
                    "2/2 nodes")
                let victim = plan.nodes[1]
                try #require(LabFixture.stopAgent(config, node: victim.name, signal: SIGKILL, timeout: 5))
                step(
                    "node-down",
                    browser.waitFor(
                        "return /1\\/2 nodes/.test(document.getElementById('status').textContent)", timeout: 10),
                    "1/2 nodes within 10 s of stopping an agent: \(text("return document.getElementById('status').textContent"))"
                )
                try LabFixture.startAgent(plan, node: victim, logSuffix: ".restarted")
                step(
                    "node-back",
                    browser.waitFor(
                        "return /2\\/2 nodes/.test(document.getElementById('status').textContent)", timeout: 30),
                    "2/2 nodes again when the agent is back")
            }
        }
    }
}

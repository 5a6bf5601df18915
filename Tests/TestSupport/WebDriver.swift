import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// Headless Chromium driven through chromedriver's WebDriver protocol (W3C), synchronously:
/// requests go through AsyncHTTPClient on its own event loop threads and the calling test
/// thread waits, so tests need no Swift concurrency. (Foundation's URLSession rejects
/// chromedriver's response headers.)
public final class Browser: @unchecked Sendable {
    let driver: Process
    let base: String
    let session: String
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts chromedriver on a free port and a headless Chromium session (1600×1000).
    public init() throws {
        let port = try Self.freePort()
        let driver = Process()
        driver.executableURL = URL(fileURLWithPath: "/usr/bin/chromedriver")
        driver.arguments = ["--port=\(port)"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        self.driver = driver
        base = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<100 {
            if ((try? Self.call(client, "GET", base + "/status", nil))?["value"] as? [String: Any])?["ready"] as? Bool
                == true
            {
                ready = true
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        guard ready else {
            killProcessTree(driver.processIdentifier)
            try? client.syncShutdown()
            throw Failure(description: "chromedriver did not start on port \(port)")
        }
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"]
                    ],
                ]
            ]
        ]
        do {
            let value = try Self.call(client, "POST", base + "/session", capabilities)
            guard let id = (value?["value"] as? [String: Any])?["sessionId"] as? String else {
                throw Failure(description: "no WebDriver session")
            }
            session = id
        } catch {
            killProcessTree(driver.processIdentifier)
            try? client.syncShutdown()
            throw error
        }
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    public func close() {
        _ = try? Self.call(client, "DELETE", "\(base)/session/\(session)", nil)
        killProcessTree(driver.processIdentifier)
        driver.waitUntilExit()
        try? client.syncShutdown()
    }

    public func open(_ url: String) throws { _ = try command("POST", "/url", ["url": url]) }

    public var url: String { get throws { try command("GET", "/url", nil) as? String ?? "" } }

    /// Runs `script` (a function body; `arguments[0]`… are `arguments`) in the page.
    @discardableResult
    public func run(_ script: String, _ arguments: [Any] = []) throws -> Any? {
        try command("POST", "/execute/sync", ["script": script, "args": arguments])
    }

    /// The page as a PNG.
    public func screenshot() throws -> Data {
        guard let text = try command("GET", "/screenshot", nil) as? String, let data = Data(base64Encoded: text) else {
            throw Failure(description: "no screenshot")
        }
        return data
    }

    /// Saves a screenshot for a failing test and returns its path.
    @discardableResult
    public func saveScreenshot(_ name: String) -> String {
        let path = "/tmp/osprey-ui-\(name).png"
        if let data = try? screenshot() { try? data.write(to: URL(fileURLWithPath: path)) }
        return path
    }

    /// Polls `script` until it returns true (up to `timeout` seconds).
    public func waitFor(_ script: String, _ arguments: [Any] = [], timeout: Double = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? run(script, arguments)) as? Bool == true { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    private func command(_ method: String, _ path: String, _ body: [String: Any]?) throws -> Any? {
        try Self.call(client, method, "\(base)/session/\(session)\(path)", body)?["value"]
    }

    /// One WebDriver request; its JSON answer (`{"value": …}`).
    static func call(
        _ client: HTTPClient, _ method: String, _ url: String, _ body: [String: Any]?
    ) throws -> [String: Any]? {
        var request = try HTTPClient.Request(url: url, method: .init(rawValue: method))
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .data(try JSONSerialization.data(withJSONObject: body))
        }
        let response = try client.execute(request: request, deadline: .now() + .seconds(30)).wait()
        let data = response.body.map { Data(buffer: $0) } ?? Data()
        let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: Any]
        guard response.status.code < 300 else {
            let error = (object?["value"] as? [String: Any])?["message"] as? String ?? "\(response.status)"
            throw Failure(description: "WebDriver \(method) \(url): \(error)")
        }
        return object
    }

    /// A TCP port nobody listens on now: the one the kernel picks for a bind to port 0.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { Glibc.close(fd) }
        guard PodSockets.withAddress("127.0.0.1", 0, { bind(fd, $0, $1) }) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        return try Int(UInt16(bigEndian: PodSockets.localAddress(fd).sin_port))
    }
}

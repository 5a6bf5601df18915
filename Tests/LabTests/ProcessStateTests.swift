import Foundation
import Testing

@testable import Lab

@Suite("Whether a process is still running")
struct ProcessStateTests {
    @Test("a process whose first thread has exited while another still runs is running; once all end, it is not")
    func leaderExitedFirst() throws {
        // The first thread ends itself (pthread_exit) and shows as a zombie; the second sleeps on,
        // holding the process's files — as a killed agent's threads do while they exit.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            "-c",
            "import ctypes, threading, time; threading.Thread(target=time.sleep, args=(1.5,)).start(); "
                + "ctypes.CDLL(None).pthread_exit(None)",
        ]
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let pid = process.processIdentifier
        var leaderState: Character?
        let deadline = Date().addingTimeInterval(1)
        while leaderState != "Z", Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            leaderState = LabController.state(statFile: "/proc/\(pid)/stat")
        }
        #expect(leaderState == "Z", "the first thread has exited")
        #expect(LabController.isRunning(pid), "the sleeping thread keeps the process running")
        process.waitUntilExit()
        #expect(!LabController.isRunning(pid))
    }
}

@Suite("Programs the lab starts")
struct SubprocessTests {
    @Test("a program the lab starts holds only its standard input, output and error, not what this process has open")
    func onlyStandardDescriptors() throws {
        // A descriptor without close-on-exec, as a socket some thread holds while a program starts.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        let listing = try Host().run(["sh", "-c", "ls /proc/$$/fd"])
        let held = listing.split(separator: "\n").compactMap { Int32($0) }
        #expect(held.sorted() == [0, 1, 2], "the shell's own descriptors: \(held)")
    }
}

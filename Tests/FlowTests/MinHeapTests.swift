import FlowTestKit
import Flows
import Testing

/// The heap behind the relay's time-ordered merge and the decoder's DNS deadlines: whatever
/// mix of pushes, pops and filters it sees, it hands out the smallest element it holds.
@Suite("MinHeap")
struct MinHeapTests {
    @Test("pushes, pops and filters in random order always pop the smallest kept element")
    func randomOperations() {
        var random = SeededRandom(seed: 0x4ea9)
        var heap = MinHeap<Int>()
        var model: [Int] = []
        for _ in 0..<20_000 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<55:
                let value = Int.random(in: 0..<1_000, using: &random)
                heap.push(value)
                model.append(value)
            case 55..<98:
                let expected = model.min()
                if let expected { model.remove(at: model.firstIndex(of: expected)!) }
                #expect(heap.popFirst() == expected)
            default:
                let divisor = Int.random(in: 2...5, using: &random)
                heap.filter { $0 % divisor != 0 }
                model.removeAll { $0 % divisor == 0 }
            }
            #expect(heap.count == model.count)
            #expect(heap.first == model.min())
        }
        var drained: [Int] = []
        while let value = heap.popFirst() { drained.append(value) }
        #expect(drained == model.sorted())
    }

    @Test("a filter that keeps everything or nothing leaves a heap that still orders")
    func filterEdges() {
        var heap = MinHeap<Int>()
        for value in [5, 3, 9, 1, 7] { heap.push(value) }
        heap.filter { _ in true }
        #expect(heap.first == 1)
        heap.filter { _ in false }
        #expect(heap.isEmpty && heap.popFirst() == nil)
        heap.push(4)
        #expect(heap.popFirst() == 4)
    }
}

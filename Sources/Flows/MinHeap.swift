/// A binary min-heap: `first` is the smallest element, push and pop cost O(log n). Serves the
/// relay's time-ordered merge and the decoder's DNS deadlines, both of which take from the front
/// while it is old enough.
public struct MinHeap<Element: Comparable> {
    @usableFromInline var elements: [Element] = []

    @inlinable public init(reservingCapacity capacity: Int = 0) {
        elements.reserveCapacity(capacity)
    }

    @inlinable public var count: Int { elements.count }
    @inlinable public var isEmpty: Bool { elements.isEmpty }
    /// The smallest element.
    @inlinable public var first: Element? { elements.first }

    @inlinable public mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child] < elements[parent] else { return }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the smallest element.
    @inlinable public mutating func popFirst() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let smallest = elements.removeLast()
        siftDown(from: 0)
        return smallest
    }

    /// Keeps only the elements `isIncluded` accepts, in O(n): the kept ones are ordered again
    /// bottom-up, each parent sifted below its already ordered subtrees.
    @inlinable public mutating func filter(_ isIncluded: (Element) -> Bool) {
        elements.removeAll { !isIncluded($0) }
        var parent = elements.count / 2
        while parent > 0 {
            parent -= 1
            siftDown(from: parent)
        }
    }

    /// Moves the element at `parent` down until neither child is smaller.
    @inlinable mutating func siftDown(from parent: Int) {
        var parent = parent
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < elements.count, elements[left] < elements[first] { first = left }
            if right < elements.count, elements[right] < elements[first] { first = right }
            if first == parent { return }
            elements.swapAt(parent, first)
            parent = first
        }
    }
}

import CMalloc

/// How the process's allocator should treat the flow pipeline's memory.
///
/// Every flow is one heap box: the decoder allocates one per event and the ring frees the one it
/// pushes out, so the heap's size stays flat while its contents turn over. glibc gives memory
/// back to the kernel whenever more than 128 KiB is free at the top of its heap, and then takes
/// page faults to get it back for the next batch — a quarter of the decoder's time in
/// `make bench`. Keeping up to 4 MiB free instead costs no measurable resident memory.
public enum FlowAllocator {
    public static let trimThreshold: Int32 = 4 << 20

    /// Call once at process start, before the pipeline runs.
    public static func configure() {
        _ = mallopt(M_TRIM_THRESHOLD, trimThreshold)
    }
}

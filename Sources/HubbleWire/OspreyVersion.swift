/// Osprey's version, reported in flows' emitter, ServerStatus and GetNodes.
public enum OspreyVersion {
    public static let current = "0.2.0"
}

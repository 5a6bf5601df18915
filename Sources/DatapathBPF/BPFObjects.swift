/// The datapath's compiled eBPF objects, one static byte array per `bpf/*.c` file, generated at
/// build time by the BPFCompiler plugin (e.g. `BPFObjects.tcCount`, `BPFObjects.kfreeSkb`).
public enum BPFObjects {}

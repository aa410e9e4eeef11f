//! Multi-node tests of gongjian. `sim` is the seeded sync simulator: real
//! replicas (RocksDB in temp dirs, the real acceptance rule) exchanging the
//! real sync protocol over a simulated network that drops, duplicates,
//! reorders and partitions, with node restarts. Tests live in tests/; the
//! `sim` binary runs thousands of seeds.

pub mod sim;

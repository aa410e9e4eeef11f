//! Multi-node tests live in tests/.

//! The write-ahead log of a raftkv node.

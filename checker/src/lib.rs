//! A linearizability checker.

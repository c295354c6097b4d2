//! The kargo binary.
fn main() {}

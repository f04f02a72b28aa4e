//! Ward's load benchmark.

fn main() {}

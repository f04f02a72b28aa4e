//! The `ward` binary: server, operator tool and client in one.

fn main() {}

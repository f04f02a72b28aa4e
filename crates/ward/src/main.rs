//! The `ward` binary: server, operator tool and client in one. A thin caller: the CLI lives
//! in `ward-cli`, the server in `ward-server`.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: allocation was a sixth of the server's CPU time on a
/// cached KV read (BENCHMARKS.md has the figures). Built without transparent huge pages,
/// which would otherwise make each thread's first allocation resident as a 2 MiB page.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ward_cli::run(|args| {
        let opts = ward_server::ServeOptions {
            config: args.config,
            dev: args.dev,
            dev_root_token_id: args.dev_root_token_id,
            dev_listen_address: args.dev_listen_address,
            dev_tls: args.dev_tls,
            dev_tls_cert_dir: args.dev_tls_cert_dir,
        };
        ward_server::serve(opts).map_err(Into::into)
    })
}

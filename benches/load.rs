//! Load benchmark for papo (issue 5): `cargo bench --bench load -- SCENARIO [flags]`.
//! Starts a release papo on a free port (or drives `--url`), runs one scenario and prints a
//! table and a final JSON line. The scenarios live in `benches/load/`; `-- help` lists them.

#[path = "load/mod.rs"]
mod load;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(load::main_cli(&args, env!("CARGO_BIN_EXE_papo")));
}

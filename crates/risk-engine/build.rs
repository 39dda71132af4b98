//! Rebuild when a migration is added: `embed_migrations!` tracks the files it read, not the
//! directory, so a new migration alone would otherwise leave a stale binary.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/risk");
}

// `sqlx::migrate!` embeds migrations/ at compile time; without this a new migration file would
// not rebuild the binaries (and a deploy would not apply it).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

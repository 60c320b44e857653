// rstest's #[files] globs at compile time: rebuild the tests when the sample folders change.
fn main() {
    println!("cargo::rerun-if-changed=tests/csta_examples");
}

fn main() {
    // Only this crate's test binaries: route hidapi's open()/ioctl() through the shims in
    // tests/virt/shim.rs so that a magic hidraw path reaches the in-process authenticator.
    println!("cargo::rustc-link-arg-tests=-Wl,--wrap=open");
    println!("cargo::rustc-link-arg-tests=-Wl,--wrap=ioctl");
}

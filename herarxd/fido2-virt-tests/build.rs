fn main() {
    // Only this crate's test binaries and its `hx-herarxd-virt` binary: route hidapi's
    // open()/ioctl() through the shims in tests/virt/shim.rs so that a magic hidraw path
    // reaches the in-process authenticator.
    for kind in ["tests", "bins"] {
        println!("cargo::rustc-link-arg-{kind}=-Wl,--wrap=open");
        println!("cargo::rustc-link-arg-{kind}=-Wl,--wrap=ioctl");
    }
}

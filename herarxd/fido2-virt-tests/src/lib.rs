//! Test-only crate: see `tests/`. It holds the end-to-end tests of herarxd's FIDO2 backend
//! (`herarxd::fido2::ctap`) against a software authenticator, because those test binaries are
//! linked with `--wrap=open,--wrap=ioctl`, which must not touch any other target.

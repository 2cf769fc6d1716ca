//! Builds the kvm guest image (the Sentry as a kernel) and embeds its path for `include_bytes!`.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    match linker::build_guest_image(&root, &out.join("guest-target")) {
        Ok(image) => println!("cargo:rustc-env=VMM_GUEST_IMAGE={}", image.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

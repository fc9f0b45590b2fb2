//! Embeds the web UI: every file under `ui/` (the committed output of `npm run build` in
//! `dashboard/`) becomes an entry of a table in `$OUT_DIR/ui_assets.rs`, with its media
//! type, an ETag and, when it shrinks, a gzip copy compressed here once at build time.
//!
//! A table of `include_bytes!` rather than a crate such as `rust-embed`: the UI is a dozen
//! files, and this keeps the dependency to `flate2` at build time only.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Media types by extension; anything else is served as bytes.
const TYPES: [(&str, &str, bool); 12] = [
    // (extension, media type, compress)
    ("html", "text/html; charset=utf-8", true),
    ("js", "text/javascript; charset=utf-8", true),
    ("css", "text/css; charset=utf-8", true),
    ("json", "application/json", true),
    ("svg", "image/svg+xml", true),
    ("txt", "text/plain; charset=utf-8", true),
    ("map", "application/json", true),
    ("woff2", "font/woff2", false),
    ("woff", "font/woff", false),
    ("png", "image/png", false),
    ("ico", "image/x-icon", true),
    ("webmanifest", "application/manifest+json", true),
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let ui = manifest.join("ui");
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    if ui.is_dir() {
        collect(&ui, &mut files);
    }
    files.sort();
    let gz_dir = out.join("ui-gz");
    std::fs::create_dir_all(&gz_dir).expect("create OUT_DIR/ui-gz");

    let mut table = String::from("[\n");
    for (i, file) in files.iter().enumerate() {
        let relative = file.strip_prefix(&ui).expect("under ui/");
        let url = format!(
            "/{}",
            relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        );
        let bytes = std::fs::read(file).expect("read a UI file");
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let (media, compress) = TYPES
            .iter()
            .find(|(e, ..)| *e == ext)
            .map_or(("application/octet-stream", false), |(_, m, c)| (*m, *c));
        let gzip = if compress { gzip(&bytes) } else { None };
        let gzip = match gzip {
            Some(packed) if packed.len() < bytes.len() => {
                let path = gz_dir.join(format!("{i}.gz"));
                std::fs::write(&path, packed).expect("write a gzip copy");
                format!("Some(include_bytes!({:?}))", path.display().to_string())
            }
            _ => "None".to_owned(),
        };
        let _ = writeln!(
            table,
            "    Asset {{ path: {url:?}, media_type: {media:?}, etag: \"\\\"{:016x}\\\"\", \
             bytes: include_bytes!({:?}), gzip: {gzip} }},",
            fnv1a(&bytes),
            file.display().to_string(),
        );
    }
    table.push(']');
    std::fs::write(out.join("ui_assets.rs"), table).expect("write ui_assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read ui/") {
        let path = entry.expect("read ui/").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path
            .file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        {
            files.push(path);
        }
    }
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// FNV-1a, 64 bits: an ETag that changes with the content (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

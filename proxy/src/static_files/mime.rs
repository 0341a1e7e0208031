//! The `Content-Type` of a served file, from its extension (case-insensitive). Browsers run an
//! ES module only with a JavaScript type, and every answer carries `X-Content-Type-Options:
//! nosniff`, so the type is what the browser goes by: an unknown extension is
//! `application/octet-stream`, which is downloaded, never rendered or run.

use std::path::Path;

/// The type of anything this table does not know.
pub const UNKNOWN: &str = "application/octet-stream";

/// `(extension, Content-Type)`, extensions in lower case.
const TYPES: &[(&str, &str)] = &[
    // Pages and their scripts: `.mjs` is an ES module (RFC 9239: text/javascript for both).
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("wasm", "application/wasm"),
    // Data: source maps are JSON (the source map format, ECMA-426).
    ("json", "application/json"),
    ("map", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("xml", "application/xml"),
    // Images.
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
    // Fonts (RFC 8081).
    ("woff2", "font/woff2"),
    ("woff", "font/woff"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    // Sounds noVNC plays (the bell).
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("mp3", "audio/mpeg"),
];

/// The `Content-Type` for `path`.
pub fn content_type(path: &Path) -> &'static str {
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return UNKNOWN;
    };
    TYPES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(extension))
        .map_or(UNKNOWN, |(_, content_type)| content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_fonts_maps_and_unknowns() {
        for (file, expected) in [
            ("core/rfb.js", "text/javascript; charset=utf-8"),
            ("app/main.MJS", "text/javascript; charset=utf-8"),
            ("xterm.js.map", "application/json"),
            ("fonts/mono.woff2", "font/woff2"),
            ("spice.wasm", "application/wasm"),
            ("LICENSE", UNKNOWN),
            ("archive.tar.gz", UNKNOWN),
            (".js", UNKNOWN),
        ] {
            assert_eq!(content_type(Path::new(file)), expected, "{file}");
        }
    }
}

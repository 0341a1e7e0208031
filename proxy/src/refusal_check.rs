//! The console pages' refusal check. A browser websocket refused before the upgrade (404
//! unknown token, 403 origin, ...) shows its script only close code 1006, never the status or
//! the `consolegate: <reason>` body. So a page whose websocket never opened sends the same URL
//! once more as a plain `POST` with the header `Consolegate-Check` (a POST, so the browser
//! sends its `Origin`), and gets the answer the upgrade got from the checks that need no
//! console: the origin, the token, its lookup (never consuming a single-use token) and a
//! driver for its kind. [`PASSED`] when they all pass.

use http::{Method, Request, StatusCode};

use crate::error::SessionError;
use crate::http_upgrade;
use crate::session::Shared;

/// The header that marks a refusal check.
pub const HEADER: &str = "consolegate-check";

/// The answer when every check passes: `200` with the body `consolegate: PHRASE`.
pub const PASSED: (StatusCode, &str) = (StatusCode::OK, "the checks that need no console pass");

/// Whether `request` is a refusal check: a `POST` carrying [`HEADER`].
pub fn is_check(request: &Request<()>) -> bool {
    request.method() == Method::POST && request.headers().contains_key(HEADER)
}

/// Runs the upgrade's checks that need no console on `request`, in the upgrade's order; the
/// error is the one the upgrade would have been refused with.
pub fn check(request: &Request<()>, shared: &Shared) -> Result<(), SessionError> {
    if !http_upgrade::origin_allowed(request, &shared.config.allowed_origins) {
        let origin = request
            .headers()
            .get(http::header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("?");
        return Err(SessionError::OriginRefused(origin.to_string()));
    }
    let token = http_upgrade::token(request).ok_or(SessionError::NoToken)?;
    let console = shared.tokens.lookup(&token)?;
    shared
        .drivers
        .for_console(console.kind, console.driver.as_deref())?;
    Ok(())
}

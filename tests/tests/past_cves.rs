//! Past vulnerabilities of other console proxies, tried against this one:
//!
//! - CVE-2021-3654 (websockify/noVNC): a path such as `//evil.example/%2F..` made the static
//!   file server redirect the browser to another host. Here no path is ever answered with a
//!   redirect (no 3xx, no `Location`), with or without a `web` directory.
//! - CVE-2013-0335 (nova-novncproxy): a token reached a console that was not its own. Here a
//!   session with console A's token reaches A's backend only, however the request mixes in B's
//!   token, and a token removed from the token file reaches no console at all. Which token
//!   counts when a request carries several: the **first** `token` parameter of the query; the
//!   `token` cookie only when the query has none.
//! - Directory listings: a directory without `index.html` is never listed (404).

use consolegate_tests::backend::{assert_echoes, Backend, Behaviour};
use consolegate_tests::http::{self, upgrade_request, Response};
use consolegate_tests::proxy::{Config, Proxy};
use consolegate_tests::scratch::TempDir;
use consolegate_tests::wait;
use consolegate_tests::ws::{self, Client};

/// Request targets that made websockify's file server redirect to `evil.example`, and
/// relatives of them.
const REDIRECT_BAIT: &[&str] = &[
    "//evil.example/%2F..",
    "//evil.example/%2F../",
    "//evil.example/%2f%2e%2e",
    "//evil.example/",
    "//evil.example",
    "///evil.example/",
    "/%2F%2Fevil.example",
    "/%2F%2Fevil.example/",
    "/%2F/evil.example/%2F..",
    "/%5C%5Cevil.example",
    "/%5Cevil.example/%2F..",
    "//evil.example/%2F../app",
    "//evil.example/app",
    "/app",
    "/app/%2F..",
    "/.%2F%2Fevil.example",
    "http://evil.example/",
    "http://evil.example/%2F..",
];

/// A `web` directory with `index.html` and a directory `app/` with an `index.html` of its own
/// (a directory websockify would have redirected to its slash-terminated form).
fn web_dir() -> TempDir {
    let web = TempDir::new("web");
    std::fs::create_dir_all(web.join("app")).unwrap();
    web.write("index.html", "<h1>consoles</h1>");
    web.write("app/index.html", "<h1>app</h1>");
    web
}

fn assert_no_redirect(target: &str, answer: &Response) {
    assert!(
        !(300..400).contains(&answer.status),
        "{target}: a redirect: {answer:?}"
    );
    assert_eq!(answer.header("location"), None, "{target}: {answer:?}");
    assert!(
        !answer.body.contains("evil.example"),
        "{target}: {answer:?}"
    );
}

#[test]
fn no_path_is_ever_redirected_with_a_web_directory() {
    let web = web_dir();
    let proxy = Proxy::start(Config::new().set("web", &web.path().display().to_string()));
    for target in REDIRECT_BAIT {
        for method in ["GET", "HEAD"] {
            let request = format!("{method} {target} HTTP/1.1\r\nHost: proxy.example\r\n\r\n");
            let answer = http::exchange(proxy.addr(), request.as_bytes());
            assert_no_redirect(target, &answer);
        }
    }
    // The directory without a slash is served as it is, not redirected to `/app/`.
    let answer = http::get(proxy.addr(), "/app");
    assert_eq!((answer.status, answer.body.as_str()), (200, "<h1>app</h1>"));
}

#[test]
fn no_path_is_ever_redirected_without_a_web_directory_nor_on_upgrades() {
    let echo = Backend::start(Behaviour::Echo);
    let proxy = Proxy::start(Config::new().token("tok", &echo.addr()));
    for target in REDIRECT_BAIT {
        let answer = http::get(proxy.addr(), target);
        assert_no_redirect(target, &answer);
        // A websocket upgrade on the same path, without a token: refused, never redirected.
        let answer = http::exchange(proxy.addr(), upgrade_request(target, "").as_bytes());
        assert_no_redirect(target, &answer);
        assert_eq!(answer.status, 400, "{target}: {answer:?}");
    }
}

/// Two consoles, A and B, each an echo backend that counts its connections, and a proxy with
/// a token for each.
struct TwoConsoles {
    proxy: Proxy,
    a: Backend,
    b: Backend,
}

const TOKEN_A: &str = "console-a-tok-5d21";
const TOKEN_B: &str = "console-b-tok-9e04";

impl TwoConsoles {
    fn start() -> Self {
        let a = Backend::start(Behaviour::Echo);
        let b = Backend::start(Behaviour::Echo);
        let proxy = Proxy::start(
            Config::new()
                .token(TOKEN_A, &a.addr())
                .token(TOKEN_B, &b.addr()),
        );
        Self { proxy, a, b }
    }

    /// Opens `path_and_query` with `cookie`, checks the session relays, and returns how many
    /// new connections A and B saw.
    fn reached(&self, path_and_query: &str, cookie: Option<&str>) -> (u64, u64) {
        let before = (self.a.accepted(), self.b.accepted());
        let client = match cookie {
            Some(c) => Client::default().cookie(c),
            None => Client::default(),
        };
        let mut ws = client.open(&self.proxy.url_path(path_and_query));
        assert_echoes(&mut ws, path_and_query.as_bytes());
        ws.close();
        (self.a.accepted() - before.0, self.b.accepted() - before.1)
    }
}

#[test]
fn a_token_reaches_its_own_console_only_however_tokens_are_mixed() {
    let two = TwoConsoles::start();
    let a_only = (1, 0);
    let b_only = (0, 1);
    let cases: &[(&str, Option<&str>, (u64, u64))] = &[
        (&format!("/websockify?token={TOKEN_A}"), None, a_only),
        (&format!("/websockify?token={TOKEN_B}"), None, b_only),
        // The query wins over the cookie, both ways round.
        (
            &format!("/websockify?token={TOKEN_A}"),
            Some(&format!("token={TOKEN_B}")),
            a_only,
        ),
        (
            &format!("/websockify?token={TOKEN_B}"),
            Some(&format!("token={TOKEN_A}")),
            b_only,
        ),
        // Twice in the query: the first wins.
        (
            &format!("/websockify?token={TOKEN_A}&token={TOKEN_B}"),
            None,
            a_only,
        ),
        (
            &format!("/websockify?token={TOKEN_B}&token={TOKEN_A}"),
            None,
            b_only,
        ),
        // The cookie counts only without a query token, and its first `token` wins.
        (
            "/websockify",
            Some(&format!("token={TOKEN_A}; token={TOKEN_B}")),
            a_only,
        ),
        (
            "/websockify?other=1",
            Some(&format!("token={TOKEN_B}")),
            b_only,
        ),
        // Another parameter that merely ends in "token" is not a token.
        (
            &format!("/websockify?xtoken={TOKEN_B}&token={TOKEN_A}"),
            None,
            a_only,
        ),
    ];
    for (path, cookie, expected) in cases {
        assert_eq!(
            two.reached(path, *cookie),
            *expected,
            "{path} with cookie {cookie:?}: (connections to A, to B)"
        );
    }
}

#[test]
fn a_removed_token_reaches_no_console_while_the_other_still_works() {
    let two = TwoConsoles::start();
    assert_eq!(
        two.reached(&format!("/websockify?token={TOKEN_A}"), None),
        (1, 0)
    );
    // Console A is deleted: its token goes; B keeps its own.
    two.proxy
        .write_tokens(&format!("{TOKEN_B}: {}\n", two.b.addr()));
    two.proxy.sighup();
    let gone = wait::until_true(std::time::Duration::from_secs(3), || {
        matches!(
            Client::default().connect(&two.proxy.url(TOKEN_A)),
            Err(ws::Failure::Refused(r)) if r.status == 404
        )
    });
    assert!(gone, "the removed token still opens a session");
    let before = (two.a.accepted(), two.b.accepted());
    for cookie in [None, Some(format!("token={TOKEN_B}"))] {
        let client = match &cookie {
            Some(c) => Client::default().cookie(c),
            None => Client::default(),
        };
        let refusal = client.refusal(&two.proxy.url(TOKEN_A));
        assert_eq!(refusal.status, 404, "cookie {cookie:?}: {refusal:?}");
    }
    assert_eq!(
        (two.a.accepted(), two.b.accepted()),
        before,
        "a removed token reached a console"
    );
    assert_eq!(
        two.reached(&format!("/websockify?token={TOKEN_B}"), None),
        (0, 1)
    );
}

#[test]
fn a_directory_without_index_html_is_never_listed() {
    let web = TempDir::new("web");
    std::fs::create_dir_all(web.join("assets/deeper")).unwrap();
    web.write("assets/secret-name.js", "x");
    web.write("assets/deeper/other-name.css", "y");
    let proxy = Proxy::start(Config::new().set("web", &web.path().display().to_string()));
    for target in [
        "/",
        "/assets",
        "/assets/",
        "/assets/deeper/",
        "/assets/.",
        "/assets/%2e",
        "/assets/deeper/..",
        "/assets/./deeper",
        "/assets?C=M;O=A",
        "/assets/%2F",
    ] {
        let answer = http::get(proxy.addr(), target);
        assert!(matches!(answer.status, 403 | 404), "{target}: {answer:?}");
        for name in ["secret-name", "other-name", "deeper", "Index of"] {
            assert!(
                !answer.body.contains(name),
                "{target} lists the directory: {answer:?}"
            );
        }
    }
    // The files themselves are served: the directory is there, only not listed.
    let answer = http::get(proxy.addr(), "/assets/secret-name.js");
    assert_eq!((answer.status, answer.body.as_str()), (200, "x"));
}

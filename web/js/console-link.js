// The console link: what a page reads from its own URL, and the websocket address it connects to.
//
// A page is opened as `PAGE.html?token=TOKEN[&path=PATH]`. The websocket goes back to the origin
// the page came from (wss when the page came over https, ws otherwise), to PATH resolved against
// the page's own address (default `websockify`, so a proxy mounted under a prefix keeps working),
// with the token as the `token` query parameter.

/** The default websocket path, relative to the page. */
export const DEFAULT_PATH = 'websockify';

/**
 * Reads the token and path from `location`; `problem` says, as text for the status line, why
 * the page cannot connect (no token, or a path that leaves this origin), else is empty.
 * @returns {{token: string|null, path: string, problem: string}}
 */
export function readLink(location = window.location) {
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || null;
  const path = params.get('path') || DEFAULT_PATH;
  let problem = '';
  if (!token) {
    const page = location.pathname.split('/').pop() || 'this page';
    problem = `no token in the address: open this page as ${page}?token=...`;
  } else if (!staysOnOrigin(path, location)) {
    problem = 'the path in the address leaves this page\'s origin';
  }
  return { token, path, problem };
}

/** Whether `path`, resolved against the page's address, is on the page's origin. */
function staysOnOrigin(path, location) {
  try {
    return new URL(path, location.href).origin === location.origin;
  } catch (e) {
    return false;
  }
}

/**
 * The websocket URL for `token` at `path` (one `readLink` found no problem with).
 * @param {string} token
 * @param {string} path
 * @returns {string}
 */
export function websocketUrl(token, path, location = window.location) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('token', token);
  url.hash = '';
  return url.href;
}

/**
 * Removes the token from the address bar and from this page's history entry (the other
 * parameters stay). Called once the console is connected; the page keeps the token in memory
 * for Reconnect.
 */
export function forgetToken() {
  const url = new URL(window.location.href);
  if (!url.searchParams.has('token')) {
    return;
  }
  url.searchParams.delete('token');
  window.history.replaceState(null, '', url.pathname + url.search + url.hash);
}

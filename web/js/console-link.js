// The console link: what a page reads from its own URL, and the websocket address it connects to.
//
// A page is opened as `PAGE.html?token=TOKEN[&path=PATH]`. The websocket goes back to the origin
// the page came from (wss when the page came over https, ws otherwise), to PATH resolved against
// the page's own address (default `websockify`, so a proxy mounted under a prefix keeps working),
// with the token as the `token` query parameter.

/** The default websocket path, relative to the page. */
export const DEFAULT_PATH = 'websockify';

/**
 * Reads the token and path from `location`.
 * @returns {{token: string|null, path: string}}
 */
export function readLink(location = window.location) {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  return {
    token: token === '' ? null : token,
    path: params.get('path') || DEFAULT_PATH,
  };
}

/**
 * The websocket URL for `token` on this page's origin.
 * @param {string} token
 * @param {string} path
 * @returns {string}
 */
export function websocketUrl(token, path, location = window.location) {
  const url = new URL(path, location.href);
  if (url.origin !== location.origin) {
    throw new Error('the path must stay on this page\'s origin');
  }
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

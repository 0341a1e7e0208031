// Why the proxy refused a websocket before the upgrade.
//
// A browser websocket refused with an HTTP status (404 unknown token, 403 refused origin, ...)
// reports only close code 1006: the status and the proxy's `consolegate: <reason>` body are
// hidden from scripts. So a page whose websocket closed before it ever opened asks the proxy
// once more, with a plain same-origin request to the same URL carrying `Consolegate-Check: 1`.
// The proxy runs the checks of the upgrade that need no console (origin, token) without
// consuming a single-use token, and answers with the status and reason the upgrade got, or
// 200 when they pass (then the console itself failed, and the proxy's log says why).

/** The header that marks a check request. */
export const CHECK_HEADER = 'Consolegate-Check';

/** What the page says when the check itself gets no answer. */
export const UNKNOWN =
  'the console proxy refused the connection (no reason reached the browser)';

/**
 * Asks the proxy why `websocketUrl` was refused; resolves to text for the status line.
 * @param {string} websocketUrl
 * @returns {Promise<string>}
 */
export async function explainRefusal(websocketUrl) {
  const url = new URL(websocketUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  let response;
  try {
    // POST, so the browser sends its Origin as it does on the websocket.
    response = await fetch(url.href, {
      method: 'POST',
      headers: { [CHECK_HEADER]: '1' },
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'error',
    });
  } catch (e) {
    return `the console proxy cannot be reached (${e.message})`;
  }
  if (response.status === 200) {
    return 'the console proxy accepted the token, but the console could not be opened';
  }
  const body = (await response.text()).trim();
  const reason = body.startsWith('consolegate: ') ? body.slice('consolegate: '.length) : '';
  // A proxy without the check answers 404/405 from its static files: nothing is known then.
  if (!reason || reason === 'not found' || reason.startsWith('only GET')) {
    return UNKNOWN;
  }
  return `${reason} (HTTP ${response.status})`;
}

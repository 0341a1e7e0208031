// A websocket to the console proxy that remembers how it ended: whether it ever opened, and
// the close code and reason. The pages read the ending to say why a console went away.

import { explainRefusal } from './refusal.js';

/** The websocket subprotocol the consoles speak (noVNC's and spice-html5's `binary`). */
export const SUBPROTOCOL = 'binary';

/**
 * Opens a websocket to `url` and records its ending in `socket.ending` once closed:
 * `{opened, code, reason}`.
 * @param {string} url
 * @returns {WebSocket}
 */
export function openConsoleSocket(url) {
  const socket = new WebSocket(url, [SUBPROTOCOL]);
  socket.binaryType = 'arraybuffer';
  socket.ending = null;
  let opened = false;
  socket.addEventListener('open', () => { opened = true; });
  socket.addEventListener('close', (e) => {
    socket.ending = { opened, code: e.code, reason: e.reason };
  });
  return socket;
}

/**
 * Text for the status line about how `socket` ended (its URL is asked about when the proxy
 * refused it before the upgrade).
 * @param {WebSocket} socket
 * @returns {Promise<string>}
 */
export async function describeEnding(socket) {
  const ending = socket.ending;
  if (!ending) {
    return '';
  }
  if (!ending.opened) {
    return explainRefusal(socket.url);
  }
  if (ending.reason) {
    return ending.reason;
  }
  if (ending.code === 1000) {
    return 'console closed';
  }
  return `the connection was lost (code ${ending.code})`;
}

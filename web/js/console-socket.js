// A websocket to the console proxy that remembers how it ended: whether it ever opened, and
// the close code and reason. The pages read the ending to say why a console went away.

import { explainRefusal } from './refusal.js';

/** The websocket subprotocol the consoles speak (noVNC's and spice-html5's `binary`). */
export const SUBPROTOCOL = 'binary';

/**
 * Opens a websocket to `url` and records how it ends (see `recordEnding`).
 * @param {string} url
 * @returns {WebSocket}
 */
export function openConsoleSocket(url) {
  const socket = new WebSocket(url, [SUBPROTOCOL]);
  socket.binaryType = 'arraybuffer';
  return recordEnding(socket);
}

/**
 * Records the ending of `socket` (one a library opened) in `socket.ending` once it closes:
 * `{opened, code, reason}`.
 * @param {WebSocket} socket
 * @returns {WebSocket}
 */
export function recordEnding(socket) {
  socket.ending = null;
  let opened = socket.readyState === WebSocket.OPEN;
  socket.addEventListener('open', () => { opened = true; });
  socket.addEventListener('close', (e) => {
    socket.ending = { opened, code: e.code, reason: e.reason };
  });
  return socket;
}

/**
 * Resolves once `socket` has closed (its ending recorded).
 * @param {WebSocket} socket
 * @returns {Promise<void>}
 */
export function socketClosed(socket) {
  if (socket.ending) {
    return Promise.resolve();
  }
  return new Promise((resolve) => socket.addEventListener('close', () => resolve(), { once: true }));
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

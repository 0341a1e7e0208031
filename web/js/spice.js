// spice.html: a SPICE console through consolegate, on spice-html5. spice-html5 opens one
// websocket per channel (main, display, inputs, cursor, ...), all to the same URL with the same
// token; the proxy lets a single-use SPICE token serve the session's further channels.

import * as SpiceHtml5 from '../lib/spice-html5/src/main.js';
import { readLink, websocketUrl, forgetToken } from './console-link.js';
import { recordEnding, socketClosed, describeEnding } from './console-socket.js';
import { StatusLine, State } from './status-line.js';

const status = new StatusLine();
const link = readLink();
let connection = null;

function connect() {
  if (link.problem) {
    status.show(State.DISCONNECTED, link.problem);
    return;
  }
  status.show(State.CONNECTING);
  const uri = websocketUrl(link.token, link.path);
  try {
    // No message_id: spice-html5 writes the websocket URL (and so the token) into its messages.
    connection = new SpiceHtml5.SpiceMainConn({
      uri,
      screen_id: 'spice-screen',
      password: '',
      onsuccess: () => {
        status.show(State.CONNECTED);
        forgetToken();
      },
      onerror: (e) => failed(e),
      onagent: () => {
        window.addEventListener('resize', SpiceHtml5.handle_resize);
        SpiceHtml5.resize_helper(connection);
      },
    });
    recordEnding(connection.ws);
  } catch (e) {
    connection = null;
    status.show(State.DISCONNECTED, e.message);
  }
}

/** Shows why the session ended: how the main channel's websocket ended when it has (the
 * proxy's refusal or close reason), else spice-html5's message. Only the first error of a
 * connection counts (spice-html5 reports a refused websocket twice: error, then close). */
async function failed(error) {
  const current = connection;
  if (!current) {
    return;
  }
  connection = null;
  const message = error instanceof Error ? error.message : 'the connection failed';
  const socket = current.ws;
  if (socket && socket.readyState !== WebSocket.OPEN) {
    // The reason stays empty until it is known.
    status.show(State.DISCONNECTED);
    await socketClosed(socket);
    status.explain((await describeEnding(socket)) || message);
  } else {
    status.show(State.DISCONNECTED, message);
  }
  current.stop();
}

document.getElementById('ctrlaltdel').addEventListener('click', () => {
  if (connection) {
    SpiceHtml5.sendCtrlAltDel(connection);
  }
});
status.onReconnect(connect);
connect();

// spice.html: a SPICE console through consolegate, on spice-html5. spice-html5 opens one
// websocket per channel (main, display, inputs, cursor, ...), all to the same URL with the same
// token; the proxy lets a single-use SPICE token serve the session's further channels.

import * as SpiceHtml5 from '../lib/spice-html5/src/main.js';
import { readLink, websocketUrl, forgetToken } from './console-link.js';
import { explainRefusal } from './refusal.js';
import { StatusLine, State } from './status-line.js';

const status = new StatusLine();
const link = readLink();
let connection = null;
let connected = false;

function connect() {
  if (!link.token) {
    status.show(State.DISCONNECTED, 'no token in the address: open this page as spice.html?token=...');
    return;
  }
  status.show(State.CONNECTING);
  connected = false;
  const uri = websocketUrl(link.token, link.path);
  try {
    // No message_id: spice-html5 writes the websocket URL (and so the token) into its messages.
    connection = new SpiceHtml5.SpiceMainConn({
      uri,
      screen_id: 'spice-screen',
      password: '',
      onsuccess: () => {
        connected = true;
        status.show(State.CONNECTED);
        forgetToken();
      },
      onerror: (e) => failed(uri, e),
      onagent: () => {
        window.addEventListener('resize', SpiceHtml5.handle_resize);
        SpiceHtml5.resize_helper(connection);
      },
    });
  } catch (e) {
    failed(uri, e);
  }
}

/** Shows why the session ended; a main channel that never linked is asked about. */
async function failed(uri, error) {
  if (connection) {
    connection.stop();
    connection = null;
  }
  const message = error && error.message ? error.message : String(error);
  status.show(State.DISCONNECTED, message);
  if (!connected && message === 'Connection refused.') {
    status.explain(await explainRefusal(uri));
  }
}

document.getElementById('ctrlaltdel').addEventListener('click', () => {
  if (connection) {
    SpiceHtml5.sendCtrlAltDel(connection);
  }
});
status.onReconnect(connect);
connect();

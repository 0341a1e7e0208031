// serial.html: a serial console through consolegate, on xterm.js. What is typed goes to the
// console as binary websocket frames; what the console sends is written to the terminal as
// bytes (UTF-8). The terminal is fitted to the window.

import { Terminal } from '../lib/xterm/lib/xterm.mjs';
import { FitAddon } from '../lib/addon-fit/lib/addon-fit.mjs';
import { readLink, websocketUrl, forgetToken } from './console-link.js';
import { openConsoleSocket, describeEnding } from './console-socket.js';
import { StatusLine, State } from './status-line.js';

const status = new StatusLine();
const link = readLink();
const terminal = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open(document.getElementById('terminal'));
fit.fit();
window.addEventListener('resize', () => fit.fit());

const encoder = new TextEncoder();
let socket = null;

terminal.onData((data) => {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(encoder.encode(data));
  }
});
terminal.onBinary((data) => {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
  }
});

function connect() {
  if (link.problem) {
    status.show(State.DISCONNECTED, link.problem);
    return;
  }
  status.show(State.CONNECTING);
  const current = openConsoleSocket(websocketUrl(link.token, link.path));
  socket = current;
  current.addEventListener('open', () => {
    status.show(State.CONNECTED);
    forgetToken();
    terminal.focus();
  });
  current.addEventListener('message', (e) => {
    if (e.data instanceof ArrayBuffer) {
      terminal.write(new Uint8Array(e.data));
    } else {
      terminal.write(e.data);
    }
  });
  current.addEventListener('close', async () => {
    status.show(State.DISCONNECTED);
    status.explain(await describeEnding(current));
  });
}

status.onReconnect(() => {
  if (!socket || socket.readyState === WebSocket.CLOSED) {
    connect();
  }
});
connect();

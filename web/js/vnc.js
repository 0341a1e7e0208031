// vnc.html: a VNC console through consolegate, on noVNC's RFB client.

import RFB from '../lib/novnc/core/rfb.js';
import keysyms from '../lib/novnc/core/input/keysymdef.js';
import { readLink, websocketUrl, forgetToken } from './console-link.js';
import { openConsoleSocket, describeEnding, socketClosed } from './console-socket.js';
import { StatusLine, State } from './status-line.js';

/** X11 keysym of Return, typed for a newline in pasted text. */
const XK_RETURN = 0xff0d;

const status = new StatusLine();
const link = readLink();
const screen = document.getElementById('screen');
let rfb = null;
let securityReason = '';

function connect() {
  if (link.problem) {
    status.show(State.DISCONNECTED, link.problem);
    return;
  }
  status.show(State.CONNECTING);
  status.showName('');
  securityReason = '';
  const socket = openConsoleSocket(websocketUrl(link.token, link.path));
  rfb = new RFB(screen, socket);
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.addEventListener('connect', () => {
    status.show(State.CONNECTED);
    forgetToken();
    rfb.focus();
  });
  rfb.addEventListener('desktopname', (e) => status.showName(e.detail.name));
  rfb.addEventListener('securityfailure', (e) => {
    securityReason = e.detail.reason || `security failure (status ${e.detail.status})`;
  });
  rfb.addEventListener('credentialsrequired', () => {
    // The token's console carries the VNC password, which the driver answers with; this page
    // never asks the user for one.
    securityReason = 'the console asks for a password that its token does not carry';
    rfb.disconnect();
  });
  rfb.addEventListener('disconnect', async () => {
    rfb = null;
    status.show(State.DISCONNECTED, securityReason);
    if (!securityReason) {
      // The socket's close event may come after noVNC's disconnect.
      await socketClosed(socket);
      status.explain(await describeEnding(socket));
    }
  });
}

/** Types `text` as key presses (what a user would type), one keysym per character. */
function typeText(text) {
  for (const ch of text) {
    const codepoint = ch.codePointAt(0);
    const keysym = ch === '\n' ? XK_RETURN : keysyms.lookup(codepoint);
    rfb.sendKey(keysym, null, true);
    rfb.sendKey(keysym, null, false);
  }
}

document.getElementById('ctrlaltdel').addEventListener('click', () => {
  if (rfb) {
    rfb.sendCtrlAltDel();
    rfb.focus();
  }
});
document.getElementById('paste').addEventListener('submit', (e) => {
  e.preventDefault();
  const field = document.getElementById('paste-text');
  if (rfb && field.value) {
    typeText(field.value.replace(/\r\n?/g, '\n'));
    field.value = '';
    rfb.focus();
  }
});
status.onReconnect(connect);
connect();

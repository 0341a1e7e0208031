// The status line every console page shows: one state word (connecting, connected,
// disconnected), the console's name and the reason of a failure. Everything is set as text
// (textContent), never as HTML: names and reasons come from servers and URLs.

/** The states a page can be in, as shown on the status line. */
export const State = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  DISCONNECTED: 'disconnected',
});

/** The status line (`#status`, `#name`, `#reason`) and the Reconnect button (`#reconnect`). */
export class StatusLine {
  constructor(doc = document) {
    this.doc = doc;
    this.status = doc.getElementById('status');
    this.name = doc.getElementById('name');
    this.reason = doc.getElementById('reason');
    this.reconnect = doc.getElementById('reconnect');
    this.baseTitle = doc.title;
  }

  /** Shows `state`; clears the reason unless `reason` is given. */
  show(state, reason = '') {
    this.status.textContent = state;
    this.doc.body.dataset.state = state;
    this.reason.textContent = reason;
    if (this.reconnect) {
      this.reconnect.hidden = state !== State.DISCONNECTED;
    }
  }

  /** Adds detail to the reason already shown (used when a refusal is explained later). */
  explain(reason) {
    this.reason.textContent = reason;
  }

  /** Shows the console's name (as text), in the line and the title. */
  showName(name) {
    this.name.textContent = name;
    this.doc.title = name ? `${name} - ${this.baseTitle}` : this.baseTitle;
  }

  /** Calls `handler` when Reconnect is pressed. */
  onReconnect(handler) {
    if (this.reconnect) {
      this.reconnect.addEventListener('click', handler);
    }
  }
}

// connection.js owns the WebSocket: connecting, reconnecting with back-off, and matching replies to requests by ref.

// Events that may also arrive as the direct reply to a request (a sent `dm` comes back as a `dm` event).
const ALSO_EVENTS = new Set(['dm', 'message']);

const BASE_DELAY_MS = 400;
const MAX_DELAY_MS = 10000;
const REQUEST_TIMEOUT_MS = 10000;

export class RequestError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

export function socketUrl(loc = location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class Connection {
  /**
   * handlers.onOpen(): the socket is open (say hello now).
   * handlers.onEvent(frame): every frame that is not only a reply.
   * handlers.onDown({retryInMs, wasOpen}): the socket closed and a retry is scheduled.
   * handlers.onClosed(code, reason): the server closed the socket; returning true means it is over (a session
   *   that ended, 4001): no retry.
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.nextRef = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = true;
    this.retryAt = 0;
  }

  get isOpen() { return this.ws?.readyState === WebSocket.OPEN; }

  start() {
    this.stopped = false;
    this.open();
  }

  // Logging out: close for good, no reconnect.
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'bye');
    this.failPending('offline');
  }

  // The session is healthy again (hello accepted): the next drop starts its back-off from the beginning.
  markHealthy() { this.attempt = 0; }

  // Skip the remaining wait (the browser came back online, the user asked).
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  // Close this socket and try again later, e.g. when hello finds our old connection still holding the name.
  restart(delayMs) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000, 'retry');
    }
    this.failPending('offline');
    this.scheduleRetry(delayMs, true);
  }

  open() {
    clearTimeout(this.retryTimer);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry(undefined, false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.handlers.onOpen();
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending('offline');
      if (this.stopped) return;
      if (this.handlers.onClosed?.(ev.code, ev.reason)) {
        this.stop();
        return;
      }
      this.scheduleRetry(undefined, opened);
    };
    // onerror is always followed by onclose, which does the work.
  }

  scheduleRetry(delayMs, wasOpen) {
    if (this.stopped) return;
    // Exponential back-off with jitter so a restarted server is not hit by every client at once.
    const base = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = delayMs ?? Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
    this.handlers.onDown({ retryInMs: delay, wasOpen });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // The protocol promises JSON; ignore anything else rather than break the page.
    }
    if (!frame || typeof frame.type !== 'string') return;
    const waiter = frame.ref !== undefined ? this.pending.get(frame.ref) : undefined;
    if (waiter) {
      this.pending.delete(frame.ref);
      clearTimeout(waiter.timer);
      if (frame.type === 'error') waiter.reject(new RequestError(frame.code, frame.message));
      else waiter.resolve(frame);
      if (!ALSO_EVENTS.has(frame.type)) return;
    }
    this.handlers.onEvent(frame);
  }

  // Sends a command with a fresh ref; resolves with its reply, rejects with a RequestError.
  request(command, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (!this.isOpen) return Promise.reject(new RequestError('offline'));
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new RequestError('timeout'));
      }, timeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...command, ref }));
    });
  }

  // Fire and forget (typing): nothing to report if it is lost.
  send(command) {
    if (this.isOpen) this.ws.send(JSON.stringify(command));
  }

  failPending(code) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new RequestError(code));
    }
    this.pending.clear();
  }
}

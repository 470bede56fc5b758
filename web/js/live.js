// live.js: one Server-Sent Events stream (GET /api/live, authenticated by the session cookie)
// carrying ids only: `event: change` with {"ticket_id":N}. Views subscribe and re-fetch what
// they show through the ordinary API. After a reconnect (an `open` that follows an error) every
// subscriber is told to re-fetch everything it shows, so nothing that happened while the
// stream was down is missed.

const subscribers = new Set();
let source = null;
let hadError = false;
let retryTimer = null;
let retryDelay = 2000;
let stateCb = () => {};

export function onLiveState(fn) { stateCb = fn; }

// fn({ticketId}) on a change, fn({resync: true}) after a reconnect. Returns an unsubscribe.
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

function emit(msg) {
  for (const fn of [...subscribers]) {
    try { fn(msg); } catch (e) { console.error('live subscriber failed', e); }
  }
}

export function startLive() {
  stopLive();
  if (typeof EventSource === 'undefined') { stateCb('unavailable'); return; }
  stateCb('connecting');
  const es = new EventSource('/api/live');
  source = es;
  es.addEventListener('open', () => {
    if (source !== es) return;
    retryDelay = 2000;
    stateCb('live');
    if (hadError) {
      hadError = false;
      emit({ resync: true });
    }
  });
  es.addEventListener('change', (ev) => {
    let id = null;
    try { id = JSON.parse(ev.data).ticket_id; } catch { id = null; }
    if (id != null) emit({ ticketId: Number(id) });
  });
  es.addEventListener('error', () => {
    if (source !== es) return;
    hadError = true;
    if (es.readyState === EventSource.CLOSED) {
      // the browser gave up (an answer that is not an event stream): try again ourselves
      stateCb('down');
      retryTimer = setTimeout(startLive, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 60000);
    } else {
      stateCb('reconnecting');
    }
  });
}

export function stopLive() {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  if (source) source.close();
  source = null;
}

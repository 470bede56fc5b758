// app.js: start-up, the hash router, signing in and out. Views: #/signin, #/queue?FILTERS,
// #/tickets/ID, #/tickets/ID/print, #/reports?from=&to=, #/agents/NAME/activity?from=&to=.
// Each view is a function that renders into <main> and returns a cleanup.
import { api, get, onUnauthorized, ApiError } from './api.js';
import { h, clear, field, toast } from './dom.js';
import { setTimeZone, refreshTimes } from './time.js';
import { startLive, stopLive, onLiveState } from './live.js';
import { renderQueue } from './queue.js';
import { renderTicket } from './ticket.js';
import { renderPrint } from './print.js';
import { renderReports, renderActivity } from './reports.js';
import { session } from './state.js';

const main = document.getElementById('main');
let cleanup = null;
let afterSignIn = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/queue';
  const [path, query = ''] = raw.split('?');
  return { path, params: new URLSearchParams(query) };
}

async function route() {
  if (location.hash && !location.hash.startsWith('#/')) return; // an in-page anchor
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } }
  cleanup = null;
  const { path, params } = parseHash();
  if (!session.me) {
    if (path !== '/signin') afterSignIn = location.hash || '#/queue';
    renderSignIn();
    return;
  }
  let m;
  if (path === '/signin') {
    location.replace('#/queue');
    return;
  } else if (path === '/queue' || path === '/') {
    session.lastQueue = location.hash || '#/queue';
    cleanup = renderQueue(main, params);
  } else if ((m = path.match(/^\/tickets\/(\d+)$/))) {
    cleanup = renderTicket(main, Number(m[1]), params);
  } else if ((m = path.match(/^\/tickets\/(\d+)\/print$/))) {
    cleanup = renderPrint(main, Number(m[1]));
  } else if (path === '/reports') {
    cleanup = renderReports(main, params);
  } else if ((m = path.match(/^\/agents\/([^/]+)\/activity$/))) {
    cleanup = renderActivity(main, decodeURIComponent(m[1]), params);
  } else {
    clear(main).append(h('section', { class: 'view narrow' },
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, 'There is nothing at this address. ', h('a', { href: '#/queue' }, 'Go to the queue'), '.')));
    focusHeading();
  }
}

export function focusHeading() {
  const h1 = main.querySelector('h1');
  if (h1) h1.focus({ preventScroll: true });
}

function renderSignIn() {
  // a route change while the form is up (boot's first route after a hashchange) keeps it, and
  // what was typed into it: drawing it again would wipe a name and password mid-entry
  if (main.querySelector('form.signin')) return;
  document.getElementById('topnav').hidden = true;
  document.getElementById('session').hidden = true;
  document.title = 'Sign in · casetrail';
  const name = field({ label: 'Name', name: 'name', required: true, autocomplete: 'username' });
  const pass = field({ label: 'Password', name: 'password', type: 'password', required: true,
    autocomplete: 'current-password' });
  const msg = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in to casetrail'),
    h('p', { class: 'muted' }, 'Use the name and password your administrator gave you.'),
    name, pass, msg, h('div', { class: 'form-actions' }, button));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.hidden = true;
    if (!name.input.value.trim() || !pass.input.value) {
      msg.textContent = 'Enter your name and your password.';
      msg.hidden = false;
      (name.input.value.trim() ? pass.input : name.input).focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await api('POST', '/api/session', { name: name.input.value.trim(), password: pass.input.value },
        { noAuthRedirect: true });
      await loadMe();
      const target = afterSignIn && !afterSignIn.startsWith('#/signin') ? afterSignIn : '#/queue';
      afterSignIn = null;
      if (location.hash === target) route(); else location.hash = target;
    } catch (e) {
      msg.textContent = signInError(e);
      msg.hidden = false;
      pass.input.value = '';
      pass.input.focus();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  clear(main).append(h('section', { class: 'view signin-view' }, form));
  name.input.focus();
}

function signInError(e) {
  if (!(e instanceof ApiError)) return `Could not sign in: ${e.message}`;
  if (e.code === 'too_many_attempts' || e.status === 429) {
    const secs = Number(e.retryAfter);
    const wait = Number.isFinite(secs) && secs > 0
      ? ` Try again in ${secs >= 120 ? `${Math.ceil(secs / 60)} minutes` : `${secs} second${secs === 1 ? '' : 's'}`}.`
      : ' Wait a little before trying again.';
    return `Too many sign-in attempts. ${e.message}.${wait}`.replace('..', '.');
  }
  if (e.code === 'bad_credentials' || e.status === 401) return `Wrong name or password (${e.message}).`;
  return `Could not sign in: ${e.message}`;
}

async function loadMe() {
  const me = await get('/api/me', { noAuthRedirect: true });
  session.me = me;
  setTimeZone(me.timezone || 'UTC');
  document.getElementById('topnav').hidden = false;
  // reports are for supervisors, QA and admins (an agent reaches their own activity by link)
  document.getElementById('nav-reports').hidden = !['supervisor', 'qa', 'admin'].includes(me.role);
  const sess = document.getElementById('session');
  sess.hidden = false;
  const who = document.getElementById('who');
  who.textContent = '';
  who.append(h('bdi', { dir: 'auto' }, me.name), h('span', { class: 'role' }, me.role));
  startLive();
  return me;
}

async function signOut() {
  try {
    await api('DELETE', '/api/session', undefined, { noAuthRedirect: true });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      toast(`Could not sign out: ${e.message}`, 'error', 0);
      return;
    }
  }
  signedOut('You are signed out.');
}

function signedOut(message) {
  stopLive();
  session.me = null;
  session.users = null;
  afterSignIn = null;
  if (message) toast(message, 'info');
  if (location.hash.startsWith('#/signin')) route(); else location.hash = '#/signin';
}

onUnauthorized(() => {
  if (!session.me) return;
  afterSignIn = location.hash;
  stopLive();
  session.me = null;
  toast('Your session ended. Sign in again to continue.', 'error', 8000);
  route();
});

onLiveState((state) => {
  const el = document.getElementById('live-indicator');
  const words = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…',
    down: 'Live updates unavailable', unavailable: 'No live updates' };
  el.textContent = words[state] || '';
  el.className = `live live-${state}`;
  el.title = state === 'live' ? 'Changes appear as they happen' : 'Changes appear when the connection returns';
});

async function boot() {
  document.getElementById('sign-out').addEventListener('click', signOut);
  // the address fragment is the router's: skipping to the content must not change it
  document.getElementById('skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    (main.querySelector('h1') || main).focus();
  });
  window.addEventListener('hashchange', route);
  setInterval(() => refreshTimes(), 30000);
  try {
    await loadMe();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      toast(`Could not reach casetrail: ${e.message}`, 'error', 0);
    }
  }
  route();
}

boot();

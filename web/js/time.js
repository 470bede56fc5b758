// time.js: relative times on screen, absolute times (in the signed-in user's time zone, from
// /api/me) on hover. API timestamps are ISO 8601 UTC.
import { h } from './dom.js';

let zone = 'UTC';
let absFmt = null;
let clockFmt = null;
let dayFmt = null;

export function setTimeZone(tz) {
  try {
    absFmt = new Intl.DateTimeFormat('en-GB', { timeZone: tz || 'UTC', dateStyle: 'medium',
      timeStyle: 'long' });
    zone = tz || 'UTC';
  } catch {
    zone = 'UTC';
    absFmt = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'long' });
  }
  clockFmt = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit' });
  dayFmt = new Intl.DateTimeFormat('en-GB', { timeZone: zone, day: 'numeric', month: 'short', year: 'numeric' });
}
setTimeZone('UTC');

export const timeZone = () => zone;

export function absolute(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${absFmt.format(d)} (${zone})`;
}

export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : clockFmt.format(d);
}

export function day(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : dayFmt.format(d);
}

const units = [
  ['year', 365 * 24 * 3600], ['month', 30 * 24 * 3600], ['week', 7 * 24 * 3600],
  ['day', 24 * 3600], ['hour', 3600], ['minute', 60],
];
const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

export function relative(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  const s = Math.round((t - now) / 1000);
  if (Math.abs(s) < 45) return 'just now';
  for (const [unit, secs] of units) {
    if (Math.abs(s) >= secs || unit === 'minute') return rtf.format(Math.round(s / secs), unit);
  }
  return '';
}

// <time> showing the relative time, with the absolute time as title (hover) and in datetime.
export function timeEl(iso, { withClock = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const el = h('time', { datetime: iso, title: absolute(iso), class: 'rel', dataset: { clock: withClock ? '1' : '' } });
  el.textContent = label(el, iso);
  return el;
}

function label(el, iso) {
  const rel = relative(iso);
  return el.dataset.clock ? `${clock(iso)} · ${rel}` : rel;
}

// Refreshes every relative time on the page (called once a minute).
export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll('time.rel')) {
    const iso = el.getAttribute('datetime');
    el.textContent = label(el, iso);
    el.title = absolute(iso);
  }
}

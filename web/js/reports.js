// reports.js: the coaching pages. #/reports?from=&to=&phone_number_id= shows the summary
// (GET /api/reports/summary) as tables and bar charts; #/agents/NAME/activity?from=&to= one
// person's actions in time order. The range lives in the address so a report can be shared;
// days are the server's (CASETRAIL_TIMEZONE) and `to` is exclusive, as the API reads them.
import { get, qs, nextOf } from './api.js';
import { h, clear, field, bidi } from './dom.js';
import { timeEl } from './time.js';
import { session } from './state.js';

const SVG = 'http://www.w3.org/2000/svg';
const isDay = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v);

// Today in the server's zone as YYYY-MM-DD (en-CA formats dates that way), shifted by days.
function zoneDay(shift) {
  const zone = session.me?.timezone || 'UTC';
  const d = new Date(Date.now() + shift * 86400000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit',
    day: '2-digit' }).format(d);
}

// The range from the address, else the last seven days of the zone (today included).
function rangeOf(params) {
  const from = params.get('from') || zoneDay(-6);
  const to = params.get('to') || zoneDay(1);
  return { from, to };
}

// The range form: from, to (exclusive: shown as the last day included) and, for the summary,
// the business number. Submitting changes the address, which renders the page again.
function rangeForm(r, extra, base) {
  const from = field({ label: 'From', name: 'from', type: isDay(r.from) ? 'date' : 'text', value: r.from });
  const to = field({ label: 'Up to (not including)', name: 'to', type: isDay(r.to) ? 'date' : 'text', value: r.to });
  const number = extra ? field({ label: 'Business number id', name: 'phone_number_id',
    value: r.phone_number_id || '', inputmode: 'numeric', placeholder: 'all' }) : null;
  const form = h('form', { class: 'filters', 'aria-label': 'Report range' },
    h('div', { class: 'filter-row' }, from, to, number,
      h('div', { class: 'field field-actions' },
        h('button', { type: 'submit', class: 'btn btn-primary' }, 'Show'))));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `${base}${qs({ from: from.input.value.trim(), to: to.input.value.trim(),
      phone_number_id: number ? number.input.value.trim() : '' })}`;
  });
  return form;
}

// A horizontal bar chart: one row per [label, value], bars scaled to the largest value.
// Built with createElementNS and textContent only (the CSP allows no inline anything).
export function barChart(title, rows) {
  const rowH = 22;
  const labelW = 150;
  const barW = 360;
  const width = labelW + barW + 60;
  const height = Math.max(rows.length, 1) * rowH + 8;
  const max = Math.max(1, ...rows.map(([, v]) => v));
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('role', 'img');
  svg.setAttribute('class', 'chart');
  const t = document.createElementNS(SVG, 'title');
  t.textContent = title;
  svg.appendChild(t);
  rows.forEach(([label, value], i) => {
    const y = 4 + i * rowH;
    const text = document.createElementNS(SVG, 'text');
    text.setAttribute('x', String(labelW - 6));
    text.setAttribute('y', String(y + 15));
    text.setAttribute('text-anchor', 'end');
    text.setAttribute('class', 'chart-label');
    text.textContent = label;
    const bar = document.createElementNS(SVG, 'rect');
    bar.setAttribute('x', String(labelW));
    bar.setAttribute('y', String(y + 3));
    bar.setAttribute('height', String(rowH - 6));
    bar.setAttribute('width', String(Math.round((value / max) * barW)));
    bar.setAttribute('class', 'chart-bar');
    const num = document.createElementNS(SVG, 'text');
    num.setAttribute('x', String(labelW + Math.round((value / max) * barW) + 6));
    num.setAttribute('y', String(y + 15));
    num.setAttribute('class', 'chart-value');
    num.textContent = String(value);
    svg.append(text, bar, num);
  });
  return h('figure', { class: 'chart-box' }, h('figcaption', null, title), svg);
}

function table(caption, head, rows) {
  return h('table', { class: 'report-table' },
    h('caption', null, caption),
    h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.length
      ? rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))
      : h('tr', null, h('td', { colspan: String(head.length), class: 'muted' }, 'Nothing in this range'))));
}

const secs = (v) => {
  if (v === null || v === undefined) return '–';
  if (v < 120) return `${Math.round(v)} s`;
  if (v < 7200) return `${Math.round(v / 60)} min`;
  return `${(v / 3600).toFixed(1)} h`;
};

function section(title, ...children) {
  return h('section', { class: 'card report-section' }, h('h2', null, title), children);
}

export function renderReports(main, params) {
  const r = { ...rangeOf(params), phone_number_id: params.get('phone_number_id') || '' };
  document.title = `Reports ${r.from} to ${r.to} · casetrail`;
  const status = h('p', { class: 'queue-summary', role: 'status' }, 'Loading the report…');
  const body = h('div', { class: 'report' });
  clear(main).append(h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Reports'),
      h('span', { class: 'muted' }, `days in ${session.me?.timezone || 'UTC'}`)),
    rangeForm(r, true, '#/reports'), status, body));
  let disposed = false;
  get(`/api/reports/summary${qs(r)}`).then((s) => {
    if (disposed) return;
    status.textContent = `From ${r.from} up to ${r.to}${r.phone_number_id ? `, number ${r.phone_number_id}` : ''}.`;
    const t = s.tickets;
    body.append(
      section('Tickets',
        table('Tickets in the range', ['Created', 'Resolved', 'Closed', 'Reopened'],
          [[t.created, t.resolved, t.closed, t.reopened]]),
        barChart('Tickets created per day', s.by_day.map((d) => [d.day, d.created]))),
      section('Response times',
        table(`Over the ${s.times.tickets} tickets created in the range`, ['', 'Tickets', 'Median', '90th percentile'], [
          ['First response', s.times.first_response_seconds.count, secs(s.times.first_response_seconds.median),
            secs(s.times.first_response_seconds.p90)],
          ['Resolution', s.times.resolution_seconds.count, secs(s.times.resolution_seconds.median),
            secs(s.times.resolution_seconds.p90)]])),
      section('People',
        table('Per staff member', ['Name', 'Role', 'Tickets', 'Replies', 'Notes', 'Handed off',
          'Received', 'Approvals asked', 'Approved', 'Denied'],
        s.agents.map((a) => [h('a', { href: `#/agents/${encodeURIComponent(a.user)}/activity${qs({ from: r.from, to: r.to })}` }, bidi(a.user)),
          a.role, a.tickets_handled, a.replies, a.notes, a.handoffs_given, a.handoffs_received,
          a.approvals_requested, a.approvals_approved, a.approvals_denied])),
        barChart('Tickets handled', s.agents.map((a) => [a.user, a.tickets_handled]))),
      section('Escalations',
        table('Escalations', ['Raised', 'By hand', 'Lowered'], [[s.escalations.raised, s.escalations.manual, s.escalations.lowered]]),
        table('By complaint rule', ['Rule', 'Escalations'],
          s.escalations.by_rule.map((x) => [bidi(x.pattern ?? `rule ${x.rule_id}`), x.count]))),
      section('Approvals',
        table('Requested in the range', ['Kind', 'Decision', 'Count', 'Amount (minor units)', 'Currency'],
          s.approvals.map((a) => [a.kind, a.decision, a.count, a.amount_minor, a.currency ?? '']))),
      section('Messages and billing',
        table('Messages', ['In', 'Out'], [[s.messages.in, s.messages.out]]),
        table('Conversations by pricing category (status webhooks)', ['Category', 'Conversations', 'Statuses'],
          s.conversations.map((c) => [c.category, c.conversations, c.statuses]))));
  }).catch((e) => {
    if (disposed) return;
    status.textContent = '';
    body.append(h('div', { class: 'error-box', role: 'alert' }, `Could not load the report: ${e.message}`));
  });
  main.querySelector('h1').focus({ preventScroll: true });
  return () => { disposed = true; };
}

export function renderActivity(main, name, params) {
  const r = rangeOf(params);
  document.title = `${name}'s activity · casetrail`;
  const status = h('p', { class: 'queue-summary', role: 'status' }, 'Loading…');
  const list = h('ol', { class: 'activity-list' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'More');
  const errorEl = h('div', { class: 'error-box', role: 'alert', hidden: true });
  clear(main).append(h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Activity of ', bidi(name)),
      h('a', { href: `#/reports${qs(r)}` }, 'Back to reports')),
    rangeForm(r, false, `#/agents/${encodeURIComponent(name)}/activity`), status, errorEl, list, more));
  let disposed = false;
  let cursor = null;
  let shown = 0;
  async function load() {
    more.disabled = true;
    try {
      const page = await get(`/api/agents/${encodeURIComponent(name)}/activity${qs({ ...r, limit: 100, cursor })}`);
      if (disposed) return;
      for (const e of page.events) {
        const what = [e.action];
        if (e.from || e.to) what.push(` ${e.from ?? '–'} → ${e.to ?? '–'}`);
        list.append(h('li', { class: 'activity-item' },
          timeEl(e.at, { withClock: true }),
          h('span', { class: 'activity-what' }, what.join('')),
          e.ticket_id ? h('a', { href: `#/tickets/${e.ticket_id}` }, `ticket ${e.ticket_id}`) : null,
          e.reason ? h('span', { class: 'muted' }, ' reason: ', bidi(e.reason)) : null,
          e.note ? h('span', { class: 'muted' }, ' note: ', bidi(e.note)) : null));
      }
      shown += page.events.length;
      cursor = nextOf(page);
      more.hidden = !cursor;
      status.textContent = `${shown} action${shown === 1 ? '' : 's'} from ${r.from} up to ${r.to}.`;
    } catch (e) {
      if (disposed) return;
      errorEl.textContent = `Could not load the activity: ${e.message}`;
      errorEl.hidden = false;
      status.textContent = '';
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  load();
  main.querySelector('h1').focus({ preventScroll: true });
  return () => { disposed = true; };
}

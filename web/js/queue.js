// queue.js: the ticket queue at #/queue?status=&assignee=&escalated=&priority=
// &pending_approval=&phone_number_id=&contact=&q=&active=. The filters live in the address so
// a link ("yesterday's escalated tickets") can be shared. Newest activity first, keyset paging with "More", counts per status, and a
// debounced re-fetch when the live stream names a change.
import { get, qs, nextOf } from './api.js';
import { h, clear, field, bidi } from './dom.js';
import { timeEl } from './time.js';
import { subscribe } from './live.js';
import { session, users } from './state.js';
import { STATUSES, PRIORITIES, cap, statusBadge, priorityBadge, escalationBadge, assigneeBadge,
  contactName, contactDetail } from './badges.js';

const FILTERS = ['status', 'assignee', 'escalated', 'priority', 'pending_approval', 'phone_number_id', 'contact', 'q', 'active'];
// Days are the server's (CASETRAIL_TIMEZONE), worked out by the server, not by this browser.
const ACTIVE = [['', 'Any time'], ['today', 'Today'], ['yesterday', 'Yesterday'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const isDay = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v);
const PAGE = 50;

export function renderQueue(main, params) {
  const f = {};
  for (const k of FILTERS) f[k] = params.get(k) || '';
  document.title = titleFor(f);

  const state = { tickets: [], next: null, loading: false, disposed: false, ctl: null };
  const listEl = h('ol', { class: 'ticket-list', 'aria-label': 'Tickets' });
  const summary = h('p', { class: 'queue-summary', role: 'status', 'aria-live': 'polite' }, 'Loading tickets…');
  const errorEl = h('div', { class: 'error-box', role: 'alert', hidden: true });
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => load(false) }, 'More tickets');
  const tabs = h('nav', { class: 'status-tabs', 'aria-label': 'Status' });

  // the filter form (folded away on a phone unless a filter is set)
  const narrow = window.matchMedia('(max-width: 640px)').matches;
  const search = field({ label: 'Search messages', name: 'q', type: 'search', value: f.q,
    placeholder: 'Words in any language, e.g. parcel, پارسل, nahi mila', dir: 'auto', wide: true });
  const assignee = field({ label: 'Assignee', name: 'assignee', value: f.assignee, options: assigneeOptions(f.assignee, null) });
  const escalated = field({ label: 'Escalated', name: 'escalated', value: f.escalated,
    options: [['', 'Any'], ['true', 'Escalated'], ['false', 'Not escalated']] });
  const priority = field({ label: 'Priority', name: 'priority', value: f.priority,
    options: [['', 'Any'], ...PRIORITIES.map((p) => [p, cap(p)])] });
  const pending = field({ label: 'Approval', name: 'pending_approval', value: f.pending_approval,
    options: [['', 'Any'], ['true', 'Waiting for approval']] });
  const number = field({ label: 'Business number id', name: 'phone_number_id', value: f.phone_number_id,
    inputmode: 'numeric', placeholder: 'phone_number_id' });
  const contact = field({ label: 'Customer', name: 'contact', value: f.contact, placeholder: 'Name, number or @username', dir: 'auto' });
  const zone = session.me?.timezone || 'UTC';
  const active = field({ label: 'Active', name: 'active', value: isDay(f.active) ? 'day' : f.active,
    options: [...ACTIVE, ['day', 'On a day…']] });
  active.input.title = `Tickets with a message or action then; days in ${zone}`;
  const day = field({ label: 'Day', name: 'active_day', type: 'date', value: isDay(f.active) ? f.active : '' });
  day.hidden = !isDay(f.active);
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter tickets' },
    h('div', { class: 'search-row' }, search,
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Search')),
    h('details', { class: 'more-filters', open: !narrow || FILTERS.some((k) => k !== 'q' && k !== 'status' && f[k]) },
      h('summary', null, 'Filters'),
      h('div', { class: 'filter-row' }, active, day, assignee, escalated, priority, pending, contact, number,
        h('div', { class: 'field field-actions' },
          h('a', { class: 'btn btn-quiet', href: '#/queue' }, 'Clear filters')))));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); apply(); });
  for (const sel of [assignee, escalated, priority, pending]) sel.input.addEventListener('change', apply);
  active.input.addEventListener('change', () => {
    day.hidden = active.input.value !== 'day';
    if (active.input.value === 'day') day.input.focus();
    else apply();
  });
  day.input.addEventListener('change', () => { if (isDay(day.input.value)) apply(); });

  function apply() {
    const a = active.input.value === 'day' ? (isDay(day.input.value) ? day.input.value : '') : active.input.value;
    const next = { ...f, active: a, q: search.input.value.trim(), assignee: assignee.input.value,
      escalated: escalated.input.value, priority: priority.input.value,
      pending_approval: pending.input.value, contact: contact.input.value.trim(),
      phone_number_id: number.input.value.trim() };
    location.hash = `#/queue${qs(next)}`;
  }

  users().then((list) => {
    if (state.disposed || !list) return;
    const sel = assignee.input;
    const v = sel.value;
    clear(sel).append(...assigneeOptions(f.assignee, list).map(([val, label]) =>
      h('option', { value: val, selected: val === v }, label)));
  }).catch(() => {});

  const view = h('section', { class: 'view queue', 'aria-labelledby': 'queue-title' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'queue-title', tabindex: '-1' }, f.q ? 'Search results' : 'Queue'),
      summary),
    form, tabs, errorEl, listEl, h('div', { class: 'more-row' }, more));
  clear(main).append(view);
  main.querySelector('h1').focus({ preventScroll: true });
  renderTabs(null);

  function renderTabs(counts) {
    const total = counts ? STATUSES.reduce((n, s) => n + (counts[s] || 0), 0) : null;
    clear(tabs).append(h('ul', null,
      [['', 'All', total], ...STATUSES.map((s) => [s, cap(s), counts ? counts[s] || 0 : null])].map(([s, label, n]) =>
        h('li', null, h('a', { href: `#/queue${qs({ ...f, status: s })}`, class: 'tab',
          'aria-current': f.status === s ? 'page' : null },
        label, n === null ? null : h('span', { class: 'count' }, String(n)))))));
  }

  async function load(reset, keep = 0) {
    if (state.loading && !reset) return;
    if (state.ctl) state.ctl.abort();
    const ctl = new AbortController();
    state.ctl = ctl;
    state.loading = true;
    more.disabled = true;
    const limit = reset ? Math.min(500, Math.max(PAGE, keep)) : PAGE;
    const query = { ...f, limit, cursor: reset ? '' : state.next };
    try {
      const page = await get(`/api/tickets${qs(query)}`, { signal: ctl.signal });
      if (state.disposed || ctl.signal.aborted) return;
      errorEl.hidden = true;
      if (reset) state.tickets = [];
      state.tickets.push(...(page.tickets || []));
      state.next = nextOf(page);
      if (page.counts) renderTabs(page.counts);
      renderList(reset);
    } catch (e) {
      if (e.name === 'AbortError' || state.disposed) return;
      errorEl.textContent = `Could not load tickets: ${e.message}`;
      errorEl.hidden = false;
      summary.textContent = '';
    } finally {
      if (state.ctl === ctl) { state.loading = false; state.ctl = null; }
      more.disabled = false;
    }
  }

  function renderList(reset) {
    const focusedHref = document.activeElement && listEl.contains(document.activeElement)
      ? document.activeElement.getAttribute('href') : null;
    if (reset) clear(listEl);
    const have = new Set([...listEl.children].map((li) => li.dataset.id));
    for (const t of state.tickets) {
      if (have.has(String(t.id))) continue;
      listEl.appendChild(row(t));
    }
    const n = state.tickets.length;
    summary.textContent = n === 0 ? 'No tickets match these filters.'
      : `${n} ticket${n === 1 ? '' : 's'} shown${state.next ? ', more below' : ''}. Newest activity first.${f.active ? ` Days are ${zone} days.` : ''}`;
    more.hidden = !state.next;
    if (focusedHref) {
      const again = listEl.querySelector(`a[href="${CSS.escape(focusedHref)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  // live: any change may move a ticket into, out of or within this page; re-fetch it, debounced
  let timer = null;
  const unsubscribe = subscribe(() => {
    clearTimeout(timer);
    timer = setTimeout(() => load(true, state.tickets.length), 250);
  });

  load(true);
  return () => {
    state.disposed = true;
    clearTimeout(timer);
    unsubscribe();
    if (state.ctl) state.ctl.abort();
  };
}

function row(t) {
  const last = t.last_message_at && t.last_message_at > t.updated_at ? t.last_message_at : t.updated_at;
  const name = contactName(t.contact);
  const detail = contactDetail(t.contact);
  return h('li', { class: 'ticket-row', dataset: { id: String(t.id) } },
    h('a', { href: `#/tickets/${t.id}`, class: 'ticket-link' },
      h('span', { class: 't-who' },
        bidi(name, 't-contact'),
        detail ? h('span', { class: 't-detail' }, detail) : null),
      h('span', { class: 't-id' }, `#${t.id}`),
      h('span', { class: 't-badges' }, statusBadge(t.status), priorityBadge(t.priority),
        escalationBadge(t), t.pending_approval ? h('span', { class: 'badge appr' }, 'Approval pending') : null,
        assigneeBadge(t.assignee)),
      h('span', { class: 't-time' }, h('span', { class: 'sr-only' }, 'Last activity '), timeEl(last))));
}

function assigneeOptions(current, list) {
  const opts = [['', 'Anyone'], ['me', 'Mine'], ['none', 'Unassigned']];
  const names = (list || []).map((u) => u.name).filter((n) => n !== session.me?.name);
  if (current && !['me', 'none'].includes(current) && !names.includes(current)) names.unshift(current);
  return opts.concat(names.map((n) => [n, n]));
}

function titleFor(f) {
  const bits = [];
  if (f.q) bits.push(`“${f.q}”`);
  if (f.status) bits.push(cap(f.status));
  if (f.escalated === 'true') bits.push('Escalated');
  if (f.active) bits.push(isDay(f.active) ? `Active ${f.active}` : `Active ${(ACTIVE.find(([v]) => v === f.active) || [0, f.active])[1].toLowerCase()}`);
  return `${bits.length ? bits.join(' · ') + ' · ' : ''}Queue · casetrail`;
}

// ticket.js: one ticket at #/tickets/ID: its header, a verification badge, the timeline
// (messages as a chat, events as who / what / when lines, in time order), filters by kind and
// actor, paging, the actions the signed-in role may take, and live updates.
//
// Paging: a ticket opens at its latest page (`from=end`), where the story is now. Every page
// the API returns says what lies before it (`prev_cursor`) and after it (`next_cursor`), so the
// document holds a window of at most WINDOW pages ("chunks") and reads either way from its
// ends: "Load earlier" prepends a page and drops the last, "Load later" the reverse, and a
// ticket with 10,000 events opens as fast as one with ten. Live changes fetch only what was
// recorded after the newest page read at the end (the `resume` cursor).
import { get, qs, nextOf } from './api.js';
import { h, clear, bidi, toast } from './dom.js';
import { timeEl } from './time.js';
import { subscribe } from './live.js';
import { session, users, atLeast } from './state.js';
import { statusBadge, priorityBadge, escalationBadge, assigneeBadge, contactName, contactDetail, cap } from './badges.js';
import { describeEvent, actorKey, actorLabel, ACTION_LABELS, RECEIPT_ACTIONS } from './describe.js';
import { actionsPanel, decisionControls, replyComposer } from './actions.js';

const PAGE = 500;
const WINDOW = 2;
const MEDIA_LABELS = { image: 'Photo', video: 'Video', audio: 'Voice note or audio', document: 'Document', sticker: 'Sticker' };

export function renderTicket(main, id) {
  const st = {
    id, ticket: null, chunks: [], chunkSeq: 0, resume: null, disposed: false,
    byWamid: new Map(), approvals: new Map(), decided: new Set(), reactions: new Map(),
    kinds: new Set(), actors: new Set(), replyTo: null, busy: false,
  };
  document.title = `Ticket #${id} · casetrail`;

  const heading = h('h1', { tabindex: '-1', id: 'ticket-title' }, `Ticket #${id}`);
  const headDetail = h('p', { class: 'ticket-detail' });
  const badges = h('div', { class: 'ticket-badges' });
  const verifyEl = h('div', { class: 'verify', role: 'status', 'aria-live': 'polite' });
  const errorEl = h('div', { class: 'error-box', role: 'alert', hidden: true });
  const list = h('ol', { class: 'timeline', 'aria-label': 'Timeline, oldest at the top' });
  const earlier = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => loadEarlier() }, 'Load earlier');
  const later = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => loadLater() }, 'Load later');
  const latest = h('button', { type: 'button', class: 'btn btn-quiet', hidden: true, onclick: () => jumpTo('end') }, 'Jump to the latest');
  const start = h('button', { type: 'button', class: 'btn btn-quiet', hidden: true, onclick: () => jumpTo('start') }, 'Go to the start');
  const pageInfo = h('p', { class: 'page-info muted', role: 'status', 'aria-live': 'polite' });
  const newBelow = h('p', { class: 'notice', hidden: true }, 'New activity arrived after the part shown here. Use “Load later” or “Jump to the latest”.');

  // filters
  const kindSel = h('select', { id: 'tl-kind' });
  const actorSel = h('select', { id: 'tl-actor' });
  const filters = h('div', { class: 'tl-filters', role: 'group', 'aria-label': 'Filter the timeline' },
    h('div', { class: 'field' }, h('label', { for: 'tl-kind' }, 'Show'), kindSel),
    h('div', { class: 'field' }, h('label', { for: 'tl-actor' }, 'By'), actorSel));
  kindSel.addEventListener('change', applyFilters);
  actorSel.addEventListener('change', applyFilters);
  fillFilterOptions();

  const side = h('section', { class: 'side', 'aria-label': 'Actions' });
  const composer = h('div', { class: 'composer-slot' });

  const view = h('section', { class: 'view ticket', 'aria-labelledby': 'ticket-title' },
    h('p', { class: 'crumbs' }, h('a', { href: session.lastQueue || '#/queue' }, '← Back to the queue'),
      h('a', { class: 'btn btn-small print-link', href: `#/tickets/${id}/print` }, 'Print / save as PDF')),
    h('header', { class: 'ticket-head card' },
      h('div', { class: 'ticket-title-row' }, heading, verifyEl),
      headDetail, badges),
    errorEl,
    h('div', { class: 'ticket-body' },
      h('div', { class: 'tl-col' },
        h('div', { class: 'tl-bar' }, h('h2', { class: 'tl-h' }, 'Story'), filters),
        h('div', { class: 'pager' }, earlier, start),
        list,
        h('div', { class: 'pager' }, later, latest, pageInfo),
        newBelow,
        composer),
      side));
  clear(main).append(view);
  heading.focus({ preventScroll: true });

  // ---- header ----------------------------------------------------------------------------
  function setTicket(t) {
    if (!t) return;
    st.ticket = t;
    const name = contactName(t.contact);
    clear(heading).append(bidi(name), h('span', { class: 'muted id' }, ` #${t.id}`));
    document.title = `#${t.id} ${name} · casetrail`;
    const c = t.contact || {};
    clear(headDetail).append(...[
      contactDetail(c) ? h('span', null, contactDetail(c)) : null,
      c.phone_number_id ? h('span', null, `Business number ${c.phone_number_id}`) : null,
      h('span', null, 'Opened ', timeEl(t.created_at)),
      t.last_message_at ? h('span', null, 'Last message ', timeEl(t.last_message_at)) : null].filter(Boolean));
    // Element.append writes a null as the text "null": only the parts that apply, here and above
    clear(badges).append(...[statusBadge(t.status), priorityBadge(t.priority, true), escalationBadge(t),
      assigneeBadge(t.assignee)].filter(Boolean));
    // the actions depend on these only; re-rendering for anything else would close a form
    // someone is typing into
    const shape = [t.status, t.assignee, t.escalation_level, t.priority].join('|');
    if (shape !== st.shape) {
      st.shape = shape;
      renderSide();
    }
  }

  function renderSide() {
    const hadFocus = side.contains(document.activeElement);
    clear(side).append(actionsPanel(st.ticket, { onDone: afterAction }));
    if (hadFocus) side.querySelector('h2')?.focus();
    renderComposer();
  }

  function renderComposer() {
    const typed = composer.querySelector('textarea');
    const text = typed ? typed.value : '';
    const hadFocus = typed && document.activeElement === typed;
    clear(composer).append(...composerNodes());
    const again = composer.querySelector('textarea');
    if (again && text) again.value = text;
    if (again && hadFocus) again.focus();
  }

  function composerNodes() {
    return replyComposer(st.ticket, st.replyTo, {
      onDone: afterAction,
      clearReply: () => { st.replyTo = null; renderComposer(); composer.querySelector('textarea')?.focus(); },
    });
  }

  async function afterAction(ticket) {
    if (ticket && ticket.id === st.id) setTicket(ticket);
    if (st.replyTo) { st.replyTo = null; renderComposer(); }
    await refreshTail();
  }

  // ---- verification -----------------------------------------------------------------------
  async function verify() {
    clear(verifyEl).append(h('span', { class: 'badge vf-wait' }, 'Checking the chain…'));
    try {
      const r = await get(`/api/tickets/${id}/verify`);
      if (st.disposed) return;
      if (r.ok) {
        clear(verifyEl).append(h('span', { class: 'badge vf-ok', title: r.head ? `Chain head ${r.head}` : null },
          '✓ Chain verified', r.events != null ? ` · ${r.events} events` : ''));
      } else {
        clear(verifyEl).append(h('span', { class: 'badge vf-bad' },
          `✗ Chain broken at seq ${r.first_bad_seq ?? '?'}`, r.reason ? [': ', bidi(r.reason)] : null));
      }
    } catch (e) {
      if (st.disposed) return;
      clear(verifyEl).append(h('span', { class: 'badge vf-wait' }, `Not verified: ${e.message}`));
    }
    verifyEl.append(h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: verify }, 'Check again'));
  }

  // ---- items ------------------------------------------------------------------------------
  const keyOf = (it) => (it.kind === 'message' ? `m${it.id}` : `e${it.seq}`);

  function note(it) {
    // things other items refer to: messages by wamid, approvals by id, reactions by target
    if (it.kind === 'message') {
      if (it.wamid) st.byWamid.set(it.wamid, it);
      if (it.type === 'reaction' && it.reaction && it.reaction.message_id) {
        const list = st.reactions.get(it.reaction.message_id) || new Map();
        list.set(it.id, it);
        st.reactions.set(it.reaction.message_id, list);
      }
      st.kinds.add('message');
    } else {
      if (it.action === 'approval.requested' && it.approval_id != null) st.approvals.set(it.approval_id, it);
      if (it.action === 'approval.decided' && it.approval_id != null && !st.decided.has(it.approval_id)) {
        st.decided.add(it.approval_id);
        // a request shown with Approve / Deny buttons is decided now
        for (const li of list.querySelectorAll('li.ev-approval-requested')) {
          if (li.item && li.item.approval_id === it.approval_id) li.querySelector('.decision')?.remove();
        }
      }
      st.kinds.add(it.action);
    }
    st.actors.add(actorKey(it));
  }

  function renderItem(it, page) {
    const node = it.kind === 'message' ? renderMessage(it) : renderEvent(it);
    node.dataset.key = keyOf(it);
    node.dataset.page = String(page);
    node.dataset.actor = actorKey(it);
    node.dataset.kind = it.kind === 'message' ? 'message' : it.action;
    node.item = it;
    node.hidden = !visible(node);
    return node;
  }

  function renderEvent(ev) {
    const cls = `item ev ev-${ev.action.replace(/\./g, '-')}${ev.actor && ev.actor.type === 'system' ? ' ev-system' : ''}`;
    const body = [h('span', { class: 'ev-text' }, describeEvent(ev, { approvals: st.approvals, userName })),
      h('span', { class: 'ev-time' }, ' · ', timeEl(ev.at, { withClock: true }))];
    if (ev.action === 'note.added') {
      return h('li', { class: cls },
        h('div', { class: 'note' }, h('p', { class: 'note-head' }, body),
          h('p', { class: 'note-body', dir: 'auto' }, ev.note || ev.body || '')));
    }
    const li = h('li', { class: cls }, h('p', { class: 'ev-line' }, body));
    if (ev.action === 'approval.requested' && !st.decided.has(ev.approval_id)) {
      li.append(decisionControls(ev, { onDone: afterAction }));
    }
    return li;
  }

  function renderMessage(m) {
    const dir = m.direction === 'out' ? 'out' : 'in';
    const who = dir === 'in' ? contactName(st.ticket && st.ticket.contact)
      : (m.author || (m.sent_from === 'business_app' ? 'Business app' : 'Business'));
    const bubble = h('div', { class: 'bubble' },
      h('p', { class: 'msg-who' }, bidi(who), dir === 'in' ? null : h('span', { class: 'muted' }, ' · reply'),
        m.forwarded ? h('span', { class: 'muted' }, ' · forwarded') : null));
    if (m.reply_to) bubble.append(quoteOf(m.reply_to));
    bubble.append(...messageBody(m));
    if (m.edits && m.edits.length) {
      bubble.append(h('details', { class: 'edits' }, h('summary', null, `Edited ${m.edits.length} time${m.edits.length === 1 ? '' : 's'}`),
        h('ol', null, m.edits.map((e) => h('li', null, h('span', { dir: 'auto', class: 'msg-text' }, e.text || ''), ' · ', timeEl(e.at))))));
    }
    if (m.deleted) bubble.append(h('p', { class: 'deleted' }, `Deleted by the ${m.deleted.by === 'customer' ? 'customer' : 'business'} `, timeEl(m.deleted.at)));
    const reacts = h('span', { class: 'reactions' });
    fillReactions(reacts, m.wamid);
    const foot = h('p', { class: 'msg-foot' }, timeEl(m.at, { withClock: true }),
      dir === 'out' && m.status ? h('span', { class: `msg-status ms-${m.status}` }, ` · ${cap(m.status)}`) : null,
      m.error_title ? h('span', { class: 'msg-error' }, ' · ', bidi(m.error_title)) : null,
      reacts);
    bubble.append(foot);
    const li = h('li', { class: `item msg msg-${dir}${m.type === 'reaction' ? ' msg-reaction' : ''}`, id: `msg-${m.id}` }, bubble);
    if (m.type !== 'reaction' && m.wamid && canReply()) {
      bubble.append(h('button', { type: 'button', class: 'btn btn-small btn-quiet reply-btn',
        onclick: () => { st.replyTo = m; renderComposer(); composer.querySelector('textarea')?.focus(); },
      }, 'Reply to this'));
    }
    return li;
  }

  function canReply() {
    const t = st.ticket;
    if (!t || t.status === 'closed' || !atLeast('agent')) return false;
    return atLeast('supervisor') || !t.assignee || t.assignee === session.me.name;
  }

  function fillReactions(el, wamid) {
    clear(el);
    const rs = wamid && st.reactions.get(wamid);
    if (!rs || !rs.size) return;
    for (const r of rs.values()) {
      if (!r.reaction.emoji) continue;
      el.append(h('span', { class: 'reaction', title: `${r.direction === 'in' ? 'Customer' : (r.author || 'Business')} reacted` }, r.reaction.emoji));
    }
  }

  function quoteOf(wamid) {
    const target = st.byWamid.get(wamid);
    const text = target ? snippet(target) : 'a message not shown here';
    return h('button', { type: 'button', class: 'quote', title: 'Show the message this answers',
      onclick: () => {
        const t = st.byWamid.get(wamid);
        const el = t && document.getElementById(`msg-${t.id}`);
        if (el) { el.scrollIntoView({ block: 'center' }); el.classList.add('flash'); setTimeout(() => el.classList.remove('flash'), 1500); }
        else toast('That message is not in the part of the timeline shown.', 'info');
      } },
    h('span', { class: 'sr-only' }, 'In reply to: '), h('span', { dir: 'auto' }, text));
  }

  function snippet(m) {
    const t = m.text || MEDIA_LABELS[m.type] || m.type;
    return t.length > 90 ? `${t.slice(0, 90)}…` : t;
  }

  function messageBody(m) {
    const out = [];
    const t = m.type;
    if (t === 'reaction') {
      const target = m.reaction && st.byWamid.get(m.reaction.message_id);
      out.push(h('p', { class: 'msg-text' }, m.reaction && m.reaction.emoji
        ? ['Reacted ', h('span', { class: 'reaction' }, m.reaction.emoji)] : 'Removed a reaction',
      target ? [' to ', h('q', { dir: 'auto' }, snippet(target))] : null));
      return out;
    }
    if (MEDIA_LABELS[t]) {
      const obj = m[t] || {};
      const label = `${MEDIA_LABELS[t]}${obj.filename ? `: ${obj.filename}` : ''}`;
      if (m.media_url) {
        out.push(h('p', { class: 'media' }, h('a', { href: m.media_url, download: obj.filename || true }, `⬇ ${label}`),
          m.media_size ? h('span', { class: 'muted' }, ` · ${formatSize(m.media_size)}`) : null));
      } else if (m.media_status === 'failed') {
        out.push(h('p', { class: 'media muted' }, `${label} · could not be fetched`, m.media_reason ? [': ', bidi(m.media_reason)] : null));
      } else {
        out.push(h('p', { class: 'media muted' }, `${label} · ${m.media_status === 'pending' ? 'being fetched' : 'not stored'}`));
      }
    } else if (t === 'location' && m.location) {
      const l = m.location;
      out.push(h('p', { class: 'media' }, '📍 ', bidi([l.name, l.address].filter(Boolean).join(', ') || 'Location'),
        l.latitude != null ? ` (${l.latitude}, ${l.longitude})` : null));
    } else if (t === 'contacts' && Array.isArray(m.contacts)) {
      out.push(h('p', { class: 'media' }, 'Shared contact: ', bidi(m.contacts.map((c) => (c.name && c.name.formatted_name) || '?').join(', '))));
    } else if (t === 'template' && !m.text) {
      out.push(h('p', { class: 'media' }, `Template ${(m.template && m.template.name) || ''}`));
    } else if (t === 'revoke') {
      out.push(h('p', { class: 'media muted' }, 'Deleted a message', m.original ? [': ', h('q', { dir: 'auto' }, m.original.text || '')] : null));
      return out;
    } else if (t === 'edit') {
      out.push(h('p', { class: 'media muted' }, 'Edited a message', m.original ? [' that said ', h('q', { dir: 'auto' }, m.original.text || '')] : null));
    } else if (!['text', 'image', 'interactive', 'button'].includes(t) && !m.text) {
      out.push(h('p', { class: 'media muted' }, `A ${t} message`));
    }
    if (m.text) out.push(h('p', { class: 'msg-text', dir: 'auto' }, m.text));
    return out;
  }

  // ---- filters ----------------------------------------------------------------------------
  function visible(node) {
    const kind = kindSel.value;
    const actor = actorSel.value;
    const k = node.dataset.kind;
    let ok;
    if (kind === '' || kind === 'default') ok = kind === '' || !RECEIPT_ACTIONS.has(k);
    else if (kind === 'messages') ok = k === 'message';
    else if (kind === 'events') ok = k !== 'message' && !RECEIPT_ACTIONS.has(k);
    else ok = k === kind;
    return ok && (!actor || node.dataset.actor === actor);
  }

  function applyFilters() {
    let shown = 0;
    for (const li of list.children) {
      li.hidden = !visible(li);
      if (!li.hidden) shown++;
    }
    updateInfo(shown);
  }

  function fillFilterOptions() {
    const kv = kindSel.value || 'default';
    const av = actorSel.value || '';
    clear(kindSel).append(
      h('option', { value: 'default' }, 'Messages and actions'),
      h('option', { value: '' }, 'Everything, with receipts'),
      h('option', { value: 'messages' }, 'Messages only'),
      h('option', { value: 'events' }, 'Actions only'),
      h('optgroup', { label: 'One kind' }, [...st.kinds].filter((k) => k !== 'message').sort().map((k) =>
        h('option', { value: k }, ACTION_LABELS[k] || k))));
    kindSel.value = [...kindSel.options].some((o) => o.value === kv) ? kv : 'default';
    clear(actorSel).append(h('option', { value: '' }, 'Anyone'),
      [...st.actors].sort().map((a) => h('option', { value: a }, actorLabel(a))));
    actorSel.value = [...actorSel.options].some((o) => o.value === av) ? av : '';
  }

  function updateInfo(shown) {
    if (shown === undefined) shown = [...list.children].filter((li) => !li.hidden).length;
    const total = list.children.length;
    const atEnd = isAtEnd();
    const atStart = isAtStart();
    pageInfo.textContent = total === 0 ? 'Nothing in this timeline yet.'
      : `Showing ${shown} of ${total} loaded item${total === 1 ? '' : 's'}${atStart ? '' : '; there is more before these'}${atEnd ? '' : '; there is more after these'}.`;
    earlier.hidden = atStart;
    start.hidden = atStart;
    later.hidden = atEnd;
    latest.hidden = atEnd;
    if (atEnd) newBelow.hidden = true;
  }

  // the newest item the filters show (a hidden one, a receipt say, cannot be scrolled to)
  const lastShown = () => [...list.children].reverse().find((li) => !li.hidden);
  const first = () => st.chunks[0];
  const last = () => st.chunks[st.chunks.length - 1];
  const isAtEnd = () => !st.chunks.length || !last().next;
  const isAtStart = () => !st.chunks.length || !first().prev;

  // ---- paging -----------------------------------------------------------------------------
  // req: { cursor } or { from: 'start' | 'end' }. A read without a cursor opens the ticket
  // (purpose=view, recorded in the access log) only when the ticket is opened; jumps and live
  // re-reads of an open ticket say refresh, so one visit is one access-log row.
  async function fetchPage(req, limit = PAGE, purpose = 'refresh') {
    return get(`/api/tickets/${id}/timeline${qs({ limit, ...req, purpose: req.cursor ? null : purpose })}`);
  }

  function keepPlace(fn) {
    // keeps the item at the top of the screen where it is while nodes come and go around it
    const anchor = [...list.children].find((li) => li.getBoundingClientRect().bottom > 0);
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    fn();
    if (anchor && anchor.isConnected) window.scrollBy(0, anchor.getBoundingClientRect().top - before);
  }

  function chunkNodes(c) { return list.querySelectorAll(`li[data-page="${c.n}"]`); }

  // A page as a chunk of the window, and its rendered items (not yet in the document).
  function makeChunk(page, req) {
    const items = page.items || [];
    items.forEach(note);
    const c = { n: ++st.chunkSeq, req, prev: page.prev_cursor || null, next: nextOf(page), count: items.length };
    const frag = document.createDocumentFragment();
    for (const it of items) frag.appendChild(renderItem(it, c.n));
    return { c, frag };
  }

  // The page read at the end of the story: what is recorded after it comes by `resume`.
  function atTail(page) {
    if (!nextOf(page) && page.resume_cursor != null) st.resume = page.resume_cursor;
  }

  // Replaces the window with one page (opening, and the jumps to either end).
  async function showOnly(req, purpose = 'refresh') {
    const page = await fetchPage(req, PAGE, purpose);
    if (st.disposed) return false;
    setTicket(page.ticket);
    st.resume = null;
    atTail(page);
    const { c, frag } = makeChunk(page, req);
    clear(list).appendChild(frag);
    st.chunks = [c];
    fillFilterOptions();
    applyFilters();
    return true;
  }

  async function open() {
    try {
      if (!(await showOnly({ from: 'end' }, 'view'))) return;
      lastShown()?.scrollIntoView({ block: 'end' });
    } catch (e) {
      if (st.disposed) return;
      errorEl.textContent = e.status === 404 ? `There is no ticket #${id}.` : `Could not load the ticket: ${e.message}`;
      errorEl.hidden = false;
      return;
    }
    verify();
    users().catch(() => {});
  }

  async function paging(button, what, fn) {
    if (st.busy) return;
    st.busy = true; button.disabled = true;
    try { await fn(); } catch (e) {
      toast(`Could not load ${what}: ${e.message}`, 'error', 8000);
    } finally { st.busy = false; button.disabled = false; }
  }

  function loadLater() {
    return paging(later, 'more of the timeline', async () => {
      if (isAtEnd()) return;
      const req = { cursor: last().next };
      const page = await fetchPage(req);
      if (st.disposed) return;
      setTicket(page.ticket);
      atTail(page);
      keepPlace(() => {
        const { c, frag } = makeChunk(page, req);
        list.appendChild(frag);
        st.chunks.push(c);
        while (st.chunks.length > WINDOW) chunkNodes(st.chunks.shift()).forEach((n) => n.remove());
      });
      fillFilterOptions();
      applyFilters();
    });
  }

  function loadEarlier() {
    return paging(earlier, 'earlier items', async () => {
      if (isAtStart()) return;
      const req = { cursor: first().prev };
      const page = await fetchPage(req);
      if (st.disposed) return;
      keepPlace(() => {
        const { c, frag } = makeChunk(page, req);
        list.insertBefore(frag, list.firstChild);
        st.chunks.unshift(c);
        while (st.chunks.length > WINDOW) {
          chunkNodes(st.chunks.pop()).forEach((n) => n.remove());
          // the story's end is no longer in the document: live items wait for "Load later"
          st.resume = null;
        }
      });
      fillFilterOptions();
      applyFilters();
    });
  }

  function jumpTo(end) {
    const button = end === 'end' ? latest : start;
    return paging(button, end === 'end' ? 'the latest items' : 'the start', async () => {
      if (!(await showOnly({ from: end }))) return;
      if (end === 'end') lastShown()?.scrollIntoView({ block: 'end' });
      else list.firstElementChild?.scrollIntoView({ block: 'start' });
      (end === 'end' ? earlier : later).focus?.();
    });
  }

  // New items after the last one, from the `resume` cursor. Items already shown are replaced
  // when they changed (a reply delivered, a media file stored).
  async function refreshTail() {
    if (!st.chunks.length) return;
    if (!isAtEnd() || !st.resume) {
      try { setTicket(await get(`/api/tickets/${id}`)); } catch { /* the header can wait */ }
      newBelow.hidden = false;
      return;
    }
    const tail = last();
    let cursor = st.resume;
    const touched = new Set();
    let changed = false;
    for (let guard = 0; guard < 50; guard++) {
      const page = await fetchPage({ cursor });
      if (st.disposed) return;
      setTicket(page.ticket);
      for (const it of page.items || []) {
        note(it);
        if (it.kind === 'event' && it.message_id != null) touched.add(it.message_id);
        const key = keyOf(it);
        const old = list.querySelector(`li[data-key="${key}"]`);
        if (old) {
          if (JSON.stringify(old.item) !== JSON.stringify(it)) { old.replaceWith(renderItem(it, Number(old.dataset.page))); changed = true; }
        } else {
          list.appendChild(renderItem(it, tail.n));
          tail.count++;
          changed = true;
          if (it.kind === 'message' && it.type === 'reaction') touched.add('r');
        }
      }
      if (page.resume_cursor != null) st.resume = page.resume_cursor;
      const next = nextOf(page);
      if (!next) break;
      cursor = next;
    }
    // messages whose status or media changed, and reaction targets, are re-rendered in place
    if (touched.size) await refreshShownMessages(touched);
    if (changed) { fillFilterOptions(); applyFilters(); reverifySoon(); }
  }

  // the chain grew: check it again once things settle (verification costs the server a read
  // of the whole chain, so not on every event of a burst)
  let verifyTimer = null;
  function reverifySoon() {
    clearTimeout(verifyTimer);
    verifyTimer = setTimeout(() => { if (!st.disposed) verify(); }, 1500);
  }

  async function refreshShownMessages(touched) {
    const chunksToFetch = new Set();
    for (const li of list.children) {
      const it = li.item;
      if (it && it.kind === 'message' && (touched.has(it.id) || touched.has('r'))) chunksToFetch.add(Number(li.dataset.page));
    }
    for (const c of st.chunks) {
      if (!chunksToFetch.has(c.n)) continue;
      let page;
      try { page = await fetchPage(c.req, Math.min(500, Math.max(PAGE, c.count))); } catch { continue; }
      if (st.disposed) return;
      for (const it of page.items || []) {
        if (it.kind !== 'message') continue;
        note(it);
        const old = list.querySelector(`li[data-key="m${it.id}"]`);
        if (old && (JSON.stringify(old.item) !== JSON.stringify(it) || touched.has('r'))) {
          old.replaceWith(renderItem(it, Number(old.dataset.page)));
        }
      }
    }
  }

  // ---- live -------------------------------------------------------------------------------
  let pending = null;
  let running = false;
  const unsubscribe = subscribe((msg) => {
    if (msg.ticketId !== undefined && msg.ticketId !== id) return;
    // coalesce bursts: one refresh runs at a time, and one more follows if changes came meanwhile
    if (running) { pending = true; return; }
    (async function run() {
      running = true;
      try { await refreshTail(); } catch (e) { if (!st.disposed) toast(`Live update failed: ${e.message}`, 'error'); }
      running = false;
      if (pending && !st.disposed) { pending = false; run(); }
    })();
  });

  function userName(uid) {
    const u = (session.users || []).find((x) => String(x.id) === String(uid));
    return u ? u.name : uid != null ? `user ${uid}` : null;
  }

  open();
  return () => { st.disposed = true; clearTimeout(verifyTimer); unsubscribe(); };
}

function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

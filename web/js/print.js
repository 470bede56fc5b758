// print.js: a ticket's whole story at #/tickets/ID/print, laid out for paper, so QA can save it
// as PDF from the browser (css/print.css): the header, every message and event in order with
// absolute times in CASETRAIL_TIMEZONE, actors and reasons, each event's seq and hash, and the
// chain's verification result at the top and the bottom.
//
// The whole timeline is read from the start in pages of 500 (a 10,000-item ticket is twenty
// requests); the first carries purpose=print, so the server records a `ticket.print` row in
// the access log instead of `ticket.view`. It is a snapshot: live changes are not followed.
import { get, qs, nextOf } from './api.js';
import { h, clear, bidi, append } from './dom.js';
import { timeZone } from './time.js';
import { session } from './state.js';
import { contactName, contactDetail, cap } from './badges.js';
import { describeEvent, actorName, formatAmount, kindLabel } from './describe.js';

const PAGE = 500;
const MAX_PAGES = 1000; // 500,000 items: a guard against a cursor that never ends, not a limit
const MEDIA_LABELS = { image: 'Photo', video: 'Video', audio: 'Voice note or audio', document: 'Document', sticker: 'Sticker' };

export function renderPrint(main, id) {
  const st = { disposed: false, items: 0, messages: 0, events: 0, lastEvent: null,
    approvals: new Map(), byWamid: new Map(), contact: 'Customer' };
  document.title = `Ticket #${id} (print) · casetrail`;
  const fmt = absoluteFormat();

  const progress = h('p', { class: 'print-progress', role: 'status', 'aria-live': 'polite' }, 'Reading the ticket…');
  const printBtn = h('button', { type: 'button', class: 'btn btn-primary', disabled: true, onclick: () => window.print() }, 'Print / save as PDF');
  const heading = h('h1', { tabindex: '-1', id: 'print-title' }, `Ticket #${id}`);
  const facts = h('dl', { class: 'print-facts' });
  const verifyTop = h('div', { class: 'print-verify', id: 'verify-top' }, 'Checking the chain…');
  const verifyEnd = h('div', { class: 'print-verify', id: 'verify-end' }, 'Checking the chain…');
  const approvalsBox = h('section', { class: 'print-approvals', hidden: true, 'aria-labelledby': 'print-approvals-h' });
  const story = h('ol', { class: 'print-story', 'aria-label': 'The story, oldest first' });
  const summary = h('p', { class: 'print-summary' });
  const errorEl = h('div', { class: 'error-box', role: 'alert', hidden: true });

  const view = h('article', { class: 'view print-view', 'aria-labelledby': 'print-title', dataset: { ready: '0' } },
    h('div', { class: 'print-tools' },
      h('a', { href: `#/tickets/${id}` }, `← Back to ticket #${id}`), printBtn, progress),
    h('header', { class: 'print-head' }, heading,
      h('p', { class: 'print-meta' }, `All times in ${timeZone()}. Printed ${fmt(new Date().toISOString())} by `,
        bidi(session.me ? session.me.name : '?'), '.'),
      facts, verifyTop),
    errorEl, approvalsBox,
    h('h2', { class: 'print-h' }, 'The story'),
    story, summary, verifyEnd);
  clear(main).append(view);
  heading.focus({ preventScroll: true });

  async function run() {
    const verified = verify();
    try {
      await readAll();
    } catch (e) {
      if (st.disposed) return;
      errorEl.textContent = e.status === 404 ? `There is no ticket #${id}.` : `Could not read the whole ticket: ${e.message}. Do not print this page.`;
      errorEl.hidden = false;
      progress.textContent = 'Stopped: the story is incomplete.';
      return;
    }
    const r = await verified;
    if (st.disposed) return;
    showVerification(r);
    summary.textContent = `End of ticket #${id}: ${st.items} item${st.items === 1 ? '' : 's'} (${st.messages} message${st.messages === 1 ? '' : 's'}, ${st.events} event${st.events === 1 ? '' : 's'})${st.lastEvent ? `, seq 1 to ${st.lastEvent.seq}` : ''}.`;
    progress.textContent = `Ready: ${st.items} items. Use “Print / save as PDF” and choose “Save as PDF” as the printer.`;
    printBtn.disabled = false;
    view.dataset.ready = '1';
  }

  // Every page from the start, appended as it comes so a long ticket shows its progress.
  async function readAll() {
    let req = { from: 'start', purpose: 'print' };
    for (let n = 0; n < MAX_PAGES; n++) {
      const page = await get(`/api/tickets/${id}/timeline${qs({ limit: PAGE, ...req })}`);
      if (st.disposed) return;
      if (n === 0) setTicket(page.ticket);
      const frag = document.createDocumentFragment();
      for (const it of page.items || []) frag.appendChild(renderItem(it));
      story.appendChild(frag);
      progress.textContent = `Reading the ticket… ${st.items} items so far.`;
      const next = nextOf(page);
      if (!next) return;
      req = { cursor: next };
      // let the browser paint the progress between pages
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    throw new Error(`more than ${MAX_PAGES} pages`);
  }

  async function verify() {
    try {
      return await get(`/api/tickets/${id}/verify`);
    } catch (e) {
      return { error: e.message };
    }
  }

  // ---- header ----------------------------------------------------------------------------
  function setTicket(t) {
    const c = t.contact || {};
    const name = contactName(c);
    st.contact = name;
    clear(heading).append('Ticket #', String(t.id), ': ', bidi(name));
    document.title = `Ticket #${t.id} ${name} · casetrail`;
    const row = (label, ...value) => [h('dt', null, label), h('dd', null, ...value)];
    // dom.js's append: rows are arrays, and a missing row is null (DOM append would print both)
    append(clear(facts), [
      row('Ticket', `#${t.id}`),
      row('Contact', bidi(name), contactDetail(c) ? [' · ', bidi(contactDetail(c))] : null),
      row('Business number', c.phone_number_id || '—'),
      row('Status', cap(t.status || '—')),
      row('Priority', cap(t.priority || 'normal'), t.escalation_level ? ` · escalated to level ${t.escalation_level}` : ''),
      row('Assignee', t.assignee ? bidi(t.assignee) : 'Unassigned (shared queue)'),
      row('Created', when(t.created_at)),
      t.last_message_at ? row('Last message', when(t.last_message_at)) : null]);
  }

  // ---- verification -----------------------------------------------------------------------
  function showVerification(r) {
    for (const box of [verifyTop, verifyEnd]) clear(box).append(...verificationNodes(r));
  }

  function verificationNodes(r) {
    if (r.error) return [h('p', { class: 'pv-bad' }, `Not verified: ${r.error}`)];
    if (!r.ok) {
      return [h('p', { class: 'pv-bad' }, `✗ Chain broken at seq ${r.first_bad_seq ?? '?'}`, r.reason ? [': ', bidi(r.reason)] : null,
        r.table ? ` (${r.table} row ${r.row}, ${r.field})` : null)];
    }
    const out = [h('p', { class: 'pv-ok' }, `✓ Chain verified: ${r.events} events, every hash and link recomputed by casetrail`,
      r.redacted ? ` (${r.redacted} erased text${r.redacted === 1 ? '' : 's'})` : null, '.'),
    h('p', { class: 'pv-head' }, 'Chain head ', h('code', null, r.head || '—'))];
    // the check and the printed story are two reads: say whether they cover the same events
    const last = st.lastEvent;
    if (last && last.hash && last.hash === r.head && last.seq === r.events) {
      out.push(h('p', { class: 'pv-note' }, `The last event printed here (seq ${last.seq}) is that head: the events printed are the verified chain.`));
    } else {
      out.push(h('p', { class: 'pv-note pv-bad' }, `The last event printed here is seq ${last ? last.seq : '—'}: events were recorded between the check and this page; print again for a matching pair.`));
    }
    // the seal kept outside casetrail: which signed digest covers this story, and up to where
    if (r.digest) {
      out.push(h('p', { class: 'pv-note pv-digest' }, 'Sealed by the signed digest of ', when(r.digest.time),
        `: events 1 to ${r.digest.covers_seq} are covered. `,
        'The evidence bundle carries its proof; check it with ', h('code', null, 'casetrail verify-bundle --verify-key'), '.'));
    } else {
      out.push(h('p', { class: 'pv-note pv-digest' }, 'No signed digest covers this ticket yet (casetrail digest makes one).'));
    }
    return out;
  }

  // ---- items ------------------------------------------------------------------------------
  function renderItem(it) {
    st.items++;
    const node = it.kind === 'message' ? renderMessage(it) : renderEvent(it);
    node.dataset.kind = it.kind === 'message' ? 'message' : it.action;
    return node;
  }

  function renderEvent(ev) {
    st.events++;
    st.lastEvent = ev;
    if (ev.action === 'approval.requested' && ev.approval_id != null) {
      st.approvals.set(ev.approval_id, ev);
      noteApproval(ev);
    }
    if (ev.action === 'approval.decided') noteApproval(ev);
    const body = [h('p', { class: 'pi-what' }, describeEvent(ev, { approvals: st.approvals, userName: (uid) => (uid != null ? `user ${uid}` : null) }))];
    if (ev.action === 'note.added') body.push(h('p', { class: 'pi-text', dir: 'auto' }, ev.note || ev.body || ''));
    body.push(h('p', { class: 'pi-chain' }, `seq ${ev.seq} · hash `, h('code', null, ev.hash || 'not given')));
    return h('li', { class: `pi pi-event${ev.actor && ev.actor.type === 'system' ? ' pi-system' : ''}` },
      h('p', { class: 'pi-when' }, when(ev.at)), h('div', { class: 'pi-body' }, body));
  }

  function renderMessage(m) {
    st.messages++;
    if (m.wamid) st.byWamid.set(m.wamid, m);
    const inbound = m.direction !== 'out';
    const who = inbound ? st.contact
      : (m.author || (m.sent_from === 'business_app' ? 'Business app' : 'Business'));
    const head = h('p', { class: 'pi-who' }, bidi(who, 'actor'), inbound ? ' wrote' : ' replied',
      m.type && m.type !== 'text' ? ` (${m.type})` : null,
      !inbound && m.status ? ` · ${cap(m.status)}` : null,
      m.forwarded ? ' · forwarded' : null);
    const body = [head];
    if (m.reply_to) {
      const t = st.byWamid.get(m.reply_to);
      body.push(h('p', { class: 'pi-quote' }, 'In reply to: ', h('q', { dir: 'auto' }, t ? snippet(t) : 'a message not in this ticket')));
    }
    body.push(...messageBody(m));
    for (const e of m.edits || []) body.push(h('p', { class: 'pi-sub' }, `Edited ${when(e.at)} to: `, h('q', { dir: 'auto' }, e.text || '')));
    if (m.deleted) body.push(h('p', { class: 'pi-sub' }, `Deleted by the ${m.deleted.by === 'customer' ? 'customer' : 'business'} ${when(m.deleted.at)}`));
    if (m.error_title) body.push(h('p', { class: 'pi-sub' }, 'Error: ', bidi(m.error_title)));
    body.push(h('p', { class: 'pi-chain' }, `message ${m.id}`, m.wamid ? [' · ', h('code', null, m.wamid)] : null));
    return h('li', { class: `pi pi-msg pi-${inbound ? 'in' : 'out'}` },
      h('p', { class: 'pi-when' }, when(m.at)), h('div', { class: 'pi-body' }, body));
  }

  function messageBody(m) {
    const out = [];
    const t = m.type;
    if (t === 'reaction') {
      out.push(h('p', { class: 'pi-text' }, m.reaction && m.reaction.emoji ? `Reacted ${m.reaction.emoji}` : 'Removed a reaction'));
      return out;
    }
    if (MEDIA_LABELS[t]) {
      const obj = m[t] || {};
      out.push(h('p', { class: 'pi-sub' }, `${MEDIA_LABELS[t]}`, obj.filename ? [': ', bidi(obj.filename)] : null,
        ` · ${m.media_status || 'not stored'}`, m.media_sha256 ? [' · SHA-256 ', h('code', null, m.media_sha256)] : null));
    } else if (t === 'location' && m.location) {
      const l = m.location;
      out.push(h('p', { class: 'pi-sub' }, 'Location: ', bidi([l.name, l.address].filter(Boolean).join(', ') || '—'),
        l.latitude != null ? ` (${l.latitude}, ${l.longitude})` : null));
    } else if (t === 'revoke' || t === 'edit') {
      out.push(h('p', { class: 'pi-sub' }, t === 'revoke' ? 'Deleted a message' : 'Edited a message',
        m.original ? [': ', h('q', { dir: 'auto' }, m.original.text || '')] : null));
    }
    if (m.text) out.push(h('p', { class: 'pi-text', dir: 'auto' }, m.text));
    return out;
  }

  // The approvals table: amounts and both reasons side by side, filled from the events.
  function noteApproval(ev) {
    const a = st.approvals.get(ev.approval_id);
    if (!a) return;
    approvalsBox.hidden = false;
    let table = approvalsBox.querySelector('tbody');
    if (!table) {
      table = h('tbody');
      approvalsBox.append(h('h2', { class: 'print-h', id: 'print-approvals-h' }, 'Approvals'),
        h('table', { class: 'print-table' },
          h('thead', null, h('tr', null, ['#', 'Kind and amount', 'Requested', 'Request reason', 'Decision', 'Decision reason']
            .map((c) => h('th', { scope: 'col' }, c)))), table));
    }
    const key = String(ev.approval_id);
    let tr = table.querySelector(`tr[data-id="${key}"]`);
    if (!tr) {
      tr = h('tr', { dataset: { id: key } });
      table.append(tr);
    }
    const d = ev.action === 'approval.decided' ? ev : tr.decision;
    tr.decision = d;
    const amount = formatAmount(a.amount_minor, a.currency);
    clear(tr).append(
      h('td', null, key),
      h('td', null, kindLabel(a.approval_kind), amount ? ` ${amount}` : ''),
      h('td', null, bidi(actorName(a.actor)), h('br'), when(a.at)),
      h('td', { dir: 'auto' }, a.reason || ''),
      h('td', null, d ? [cap(d.to || '?'), ' by ', bidi(actorName(d.actor)), h('br'), when(d.at)] : 'Pending'),
      h('td', { dir: 'auto' }, d && d.reason ? d.reason : ''));
  }

  function snippet(m) {
    const t = m.text || MEDIA_LABELS[m.type] || m.type || '';
    return t.length > 90 ? `${t.slice(0, 90)}…` : t;
  }

  function when(iso) {
    return iso ? h('time', { datetime: iso }, fmt(iso)) : '—';
  }

  run();
  return () => { st.disposed = true; };
}

// Absolute time in the signed-in user's zone (from /api/me), to the second: on paper nothing
// is relative, and the zone is named once in the header.
function absoluteFormat() {
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: timeZone(), year: 'numeric', month: 'short',
    day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  return (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : f.format(d);
  };
}

// actions.js: what the signed-in user may do to a ticket, each through the ordinary API: take,
// hand off, unassign, status, escalate, de-escalate, priority, internal note, request and
// decide approvals, reply and send a template. Every failure is shown in the server's words
// beside the form, never swallowed.
import { post } from './api.js';
import { h, clear, field, bidi, toast } from './dom.js';
import { session, users, atLeast } from './state.js';
import { PRIORITIES, cap } from './badges.js';
import { formatAmount, kindLabel } from './describe.js';

// The status table (docs/DECISIONS.md): what each status may move to, and whether a reason is
// required. Closing an unresolved ticket is for supervisors and admins.
const MOVES = {
  new: [['open', false], ['pending', true], ['resolved', true], ['closed', true, 'supervisor']],
  open: [['pending', true], ['resolved', true], ['closed', true, 'supervisor']],
  pending: [['open', false], ['resolved', true], ['closed', true, 'supervisor']],
  resolved: [['open', false], ['closed', false]],
  closed: [],
};
const REASON_HINT = { pending: 'What it waits for, e.g. awaiting courier', resolved: 'Resolution note',
  closed: 'Why it is closed', open: 'Optional' };
const KINDS = ['refund', 'credit', 'comp', 'discount', 'exception', 'off_policy_reply'];

// A friendlier sentence for a few codes; the server's own message is always shown too.
function explain(e) {
  const hints = {
    window_closed: 'The customer last wrote more than 24 hours ago, so only a template can be sent.',
    ticket_closed: 'The ticket is closed; nothing more can be done to it.',
    forbidden: 'Your role may not do this on this ticket.',
    csrf: 'The request was refused as possibly cross-site. Reload the page and try again.',
    network: '',
  };
  const hint = hints[e.code];
  return hint ? `${e.message}. ${hint}` : e.message;
}

// A small form: fields, a submit button, Cancel, and an error line. run(values) performs the
// request; its result goes to onDone.
function actionForm({ title, fields, submit, run, onDone, onCancel, hint }) {
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const btn = h('button', { type: 'submit', class: 'btn btn-primary' }, submit);
  const cancel = h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => onCancel && onCancel() }, 'Cancel');
  const form = h('form', { class: 'action-form', 'aria-label': title, novalidate: true },
    h('h3', null, title), hint ? h('p', { class: 'muted small' }, hint) : null,
    fields, err, h('div', { class: 'form-actions' }, btn, onCancel ? cancel : null));
  form.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && onCancel) { ev.preventDefault(); onCancel(); } });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const values = {};
    for (const f of fields.flat()) if (f && f.input) values[f.input.name] = f.input.type === 'checkbox' ? f.input.checked : f.input.value.trim();
    for (const f of fields.flat()) {
      if (f && f.input && f.input.required && !values[f.input.name]) {
        err.textContent = `${f.querySelector('label').textContent} is required.`;
        err.hidden = false;
        f.input.focus();
        return;
      }
    }
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = 'Working…';
    try {
      const result = await run(values);
      onDone && onDone(result);
    } catch (e) {
      err.textContent = explain(e);
      err.hidden = false;
      btn.disabled = false;
      btn.textContent = label;
    }
  });
  return form;
}

// The side panel. opts.onDone(ticketAfter) is called after each successful action.
export function actionsPanel(t, opts) {
  const panel = h('div', { class: 'card actions' }, h('h2', { tabindex: '-1' }, 'Actions'));
  if (!t) return panel;
  const me = session.me;
  const sup = atLeast('supervisor');
  const mine = t.assignee === me.name;
  if (!atLeast('agent')) {
    panel.append(h('p', { class: 'muted' }, `Your role (${me.role}) reads and verifies tickets; it does not change them.`));
    return panel;
  }
  if (t.status === 'closed') {
    panel.append(h('p', { class: 'muted' }, 'This ticket is closed. Closed is final: nothing more can be changed.'));
    return panel;
  }
  if (!sup && t.assignee && !mine) {
    panel.append(h('p', { class: 'muted' }, 'Assigned to ', bidi(t.assignee),
      '. Only they or a supervisor can act on it.'));
    return panel;
  }
  const slot = h('div', { class: 'form-slot' });
  const buttons = h('div', { class: 'action-buttons' });
  const id = t.id;
  let openBtn = null;

  const done = (what) => (result) => {
    close(false);
    toast(what, 'success', 3500);
    opts.onDone(result && result.id === id ? result : null);
  };
  function close(refocus = true) {
    clear(slot);
    if (openBtn) { openBtn.setAttribute('aria-expanded', 'false'); if (refocus) openBtn.focus(); }
    openBtn = null;
  }
  function show(btn, form) {
    if (openBtn === btn) { close(); return; }
    if (openBtn) openBtn.setAttribute('aria-expanded', 'false');
    clear(slot).append(form);
    openBtn = btn;
    btn.setAttribute('aria-expanded', 'true');
    const first = form.querySelector('select, input, textarea');
    if (first) first.focus();
  }
  function add(label, build, cls = '') {
    const b = h('button', { type: 'button', class: `btn ${cls}`, 'aria-expanded': build ? 'false' : null, 'aria-controls': build ? 'action-slot' : null });
    b.textContent = label;
    b.addEventListener('click', () => (build ? show(b, build(b)) : null));
    buttons.append(b);
    return b;
  }

  if (!mine) {
    const take = h('button', { type: 'button', class: 'btn btn-primary' }, t.assignee ? `Take from ${t.assignee}` : 'Take');
    take.addEventListener('click', async () => {
      take.disabled = true;
      try {
        const r = await post(`/api/tickets/${id}/assign`, { assignee: me.name });
        toast(`Ticket #${id} is yours now.`, 'success', 3500);
        opts.onDone(r);
      } catch (e) {
        take.disabled = false;
        clear(slot).append(h('p', { class: 'form-error', role: 'alert' }, `Could not take the ticket: ${explain(e)}`));
      }
    });
    buttons.append(take);
  }
  if (mine || sup) {
    add(t.assignee ? 'Hand off' : 'Assign', () => {
      const who = field({ label: 'To', name: 'assignee', required: true, options: [['', 'Choose a person…']] });
      fillPeople(who.input, t.assignee);
      return actionForm({
        title: t.assignee ? 'Hand off the ticket' : 'Assign the ticket', submit: t.assignee ? 'Hand off' : 'Assign',
        fields: [who, field({ label: 'Reason', name: 'note', required: !!t.assignee, rows: 2, placeholder: 'e.g. handoff: shift change' })],
        run: (v) => post(`/api/tickets/${id}/assign`, { assignee: v.assignee, ...(v.note ? { note: v.note } : {}) }),
        onDone: done('Assignment changed.'), onCancel: close,
      });
    });
  }
  if (t.assignee && (mine || sup)) {
    add('Unassign', () => actionForm({
      title: 'Return to the shared queue', submit: 'Unassign',
      fields: [field({ label: 'Reason', name: 'reason', required: true, rows: 2 })],
      run: (v) => post(`/api/tickets/${id}/unassign`, { reason: v.reason }),
      onDone: done('Returned to the queue.'), onCancel: close,
    }));
  }
  const moves = (MOVES[t.status] || []).filter(([, , role]) => !role || atLeast(role));
  if (moves.length) {
    add('Change status', () => {
      const to = field({ label: 'New status', name: 'status', required: true,
        options: moves.map(([s]) => [s, `${cap(t.status)} → ${cap(s)}`]) });
      const reason = field({ label: 'Reason', name: 'reason', rows: 2, help: REASON_HINT[moves[0][0]] });
      const sync = () => {
        const m = moves.find(([s]) => s === to.input.value);
        reason.input.required = !!(m && m[1]);
        reason.querySelector('.help').textContent = `${REASON_HINT[to.input.value] || ''}${m && m[1] ? ' (required)' : ' (optional)'}`;
      };
      to.input.addEventListener('change', sync);
      sync();
      return actionForm({
        title: 'Change the status', submit: 'Change status', fields: [to, reason],
        run: (v) => post(`/api/tickets/${id}/status`, { status: v.status, ...(v.reason ? { reason: v.reason } : {}) }),
        onDone: done('Status changed.'), onCancel: close,
      });
    });
  }
  const level = t.escalation_level || 0;
  if (level < 3) {
    add('Escalate', () => actionForm({
      title: 'Escalate', submit: 'Escalate',
      fields: [field({ label: 'Level', name: 'level', required: true,
        options: [1, 2, 3].filter((l) => l > level).map((l) => [String(l), `Level ${l}`]) }),
      field({ label: 'Reason', name: 'reason', required: true, rows: 2 })],
      run: (v) => post(`/api/tickets/${id}/escalate`, { level: Number(v.level), reason: v.reason }),
      onDone: done('Escalated.'), onCancel: close,
    }));
  }
  if (level > 0 && sup) {
    add('De-escalate', () => actionForm({
      title: 'Lower the escalation', submit: 'De-escalate',
      fields: [field({ label: 'To level', name: 'level', options: [0, 1, 2].filter((l) => l < level).map((l) => [String(l), l === 0 ? 'Not escalated' : `Level ${l}`]) }),
        field({ label: 'Reason', name: 'reason', required: true, rows: 2 })],
      run: (v) => post(`/api/tickets/${id}/deescalate`, { reason: v.reason, level: Number(v.level) }),
      onDone: done('Escalation lowered.'), onCancel: close,
    }));
  }
  add('Priority', () => actionForm({
    title: 'Change the priority', submit: 'Set priority',
    fields: [field({ label: 'Priority', name: 'priority', value: t.priority,
      options: PRIORITIES.filter((p) => p !== t.priority).map((p) => [p, cap(p)]) }),
    field({ label: 'Reason', name: 'reason', rows: 2, help: 'Optional' })],
    run: (v) => post(`/api/tickets/${id}/priority`, { priority: v.priority, ...(v.reason ? { reason: v.reason } : {}) }),
    onDone: done('Priority changed.'), onCancel: close,
  }));
  add('Internal note', () => actionForm({
    title: 'Add an internal note', submit: 'Add note', hint: 'Staff see notes; the customer never does.',
    fields: [field({ label: 'Note', name: 'body', required: true, rows: 4, dir: 'auto' })],
    run: (v) => post(`/api/tickets/${id}/notes`, { body: v.body }),
    onDone: done('Note added.'), onCancel: close,
  }));
  add('Request approval', () => {
    const kind = field({ label: 'Kind', name: 'kind', required: true, options: KINDS.map((k) => [k, kindLabel(k)]) });
    const amount = field({ label: 'Amount in minor units (e.g. cents)', name: 'amount', type: 'number', min: 1, step: 1,
      inputmode: 'numeric', help: 'Required for refunds and credits' });
    return actionForm({
      title: 'Request an approval', submit: 'Request approval', fields: [kind, amount,
        field({ label: 'Reason', name: 'reason', required: true, rows: 2 })],
      run: (v) => post(`/api/tickets/${id}/approvals`, { kind: v.kind, reason: v.reason,
        ...(v.amount ? { amount_minor: Number(v.amount) } : {}) }),
      onDone: done('Approval requested.'), onCancel: close,
    });
  });
  add('Send template', () => actionForm({
    title: 'Send an approved template', submit: 'Send template',
    hint: 'Templates may be sent at any time, also after the 24-hour window.',
    fields: [field({ label: 'Template name', name: 'name', required: true }),
      field({ label: 'Language', name: 'language', required: true, value: 'en_US' })],
    run: (v) => post(`/api/tickets/${id}/templates`, { name: v.name, language: v.language }),
    onDone: done('Template queued.'), onCancel: close,
  }));

  slot.id = 'action-slot';
  panel.append(buttons, slot);
  return panel;
}

async function fillPeople(select, except) {
  let list;
  try { list = await users(); } catch { list = null; }
  if (!list) {
    // no staff list from the server: a typed name instead
    const input = h('input', { id: select.id, name: select.name, required: true, autocomplete: 'off' });
    select.replaceWith(input);
    input.closest('.field').input = input;
    return;
  }
  for (const u of list) {
    if (u.name === except || u.role === 'qa') continue;
    select.append(h('option', { value: u.name }, `${u.name} (${u.role})${u.name === session.me.name ? ' — me' : ''}`));
  }
}

// Approve / deny controls shown under a pending approval.requested event, for supervisors and
// admins other than the requester.
export function decisionControls(ev, opts) {
  const wrap = h('div', { class: 'decision' });
  const requester = ev.actor && ev.actor.name;
  if (!atLeast('supervisor')) {
    wrap.append(h('span', { class: 'badge appr' }, 'Waiting for a supervisor'));
    return wrap;
  }
  if (requester && requester === session.me.name) {
    wrap.append(h('span', { class: 'badge appr' }, 'Waiting for another supervisor (you asked)'));
    return wrap;
  }
  const slot = h('div');
  const amount = formatAmount(ev.amount_minor, ev.currency);
  const make = (decision, label) => h('button', { type: 'button', class: `btn btn-small ${decision === 'approved' ? 'btn-primary' : ''}`,
    onclick: () => {
      clear(slot).append(actionForm({
        title: `${label} approval #${ev.approval_id}${amount ? ` (${amount})` : ''}`, submit: label,
        fields: [field({ label: 'Reason', name: 'reason', required: true, rows: 2 })],
        run: (v) => post(`/api/approvals/${ev.approval_id}/decision`, { decision, reason: v.reason }),
        onDone: () => { toast(`Approval #${ev.approval_id} ${decision}.`, 'success', 3500); opts.onDone(null); },
        onCancel: () => clear(slot),
      }));
      slot.querySelector('textarea').focus();
    } }, `${label}…`);
  wrap.append(h('span', { class: 'badge appr' }, 'Pending'), make('approved', 'Approve'), make('denied', 'Deny'), slot);
  return wrap;
}

// The reply box under the timeline (text, optionally answering one message).
export function replyComposer(t, replyTo, opts) {
  if (!t || t.status === 'closed' || !atLeast('agent')) return [];
  if (!atLeast('supervisor') && t.assignee && t.assignee !== session.me.name) return [];
  const text = h('textarea', { id: 'reply-text', name: 'text', rows: 3, maxlength: 4096, dir: 'auto', required: true });
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const send = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Send reply');
  const form = h('form', { class: 'card composer', 'aria-label': 'Reply to the customer', novalidate: true },
    h('label', { for: 'reply-text', class: 'composer-label' }, 'Reply to the customer'),
    replyTo ? h('p', { class: 'replying' }, 'Answering ', h('q', { dir: 'auto' }, (replyTo.text || replyTo.type || '').slice(0, 80)), ' ',
      h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: opts.clearReply }, 'Don’t quote')) : null,
    text, err,
    h('div', { class: 'form-actions' }, send,
      h('span', { class: 'muted small' }, t.assignee ? '' : 'Replying takes the ticket. ', 'WhatsApp allows free text within 24 hours of the customer’s last message.')));
  // one key per typed reply: a retried click never sends twice
  let key = null;
  text.addEventListener('input', () => { key = null; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const body = text.value;
    if (!body.trim()) { err.textContent = 'Write a reply first.'; err.hidden = false; text.focus(); return; }
    key = key || `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    send.disabled = true;
    try {
      await post(`/api/tickets/${t.id}/messages`, { text: body, ...(replyTo && replyTo.wamid ? { reply_to: replyTo.wamid } : {}) },
        { headers: { 'Idempotency-Key': key } });
      text.value = '';
      key = null;
      toast('Reply queued for sending.', 'success', 3000);
      opts.onDone(null);
    } catch (e) {
      err.textContent = `The reply was not sent: ${explain(e)}`;
      err.hidden = false;
    } finally { send.disabled = false; }
  });
  return [form];
}

// describe.js: turns a timeline event into a readable who / what line, e.g.
// "Ayesha assigned the ticket to Bilal (handoff: shift change)". Names and reasons are
// customer or staff text: they stay text nodes, isolated with <bdi>.
import { h, bidi } from './dom.js';
import { cap } from './badges.js';

// Events that only repeat what a message bubble already shows (received, queued, sent,
// delivered); hidden unless the viewer asks for receipts.
export const RECEIPT_ACTIONS = new Set(['message.received', 'message.queued', 'message.sent',
  'message.status', 'message.echoed', 'media.stored']);

export const ACTION_LABELS = {
  'ticket.created': 'Ticket created', 'ticket.reopened': 'Reopened',
  'assignment.changed': 'Assignment', 'status.changed': 'Status',
  'escalation.raised': 'Escalation raised', 'escalation.lowered': 'Escalation lowered',
  'priority.changed': 'Priority', 'note.added': 'Internal note',
  'approval.requested': 'Approval requested', 'approval.decided': 'Approval decided',
  'message.received': 'Message received', 'message.queued': 'Reply queued',
  'message.sent': 'Reply sent', 'message.failed': 'Reply failed', 'message.status': 'Delivery status',
  'message.echoed': 'Sent from the Business app', 'media.stored': 'Media stored',
  'media.failed': 'Media failed', 'contact.linked': 'Contact linked', 'contact.erased': 'Contact erased',
};

export function actorName(actor) {
  if (!actor) return 'Someone';
  if (actor.type === 'system') return 'System';
  if (actor.name) return actor.name;
  if (actor.type === 'customer') return 'Customer';
  return actor.id || 'Someone';
}

// The key the actor filter uses.
export function actorKey(item) {
  if (item.kind === 'message') {
    if (item.direction === 'in') return 'customer';
    return item.author ? `staff:${item.author}` : 'business-app';
  }
  const a = item.actor || {};
  if (a.type === 'customer') return 'customer';
  if (a.type === 'system') return 'system';
  if (a.type === 'agent' || a.type === 'staff' || a.type === 'user') return `staff:${actorName(a)}`;
  return `${a.type || 'other'}:${actorName(a)}`;
}

export function actorLabel(key) {
  if (key === 'customer') return 'Customer';
  if (key === 'system') return 'System';
  if (key === 'business-app') return 'Business app';
  return key.replace(/^[^:]*:/, '');
}

export function formatAmount(minor, currency) {
  if (minor === undefined || minor === null) return null;
  try {
    const fmt = new Intl.NumberFormat('en', { style: 'currency', currency: currency || 'USD' });
    const digits = fmt.resolvedOptions().maximumFractionDigits;
    return fmt.format(Number(minor) / 10 ** digits);
  } catch {
    return `${minor} ${currency || ''} (minor units)`.trim();
  }
}

const q = (text) => h('q', { dir: 'auto' }, text);
const paren = (text) => (text ? [' (', bidi(text), ')'] : null);

// Returns [nodes] describing the event (without its time). ctx.approvals maps approval ids to
// the approval.requested event, so a decision can name the requester and the request's reason.
export function describeEvent(ev, ctx = {}) {
  const who = bidi(actorName(ev.actor), 'actor');
  const from = ev.from;
  const to = ev.to;
  const reason = ev.reason;
  switch (ev.action) {
    case 'ticket.created':
      return [who, ' opened the ticket', ev.phone_number_id ? ` on business number ${ev.phone_number_id}` : null];
    case 'ticket.reopened':
      return [who, ' reopened the ticket: ', arrow(from || 'resolved', to || 'open'), paren(reason)];
    case 'assignment.changed': {
      const note = [reason, ev.note].filter(Boolean).join('; ');
      if (!to) return [who, ' returned the ticket to the queue', from ? [' from ', bidi(from)] : null, paren(note)];
      if (to === actorName(ev.actor)) return [who, ' took the ticket', from ? [' from ', bidi(from)] : null, paren(note)];
      return [who, ' assigned the ticket to ', bidi(to, 'actor'), from && from !== actorName(ev.actor) ? [' (was ', bidi(from), ')'] : null, paren(note)];
    }
    case 'status.changed':
      return [who, ' set the status ', arrow(from, to), paren(reason)];
    case 'escalation.raised':
      return [who, ` escalated to level ${to ?? '?'}`, reason ? [': ', bidi(reason)] : null];
    case 'escalation.lowered':
      return [who, ` lowered the escalation to level ${to ?? 0}`, reason ? [': ', bidi(reason)] : null];
    case 'priority.changed':
      return [who, ' changed priority ', arrow(from, to), paren(reason)];
    case 'note.added':
      return [who, ' added an internal note'];
    case 'approval.requested': {
      const amount = formatAmount(ev.amount_minor, ev.currency);
      return [who, ` requested approval #${ev.approval_id ?? '?'}: ${kindLabel(ev.approval_kind)}`,
        amount ? ` of ${amount}` : null, reason ? [' — ', q(reason)] : null];
    }
    case 'approval.decided': {
      const req = ctx.approvals && ctx.approvals.get(ev.approval_id);
      const amount = formatAmount(ev.amount_minor, ev.currency);
      const requester = req ? actorName(req.actor) : (ctx.userName && ctx.userName(ev.requested_by));
      return [who, ` ${to === 'approved' ? 'approved' : to === 'denied' ? 'denied' : `decided (${to})`} approval #${ev.approval_id ?? '?'}: ${kindLabel(ev.approval_kind)}`,
        amount ? ` of ${amount}` : null,
        requester ? [', requested by ', bidi(requester)] : null,
        req && req.reason ? ['; request: ', q(req.reason)] : null,
        reason ? ['; decision: ', q(reason)] : null];
    }
    case 'message.received':
      return [who, ' sent a message', ev.type && ev.type !== 'text' ? ` (${ev.type})` : null];
    case 'message.queued':
      return [who, ' queued a reply', ev.template ? ` (template ${ev.template})` : null];
    case 'message.sent':
      return ['WhatsApp accepted the reply', ev.attempts > 1 ? ` after ${ev.attempts} attempts` : null];
    case 'message.failed':
      return ['The reply could not be sent', reason ? [': ', bidi(reason)] : null,
        ev.error_code ? ` (error ${ev.error_code})` : null];
    case 'message.status':
      return ['Delivery: ', arrow(from || '—', to), ev.applied === false ? ' (arrived late; not applied)' : null];
    case 'message.echoed':
      return ['A reply was sent from the WhatsApp Business app'];
    case 'media.stored':
      return ['The customer’s file was kept', ev.sha256 ? ` (SHA-256 ${String(ev.sha256).slice(0, 12)}…)` : null];
    case 'media.failed':
      return ['The customer’s file could not be fetched', reason ? [': ', bidi(reason)] : null];
    case 'contact.linked':
      return [who, ' linked the customer’s identities'];
    case 'contact.erased':
      return [who, ' erased the customer’s personal data', paren(reason)];
    default:
      return [who, ` ${ev.action}`, from || to ? [' ', arrow(from || '—', to || '—')] : null, paren(reason)];
  }
}

function arrow(from, to) {
  return h('span', { class: 'arrow' }, h('span', { class: 'from' }, from || '—'), ' → ', h('span', { class: 'to' }, to || '—'));
}

export function kindLabel(kind) {
  return kind ? cap(String(kind).replace(/_/g, ' ')) : 'Approval';
}

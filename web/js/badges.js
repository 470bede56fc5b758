// badges.js: small labelled chips for status, priority, escalation and assignee.
import { h, bidi } from './dom.js';

export const STATUSES = ['new', 'open', 'pending', 'resolved', 'closed'];
export const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
export const cap = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);

export function statusBadge(status) {
  return h('span', { class: `badge st-${status}` }, h('span', { class: 'sr-only' }, 'Status: '), cap(status));
}

export function priorityBadge(priority, always = false) {
  if (!priority || (priority === 'normal' && !always)) return null;
  return h('span', { class: `badge pr-${priority}` }, h('span', { class: 'sr-only' }, 'Priority: '), cap(priority));
}

export function escalationBadge(t) {
  const level = t.escalation_level || (t.escalated ? 1 : 0);
  if (!level) return null;
  return h('span', { class: 'badge esc', title: `Escalated to level ${level}` }, `Escalated L${level}`);
}

export function assigneeBadge(assignee) {
  return assignee
    ? h('span', { class: 'badge who' }, h('span', { class: 'sr-only' }, 'Assigned to '), bidi(assignee))
    : h('span', { class: 'badge unassigned' }, 'Unassigned');
}

// "Ayesha Khan" or "+92 300 1234567" or "@user" or "Unknown customer".
export function contactName(c) {
  if (!c) return 'Unknown customer';
  return c.name || (c.username ? `@${c.username.replace(/^@/, '')}` : null) || (c.wa_id ? `+${c.wa_id}` : null) || 'Unknown customer';
}

export function contactDetail(c) {
  if (!c) return '';
  const bits = [];
  if (c.name && c.wa_id) bits.push(`+${c.wa_id}`);
  if (c.username && (c.name || c.wa_id)) bits.push(`@${c.username.replace(/^@/, '')}`);
  return bits.join(' · ');
}

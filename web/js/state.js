// state.js: what the whole app shares: the signed-in user and the staff list.
import { get } from './api.js';

export const session = { me: null, users: null, lastQueue: '#/queue' };

// The active staff for pickers (GET /api/users). Null when the server cannot list them; the
// pickers then take a typed name.
export async function users() {
  if (session.users) return session.users;
  try {
    const r = await get('/api/users');
    session.users = (r.users || []).filter((u) => u.active !== false);
  } catch (e) {
    if (e.status === 401) throw e;
    session.users = null;
    return null;
  }
  return session.users;
}

export const ROLE_RANK = { qa: 0, agent: 1, supervisor: 2, admin: 3 };
export const atLeast = (role) => session.me && (ROLE_RANK[session.me.role] ?? -1) >= ROLE_RANK[role];

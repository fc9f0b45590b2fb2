// The signed-in API key and who it is, kept in sessionStorage: it lasts as long as the
// browser tab's session and is never written anywhere else (no cookie, no localStorage).

import type { Role, WhoAmI } from './api';

const KEY = 'ingot.key';
const WHO = 'ingot.who';

type Listener = () => void;
const listeners = new Set<Listener>();
let expiredReason: string | null = null;

function read(name: string): string | null {
  try {
    return sessionStorage.getItem(name);
  } catch {
    return null;
  }
}

function notify(): void {
  for (const listener of listeners) listener();
}

export const session = {
  key(): string | null {
    return read(KEY);
  },

  who(): WhoAmI | null {
    const text = read(WHO);
    if (!text) return null;
    try {
      return JSON.parse(text) as WhoAmI;
    } catch {
      return null;
    }
  },

  signIn(key: string, who: WhoAmI): void {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(WHO, JSON.stringify(who));
    expiredReason = null;
    notify();
  },

  signOut(): void {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(WHO);
    notify();
  },

  /** The key was refused (revoked, expired): back to the sign-in page, saying why. */
  expire(reason: string): void {
    expiredReason = reason;
    session.signOut();
  },

  /** Why the last session ended, once. */
  takeExpiredReason(): string | null {
    const reason = expiredReason;
    expiredReason = null;
    return reason;
  },

  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

const RANK: Record<Role, number> = { reader: 0, writer: 1, admin: 2, system: 3 };

/** Whether `role` may save and delete dashboards (writer or higher). */
export function canWrite(role: Role | undefined): boolean {
  return role !== undefined && RANK[role] >= RANK.writer;
}

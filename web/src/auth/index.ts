// Who is signed in, and the bearer token the API client sends. Locally (auth.mode "dev") the local
// stack mints a development token for a user name (POST /local/dev-token, never deployed); on AWS
// Cognito's hosted sign-in with the authorization code flow and PKCE (./cognito.ts, loaded only then).
// The token lives in sessionStorage: one tab's sign-in, gone when the tab closes.

import { reactive } from 'vue';
import { config } from '../config';

const KEY = 'patchbay.session';

interface Stored {
  token: string;
  user: string;
  expiresAt: number; // ms since the epoch
}

export const session = reactive<{ current: Stored | null }>({ current: read() });

function read(): Stored | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Stored;
    return s.expiresAt > Date.now() ? s : null;
  } catch {
    return null;
  }
}

export function store(s: Stored | null) {
  session.current = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

export function signedIn(): boolean {
  const s = session.current;
  return !!s && s.expiresAt > Date.now();
}

/** The token to send, renewed first when Cognito's is about to run out. */
export async function token(): Promise<string | null> {
  const s = session.current;
  if (!s) return null;
  if (s.expiresAt - Date.now() < 60_000 && config().auth.mode === 'cognito') {
    const { renew } = await import('./cognito');
    return (await renew())?.token ?? null;
  }
  return s.token;
}

export class SignInError extends Error {
  constructor(message: string, readonly field?: string) {
    super(message);
  }
}

/** Local stack only: a development token for `user`. */
export async function signInDev(user: string): Promise<void> {
  const res = await fetch('/local/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub: user }),
  });
  if (!res.ok) {
    let detail = `the local stack answered ${res.status}`;
    let field: string | undefined;
    try {
      const p = (await res.json()) as { detail?: string; field?: string };
      detail = p.detail ?? detail;
      field = p.field === 'sub' ? 'user' : p.field;
    } catch {
      /* not JSON */
    }
    throw new SignInError(detail, field);
  }
  const body = (await res.json()) as { token: string; expires_at: string };
  store({ token: body.token, user, expiresAt: Date.parse(body.expires_at) });
}

/** A token minted elsewhere (a stack started with another PATCHBAY_DEV_JWT_SECRET). */
export function signInWithToken(raw: string): void {
  const t = raw.trim();
  const claims = decodeClaims(t);
  if (!claims?.sub || typeof claims.exp !== 'number') throw new SignInError('not a JWT with sub and exp', 'token');
  if (claims.exp * 1000 <= Date.now()) throw new SignInError('this token has expired', 'token');
  store({ token: t, user: String(claims.sub), expiresAt: claims.exp * 1000 });
}

export function decodeClaims(jwt: string): Record<string, unknown> | null {
  const part = jwt.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    return JSON.parse(json) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export async function signOut(): Promise<void> {
  store(null);
  if (config().auth.mode === 'cognito') {
    const { signOutRedirect } = await import('./cognito');
    await signOutRedirect();
  }
}

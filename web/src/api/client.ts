// The typed API client: openapi-fetch over the generated ./schema.d.ts, the bearer token on every
// request, problem+json turned into a `Problem`, and a 503 (contention, throttling) retried after its
// Retry-After with the same request, so a create's Idempotency-Key is the same on the retry.

import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';
import { config } from '../config';
import { token } from '../auth';

export type Schemas = components['schemas'];
export type Profile = Schemas['Profile'];
export type PhoneNumber = Schemas['PhoneNumber'];
export type AvailableNumber = Schemas['AvailableNumber'];
export type Conversation = Schemas['Conversation'];
export type Message = Schemas['Message'];
export type SipConnection = Schemas['SipConnection'];
export type CarrierConnection = Schemas['CarrierConnection'];
export type Assistant = Schemas['Assistant'];
export type CarrierReason = Schemas['CarrierReason'];

/** An answer that is not a success: the API's problem+json (RFC 9457), or what stood in for it. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly field?: string,
    readonly carrier?: { name: string; code: string; message: string },
    readonly retryAfter?: number,
  ) {
    super(detail);
  }

  /** The message for `field`, if this problem names it. */
  on(field: string): string | undefined {
    return this.field === field ? this.detail : undefined;
  }
}

let unauthorized: () => void = () => {};
/** What to do when the API answers 401 (the session ended): the router sends the user to sign in. */
export function onUnauthorized(f: () => void) {
  unauthorized = f;
}

const auth: Middleware = {
  async onRequest({ request }) {
    const t = await token();
    if (t) request.headers.set('authorization', `Bearer ${t}`);
    return request;
  },
};

let client: ReturnType<typeof createClient<paths>> | undefined;

export function api() {
  if (!client) {
    client = createClient<paths>({ baseUrl: config().apiBase });
    client.use(auth);
  }
  return client;
}

async function problemOf(res: Response, error: unknown): Promise<Problem> {
  const retry = Number(res.headers.get('retry-after'));
  const ra = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  if (error && typeof error === 'object' && 'code' in error) {
    const p = error as { status?: number; code: string; detail?: string; title?: string; field?: string; carrier?: Problem['carrier'] };
    return new Problem(res.status, p.code, p.detail ?? p.title ?? res.statusText, p.field, p.carrier, ra);
  }
  return new Problem(res.status, 'http_' + res.status, `The server answered ${res.status} ${res.statusText}`.trim(), undefined, undefined, ra);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one API request: its data, or a thrown `Problem`. A 503 is retried (at most 4 times). */
export async function call<T>(req: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const { data, error, response } = await req();
    if (response.ok) return data as T;
    const problem = await problemOf(response, error);
    if (response.status === 401) unauthorized();
    if (response.status === 503 && attempt < 4) {
      await sleep(Math.min((problem.retryAfter ?? 0.25 * 2 ** attempt) * 1000, 5000));
      continue;
    }
    throw problem;
  }
}

/** A key for one user action: the same key on every retry of that action. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

/** A Problem, or an unexpected error turned into one (for toasts). */
export function asProblem(e: unknown): Problem {
  if (e instanceof Problem) return e;
  return new Problem(0, 'network', e instanceof Error ? e.message : String(e));
}

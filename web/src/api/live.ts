// Live updates from the event log: GET /v1/events after the newest id seen, every few seconds while
// the tab is visible; each event marks the queries it changes as stale, so an open screen refetches
// what changed (a number turning active, a text arriving, a receipt, a call ending). Event ids are
// UUIDv7s, time-ordered, so the feed starts from "now" without reading the whole log.

import { onScopeDispose } from 'vue';
import { useQueryClient, type QueryClient } from '@tanstack/vue-query';
import { api, call } from './client';
import type { components } from './schema';

type EventType = components['schemas']['EventType'];

const EVERY_MS = 2_500;

/** An `after` cursor for the moment `ms` (the id a UUIDv7 made then would sort after it). */
export function cursorAt(ms: number): string {
  return `evt_${Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0')}${'0'.repeat(20)}`;
}

const affects: Record<string, readonly (readonly string[])[]> = {
  message: [['conversations'], ['messages'], ['dashboard']],
  contact: [['conversations'], ['contacts'], ['messages']],
  call: [['calls'], ['dashboard']],
  phone_number: [['numbers'], ['profiles'], ['profile'], ['assistants'], ['connections']],
  assistant: [['assistants'], ['assistant'], ['numbers']],
};

export function invalidateFor(qc: QueryClient, type: EventType | string) {
  const family = type.split('.')[0] ?? '';
  for (const key of affects[family] ?? []) void qc.invalidateQueries({ queryKey: [...key] });
}

export function useLiveEvents() {
  const qc = useQueryClient();
  // Five minutes back: a browser clock up to that far ahead of the API's still misses nothing; the
  // first page (at most a few) only marks queries stale, and then `after` is an id the API gave.
  let after = cursorAt(Date.now() - 5 * 60_000);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  async function tick() {
    if (stopped) return;
    if (document.visibilityState === 'visible') {
      try {
        for (let pages = 0; pages < 5; pages++) {
          const page = await call(() => api().GET('/v1/events', { params: { query: { after, limit: 100 } } }));
          const types = new Set(page.data.map((e) => e.type));
          for (const t of types) invalidateFor(qc, t);
          const last = page.data.at(-1);
          if (last) after = last.id;
          if (!page.next_cursor) break;
          after = page.next_cursor;
        }
      } catch {
        /* the next tick tries again; a 401 already sent the user to sign in */
      }
    }
    if (!stopped) timer = setTimeout(tick, EVERY_MS);
  }

  void tick();
  onScopeDispose(() => {
    stopped = true;
    clearTimeout(timer);
  });
}

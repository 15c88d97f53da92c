// Server state: one query key per resource, the reads behind each screen, and the polling that
// follows work still in flight (a carrier sync has no event of its own, so a pending one is polled).

import { computed, type MaybeRefOrGetter, toValue } from 'vue';
import { useQuery } from '@tanstack/vue-query';
import { api, call, type Assistant, type Conversation, type PhoneNumber, type Profile, type SipConnection } from './client';

/** Every page of a cursor-paged list (the console's lists are one user's: numbers, profiles…). */
async function allPages<T>(page: (cursor?: string) => Promise<{ data: T[]; next_cursor: string | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const p = await page(cursor);
    out.push(...p.data);
    if (!p.next_cursor) break;
    cursor = p.next_cursor;
  }
  return out;
}

const IN_FLIGHT_MS = 2_000;

export function useNumbers() {
  return useQuery({
    queryKey: ['numbers'],
    queryFn: () => allPages((cursor) => call(() => api().GET('/v1/phone-numbers', { params: { query: { limit: 100, cursor } } }))),
    refetchInterval: (q) => ((q.state.data as PhoneNumber[] | undefined)?.some(numberInFlight) ? IN_FLIGHT_MS : false),
  });
}

export function numberInFlight(n: PhoneNumber): boolean {
  return n.status === 'pending' || n.status === 'releasing' || n.profile_sync === 'pending' || n.assistant_sync === 'pending';
}

export function useProfiles() {
  return useQuery({
    queryKey: ['profiles'],
    queryFn: () => allPages((cursor) => call(() => api().GET('/v1/messaging-profiles', { params: { query: { limit: 100, cursor } } }))),
    refetchInterval: (q) => ((q.state.data as Profile[] | undefined)?.some((p) => p.sync_state === 'pending' || p.sync_state === 'deleting') ? IN_FLIGHT_MS : false),
  });
}

/** A profile's page (the profile, its numbers, the caller's numbers on no profile); nothing while
 * `id` is null. Polls while a sync is in flight. */
export function useProfilePage(id: MaybeRefOrGetter<string | null>) {
  return useQuery({
    queryKey: computed(() => ['profile', toValue(id)]),
    enabled: computed(() => !!toValue(id)),
    queryFn: () => call(() => api().GET('/v1/messaging-profiles/{id}', { params: { path: { id: toValue(id)! } } })),
    refetchInterval: (q) => {
      const p = q.state.data;
      if (!p) return false;
      const pending = p.sync_state === 'pending' || p.sync_state === 'deleting' || p.assigned_numbers.some(numberInFlight);
      return pending ? IN_FLIGHT_MS : false;
    },
    retry: false,
  });
}

export function useAssistants() {
  return useQuery({
    queryKey: ['assistants'],
    queryFn: () => allPages((cursor) => call(() => api().GET('/v1/assistants', { params: { query: { limit: 100, cursor } } }))),
    refetchInterval: (q) => ((q.state.data as Assistant[] | undefined)?.some((a) => a.status === 'pending' || a.status === 'deleting' || a.sync_state === 'pending') ? IN_FLIGHT_MS : false),
  });
}

export function useConnections() {
  return useQuery({
    queryKey: ['connections', 'patchbay'],
    queryFn: () => allPages((cursor) => call(() => api().GET('/v1/sip-connections', { params: { query: { limit: 100, cursor } } }))),
    refetchInterval: (q) => ((q.state.data as SipConnection[] | undefined)?.some((c) => c.sync_state === 'pending' || c.phone_numbers.some((n) => n.sync_state === 'pending')) ? IN_FLIGHT_MS : false),
  });
}

/** The caller's conversations, newest activity first; with `q`, those the API's search matches
 * (the digits of either number, or the contact's name). */
export function useConversations(q: MaybeRefOrGetter<string> = '') {
  return useQuery({
    queryKey: computed(() => ['conversations', toValue(q)]),
    queryFn: () =>
      allPages<Conversation>((cursor) =>
        call(() => api().GET('/v1/conversations', { params: { query: { limit: 100, cursor, q: toValue(q) || undefined } } })),
      ),
    placeholderData: (prev) => prev,
  });
}

/** A UTC day, as the API's date parameters take it. */
export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function useDashboard(range: MaybeRefOrGetter<{ from: string; to: string }>) {
  return useQuery({
    queryKey: computed(() => ['dashboard', toValue(range).from, toValue(range).to]),
    queryFn: () => call(() => api().GET('/v1/dashboard', { params: { query: toValue(range) } })),
  });
}

export function useMessages(conversation: MaybeRefOrGetter<string | null>) {
  return useQuery({
    queryKey: computed(() => ['messages', toValue(conversation)]),
    enabled: computed(() => !!toValue(conversation)),
    queryFn: async () => {
      const id = toValue(conversation);
      if (!id) return { data: [], next_cursor: null };
      return call(() => api().GET('/v1/conversations/{id}/messages', { params: { path: { id }, query: { limit: 100 } } }));
    },
    retry: false,
  });
}

/** The active profile's page (its assigned numbers are what texts can be sent from), or null. */
export function useActiveProfile() {
  const profiles = useProfiles();
  const active = computed(() => profiles.data.value?.find((p) => p.active) ?? null);
  const page = useProfilePage(() => active.value?.id ?? null);
  const senders = computed(() => (page.data.value?.assigned_numbers ?? []).filter((n) => n.status === 'active').map((n) => n.phone_number));
  const loading = computed(() => profiles.isPending.value || (!!active.value && page.isPending.value));
  return { profiles, active, page, senders, loading };
}

export interface CallFilters {
  source?: 'assistant' | 'sip';
  assistant_id?: string;
  phone_number?: string;
  from?: string;
  to?: string;
}

export function useCalls(filters: MaybeRefOrGetter<CallFilters>, cursor: MaybeRefOrGetter<string | undefined>) {
  return useQuery({
    queryKey: computed(() => ['calls', toValue(filters), toValue(cursor) ?? null]),
    queryFn: () => call(() => api().GET('/v1/calls', { params: { query: { ...toValue(filters), cursor: toValue(cursor), limit: 25 } } })),
    placeholderData: (prev) => prev,
  });
}

// Actions more than one screen offers, with the toast that reports them and the queries they change.
import type { QueryClient } from '@tanstack/vue-query';
import { api, asProblem, call } from './client';
import { toast } from '../components/toasts';

/** Make `p` the active messaging profile (the API's transaction moves the mark from the old one). */
export async function activateProfile(qc: QueryClient, p: { id: string; name: string }) {
  try {
    await call(() => api().POST('/v1/messaging-profiles/{id}/activate', { params: { path: { id: p.id } } }));
    toast.ok(`${p.name} is now your active profile`);
  } catch (e) {
    toast.error(`Could not activate ${p.name}: ${asProblem(e).detail}`);
  } finally {
    await Promise.all([qc.invalidateQueries({ queryKey: ['profiles'] }), qc.invalidateQueries({ queryKey: ['profile'] })]);
  }
}

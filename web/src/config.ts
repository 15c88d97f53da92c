// The console learns how to sign in and where the API is from /config.json, fetched once at start:
// the local stack answers {"auth":{"mode":"dev"},"apiBase":""}; on AWS the deploy step writes the
// Cognito settings and the HTTP API's URL (scripts/publish-console). One build serves both.

export type AuthConfig =
  | { mode: 'dev' }
  | { mode: 'cognito'; authority: string; clientId: string; domain: string };

export interface ConsoleConfig {
  auth: AuthConfig;
  apiBase: string;
}

let loaded: ConsoleConfig | undefined;

export async function loadConfig(): Promise<ConsoleConfig> {
  const res = await fetch('/config.json', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`/config.json answered ${res.status}`);
  const raw = (await res.json()) as Partial<ConsoleConfig>;
  const auth = raw.auth;
  if (!auth || (auth.mode !== 'dev' && auth.mode !== 'cognito')) throw new Error('/config.json has no auth.mode');
  loaded = { auth, apiBase: (raw.apiBase ?? '').replace(/\/$/, '') };
  return loaded;
}

export function config(): ConsoleConfig {
  if (!loaded) throw new Error('config() before loadConfig()');
  return loaded;
}

// Cognito's hosted sign-in: the authorization code flow with PKCE (oidc-client-ts). The API gets
// the access token (API Gateway's JWT authorizer checks its client_id against the app client).
// Cognito's sign-out is not OIDC's: it wants client_id and logout_uri on its own /logout.

import { UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';
import { config } from '../config';
import { store } from './index';

let manager: UserManager | undefined;

function cognito() {
  const auth = config().auth;
  if (auth.mode !== 'cognito') throw new Error('not in cognito mode');
  return auth;
}

function userManager(): UserManager {
  if (manager) return manager;
  const auth = cognito();
  manager = new UserManager({
    authority: auth.authority,
    client_id: auth.clientId,
    redirect_uri: `${location.origin}/auth/callback`,
    post_logout_redirect_uri: `${location.origin}/`,
    response_type: 'code',
    scope: 'openid email profile',
    revokeTokenTypes: ['refresh_token'],
    automaticSilentRenew: false,
    userStore: new WebStorageStateStore({ store: sessionStorage }),
  });
  return manager;
}

function keep(user: User | null) {
  if (!user?.access_token) {
    store(null);
    return null;
  }
  const name = (user.profile.email as string | undefined) ?? user.profile.sub;
  const s = { token: user.access_token, user: name, expiresAt: (user.expires_at ?? 0) * 1000 };
  store(s);
  return s;
}

export async function signInRedirect(returnTo: string): Promise<void> {
  await userManager().signinRedirect({ state: { returnTo } });
}

/** /auth/callback: trade the code for tokens; answers where to go next. */
export async function completeSignIn(): Promise<string> {
  const user = await userManager().signinRedirectCallback();
  keep(user);
  const state = user.state as { returnTo?: string } | undefined;
  return state?.returnTo && state.returnTo.startsWith('/') ? state.returnTo : '/';
}

export async function renew() {
  try {
    return keep(await userManager().signinSilent());
  } catch {
    return keep(null);
  }
}

export async function signOutRedirect(): Promise<void> {
  const auth = cognito();
  await userManager().removeUser();
  const q = new URLSearchParams({ client_id: auth.clientId, logout_uri: `${location.origin}/` });
  location.assign(`${auth.domain}/logout?${q}`);
}

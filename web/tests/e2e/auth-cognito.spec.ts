import { test, expect, settled } from './fixtures';

// The AWS sign-in, offline: the console in "cognito" mode (as scripts/publish-console configures it)
// against a stand-in Cognito served by page.route: discovery, the hosted authorize page (which sends
// the browser straight back with a code), the token endpoint, and /logout. The access token the
// stand-in hands out is a development token the local stack accepts, so the screens' API calls show
// whether the console sends the access token. The local stack's CSP allows only itself; CloudFront's
// allows the Cognito domain, so this test bypasses CSP.
test.use({ bypassCSP: true });

const AUTHORITY = 'https://cognito-idp.test/pool_1';
const DOMAIN = 'https://patchbay.auth.test';

function b64url(v: unknown) {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

test('Cognito sign-in: code flow with PKCE, the access token on API calls, Cognito’s own sign-out', async ({ page, api, npa, baseURL }) => {
  const number = `+1${npa(40)}5550100`;
  await api.post('/v1/phone-numbers', { phone_number: number });
  await settled(api);

  await page.route('**/config.json', (r) =>
    r.fulfill({ json: { auth: { mode: 'cognito', authority: AUTHORITY, clientId: 'console-client', domain: DOMAIN }, apiBase: '' } }),
  );
  await page.route(`${AUTHORITY}/.well-known/openid-configuration`, (r) =>
    r.fulfill({
      json: {
        issuer: AUTHORITY,
        authorization_endpoint: `${DOMAIN}/oauth2/authorize`,
        token_endpoint: `${DOMAIN}/oauth2/token`,
        userinfo_endpoint: `${DOMAIN}/oauth2/userInfo`,
        revocation_endpoint: `${DOMAIN}/oauth2/revoke`,
        jwks_uri: `${AUTHORITY}/.well-known/jwks.json`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
      },
      headers: { 'access-control-allow-origin': '*' },
    }),
  );
  let authorize: URL | undefined;
  await page.route(`${DOMAIN}/oauth2/authorize**`, (r) => {
    authorize = new URL(r.request().url());
    const back = new URL(authorize.searchParams.get('redirect_uri')!);
    back.searchParams.set('code', 'the-code');
    back.searchParams.set('state', authorize.searchParams.get('state')!);
    return r.fulfill({ status: 302, headers: { location: back.toString() } });
  });
  let tokenRequest: URLSearchParams | undefined;
  await page.route(`${DOMAIN}/oauth2/token`, (r) => {
    tokenRequest = new URLSearchParams(r.request().postData() ?? '');
    const now = Math.floor(Date.now() / 1000);
    const idToken = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: AUTHORITY, aud: 'console-client', sub: api.user, email: `${api.user}@example.com`, iat: now, exp: now + 3600 })}.`;
    return r.fulfill({
      json: { access_token: api.token, id_token: idToken, refresh_token: 'the-refresh-token', token_type: 'Bearer', expires_in: 3600 },
      headers: { 'access-control-allow-origin': '*' },
    });
  });
  let logout: URL | undefined;
  await page.route(`${DOMAIN}/logout**`, (r) => {
    logout = new URL(r.request().url());
    return r.fulfill({ status: 302, headers: { location: logout.searchParams.get('logout_uri')! } });
  });
  await page.route(`${DOMAIN}/oauth2/revoke`, (r) => r.fulfill({ status: 200, body: '', headers: { 'access-control-allow-origin': '*' } }));

  await page.goto('/numbers');
  await expect(page.getByRole('heading', { name: 'Sign in to Patchbay' })).toBeVisible();
  await expect(page.getByLabel('User')).toHaveCount(0);
  await page.getByRole('button', { name: 'Sign in' }).click();

  // Back from the hosted page, on the screen the user asked for, its data read with the access token.
  await expect(page.getByRole('heading', { level: 1, name: 'Phone numbers' })).toBeVisible();
  await expect(page.getByRole('listitem', { name: number })).toBeVisible();
  await expect(page.getByText(`${api.user}@example.com`)).toBeVisible();
  expect(authorize).toBeDefined();
  const q = authorize!.searchParams;
  expect([q.get('response_type'), q.get('client_id'), q.get('code_challenge_method'), q.get('redirect_uri')]).toEqual([
    'code',
    'console-client',
    'S256',
    `${baseURL}/auth/callback`,
  ]);
  expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(q.get('scope')?.split(' ').sort()).toEqual(['email', 'openid', 'profile']);
  expect(tokenRequest?.get('grant_type')).toBe('authorization_code');
  expect(tokenRequest?.get('code')).toBe('the-code');
  expect(tokenRequest?.get('code_verifier')).toMatch(/^[A-Za-z0-9._~-]{43,128}$/);

  // Sign-out is Cognito's /logout with the client and where to come back.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to Patchbay' })).toBeVisible();
  expect([logout?.searchParams.get('client_id'), logout?.searchParams.get('logout_uri')]).toEqual(['console-client', `${baseURL}/`]);
});

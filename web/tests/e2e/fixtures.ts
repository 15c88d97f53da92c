// What every console test gets: a fresh user of its own (no test sees another's data), signed in
// through the sign-in screen; the API as that user (to check what the screens show against what
// the API answers); the sandbox's local-only helpers; axe on demand; a screenshot of each screen
// under target/console-screenshots/{desktop,phone}/; and a failure on any error in the browser's
// console or any uncaught exception.

import { test as base, expect, type APIRequestContext, type Page, type TestInfo } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { expect };

export interface Api {
  user: string;
  token: string;
  get<T = any>(path: string): Promise<T>;
  post<T = any>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  put<T = any>(path: string, body?: unknown): Promise<T>;
}

interface Fixtures {
  user: string;
  api: Api;
  signIn: () => Promise<void>;
  /** An area code no other test of this run uses (the sandbox sells +1 NPA 555 0100-0149 of each). */
  npa: (n: number) => string;
  axe: (label?: string) => Promise<void>;
  shot: (name: string) => Promise<void>;
  /** Error-console messages this test provokes on purpose (a 409 it asks for, say). */
  allowConsole: (pattern: RegExp) => void;
  finalAxe: void;
}

let serial = 0;

const AREA_CODES = [
  201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228, 229, 231, 234, 239,
  240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270, 272, 276, 281, 301, 302, 303, 304, 305, 307, 308, 309, 310,
  312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 323, 325, 330, 334, 336, 337, 339, 347, 351, 352, 360, 361, 385, 386,
  401, 402, 404, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415, 417, 419, 423, 424, 425, 430, 432, 434, 435, 440, 443,
  469, 470, 475, 478, 479, 480, 484, 501, 502, 503, 504, 505, 507, 508, 509, 510, 512, 513, 515, 516, 517, 518, 520, 530,
  540, 541, 551, 559, 561, 562, 563, 567, 570, 571, 573, 574, 575, 580, 585, 586, 601, 602, 603, 605, 606, 607, 608, 609,
];

async function mint(request: APIRequestContext, sub: string): Promise<string> {
  const res = await request.post('/local/dev-token', { data: { sub } });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

function makeApi(request: APIRequestContext, user: string, token: string): Api {
  const headers = { authorization: `Bearer ${token}` };
  const check = async (res: Awaited<ReturnType<APIRequestContext['get']>>) => {
    if (!res.ok()) throw new Error(`${res.url()} answered ${res.status()}: ${await res.text()}`);
    return res.status() === 204 ? undefined : res.json();
  };
  return {
    user,
    token,
    get: async (path) => check(await request.get(path, { headers })),
    post: async (path, body, extra) => check(await request.post(path, { headers: { ...headers, ...extra }, data: body ?? {} })),
    put: async (path, body) => check(await request.put(path, { headers, data: body ?? {} })),
  };
}

export const test = base.extend<Fixtures>({
  user: async ({}, use, info: TestInfo) => {
    serial += 1;
    await use(`t${Date.now().toString(36)}-${info.project.name}-${serial}`);
  },
  api: async ({ request, user }, use) => {
    await use(makeApi(request, user, await mint(request, user)));
  },
  signIn: async ({ page, user }, use) => {
    await use(async () => {
      await page.goto('/signin');
      await page.getByLabel('User').fill(user);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect(page.getByRole('heading', { level: 1, name: 'Dashboard' })).toBeVisible();
    });
  },
  npa: async ({}, use, info) => {
    // Area codes in service (the API refuses numbers its numbering plan does not know), the first
    // half for the desktop tests, the second for the phone-width ones; each test names its own n.
    const half = Math.floor(AREA_CODES.length / 2);
    const offset = info.project.name === 'phone' ? half : 0;
    await use((n: number) => {
      if (n < 0 || n >= half) throw new Error(`npa(${n}): 0 to ${half - 1}`);
      return String(AREA_CODES[offset + n]);
    });
  },
  allowConsole: [
    async ({ page }, use) => {
      const allowed: RegExp[] = [];
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' && !allowed.some((a) => a.test(m.text()))) errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
      await use((p) => allowed.push(p));
      expect(errors, 'errors in the browser console').toEqual([]);
    },
    { auto: true },
  ],
  // Every test ends with axe on the screen it left open (tests also call `axe` on the way).
  finalAxe: [
    async ({ page, axe }, use, info) => {
      await use();
      if (info.status === 'passed' && !page.isClosed() && page.url().startsWith('http')) await axe(`the last screen of "${info.title}"`);
    },
    { auto: true },
  ],
  axe: async ({ page }, use, info) => {
    await use(async (label) => {
      const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
      const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join('\n  ')}`);
      expect(report, `axe on ${label ?? info.title} (${info.project.name})`).toEqual([]);
    });
  },
  shot: async ({ page }, use, info) => {
    const dir = fileURLToPath(new URL(`../../../target/console-screenshots/${info.project.name}/`, import.meta.url));
    mkdirSync(dir, { recursive: true });
    await use(async (name) => {
      await page.screenshot({ path: `${dir}${name}.png`, fullPage: true });
    });
  },
});

/** The sandbox's inbound text, as a carrier webhook would bring it (local only). */
export async function inboundText(request: APIRequestContext, from: string, to: string, text: string) {
  const res = await request.post('/local/sandbox/inbound', { data: { from, to, text } });
  expect(res.status(), await res.text()).toBe(200);
}

/** Waits until every number the user owns is settled (no purchase or sync in flight). */
export async function settled(api: Api, page?: Page) {
  await expect
    .poll(async () => {
      const list = (await api.get<{ data: { status: string; profile_sync: string }[] }>('/v1/phone-numbers')).data;
      return list.every((n) => n.status !== 'pending' && n.profile_sync !== 'pending');
    })
    .toBe(true);
  void page;
}

import { test, expect, settled } from './fixtures';

const SCREENS: [string, string][] = [
  ['/', 'Dashboard'],
  ['/numbers', 'Phone numbers'],
  ['/profiles', 'Messaging profiles'],
  ['/messages', 'Messages'],
  ['/dialer', 'Dialer'],
  ['/assistants', 'Assistants'],
  ['/calls', 'Calls'],
];

for (const scheme of ['light', 'dark'] as const) {
  test(`every screen passes axe in ${scheme} mode and has no sideways scrolling${scheme === 'light' ? ' @both' : ''}`, async ({ page, signIn, axe, shot, api, npa }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await api.post('/v1/phone-numbers', { phone_number: `+1${npa(scheme === 'dark' ? 31 : 30)}5550100` });
    await settled(api);
    await signIn();
    for (const [path, title] of SCREENS) {
      await page.goto(path);
      await expect(page.getByRole('heading', { level: 1, name: title })).toBeVisible();
      await expect(page.getByText('Loading…')).toHaveCount(0);
      await axe(`${title} (${scheme})`);
      await shot(`${scheme === 'dark' ? 'dark-' : 'screen-'}${path === '/' ? 'dashboard' : path.slice(1)}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${title} scrolls sideways`).toBe(0);
    }
  });
}

test('the navigation works from the keyboard alone', async ({ page, signIn }) => {
  await signIn();
  // The skip link comes first, then the product name, then the screens in order.
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' })).toBeFocused();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Phone numbers' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Phone numbers' })).toHaveAttribute('aria-current', 'page');
  // Sign out ends the session: the screens ask to sign in again.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to Patchbay' })).toBeVisible();
  await page.goto('/numbers');
  await expect(page.getByRole('heading', { name: 'Sign in to Patchbay' })).toBeVisible();
});

test('@phone the menu opens the navigation at 390 px', async ({ page, signIn }) => {
  await signIn();
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav).toBeHidden();
  await page.getByRole('button', { name: 'Menu' }).click();
  await expect(page.getByRole('button', { name: 'Menu' })).toHaveAttribute('aria-expanded', 'true');
  await nav.getByRole('link', { name: 'Messaging profiles' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Messaging profiles' })).toBeVisible();
  await expect(nav).toBeHidden();
});

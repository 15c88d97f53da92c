import { test, expect } from './fixtures';

test('sign in, find every screen in the navigation, buy two numbers by area code, connect and release', async ({ page, signIn, npa, axe, shot, api }) => {
  await page.goto('/numbers');
  // Not signed in: the sign-in screen, which comes back here afterwards.
  await expect(page.getByRole('heading', { name: 'Sign in to Patchbay' })).toBeVisible();
  await shot('sign-in');
  await axe('sign in');
  await signIn();

  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const name of ['Dashboard', 'Phone numbers', 'Messaging profiles', 'Messages', 'Dialer', 'Assistants', 'Calls']) {
    await expect(nav.getByRole('link', { name })).toBeVisible();
  }
  await nav.getByRole('link', { name: 'Phone numbers' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Phone numbers' })).toBeVisible();
  await expect(page.getByText('You have no numbers yet.')).toBeVisible();

  const area = npa(1);
  await page.getByLabel('Country').selectOption('US');
  await page.getByLabel('Area code').fill(area);
  await page.getByRole('button', { name: 'Search' }).click();
  const first = `+1${area}5550100`;
  const second = `+1${area}5550101`;
  await page.getByRole('button', { name: `Buy ${first}` }).click();
  await expect(page.getByRole('status')).toContainText(`Buying ${first}`);
  await page.getByRole('button', { name: `Buy ${second}` }).click();
  // Bought numbers leave the results; both rows turn active without a reload.
  await expect(page.getByRole('button', { name: `Buy ${first}` })).toHaveCount(0);
  for (const n of [first, second]) {
    await expect(page.getByRole('listitem', { name: n }).getByText('active', { exact: true })).toBeVisible();
  }
  await expect(page.getByLabel('Numbers: 2')).toBeVisible();
  await axe('phone numbers');
  await shot('numbers');

  // The API agrees with the screen.
  const owned = (await api.get('/v1/phone-numbers')).data.map((n: { phone_number: string; status: string }) => [n.phone_number, n.status]);
  expect(owned).toEqual([[first, 'active'], [second, 'active']]);

  // Release asks first, in an alertdialog whose safe choice has the focus; Cancel keeps the number.
  await page.getByRole('button', { name: `Release ${second}` }).click();
  const dialog = page.getByRole('alertdialog', { name: `Release ${second}?` });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await axe('release dialog');
  await shot('numbers-release-dialog');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('listitem', { name: second })).toBeVisible();
  await page.getByRole('button', { name: `Release ${second}` }).click();
  await dialog.getByRole('button', { name: 'Release' }).click();
  await expect(page.getByRole('status')).toContainText(`Releasing ${second}`);
  await expect(page.getByRole('listitem', { name: second })).toHaveCount(0);
  await expect(page.getByLabel('Numbers: 1')).toBeVisible();
});

test('a search the API refuses names its field', async ({ page, signIn, allowConsole }) => {
  allowConsole(/status of 400/);
  await signIn();
  await page.goto('/numbers');
  await page.getByLabel('Area code').fill('12a');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByLabel('Area code')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByRole('alert').filter({ hasText: 'must be three digits' })).toBeVisible();
});

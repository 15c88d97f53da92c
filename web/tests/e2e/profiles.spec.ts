import { test, expect, settled, type Api } from './fixtures';
import type { Page } from '@playwright/test';

async function buy(api: Api, numbers: string[]) {
  for (const n of numbers) await api.post('/v1/phone-numbers', { phone_number: n });
  await settled(api);
}

async function createProfile(page: Page, name: string) {
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByRole('status')).toContainText(`Profile ${name} created`);
}

test('two profiles, activate one then the other; rename; delete asks first', async ({ page, signIn, axe, shot, api, allowConsole }) => {
  allowConsole(/status of 422/);
  await signIn();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Messaging profiles' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Messaging profiles' })).toBeVisible();

  // An empty name is refused on the field it names.
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByLabel('Name', { exact: true })).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByText('must not be empty')).toBeVisible();

  await createProfile(page, 'Support');
  await createProfile(page, 'Sales');
  const support = page.getByRole('listitem', { name: 'Support' });
  const sales = page.getByRole('listitem', { name: 'Sales' });
  await expect(support.getByText('Synced')).toBeVisible();
  await expect(sales.getByText('Synced')).toBeVisible();

  await page.getByRole('button', { name: 'Activate Support' }).click();
  await expect(support.getByText('Active', { exact: true })).toBeVisible();
  await expect(sales.getByText('Active', { exact: true })).toHaveCount(0);
  await page.getByRole('button', { name: 'Activate Sales' }).click();
  await expect(sales.getByText('Active', { exact: true })).toBeVisible();
  await expect(support.getByText('Active', { exact: true })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Activate Support' })).toBeVisible();
  const active = (await api.get('/v1/messaging-profiles')).data.filter((p: { active: boolean }) => p.active).map((p: { name: string }) => p.name);
  expect(active).toEqual(['Sales']);
  await axe('messaging profiles');
  await shot('profiles');

  await page.getByRole('button', { name: 'Rename Support' }).click();
  await page.getByLabel('New name for Support').fill('Customer care');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('listitem', { name: 'Customer care' })).toBeVisible();

  await page.getByRole('button', { name: 'Delete Customer care' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Delete Customer care?' });
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('listitem', { name: 'Customer care' })).toHaveCount(0);
  expect((await api.get('/v1/messaging-profiles')).data.map((p: { name: string }) => p.name)).toEqual(['Sales']);
});

for (const phone of [false, true]) {
  test(`the profile page assigns and unassigns numbers${phone ? ' @phone' : ''}`, async ({ page, signIn, axe, shot, api, npa }) => {
    const area = npa(phone ? 3 : 2);
    const [a, b] = [`+1${area}5550100`, `+1${area}5550101`];
    await buy(api, [a, b]);
    const profile = await api.post('/v1/messaging-profiles', { name: 'Support' });
    await signIn();
    await page.goto('/profiles');
    await page.getByRole('link', { name: 'Support' }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Messaging profile: Support' })).toBeVisible();
    const assigned = page.getByRole('region', { name: 'Assigned numbers' });
    const available = page.getByRole('region', { name: 'Available numbers' });
    await expect(available.getByRole('listitem')).toHaveCount(2);
    await expect(assigned.getByText('No numbers on this profile yet')).toBeVisible();

    await available.getByRole('button', { name: `Assign ${a}` }).click();
    await expect(page.getByRole('status')).toContainText(`${a} assigned to Support`);
    await expect(assigned.getByRole('button', { name: `Unassign ${a}` })).toBeVisible();
    await expect(assigned.getByText('Synced')).toBeVisible();
    await available.getByRole('button', { name: `Assign ${b}` }).click();
    await expect(assigned.getByRole('listitem')).toHaveCount(2);
    await expect(available.getByRole('listitem')).toHaveCount(0);
    await axe('profile page');
    await shot(`profile-page`);

    // Unassign asks first; the number goes back to the available list.
    await assigned.getByRole('button', { name: `Unassign ${a}` }).click();
    const dialog = page.getByRole('alertdialog', { name: `Unassign ${a}?` });
    await expect(dialog).toBeVisible();
    await dialog.getByRole('button', { name: 'Unassign' }).click();
    await expect(page.getByRole('status')).toContainText(`${a} unassigned from Support`);
    await expect(available.getByRole('button', { name: `Assign ${a}` })).toBeVisible();
    await expect(assigned.getByRole('listitem')).toHaveCount(1);

    const page_ = await api.get(`/v1/messaging-profiles/${profile.id}`);
    expect(page_.assigned_numbers.map((n: { phone_number: string }) => n.phone_number)).toEqual([b]);
    expect(page_.available_numbers.map((n: { phone_number: string }) => n.phone_number)).toEqual([a]);
    if (phone) {
      // One pane at a time, nothing wider than the screen.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBe(0);
    }
  });
}

test('another user’s profile is not found', async ({ page, signIn, api, allowConsole }) => {
  allowConsole(/status of 404/);
  const theirs = await api.post('/v1/messaging-profiles', { name: 'Private' });
  // A different user signs in (the fixture's user made the profile through the API).
  await page.goto('/signin');
  await page.getByLabel('User').fill(`${api.user}-other`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Dashboard' })).toBeVisible();
  await page.goto(`/profiles/${theirs.id}`);
  await expect(page.getByRole('heading', { level: 1, name: 'Not found' })).toBeVisible();
  void signIn;
});

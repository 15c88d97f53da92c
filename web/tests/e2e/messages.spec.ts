import { test, expect, inboundText, settled, type Api } from './fixtures';

/** A number bought, on an active profile, synced: ready to text. */
async function ready(api: Api, number: string) {
  await api.post('/v1/phone-numbers', { phone_number: number });
  await settled(api);
  const profile = await api.post('/v1/messaging-profiles', { name: 'Texting' });
  await api.post(`/v1/messaging-profiles/${profile.id}/activate`);
  await api.put(`/v1/messaging-profiles/${profile.id}/phone-numbers/${encodeURIComponent(number)}`);
  await settled(api);
}

test('with no number the messenger says how to set up', async ({ page, signIn, axe, shot }) => {
  await signIn();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Messages' }).click();
  const setup = page.getByRole('region', { name: 'Set up texting first' });
  await expect(setup).toBeVisible();
  await expect(setup.getByRole('link', { name: 'Buy a number' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'New conversation' })).toBeDisabled();
  await axe('messages, setup');
  await shot('messages-setup');
});

for (const phone of [false, true]) {
  test(`send a text and see it delivered; an inbound text shows unread until opened${phone ? ' @phone' : ''}`, async ({ page, signIn, api, npa, axe, shot, request }) => {
    const area = npa(phone ? 11 : 10);
    const ours = `+1${area}5550100`;
    const friend = `+1${area}5550120`;
    const stranger = `+1${area}5550130`;
    await ready(api, ours);
    await signIn();
    await page.goto('/messages');
    await expect(page.getByRole('heading', { level: 1, name: 'Messages' })).toBeVisible();

    await page.getByRole('button', { name: 'New conversation' }).click();
    await page.getByLabel('To').fill(friend);
    await page.getByLabel('Name (optional)').fill('Ada Lovelace');
    await page.getByRole('button', { name: 'Start' }).click();
    await expect(page.getByLabel('From')).toHaveValue(ours);
    await page.getByLabel('Message', { exact: true }).fill('Hello there');
    await expect(page.getByText('1 segment · GSM-7 · 11 of 160')).toBeVisible();
    await page.getByLabel('Message', { exact: true }).fill('Hello there ✓');
    await expect(page.getByText('1 segment · UCS-2 (Unicode) · 13 of 70')).toBeVisible();
    await page.getByRole('button', { name: 'Send' }).click();
    const log = page.getByRole('log', { name: `Messages with ${friend}` });
    await expect(log.getByText('Hello there ✓')).toBeVisible();
    await expect(log.getByText('Delivered')).toBeVisible();
    await expect(page.getByRole('heading', { level: 2, name: `Ada Lovelace (${friend})` })).toBeVisible();
    await expect(page.getByLabel('Message', { exact: true })).toHaveValue('');
    // The API counted what the composer said.
    const conv = (await api.get('/v1/conversations')).data[0];
    const sent = (await api.get(`/v1/conversations/${conv.id}/messages`)).data[0];
    expect([sent.segments, sent.encoding, sent.status]).toEqual([1, 'ucs2', 'delivered']);
    await axe('messages, a conversation');
    await shot('messages-thread');

    // A text from someone new arrives without a reload, unread until opened.
    await inboundText(request, stranger, ours, 'Are you open today?');
    const list = page.getByRole('navigation', { name: 'Conversations' });
    if (phone) await page.getByRole('link', { name: '← Conversations' }).click();
    const link = list.getByRole('link', { name: new RegExp(`${stranger.replace('+', '\\+')}.*1 unread`) });
    await expect(link).toBeVisible();
    await expect(page).toHaveTitle(/^\(1\) Messages/);
    if (phone) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBe(0);
      await shot('messages-list');
    }
    await link.click();
    await expect(page.getByRole('log', { name: `Messages with ${stranger}` }).getByText('Are you open today?')).toBeVisible();
    // Whoever texted first can be named from the thread; the list shows the name.
    await page.getByRole('button', { name: 'Name contact' }).click();
    await page.getByLabel(`Name of ${stranger}`).fill('Walk-in customer');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('heading', { level: 2, name: `Walk-in customer (${stranger})` })).toBeVisible();
    expect((await api.get(`/v1/contacts/${encodeURIComponent(stranger)}`)).name).toBe('Walk-in customer');
    if (phone) await expect(list).toBeHidden();
    await expect.poll(async () => (await api.get('/v1/conversations')).data.find((c: { contact: string }) => c.contact === stranger)?.unread).toBe(0);
    if (phone) await page.getByRole('link', { name: '← Conversations' }).click();
    await expect(list.getByText('1 unread')).toHaveCount(0);
    await expect(list.getByRole('link', { name: /Walk-in customer/ })).toBeVisible();
    await expect(page).toHaveTitle(/^Messages/);
    if (phone) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow).toBe(0);
    }
  });
}

test('search finds a conversation by number or name; Alt+J opens the next', async ({ page, signIn, api, npa, request }) => {
  const area = npa(12);
  const ours = `+1${area}5550100`;
  await ready(api, ours);
  await api.post('/v1/contacts', { phone_number: `+1${area}5550140`, name: 'Grace Hopper' });
  await inboundText(request, `+1${area}5550140`, ours, 'first');
  await inboundText(request, `+1${area}5550141`, ours, 'second');
  await signIn();
  await page.goto('/messages');
  const list = page.getByRole('navigation', { name: 'Conversations' });
  await expect(list.getByRole('link')).toHaveCount(2);
  await page.keyboard.press('/');
  await expect(page.getByLabel('Search conversations')).toBeFocused();
  await page.keyboard.type('0141');
  await expect(list.getByRole('link')).toHaveCount(1);
  await expect(list.getByRole('link')).toContainText('second');
  // By name too: the API searches the contact's name.
  await page.getByLabel('Search conversations').fill('grace');
  await expect(list.getByRole('link')).toHaveCount(1);
  await expect(list.getByRole('link')).toContainText('Grace Hopper');
  await page.getByLabel('Search conversations').fill('');
  await page.getByLabel('Search conversations').blur();
  await page.keyboard.press('Alt+j');
  await expect(page.getByRole('log')).toContainText('second');
  await page.keyboard.press('Alt+j');
  await expect(page.getByRole('log')).toContainText('first');
});

test('a text the carrier cannot deliver shows failed with its reason', async ({ page, signIn, api, npa }) => {
  const area = npa(13);
  const ours = `+1${area}5550100`;
  const nowhere = `+1${area}5550199`;
  await ready(api, ours);
  await signIn();
  await page.goto('/messages');
  await page.getByRole('button', { name: 'New conversation' }).click();
  await page.getByLabel('To').fill(nowhere);
  await page.getByRole('button', { name: 'Start' }).click();
  await page.getByLabel('Message', { exact: true }).fill('Anyone there?');
  await page.getByRole('button', { name: 'Send' }).click();
  const log = page.getByRole('log', { name: `Messages with ${nowhere}` });
  await expect(log.getByText('Anyone there?')).toBeVisible();
  await expect(log.getByText(/Failed: .+ \(40008\)/)).toBeVisible();
  const conv = (await api.get('/v1/conversations')).data[0];
  const [m] = (await api.get(`/v1/conversations/${conv.id}/messages`)).data;
  expect([m.status, m.failure?.code]).toEqual(['failed', '40008']);
});

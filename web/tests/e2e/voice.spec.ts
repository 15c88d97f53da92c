import { test, expect, settled, type Api } from './fixtures';

async function connectionWith(api: Api, numbers: [string, 'primary' | 'secondary' | 'backup'][]) {
  for (const [n] of numbers) await api.post('/v1/phone-numbers', { phone_number: n });
  await settled(api);
  const c = await api.post('/v1/sip-connections', { name: 'Front desk' });
  for (const [n, role] of numbers) await api.put(`/v1/sip-connections/${c.id}/phone-numbers/${encodeURIComponent(n)}`, { role });
  await expect
    .poll(async () => {
      const now = await api.get(`/v1/sip-connections/${c.id}`);
      return now.sync_state === 'synced' && now.phone_numbers.every((p: { sync_state: string }) => p.sync_state === 'synced');
    })
    .toBe(true);
  return c;
}

test('a sandbox call from the dialer is recorded and appears in the call log and on the dashboard', async ({ page, signIn, api, npa, axe, shot }) => {
  const area = npa(20);
  const primary = `+1${area}5550100`;
  const backup = `+1${area}5550101`;
  await connectionWith(api, [[backup, 'backup'], [primary, 'primary']]);
  await signIn();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dialer' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Dialer' })).toBeVisible();
  await expect(page.getByLabel('Connection', { exact: true })).toContainText('Front desk (active, synced)');
  const details = page.getByRole('region', { name: 'Connection details' });
  await expect(details.getByLabel(`Role of ${primary}`)).toHaveValue('primary');
  await expect(details.getByLabel(`Role of ${backup}`)).toHaveValue('backup');
  // The primary number is the caller id, first in the list.
  await expect(page.getByLabel('From')).toHaveValue(primary);
  await expect(page.getByLabel('From').locator('option').first()).toHaveText(primary);

  const phone = page.getByRole('region', { name: 'Phone' });
  const keypad = phone.getByRole('group', { name: 'Keypad' });
  for (const d of `1${area}5550177`) await keypad.getByRole('button', { name: d, exact: true }).click();
  await expect(page.getByLabel('Number to call')).toHaveValue(`1${area}5550177`);
  await phone.getByRole('button', { name: 'Call' }).click();
  const state = phone.getByRole('status');
  await expect(state).toContainText('Call: active');
  await phone.getByRole('button', { name: 'Mute' }).click();
  await expect(phone.getByRole('button', { name: 'Mute', pressed: true })).toBeVisible();
  await axe('dialer, in a call');
  await shot('dialer');
  await expect(state).toContainText(/Call: active 0:0[1-9]/);
  await phone.getByRole('button', { name: 'Hang up' }).click();
  await expect(state).toContainText('Call: ended');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Calls' }).click();
  const row = page.getByRole('row').filter({ hasText: `+1${area}5550177` });
  await expect(row).toBeVisible();
  await expect(row).toContainText('Front desk');
  await expect(row).toContainText(primary);
  const calls = (await api.get('/v1/calls')).data;
  expect(calls).toHaveLength(1);
  expect([calls[0].source, calls[0].from, calls[0].to]).toEqual(['sip', primary, `+1${area}5550177`]);
  await page.getByLabel('Source').selectOption('assistant');
  await expect(page.getByText('No calls match these filters.')).toBeVisible();
  await page.getByLabel('Source').selectOption('sip');
  await expect(row).toBeVisible();
  await axe('calls');
  await shot('calls');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByLabel('Calls: 1')).toBeVisible();
});

test('an assistant created with a picked number goes active and owns it; the numbers page connects another', async ({ page, signIn, api, npa, axe, shot, request }) => {
  const area = npa(21);
  const other = `+1${area}5550110`;
  await api.post('/v1/phone-numbers', { phone_number: other });
  await settled(api);
  await signIn();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Assistants' }).click();
  await page.getByRole('link', { name: 'New assistant' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'New assistant' })).toBeVisible();
  await page.getByLabel('Name', { exact: true }).fill('Receptionist');
  await page.getByLabel('First message').fill('Hello, how can I help?');
  await page.getByLabel('System prompt').fill('You answer the phone for a dental practice.');
  await page.getByLabel('Area code').fill(area);
  await page.getByRole('button', { name: 'Search' }).click();
  const choice = page.getByRole('group', { name: 'Choose a number' });
  await expect(choice.getByRole('radio', { name: 'No number' })).toBeChecked();
  const picked = `+1${area}5550100`;
  await choice.getByRole('radio', { name: new RegExp(picked.replace('+', '\\+')) }).check();
  // Nothing is bought until Create.
  expect((await api.get('/v1/phone-numbers')).data.map((n: { phone_number: string }) => n.phone_number)).toEqual([other]);
  await axe('new assistant');
  await shot('assistant-new');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Assistant: Receptionist' })).toBeVisible();
  const status = page.getByRole('region', { name: 'Status' });
  await expect(status.getByText('active', { exact: true })).toBeVisible();
  await expect(status).toContainText(`Numbers: ${picked}`);
  const [a] = (await api.get('/v1/assistants')).data;
  expect([a.status, a.phone_numbers.map((n: { phone_number: string }) => n.phone_number)]).toEqual(['active', [picked]]);
  await shot('assistant');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Assistants' }).click();
  await expect(page.getByRole('listitem', { name: 'Receptionist' })).toContainText(picked);
  await axe('assistants');
  await shot('assistants');

  // The numbers page sends another number's calls to it.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Phone numbers' }).click();
  await page.getByLabel(`Assistant for ${other}`).selectOption({ label: 'Receptionist' });
  await expect(page.getByRole('status')).toContainText(`${other}'s calls now go to Receptionist`);
  await expect.poll(async () => (await api.get(`/v1/assistants/${a.id}`)).phone_numbers.map((n: { phone_number: string }) => n.phone_number).sort()).toEqual([picked, other].sort());
  await expect(page.getByLabel(`Assistant for ${other}`)).toHaveValue(a.id);

  // A call to it, through the sandbox, is on the dashboard in the assistant's row, as the API says.
  const res = await request.post('/local/sandbox/calls', { data: { to: other, from: `+1${area}5550188`, duration_seconds: 90 } });
  expect(res.status()).toBe(200);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByLabel('Calls: 1')).toBeVisible();
  const d = await api.get('/v1/dashboard');
  for (const [label, value] of [
    ['Messages sent', String(d.totals.messages_sent)],
    ['Messages received', String(d.totals.messages_received)],
    ['Messages delivered', String(d.totals.messages_delivered)],
    ['Messages failed', String(d.totals.messages_failed)],
    ['Calls', String(d.totals.calls)],
    ['Minutes', (d.totals.call_seconds / 60).toFixed(1)],
  ]) {
    await expect(page.getByLabel(`${label}: ${value}`)).toBeVisible();
  }
  expect(d.totals.calls).toBe(1);
  const assistants = page.getByRole('region', { name: 'Assistants' });
  await expect(assistants.getByRole('row', { name: /Receptionist/ })).toContainText('1:30');
  await axe('dashboard');
  await shot('dashboard');
});

test('the dialer puts numbers on a connection, changes a role and takes one off (confirmed)', async ({ page, signIn, api, npa }) => {
  const area = npa(22);
  const primary = `+1${area}5550100`;
  const spare = `+1${area}5550101`;
  const c = await connectionWith(api, [[primary, 'primary']]);
  await api.post('/v1/phone-numbers', { phone_number: spare });
  await settled(api);
  await signIn();
  await page.goto('/dialer');
  const details = page.getByRole('region', { name: 'Connection details' });
  await expect(details.getByLabel(`Role of ${primary}`)).toHaveValue('primary');
  await expect(details.getByLabel('Add a number')).toHaveValue(spare);
  await expect(details.getByLabel('As')).toHaveValue('secondary');
  await details.getByRole('button', { name: 'Add' }).click();
  await expect(details.getByLabel(`Role of ${spare}`)).toHaveValue('secondary');
  await expect(page.getByLabel('From').locator('option')).toHaveText([primary, spare]);

  // The spare becomes primary: the other one steps down, as the API answers.
  await details.getByLabel(`Role of ${primary}`).selectOption('backup');
  await expect(details.getByLabel(`Role of ${primary}`)).toHaveValue('backup');
  await details.getByLabel(`Role of ${spare}`).selectOption('primary');
  await expect(details.getByLabel(`Role of ${spare}`)).toHaveValue('primary');
  await expect(page.getByLabel('From').locator('option').first()).toHaveText(spare);

  await details.getByRole('button', { name: `Take ${primary} off` }).click();
  await page.getByRole('alertdialog', { name: `Take ${primary} off Front desk?` }).getByRole('button', { name: 'Take off' }).click();
  await expect(details.getByLabel(`Role of ${primary}`)).toHaveCount(0);
  const now = await api.get(`/v1/sip-connections/${c.id}`);
  expect(now.phone_numbers.map((n: { phone_number: string; role: string }) => [n.phone_number, n.role])).toEqual([[spare, 'primary']]);
});

test('an assistant is edited and deleted (confirmed)', async ({ page, signIn, api }) => {
  const a = await api.post('/v1/assistants', { name: 'Night line' });
  await expect.poll(async () => (await api.get(`/v1/assistants/${a.id}`)).status).toBe('active');
  await signIn();
  await page.goto('/assistants');
  await page.getByRole('link', { name: 'Edit Night line' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Assistant: Night line' })).toBeVisible();
  await page.getByLabel('Name', { exact: true }).fill('Late line');
  await page.getByLabel('First message').fill('We are closed; leave a message.');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved Late line' })).toBeVisible();
  await expect.poll(async () => {
    const now = await api.get(`/v1/assistants/${a.id}`);
    return [now.name, now.first_message, now.sync_state];
  }).toEqual(['Late line', 'We are closed; leave a message.', 'synced']);

  await page.getByRole('link', { name: '← Assistants' }).click();
  await page.getByRole('button', { name: 'Delete Late line' }).click();
  await page.getByRole('alertdialog', { name: 'Delete Late line?' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('listitem', { name: 'Late line' })).toHaveCount(0);
  await expect(page.getByText('No assistants yet.')).toBeVisible();
});

test('the call log pages through 27 calls, 25 at a time', async ({ page, signIn, api, npa, request }) => {
  const area = npa(23);
  const ours = `+1${area}5550100`;
  await connectionWith(api, [[ours, 'primary']]);
  for (let i = 0; i < 27; i++) {
    const res = await request.post('/local/sandbox/calls', { data: { to: ours, from: `+1${area}55501${String(50 + i).padStart(2, '0')}`, duration_seconds: 10 + i } });
    expect(res.status()).toBe(200);
  }
  await signIn();
  await page.goto('/calls');
  const rows = page.getByRole('region', { name: 'Call log' }).getByRole('row');
  await expect(rows).toHaveCount(26); // the header and 25 calls
  await expect(page.getByRole('button', { name: 'Previous page' })).toBeDisabled();
  await page.getByRole('button', { name: 'Next page' }).click();
  await expect(rows).toHaveCount(3);
  await expect(page.getByRole('button', { name: 'Next page' })).toBeDisabled();
  await page.getByRole('button', { name: 'Previous page' }).click();
  await expect(rows).toHaveCount(26);
  // A filter starts again from the first page.
  await page.getByLabel('Number').selectOption(ours);
  await expect(rows).toHaveCount(26);
  await expect(page.getByRole('button', { name: 'Previous page' })).toBeDisabled();
});

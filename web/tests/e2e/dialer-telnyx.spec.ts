import { test, expect } from './fixtures';

// A Telnyx connection's dialer logs in to Telnyx's WebRTC socket with exactly the token the API
// minted, and never with a SIP password. Offline: the connection list and the token answer are
// stood in with page.route (a real Telnyx connection needs Telnyx), and the socket with
// page.routeWebSocket, which reads the SDK's first frame: its JSON-RPC login.
test('a Telnyx connection logs in to Telnyx WebRTC with the minted token', async ({ page, signIn }) => {
  const id = '8f1c2a3e-1111-4c2d-9a55-000000000001';
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZWxueXgtdGVzdCJ9.c2lnbmF0dXJl';
  const connection = {
    id, name: 'Telnyx desk', carrier: 'telnyx', active: true, sync_state: 'synced', sync_error: null,
    carrier_connection_id: '1234567890', sip_username: 'patchbaytest', default_caller_id: '+12125550100',
    phone_numbers: [{ phone_number: '+12125550100', role: 'primary', active: true, sync_state: 'synced', sync_error: null }],
    created_at: '2026-12-01T00:00:00Z', updated_at: '2026-12-01T00:00:00Z',
  };
  await page.route('**/v1/sip-connections?*', (r) => r.fulfill({ json: { data: [connection], next_cursor: null } }));
  let minted = 0;
  await page.route(`**/v1/sip-connections/${id}/webrtc-token`, (r) => {
    minted += 1;
    return r.fulfill({ status: 201, json: { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), connection_id: id, caller_ids: ['+12125550100'] } });
  });
  const frames: string[] = [];
  let socketUrl = '';
  await page.routeWebSocket(/rtc\.telnyx\.com/, (ws) => {
    socketUrl = ws.url();
    ws.onMessage((m) => frames.push(String(m)));
  });

  await signIn();
  await page.goto('/dialer');
  await expect(page.getByLabel('Connection', { exact: true })).toContainText('Telnyx desk (active, synced)');
  await page.getByLabel('Number to call').fill('+12125550177');
  const phone = page.getByRole('region', { name: 'Phone' });
  await phone.getByRole('button', { name: 'Call' }).click();
  await expect.poll(() => frames.length).toBeGreaterThan(0);
  expect(socketUrl).toMatch(/^wss:\/\/rtc\.telnyx\.com/);
  const login = JSON.parse(frames[0]!) as { method: string; params: Record<string, unknown> };
  expect(login.method).toBe('login');
  expect(login.params.login_token).toBe(token);
  expect(JSON.stringify(login)).not.toMatch(/passwd|password/i);
  expect(minted).toBe(1);
  await expect(phone.getByRole('status')).toContainText('Call: connecting');
});

// Telnyx's WebRTC SDK (loaded only when a Telnyx connection is used): logs in with the JWT the API
// minted, places calls with the connection's caller id, reports the call's state. A first login
// right after the credential was made can fail while it propagates (Telnyx: wait about 5 s), so one
// failed first login is tried again once after 5 seconds.

import { TelnyxRTC } from '@telnyx/webrtc';
import type { CallState, Phone, PhoneEvents } from './Phone';
import { microphone } from './Phone';

type SdkCall = ReturnType<TelnyxRTC['newCall']>;

const STATES: Record<string, CallState> = {
  new: 'connecting',
  requesting: 'connecting',
  trying: 'connecting',
  recovering: 'connecting',
  early: 'ringing',
  ringing: 'ringing',
  answering: 'connecting',
  active: 'active',
  held: 'active',
  hangup: 'ended',
  destroy: 'ended',
  purge: 'ended',
};

export class TelnyxPhone implements Phone {
  private client: TelnyxRTC;
  private current: SdkCall | null = null;
  private ready: Promise<void>;

  constructor(
    token: string,
    private events: PhoneEvents,
    private onExpiring: () => void,
  ) {
    this.client = new TelnyxRTC({ login_token: token });
    this.client.remoteElement = 'remote-audio';
    this.ready = this.connect(true);
    this.client.on('telnyx.notification', (n: { type: string; call?: SdkCall }) => {
      if (n.type !== 'callUpdate' || !n.call) return;
      const s = STATES[n.call.state] ?? 'connecting';
      this.events.state(s, s === 'ended' ? (n.call.cause ?? undefined) : undefined);
      if (s === 'ended') this.current = null;
    });
    this.client.on('telnyx.warning', (w: { warning?: { code?: number } }) => {
      if (w.warning?.code === 34001) this.onExpiring();
    });
  }

  private connect(retry: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ok = () => {
        this.client.off('telnyx.ready', ok);
        this.client.off('telnyx.error', bad);
        resolve();
      };
      const bad = (e: unknown) => {
        this.client.off('telnyx.ready', ok);
        this.client.off('telnyx.error', bad);
        if (retry) setTimeout(() => this.connect(false).then(resolve, reject), 5000);
        else reject(new Error(`Telnyx refused the login: ${JSON.stringify(e)}`));
      };
      this.client.on('telnyx.ready', ok);
      this.client.on('telnyx.error', bad);
      this.client.connect();
    });
  }

  async call(to: string, from: string): Promise<void> {
    (await microphone()).getTracks().forEach((t) => t.stop()); // a clear message if it is refused
    this.events.state('connecting');
    await this.ready;
    this.current = this.client.newCall({ destinationNumber: to, callerNumber: from, audio: true, video: false });
  }

  async hangup(): Promise<void> {
    this.current?.hangup();
  }

  mute(on: boolean): void {
    if (!this.current) return;
    if (on) this.current.muteAudio();
    else this.current.unmuteAudio();
  }

  dtmf(digit: string): void {
    this.current?.dtmf(digit);
  }

  async renew(token: string): Promise<void> {
    await this.client.login({ creds: { login_token: token } });
  }

  close(): void {
    this.client.off('telnyx.notification');
    this.client.off('telnyx.warning');
    this.client.disconnect();
  }
}

// The sandbox carrier's phone: a call that rings, is answered and ends on timers, with the real
// microphone opened (a fake one in tests). When it ends, the sandbox records it as a call of the
// connection (POST /local/sandbox/calls, direction outbound, through the verified webhook path), so
// it appears in the call log and on the dashboard as a dialer call would. Local stack only.

import { microphone, type Phone, type PhoneEvents } from './Phone';

export class SandboxPhone implements Phone {
  private stream: MediaStream | null = null;
  private timers: ReturnType<typeof setTimeout>[] = [];
  private answeredAt: number | null = null;
  private current: { to: string; from: string } | null = null;

  constructor(
    private token: string,
    private events: PhoneEvents,
    private record: (call: { to: string; from: string; duration_seconds: number }) => Promise<void>,
  ) {}

  async call(to: string, from: string): Promise<void> {
    if (!this.token) throw new Error('not logged in');
    this.stream = await microphone();
    this.current = { to, from };
    this.answeredAt = null;
    this.events.state('connecting');
    this.timers.push(setTimeout(() => this.events.state('ringing'), 300));
    this.timers.push(
      setTimeout(() => {
        this.answeredAt = Date.now();
        this.events.state('active');
      }, 1200),
    );
  }

  async hangup(): Promise<void> {
    this.timers.forEach(clearTimeout);
    this.timers = [];
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    const c = this.current;
    this.current = null;
    if (!c) return;
    const seconds = this.answeredAt ? Math.max(1, Math.round((Date.now() - this.answeredAt) / 1000)) : 0;
    if (this.answeredAt) {
      try {
        await this.record({ ...c, duration_seconds: seconds });
      } catch (e) {
        this.events.state('failed', `the sandbox did not record the call: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
    }
    this.events.state('ended', this.answeredAt ? 'normal clearing' : 'cancelled');
  }

  mute(on: boolean): void {
    this.stream?.getAudioTracks().forEach((t) => (t.enabled = !on));
  }

  dtmf(): void {}

  async renew(token: string): Promise<void> {
    this.token = token;
  }

  close(): void {
    this.timers.forEach(clearTimeout);
    this.stream?.getTracks().forEach((t) => t.stop());
  }
}

// What the dialer talks to: a browser phone logged in with a short-lived token from
// POST /v1/sip-connections/{id}/webrtc-token (no SIP password ever reaches the browser). Two kinds:
// Telnyx's WebRTC SDK for a Telnyx connection, and the sandbox's simulated call for a sandbox one.

export type CallState = 'idle' | 'connecting' | 'ringing' | 'active' | 'ended' | 'failed';

export interface PhoneEvents {
  state(state: CallState, detail?: string): void;
}

export interface Phone {
  call(to: string, from: string): Promise<void>;
  hangup(): Promise<void>;
  mute(on: boolean): void;
  dtmf(digit: string): void;
  /** Renew the login before the token runs out (Telnyx warns ahead of its expiry). */
  renew(token: string): Promise<void>;
  close(): void;
}

/** The microphone: asked for before a call, so a refusal is said plainly. */
export async function microphone(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('This browser gives no access to a microphone');
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  } catch (e) {
    const name = e instanceof DOMException ? e.name : '';
    if (name === 'NotAllowedError') throw new Error('Microphone access was refused: allow it in the browser to call');
    if (name === 'NotFoundError') throw new Error('No microphone was found');
    throw e;
  }
}

// How many SMS segments a text takes, and in which encoding: the same rules as the API's
// (shared/domain/src/messaging/sms.rs), so the counter under the composer says what the send will.
// GSM-7: 160 septets alone, 153 per part; the extension characters take two and are never split.
// One character outside GSM-7 makes it UCS-2: 70 UTF-16 units alone, 67 per part, a pair never split.

const BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const EXTENSION = '\u000C^{}\\[~]|€';

export interface Segments {
  encoding: 'gsm7' | 'ucs2';
  count: number;
  /** Units used (septets or UTF-16 units) and what the last segment holds. */
  used: number;
  perSegment: number;
}

function pack(units: number[], single: number, perPart: number): number {
  const total = units.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  if (total <= single) return 1;
  let parts = 1;
  let used = 0;
  for (const u of units) {
    if (used + u > perPart) {
      parts += 1;
      used = 0;
    }
    used += u;
  }
  return parts;
}

export function segments(text: string): Segments {
  const chars = Array.from(text);
  const septets: number[] = [];
  let gsm = true;
  for (const c of chars) {
    if (BASIC.includes(c)) septets.push(1);
    else if (EXTENSION.includes(c)) septets.push(2);
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) {
    const count = pack(septets, 160, 153);
    return { encoding: 'gsm7', count, used: septets.reduce((a, b) => a + b, 0), perSegment: count > 1 ? 153 : 160 };
  }
  const units = chars.map((c) => c.length);
  const count = pack(units, 70, 67);
  return { encoding: 'ucs2', count, used: units.reduce((a, b) => a + b, 0), perSegment: count > 1 ? 67 : 70 };
}

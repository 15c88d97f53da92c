// Toasts: a success is announced politely (role="status"), an error assertively (role="alert").
import { reactive } from 'vue';

export interface Toast {
  id: number;
  kind: 'ok' | 'error';
  text: string;
}

export const toasts = reactive<Toast[]>([]);
let next = 1;

function push(kind: Toast['kind'], text: string, ms: number) {
  const id = next++;
  toasts.push({ id, kind, text });
  setTimeout(() => dismiss(id), ms);
}

export function dismiss(id: number) {
  const i = toasts.findIndex((t) => t.id === id);
  if (i >= 0) toasts.splice(i, 1);
}

export const toast = {
  ok: (text: string) => push('ok', text, 5000),
  error: (text: string) => push('error', text, 10000),
};

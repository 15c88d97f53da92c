// One confirmation at a time, answered by ConfirmDialog (an alertdialog): `await confirm({...})`.
import { shallowRef } from 'vue';

export interface ConfirmRequest {
  title: string;
  message: string;
  action: string; // the confirming button's text, e.g. "Release"
  resolve: (ok: boolean) => void;
}

export const pending = shallowRef<ConfirmRequest | null>(null);

export function confirm(opts: { title: string; message: string; action: string }): Promise<boolean> {
  pending.value?.resolve(false);
  return new Promise((resolve) => {
    pending.value = {
      ...opts,
      resolve: (ok) => {
        pending.value = null;
        resolve(ok);
      },
    };
  });
}

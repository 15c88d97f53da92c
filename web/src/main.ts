import { createApp } from 'vue';
import { QueryClient, VueQueryPlugin } from '@tanstack/vue-query';
import App from './App.vue';
import { router } from './router';
import { loadConfig } from './config';
import { onUnauthorized, Problem } from './api/client';
import { store } from './auth';
import './styles.css';

async function start() {
  await loadConfig();
  const queryClient = new QueryClient({
    defaultOptions: {
      queries: {
        // Our client already retried a 503; a 4xx will not change on a retry.
        retry: (count, e) => !(e instanceof Problem && e.status < 500) && count < 2,
        refetchOnWindowFocus: true,
        staleTime: 2_000,
      },
      mutations: { retry: false },
    },
  });
  onUnauthorized(() => {
    store(null);
    queryClient.clear();
    const here = router.currentRoute.value;
    if (!here.meta.public) void router.push({ name: 'signin', query: { next: here.fullPath } });
  });
  createApp(App).use(router).use(VueQueryPlugin, { queryClient }).mount('#app');
}

start().catch((e: unknown) => {
  const el = document.getElementById('app');
  if (el) {
    el.innerHTML = '';
    const p = document.createElement('p');
    p.setAttribute('role', 'alert');
    p.className = 'p-6';
    p.textContent = `Patchbay's console could not start: ${e instanceof Error ? e.message : String(e)}`;
    el.append(p);
  }
});

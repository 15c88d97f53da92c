import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { signedIn } from './auth';

const routes: RouteRecordRaw[] = [
  { path: '/signin', name: 'signin', component: () => import('./views/SignIn.vue'), meta: { public: true, title: 'Sign in' } },
  { path: '/auth/callback', name: 'callback', component: () => import('./views/AuthCallback.vue'), meta: { public: true, title: 'Signing in' } },
  { path: '/', name: 'dashboard', component: () => import('./views/Dashboard.vue'), meta: { title: 'Dashboard' } },
  { path: '/numbers', name: 'numbers', component: () => import('./views/Numbers.vue'), meta: { title: 'Phone numbers' } },
  { path: '/profiles', name: 'profiles', component: () => import('./views/Profiles.vue'), meta: { title: 'Messaging profiles' } },
  { path: '/profiles/:id', name: 'profile', component: () => import('./views/ProfileDetail.vue'), props: true, meta: { title: 'Messaging profile' } },
  { path: '/messages/:conversation?', name: 'messages', component: () => import('./views/Messages.vue'), props: true, meta: { title: 'Messages' } },
  { path: '/dialer', name: 'dialer', component: () => import('./views/Dialer.vue'), meta: { title: 'Dialer' } },
  { path: '/assistants', name: 'assistants', component: () => import('./views/Assistants.vue'), meta: { title: 'Assistants' } },
  { path: '/assistants/new', name: 'assistant-new', component: () => import('./views/AssistantForm.vue'), meta: { title: 'New assistant' } },
  { path: '/assistants/:id', name: 'assistant', component: () => import('./views/AssistantForm.vue'), props: true, meta: { title: 'Assistant' } },
  { path: '/calls', name: 'calls', component: () => import('./views/Calls.vue'), meta: { title: 'Calls' } },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFound.vue'), meta: { title: 'Not found' } },
];

export const router = createRouter({ history: createWebHistory(), routes });

router.beforeEach((to) => {
  if (!to.meta.public && !signedIn()) return { name: 'signin', query: to.fullPath === '/' ? {} : { next: to.fullPath } };
  return true;
});

router.afterEach((to) => {
  document.title = `${(to.meta.title as string | undefined) ?? 'Patchbay'} · Patchbay`;
});

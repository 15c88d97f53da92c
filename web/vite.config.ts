import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import tailwindcss from '@tailwindcss/vite';

// `npm run dev` serves the console with hot reload on :5173 and sends the API to the local stack
// (scripts/up on :3000, or PATCHBAY_API), so the browser sees one origin as it does when the stack
// serves the built console itself.
const api = process.env.PATCHBAY_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [vue(), tailwindcss()],
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: Object.fromEntries(['/v1', '/local', '/healthz', '/config.json'].map((p) => [p, { target: api }])),
  },
  build: {
    target: 'es2022',
    sourcemap: false,
    // The dialer's SDK is loaded only when the dialer is opened; this warns if the first load grows.
    chunkSizeWarningLimit: 400,
  },
});

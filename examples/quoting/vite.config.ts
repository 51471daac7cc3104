import { defineConfig } from 'vite';

// The front end: web/ → dist/web, served by the backend (server/main.ts).
// `npm run dev -w @switchboard/example-quoting` proxies /api, /files and the WebSocket to a running backend.
export default defineConfig({
  root: 'web',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  build: { outDir: '../dist/web', emptyOutDir: true, chunkSizeWarningLimit: 400 },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:3100',
      '/files': 'http://127.0.0.1:3100',
      '/connection': { target: 'ws://127.0.0.1:3100', ws: true },
    },
  },
});

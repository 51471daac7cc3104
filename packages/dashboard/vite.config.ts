import { defineConfig } from 'vite';

// Served by the server under /admin/ (packages/server/src/api/admin.ts).
export default defineConfig({
  base: '/admin/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 200 },
});

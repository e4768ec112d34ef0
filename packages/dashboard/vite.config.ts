import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The build lands in dist/web, which `tokenwise serve` serves at `/`. Asset names carry a content hash, so
// the server caches them for a year; index.html is never cached.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist/web',
    emptyOutDir: true,
    // The polyfill would be inlined into index.html, which the server's Content-Security-Policy forbids.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 800,
  },
});

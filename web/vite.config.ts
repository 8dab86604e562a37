/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `base: './'` keeps every asset path relative, so ephd can serve web/dist at `/` (or behind a
// path prefix) without rewriting. During `npm run dev` the API is proxied to a running ephd,
// EPH_SERVER or http://127.0.0.1:8080.
export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/api': { target: process.env.EPH_SERVER ?? 'http://127.0.0.1:8080' },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});

// `npm run dev`: Vite's dev server with hot reload on :5173, the API and both
// WebSockets proxied to the gateway (EXAMISO_GATEWAY, default localhost:3000).
import { defineConfig } from 'vite';

const gateway = process.env.EXAMISO_GATEWAY ?? 'http://localhost:3000';

export default defineConfig({
  server: {
    port: 5173,
    proxy: {
      '/v1': { target: gateway, ws: true, changeOrigin: false },
      '/healthz': gateway,
      '/readyz': gateway,
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: true,
    // The candidate's page and the staff's (/proctor).
    rollupOptions: { input: { main: 'index.html', proctor: 'proctor.html' } },
  },
});

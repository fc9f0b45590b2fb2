// Builds the UI into crates/api/ui/, which the ingot binary embeds (crates/api/build.rs).
// The output is committed; CI rebuilds it and fails if it differs, so it must depend on
// the sources and the lockfile only (no timestamps, no absolute paths).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  base: '/',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  resolve: {
    alias: {
      '@fonts': here('./node_modules/@fontsource-variable/inter/files'),
    },
  },
  build: {
    outDir: here('../crates/api/ui'),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` against a running `ingot serve` on the default port.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});

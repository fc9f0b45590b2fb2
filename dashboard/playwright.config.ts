// End-to-end tests of the UI in headless Chromium against the real `ingot` binary.
//
// `e2e/server.ts` (global setup) starts `ingot serve` on free loopback ports with a temp
// data directory and seeds it through the HTTP API; the tests sign in and assert on what
// is rendered. Chromium is the system's (`/usr/bin/chromium`, or $CHROMIUM_PATH): Playwright
// never downloads a browser here.
//
//   npm run test:e2e                  # needs a built ingot (cargo build), found by `cargo metadata`
//   INGOT_BIN=path/to/ingot npm run test:e2e
//   SCREENSHOTS=1 npm run test:e2e    # also rewrites docs/screenshots/*.png

import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './e2e',
  globalSetup: './e2e/server.ts',
  // One server for the suite; one browser at a time keeps a 2-core machine responsive
  // while `cargo test` runs everything else next to it.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    browserName: 'chromium',
    viewport: { width: 1280, height: 860 },
    timezoneId: 'UTC',
    locale: 'en-GB',
    trace: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});

// What every UI test shares: the seeded server, signing in, screenshots, and a guard that
// fails a test on any console error or uncaught exception in the page (a test that
// provokes an HTTP error on purpose allows exactly that status).

import { fileURLToPath } from 'node:url';
import { type Page, test as base, expect } from '@playwright/test';
import type { Facts } from './seed';

export { expect };

export const facts: Facts = JSON.parse(process.env.INGOT_FACTS ?? '{}') as Facts;
export const baseURL = process.env.INGOT_URL ?? '';
export const adminKey = process.env.INGOT_ADMIN_KEY ?? '';

interface Guard {
  /** Allows the console line Chromium prints for a response with this status. */
  allowStatus: (status: number) => void;
}

export const test = base.extend<{ guard: Guard }>({
  baseURL: async ({}, use) => use(baseURL),
  guard: [
    async ({ page }, use) => {
      const errors: string[] = [];
      const allowed: number[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
      await use({ allowStatus: (status) => allowed.push(status) });
      const unexpected = errors.filter(
        (text) => !allowed.some((status) => text.includes(`responded with a status of ${status}`)),
      );
      expect(unexpected, 'console errors in the page').toEqual([]);
    },
    { auto: true },
  ],
});

/** Signs in with `key` (the admin key by default) and waits for the app. */
export async function signIn(page: Page, key = adminKey, path = '/discover'): Promise<void> {
  await page.goto(path);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
}

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

/** With SCREENSHOTS=1, saves the page as docs/screenshots/<name>.png. */
export async function screenshot(
  page: Page,
  name: string,
  options: { fullPage?: boolean; keepPointer?: boolean } = {},
): Promise<void> {
  if (!process.env.SCREENSHOTS) return;
  // Let fonts settle; move the pointer away unless the picture is of what it hovers.
  await page.evaluate(() => document.fonts.ready);
  if (!options.keepPointer) await page.mouse.move(0, 0);
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: options.fullPage ?? false });
}

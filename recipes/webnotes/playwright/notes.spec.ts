import { expect, test } from '@playwright/test';

// cc-ci's browser tests of the webnotes example recipe. baseURL points at the app under test;
// see docs/testing-custom.md.

test('the page shows the notes title', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('#notes-title')).toBeVisible();
});

test('a note written through the API reads back, also in the browser', async ({ request, page }) => {
  const key = `cc-ci-${Date.now().toString(36)}`;
  const body = `hello from Playwright ${key}`;

  const stored = await request.post(`/cgi-bin/notes?key=${key}`, { data: body, headers: { 'Content-Type': 'text/plain' } });
  expect(stored.status(), await stored.text()).toBe(200);

  const read = await request.get(`/cgi-bin/notes?key=${key}`);
  expect(read.status()).toBe(200);
  expect(await read.text()).toBe(body);

  await page.goto(`/cgi-bin/notes?key=${key}`);
  await expect(page.locator('body')).toHaveText(body);
});

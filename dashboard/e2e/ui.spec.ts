// The UI against the real server: every assertion is on what is rendered (text, table
// rows, SVG shapes, canvases with data), not on network calls alone.

import { CITIES, VEHICLES } from './seed';
import { adminKey, baseURL, expect, facts, screenshot, signIn, test } from './fixtures';

test('sign in with an API key shows the tenant and the role', async ({ page, guard }) => {
  guard.allowStatus(401);
  await page.goto('/');
  await expect(page).toHaveURL(/\/signin/);
  await screenshot(page, 'signin');

  // A wrong key is refused with a message, and nothing else happens.
  await page.getByLabel('API key').fill('ik_not-a-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('refused');

  await page.getByLabel('API key').fill(adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/discover/);
  const who = page.getByLabel('Signed in as');
  await expect(who).toContainText('default');
  await expect(who).toContainText('system');

  // The key lasts for the browser session: a reload stays signed in.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Discover' })).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
});

test('Discover runs a query and shows the matching events, histogram and JSON', async ({ page }) => {
  await signIn(page, adminKey, '/discover?range=24h');
  const query = page.getByRole('searchbox', { name: 'Query' });
  await query.fill('origin:seville and payload.type:temperature');
  await page.getByRole('button', { name: 'Search' }).click();

  const total = facts.temperaturesPerCity;
  await expect(page.locator('.summary')).toContainText(`${total} events`);
  const table = page.getByRole('table', { name: 'Events, newest first' });
  const rows = table.locator('tbody tr:not(.json-row)');
  await expect(rows).toHaveCount(50);
  // Every row is Seville's station, a temperature.
  for (const device of await rows.locator('td:nth-child(3)').allTextContents()) expect(device).toBe('station-seville');
  for (const kind of await rows.locator('td:nth-child(5)').allTextContents()) expect(kind).toBe('temperature');

  // The histogram is drawn from the counts (a canvas, every event in some bucket).
  const histogram = page.getByRole('figure', { name: 'Events over time' });
  await expect(histogram.locator('canvas')).toHaveCount(1);
  await expect(histogram).toHaveAttribute('data-points', /^[1-9]\d*$/);

  // A row opens to its JSON: the collector document kept whole under data.
  await page.getByRole('button', { name: /Show JSON of event/ }).first().click();
  const json = page.getByLabel(/^JSON of event/).first();
  await expect(json).toContainText('"origin": "seville"');
  await expect(json).toContainText('"type": "temperature"');
  await screenshot(page, 'discover');

  // The cursor pages to the rest.
  await page.getByRole('button', { name: 'Older →' }).click();
  await expect(page.getByRole('navigation', { name: 'Pages of events' })).toContainText(`51–${total} of ${total}`);
  await expect(rows).toHaveCount(total - 50);
  await page.getByRole('button', { name: '← Newer' }).click();
  await expect(rows).toHaveCount(50);

  // Drag across the histogram: the range becomes absolute and narrower.
  const area = histogram.locator('.u-over');
  await area.scrollIntoViewIfNeeded();
  const box = await area.boundingBox();
  if (!box) throw new Error('no histogram area');
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2, { steps: 6 });
  await page.mouse.up();
  await expect(page).toHaveURL(/from=.*&to=/);
  await expect(page.getByLabel('Time range')).toHaveValue('absolute');
  const shown = async () => Number((await page.locator('.summary .total').textContent())?.replace(/,/g, ''));
  await expect.poll(shown).toBeLessThan(total);
  expect(await shown()).toBeGreaterThan(0);

  // Live: with auto-refresh on, an event sent now shows up without a reload.
  await page.goto('/discover?range=24h&q=origin%3Aseville+and+payload.type%3Atemperature');
  await page.getByLabel('Auto-refresh').selectOption('5s');
  await expect(page).toHaveURL(/refresh=5s/);
  await expect(page.locator('.summary')).toContainText(`${total} events`);
  const sent = await fetch(`${baseURL}/api/v1/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${facts.sevilleToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ sender: 'station-seville', origin: 'seville', payload: { type: 'temperature', value: 31.5 } }),
  });
  expect(sent.status).toBe(201);
  await expect(page.locator('.summary')).toContainText(`${total + 1} events`, { timeout: 20_000 });
  await expect(rows.first()).toContainText('31.5');

  // The search lives in the URL: it survives a reload.
  await page.reload();
  await expect(page.getByRole('searchbox', { name: 'Query' })).toHaveValue('origin:seville and payload.type:temperature');
  await expect(page.getByLabel('Auto-refresh')).toHaveValue('5s');
});

test('Discover shows a syntax error inline at its column', async ({ page, guard }) => {
  guard.allowStatus(400);
  await signIn(page, adminKey, '/discover?range=24h');
  const query = page.getByRole('searchbox', { name: 'Query' });
  await query.fill('origin:seville and (payload.value > ');
  await page.getByRole('button', { name: 'Search' }).click();

  const error = page.locator('.query-error');
  await expect(error).toBeVisible();
  await expect(error).toContainText(/Syntax error at column \d+/);
  // The caret line points under the column the server named.
  const column = Number(/column (\d+)/.exec((await error.textContent()) ?? '')?.[1]);
  const caret = (await error.locator('pre').textContent())?.split('\n')[1] ?? '';
  expect(caret.indexOf('^') + 1).toBe(column);
  await expect(query).toHaveAttribute('aria-invalid', 'true');
  await screenshot(page, 'discover-syntax-error');

  // Fixing it clears the error.
  await query.fill('origin:london');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(error).toHaveCount(0);
  await expect(page.locator('.summary')).toContainText(`${facts.temperaturesPerCity + facts.humiditiesPerCity} events`);
});

test('Series compares the temperature of four cities, as a chart and a table', async ({ page }) => {
  await signIn(page, adminKey, '/series');
  await page.getByRole('searchbox', { name: 'Filter 1' }).fill('payload.type:temperature');
  await page.getByLabel('Field').fill('payload.value');
  await page.getByLabel('Aggregation').selectOption('avg');
  await page.getByLabel('Group by').fill('origin');
  await page.getByRole('button', { name: 'Show' }).click();

  const chart = page.getByRole('figure', { name: 'Series: average of payload.value' });
  await expect(chart).toHaveAttribute('data-series', String(CITIES.length));
  await expect(chart.locator('canvas')).toHaveCount(1);
  await expect(chart).toHaveAttribute('data-points', /^[1-9]\d*$/);
  const legend = chart.getByRole('list', { name: /legend/ });
  for (const city of CITIES) await expect(legend.getByRole('button', { name: city.name })).toBeVisible();

  // The tooltip names the values under the cursor.
  const canvas = chart.locator('.u-over');
  const box = await canvas.boundingBox();
  if (!box) throw new Error('no chart area');
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
  const tooltip = chart.getByRole('tooltip');
  await expect(tooltip).toBeVisible();
  await expect(tooltip).toContainText(/seville|london|sydney|new-york/);
  await screenshot(page, 'series', { keepPointer: true });

  // A legend entry hides its series.
  await legend.getByRole('button', { name: 'sydney' }).click();
  await expect(chart).toHaveAttribute('data-series', String(CITIES.length - 1));
  await legend.getByRole('button', { name: 'sydney' }).click();

  // The same as a table, and a percentile.
  await page.getByRole('tab', { name: 'Table' }).click();
  const table = page.getByRole('table', { name: 'Table: average of payload.value' });
  for (const city of CITIES) await expect(table.getByRole('columnheader', { name: city.name })).toBeVisible();
  await expect(table.locator('tbody tr').first()).toBeVisible();
  await page.getByLabel('Aggregation').selectOption('p95');
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(page.getByRole('table', { name: 'Table: 95th percentile of payload.value' })).toBeVisible();
});

test('a dashboard with a line chart, a pie and a heat map is saved and found again', async ({ page }) => {
  await signIn(page, facts.writerKey, '/dashboards');
  await page.getByRole('link', { name: 'New dashboard' }).click();
  await page.getByLabel('Dashboard name').fill('City weather');

  const add = async (type: string, title: string, fill: Record<string, string>, picture?: string) => {
    await page.getByRole('button', { name: '+ Add widget' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a widget' });
    await dialog.getByLabel('Widget type').selectOption({ label: type });
    await dialog.getByLabel('Title').fill(title);
    for (const [label, value] of Object.entries(fill)) await dialog.getByLabel(label, { exact: true }).fill(value);
    if (picture) await screenshot(page, picture);
    await dialog.getByRole('button', { name: 'Add widget' }).click();
    await expect(dialog).toHaveCount(0);
  };
  await add('Time series', 'Temperature by city', {
    Filter: 'payload.type:temperature',
    Field: 'payload.value',
    'Group by': 'origin',
  });
  await add('Pie', 'Readings by kind', { Filter: '', 'Group by': 'kind' });
  await add('Geo heat map', 'Vehicle density', { Filter: 'location:*' }, 'dashboard-edit');

  // Drag the pie next to the line chart (the grid has room to the right of it).
  const pie = page.locator('article[data-widget="pie"]');
  const handle = pie.getByRole('button', { name: /^Move Readings by kind/ });
  const before = await pie.evaluate((el) => getComputedStyle(el).gridRowStart);
  const from = await handle.boundingBox();
  const chart = await page.locator('article[data-widget="timeseries"]').boundingBox();
  if (!from || !chart) throw new Error('no widgets');
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(chart.x + chart.width + 40, chart.y + 10, { steps: 8 });
  await page.mouse.up();
  await expect
    .poll(() => pie.evaluate((el) => getComputedStyle(el).gridRowStart))
    .not.toBe(before);

  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('Saved “City weather”.')).toBeVisible();
  await expect(page).toHaveURL(/\/dashboards\/city-weather-[a-z0-9]+$/);

  // Reload: the dashboard comes from the server, with its widgets drawn with data.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'City weather' })).toBeVisible();
  const line = page.getByRole('figure', { name: 'Temperature by city' });
  await expect(line.locator('canvas')).toHaveCount(1);
  await expect(line).toHaveAttribute('data-series', String(CITIES.length));
  const pieFigure = page.getByRole('figure', { name: 'Readings by kind' });
  await expect(pieFigure.locator('path.slice')).toHaveCount(2);
  await expect(pieFigure).toContainText('temperature');
  await expect(pieFigure).toContainText('humidity');
  const heat = page.getByRole('figure', { name: 'Vehicle density' });
  await expect(heat).toHaveAttribute('data-cells', /^[1-9]\d*$/);
  expect(await heat.locator('rect.cell').count()).toBeGreaterThan(1);
  await expect(heat.locator('path.land')).toHaveCount(1);

  // And it is listed with the others.
  await page.getByRole('link', { name: 'Dashboards', exact: true }).click();
  await expect(page.getByRole('link', { name: 'City weather' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Fleet overview' })).toBeVisible();
});

test('the built-in Fleet overview shows every widget type with data', async ({ page }) => {
  await signIn(page, adminKey, '/dashboards/fleet-overview');
  await expect(page.getByRole('heading', { name: 'Fleet overview' })).toBeVisible();
  await expect(page.locator('article.widget')).toHaveCount(7);
  await expect(page.getByRole('figure', { name: 'Events per interval, by kind' }).locator('canvas')).toHaveCount(1);
  await expect(page.getByRole('figure', { name: 'Events by kind' }).locator('path.slice').first()).toBeVisible();
  const gauge = page.getByRole('figure', { name: 'Latest temperature' });
  await expect(gauge).toHaveAttribute('data-value', /^-?\d/);
  const map = page.getByRole('figure', { name: 'Latest positions' });
  await expect(map.locator('g.point')).toHaveCount(VEHICLES.length);
  await expect(page.getByRole('figure', { name: 'Vehicle density' }).locator('rect.cell').first()).toBeVisible();
  await expect(page.getByRole('table', { name: 'Newest events' }).locator('tbody tr').first()).toBeVisible();
  await screenshot(page, 'dashboard', { fullPage: true });
});

test('Devices lists status, last seen and rate, and a device page charts its events', async ({ page }) => {
  await signIn(page, adminKey, '/devices');
  const table = page.getByRole('table', { name: 'Devices' });
  await expect(table.locator('tbody tr')).toHaveCount(CITIES.length + VEHICLES.length + 1);
  const vehicle = table.getByRole('row', { name: new RegExp(VEHICLES[0] ?? '') });
  await expect(vehicle).toContainText('Online');
  await expect(vehicle).toContainText(/\d+ (s|min) ago/);
  const rate = (facts.positionsPerVehicle / 60).toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
  await expect(vehicle).toContainText(rate);
  await expect(table.getByRole('row', { name: /probe-7/ })).toContainText('Never seen');
  await screenshot(page, 'devices');

  await table.getByRole('link', { name: 'station-london' }).click();
  await expect(page.getByRole('heading', { name: 'station-london' })).toBeVisible();
  const chart = page.getByRole('figure', { name: 'Values of station-london by kind' });
  await expect(chart.locator('canvas')).toHaveCount(1);
  await expect(chart).toHaveAttribute('data-series', '2');
  await expect(page.getByRole('table', { name: 'Newest events of station-london' }).locator('tbody tr')).toHaveCount(20);
  await screenshot(page, 'device');
});

test('a reader key sees dashboards but no write action', async ({ page }) => {
  await signIn(page, facts.readerKey, '/dashboards');
  await expect(page.getByLabel('Signed in as')).toContainText('reader');
  await expect(page.getByRole('link', { name: 'Fleet overview' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'New dashboard' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Fleet overview' }).click();
  await expect(page.getByRole('heading', { name: 'Fleet overview' })).toBeVisible();
  await expect(page.locator('article.widget')).toHaveCount(7);
  await expect(page.getByRole('button', { name: 'Edit' })).toHaveCount(0);
  await page.goto('/dashboards/new');
  await expect(page.getByRole('alert')).toContainText('cannot create dashboards');
  await expect(page.getByRole('button', { name: 'Save' })).toHaveCount(0);
});

test('a new tenant starts with the Fleet overview', async ({ page }) => {
  await signIn(page, facts.acmeKey, '/dashboards');
  await expect(page.getByLabel('Signed in as')).toContainText('acme');
  await expect(page.getByLabel('Signed in as')).toContainText('admin');
  await page.getByRole('link', { name: 'Fleet overview' }).click();
  await expect(page.locator('article.widget')).toHaveCount(7);
  // Tenants are isolated: acme has no events, so every widget says so.
  await expect(page.getByText('No data in this range.').first()).toBeVisible();
});

test('the first page load is small', async ({ page }) => {
  // What the browser transfers (gzip, as served) and what it gets (decoded), per page.
  const loads: { url: string; transferred: number; decoded: number }[] = [];
  page.on('requestfinished', async (request) => {
    const response = await request.response();
    if (!response || request.url().includes('/api/')) return;
    const sizes = await request.sizes();
    loads.push({
      url: new URL(request.url()).pathname,
      // -1 for an answer from the cache.
      transferred: Math.max(0, sizes.responseBodySize),
      decoded: (await response.body()).length,
    });
  });
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await page.evaluate(() => document.fonts.ready);
  await page.waitForLoadState('networkidle');
  const signIn = [...loads];
  await page.getByLabel('API key').fill(adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('figure', { name: 'Events over time' }).locator('canvas')).toHaveCount(1);
  await page.waitForLoadState('networkidle');
  const sum = (list: typeof loads, key: 'transferred' | 'decoded') => list.reduce((n, l) => n + l[key], 0);
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  console.log(
    `first load (sign-in page): ${signIn.length} files, ${kb(sum(signIn, 'transferred'))} transferred, ${kb(sum(signIn, 'decoded'))} decoded` +
      `\nwith Discover after sign-in: ${loads.length} files, ${kb(sum(loads, 'transferred'))} transferred, ${kb(sum(loads, 'decoded'))} decoded` +
      `\n${loads.map((l) => `  ${l.url} ${kb(l.transferred)} (${kb(l.decoded)})`).join('\n')}`,
  );
  // Budgets: the font is 47 KB of them, the rest is code and styles.
  expect(sum(signIn, 'transferred')).toBeLessThan(80 * 1024);
  expect(sum(loads, 'transferred')).toBeLessThan(130 * 1024);
  // Served compressed: the page and its scripts arrive gzipped.
  const script = signIn.find((l) => l.url.endsWith('.js'));
  expect(script && script.transferred < script.decoded).toBe(true);
});

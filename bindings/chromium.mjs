// Debian's headless Chromium for the package's browser tests (the demo page, the bundled
// consumers), driven by playwright-core and kept to one origin: any request elsewhere is
// refused and recorded, so a test can fail on it.
// Environment: CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Launches Chromium with a fresh `profile` directory and opens a tab that may only reach
 * `origin`. Returns the context (close it), the tab, the refused URLs and the page's errors
 * (uncaught exceptions and console errors), both filled as the page runs.
 */
export async function openOnlyOrigin(profile, origin, options = {}) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...options,
  });
  const offsite = [];
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + '/')) return route.continue();
    offsite.push(u);
    return route.abort();
  });
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return { context, page, offsite, errors };
}

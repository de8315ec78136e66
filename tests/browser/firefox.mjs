// Firefox ESR for the browser tests, driven by puppeteer-core over WebDriver BiDi
// (tests/browser/drivers.py starts it and talks to it).
//
//   node firefox.mjs PUPPETEER_DIR FIREFOX PROXY_PORT
//
// PUPPETEER_DIR holds node_modules/puppeteer-core (scripts/test installs it into .cache/);
// FIREFOX is Debian's firefox-esr. It launches one headless Firefox with a fresh profile, in
// which every origin but loopback goes to PROXY_PORT (the tests' dead end), prints one line
// {"ready": true, "version": ...}, then answers one JSON command per line on stdin with one
// JSON line on stdout: {"id", "ok": true, "value"} or {"id", "ok": false, "error"}.
// Each page lives in a browser context of its own (its own cookie jar), which records its
// console messages, page errors and requests; closing the page returns that record.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [puppeteerDir, executablePath, proxyPort] = process.argv.slice(2);
const resolve = createRequire(pathToFileURL(`${puppeteerDir}/`).href).resolve;
const { default: puppeteer } = await import(pathToFileURL(resolve('puppeteer-core')).href);

const proxy = { host: '127.0.0.1', port: Number(proxyPort) };
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath,
  headless: true,
  // The live server's certificate is one the test made (tests/harness.py).
  acceptInsecureCerts: true,
  handleSIGINT: false,
  handleSIGTERM: false,
  handleSIGHUP: false,
  extraPrefsFirefox: {
    // Everything but loopback (which Firefox never sends to a proxy) goes to the dead end.
    'network.proxy.type': 1,
    'network.proxy.http': proxy.host,
    'network.proxy.http_port': proxy.port,
    'network.proxy.ssl': proxy.host,
    'network.proxy.ssl_port': proxy.port,
    'network.proxy.share_proxy_settings': true,
    'network.proxy.allow_hijacking_localhost': false,
    'network.dns.disablePrefetch': true,
    'network.prefetch-next': false,
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'toolkit.telemetry.enabled': false,
    'browser.ping-centre.telemetry': false,
    // The pages in English, whatever this machine's locale.
    'intl.accept_languages': 'en-US, en',
  },
});

const pages = new Map(); // id -> {page, context, record}
let nextPage = 1;

function pageOf(id) {
  const entry = pages.get(id);
  if (!entry) throw new Error(`no page ${id}`);
  return entry;
}

// A function's source from Python, called in the page with its arguments.
function fn(source) {
  // eslint-disable-next-line no-new-func
  return new Function(`return (${source});`)();
}

const ops = {
  async newPage({ width, height }) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    const record = { console: [], pageErrors: [], requests: [] };
    page.on('console', (m) => record.console.push({ type: m.type(), text: m.text(),
                                                    url: m.location()?.url ?? '' }));
    page.on('pageerror', (e) => record.pageErrors.push(`${e.name}: ${e.message}`));
    page.on('request', (r) => record.requests.push({ url: r.url(), method: r.method() }));
    await page.setViewport({ width, height });
    const id = nextPage++;
    pages.set(id, { page, context, record });
    return id;
  },
  async close({ page }) {
    const { context, record } = pageOf(page);
    await context.close();
    pages.delete(page);
    return record;
  },
  async goto({ page, url }) {
    const response = await pageOf(page).page.goto(url, { waitUntil: 'load' });
    return response ? response.status() : null;
  },
  url: ({ page }) => pageOf(page).page.url(),
  async fill({ page, selector, value }) {
    await pageOf(page).page.locator(selector).fill(value);
  },
  async click({ page, selector }) {
    await pageOf(page).page.locator(selector).click();
  },
  evaluate: ({ page, source, args }) => pageOf(page).page.evaluate(fn(source), ...args),
  async waitFor({ page, source, args, ms }) {
    const handle = await pageOf(page).page.waitForFunction(fn(source),
                                                           { timeout: ms, polling: 'raf' }, ...args);
    const value = await handle.jsonValue();
    await handle.dispose();
    return value;
  },
  viewport: ({ page, width, height }) => pageOf(page).page.setViewport({ width, height }),
  async screenshot({ page, path }) {
    await pageOf(page).page.screenshot({ path, fullPage: true });
  },
  async cookies({ page }) {
    return (await pageOf(page).context.cookies()).map((c) => ({
      name: c.name, value: c.value, secure: c.secure, httpOnly: c.httpOnly,
      sameSite: c.sameSite ?? '' }));
  },
};

const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
say({ ready: true, version: await browser.version() });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    const value = await ops[op](args);
    say({ id, ok: true, value: value ?? null });
  } catch (error) {
    say({ id, ok: false, error: `${error.name}: ${error.message}` });
  }
}
// stdin closed: the tests are done with Firefox.
await browser.close();

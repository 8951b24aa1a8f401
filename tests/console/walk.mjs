// Walks Vigo's web console in Debian's Chromium (headless, driven by playwright-core), as
// tests/console_browser.rs sets it up: logs in through each provider's form, visits every page
// as admin, viewer and compliance at 1440 and 360 px wide (screenshots), takes the admin's
// actions, and tries a forged and a cross-origin POST. Fails (exit 1, listing every failure) on:
// a page answering other than expected, a console error or CSP violation, anything in
// localStorage, sessionStorage or IndexedDB, a cookie visible to script, the secret canary in
// any response the browser received, or a forged POST that is not refused.
//
// Usage: node walk.mjs SETUP.json   (see tests/console_browser.rs for the fields)

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const setup = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const C = setup.console;
const failures = [];
const notes = [];
const check = (ok, message) => {
  if (!ok) failures.push(message);
};

// --- the canary, in the forms it could travel in ---------------------------------------------
const canaryForms = (() => {
  const raw = Buffer.from(setup.canary);
  const b64 = raw.toString('base64');
  return [
    ['raw', setup.canary],
    ['url-encoded', encodeURIComponent(setup.canary)],
    ['hex', raw.toString('hex')],
    ['base64', b64.slice(0, b64.length - 4)],
  ];
})();

// --- another origin on the same host, serving the attacker's forms ---------------------------
const attackerPages = new Map();
const attacker = createServer(
  { cert: readFileSync(setup.attacker_cert), key: readFileSync(setup.attacker_key) },
  (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(attackerPages.get(req.url) ?? '<!doctype html><p>nothing here</p>');
  },
);
await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
const A = `https://127.0.0.1:${attacker.address().port}`;

const browser = await chromium.launch({
  executablePath: setup.chromium,
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
});

// --- what every page load is checked for -----------------------------------------------------
const pending = []; // response body checks, awaited at the end
let expectRefusal = false; // set while a 401/403 page is the expected answer

function watch(page, who) {
  page.on('console', (msg) => {
    const text = msg.text();
    const onConsole = page.url().startsWith(C);
    if (!onConsole) return; // the OpenID Provider's own pages are not ours to judge
    if (/Content Security Policy|Content-Security-Policy/i.test(text)) {
      failures.push(`${who}: CSP violation on ${page.url()}: ${text}`);
    } else if (msg.type() === 'error') {
      const refused = /status of (401|403)/.test(text);
      if (!(expectRefusal && refused)) failures.push(`${who}: console error on ${page.url()}: ${text}`);
    }
  });
  page.on('pageerror', (e) => failures.push(`${who}: page error on ${page.url()}: ${e.message}`));
  page.on('response', (response) => {
    pending.push(
      (async () => {
        const url = response.url();
        const headers = JSON.stringify(await response.allHeaders());
        let body = '';
        try {
          body = (await response.body()).toString('latin1');
        } catch {
          // redirects have no body
        }
        for (const [form, needle] of canaryForms) {
          if (body.includes(needle) || headers.includes(needle) || url.includes(needle)) {
            failures.push(`${who}: the canary (${form}) is in the response from ${url}`);
          }
        }
        if (url.startsWith(C)) {
          const h = await response.allHeaders();
          if (!(h['content-security-policy'] || '').startsWith("default-src 'none'")) {
            failures.push(`${who}: no CSP on ${url}`);
          }
        }
      })(),
    );
  });
}

async function storageIsEmpty(page, who) {
  const s = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    idb: (await indexedDB.databases()).length,
  }));
  check(s.local === 0 && s.session === 0 && s.idb === 0, `${who}: browser storage is not empty on ${page.url()}: ${JSON.stringify(s)}`);
  check(s.cookie === '', `${who}: document.cookie is not empty on ${page.url()}: ${s.cookie}`);
}

async function shoot(page, who, name) {
  mkdirSync(setup.shots, { recursive: true });
  for (const width of [1440, 360]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(setup.shots, `${who}-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

async function visit(page, who, name, path, status) {
  expectRefusal = status !== 200;
  const response = await page.goto(C + path);
  check(response.status() === status, `${who}: ${path} answered ${response.status()}, expected ${status}`);
  const h1 = await page.textContent('h1');
  check(h1 && h1.trim().length > 0, `${who}: ${path} has no heading`);
  await storageIsEmpty(page, who);
  await shoot(page, who, name);
  expectRefusal = false;
  return response;
}

async function newPage(who) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  watch(page, who);
  return { context, page };
}

async function logout(page, who) {
  await page.goto(`${C}/`);
  await Promise.all([page.waitForURL(`${C}/login`), page.click('header form button')]);
  const after = await page.goto(`${C}/`);
  check(after.url() === `${C}/login`, `${who}: after logout the dashboard still opened (${after.url()})`);
}

async function loginBasic(page, user) {
  await page.goto(`${C}/login`);
  await page.fill('#basic-username', user);
  await page.fill('#basic-password', setup.password);
  await Promise.all([page.waitForURL(`${C}/`), page.click('section[aria-labelledby="h-basic"] button')]);
}

// --- the pages and who may see them ------------------------------------------------------------
let runPath = '/runs';
const pages = () => [
  ['dashboard', '/'],
  ['envoys', '/envoys'],
  ['envoy', `/envoys/${setup.envoy}`],
  ['runs', '/runs'],
  ['run', runPath],
  ['config', '/config'],
  ['secrets', '/secrets'],
  ['enroll-tokens', '/enroll-tokens'],
  ['api-tokens', '/api-tokens'],
  ['users', '/users'],
  ['audit', '/audit'],
  ['audit-verify', '/audit/verify'],
  ['sessions', '/sessions'],
  ['security', '/security'],
];
const refused = {
  admin: [],
  viewer: ['/users'],
  compliance: ['/users', '/audit', '/audit/verify'],
};

async function walk(page, who) {
  await page.goto(`${C}/runs`);
  const firstRun = await page.getAttribute('a[href^="/runs/"]', 'href');
  check(firstRun, `${who}: the runs page lists no run`);
  if (firstRun) runPath = firstRun;
  for (const [name, path] of pages()) {
    await visit(page, who, name, path, refused[who].includes(path) ? 403 : 200);
  }
  const nav = await page.$$eval('header nav a', (links) => links.map((a) => a.getAttribute('href')));
  check(nav.includes('/audit') === !refused[who].includes('/audit'), `${who}: the audit link is ${nav.includes('/audit') ? '' : 'not '}shown`);
  check(nav.includes('/users') === (who === 'admin'), `${who}: the users link is wrongly shown or hidden`);
  await page.goto(`${C}/envoys/${setup.envoy}`);
  const revokeButtons = await page.locator('button', { hasText: 'Revoke' }).count();
  check(revokeButtons === (who === 'admin' ? 1 : 0), `${who}: ${revokeButtons} revoke buttons on the envoy page`);
  const body = await page.textContent('main');
  check(body.includes(`secret:console/canary`), `${who}: the envoy page does not name its secrets as secret:<key>`);
  check(!body.includes('__VIGO_SECRET__'), `${who}: a raw marker is shown`);
}

/// Runs one part of the walk; an exception fails that part and the walk goes on.
async function step(name, body) {
  try {
    await body();
  } catch (e) {
    failures.push(`${name}: ${e.message.split('\n')[0]}`);
  }
}

// --- the login page itself, logged out -----------------------------------------------------------
await step('public', async () => {
  const { context, page } = await newPage('public');
  await visit(page, 'public', 'login', '/login', 200);
  for (const provider of ['h-basic', 'h-iso', 'h-oidc']) {
    check((await page.locator(`#${provider}`).count()) === 1, `the login page has no ${provider} form`);
  }
  const failed = await (async () => {
    await page.fill('#basic-username', 'nobody');
    await page.fill('#basic-password', 'wrong');
    await Promise.all([page.waitForURL(`${C}/login?failed=1`), page.click('section[aria-labelledby="h-basic"] button')]);
    return page.textContent('.error');
  })();
  check(failed && failed.includes('Login failed'), `a failed login says so: ${failed}`);
  await context.close();
});

// --- viewer: a password ------------------------------------------------------------------------
await step('viewer', async () => {
  const who = 'viewer';
  const { context, page } = await newPage(who);
  await loginBasic(page, 'victor');
  await walk(page, who);
  // A POST forged by hand from the viewer's own page, with the viewer's own CSRF token: the
  // route's permission refuses it.
  await page.goto(`${C}/envoys/${setup.envoy}`);
  expectRefusal = true;
  const [forged] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate((envoy) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = `/envoys/${envoy}/revoke`;
      const csrf = document.querySelector('input[name=csrf]').cloneNode();
      f.appendChild(csrf);
      document.body.appendChild(f);
      f.submit();
    }, setup.envoy),
  ]);
  expectRefusal = false;
  check(forged && forged.status() === 403, `viewer: a forged revoke answered ${forged && forged.status()}`);
  check((await page.textContent('main')).includes('envoys.revoke'), 'viewer: the refusal names the permission');
  await logout(page, who);
  await context.close();
});

// --- compliance: a password ----------------------------------------------------------------------
await step('compliance', async () => {
  const who = 'compliance';
  const { context, page } = await newPage(who);
  await loginBasic(page, 'carol');
  await walk(page, who);
  await logout(page, who);
  await context.close();
});

// --- admin: an SSH signature (isowebauth) ------------------------------------------------------
await step('admin', async () => {
  const who = 'admin';
  const { context, page } = await newPage(who);
  await page.goto(`${C}/login`);
  await page.fill('#iso-username', 'alice');
  await Promise.all([page.waitForURL(`${C}/auth/isowebauth/challenge`), page.click('section[aria-labelledby="h-iso"] button')]);
  await storageIsEmpty(page, who);
  await shoot(page, 'public', 'challenge');
  const challenge = await page.textContent('#challenge-text');
  const signature = execFileSync('ssh-keygen', ['-Y', 'sign', '-n', setup.iso_namespace, '-f', setup.iso_key], {
    input: challenge,
  }).toString();
  await page.fill('#signature', signature);
  await Promise.all([page.waitForURL(`${C}/`), page.click('main form button')]);
  await walk(page, who);

  // An enrollment token, shown once.
  await page.goto(`${C}/enroll-tokens`);
  await page.check('#b-name');
  await page.fill('#b-value', 'web3.example.com');
  await Promise.all([page.waitForNavigation(), page.click("section.panel form button")]);
  const enrollToken = await page.inputValue('#new-token');
  check(enrollToken.length > 40, `admin: no enrollment token shown: ${enrollToken}`);
  await shoot(page, who, 'enroll-token-created');
  await page.goto(`${C}/enroll-tokens`);
  check(!(await page.content()).includes(enrollToken), 'admin: the enrollment token is shown again');

  // An API token, shown once, then revoked.
  await page.goto(`${C}/api-tokens`);
  await page.fill('#t-name', 'ci-console');
  await page.selectOption('#t-role', 'viewer');
  await Promise.all([page.waitForNavigation(), page.click("section.panel form button")]);
  const apiToken = await page.inputValue('#new-token');
  check(apiToken.startsWith('vgot_'), `admin: no API token shown: ${apiToken}`);
  await page.goto(`${C}/api-tokens`);
  check(!(await page.content()).includes(apiToken), 'admin: the API token is shown again');
  await Promise.all([page.waitForURL(/\/api-tokens\?ok=token-revoked$/), page.click('button:has-text("Revoke ci-console")')]);

  // Publish the config.
  await page.goto(`${C}/config`);
  await Promise.all([page.waitForURL(/\/config\?ok=published$/), page.click('button:has-text("Publish")')]);
  check((await page.textContent('.notice')).includes('published'), 'admin: no notice after publishing');

  // The audit log, filtered by event; the chain verified.
  await page.goto(`${C}/audit`);
  await page.selectOption('#event', 'auth.login');
  await Promise.all([page.waitForURL(/event=auth\.login/), page.click('form.filters button')]);
  const events = await page.$$eval('table.audit tbody tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent));
  check(events.length >= 3 && events.every((e) => e === 'auth.login'), `admin: the event filter shows ${events}`);
  await page.goto(`${C}/audit/verify`);
  check((await page.textContent('main')).includes('The chain holds'), 'admin: the audit chain does not verify');

  // /security names the fixture advisories that match this binary, and not the others.
  await page.goto(`${C}/security`);
  const security = await page.textContent('main');
  for (const id of ['RUSTSEC-2099-0001', 'RUSTSEC-2099-0003']) check(security.includes(id), `admin: /security lacks ${id}`);
  for (const id of ['RUSTSEC-2099-0002', 'RUSTSEC-2099-0004', 'RUSTSEC-2099-0005']) {
    check(!security.includes(id), `admin: /security lists ${id}, which does not apply`);
  }
  check(security.includes('unsigned development build'), 'admin: the binary signature status is missing');

  // Cross-origin form posts, from another origin on the same host (the Strict cookie goes
  // along): without the CSRF token, and even with the session's real one, the Origin refuses.
  await page.goto(`${C}/envoys/${setup.revoke_envoy_id}`);
  const csrf = await page.getAttribute('header input[name=csrf]', 'value');
  for (const [name, token] of [['forged', 'not-the-token'], ['stolen', csrf]]) {
    attackerPages.set(
      `/${name}`,
      `<!doctype html><form method="post" action="${C}/envoys/${setup.revoke_envoy_id}/revoke">` +
        `<input type="hidden" name="csrf" value="${token}"><button id="go">win a prize</button></form>`,
    );
    await page.goto(`${A}/${name}`);
    expectRefusal = true;
    const [answer] = await Promise.all([page.waitForNavigation(), page.click('#go')]);
    expectRefusal = false;
    check(answer.status() === 403, `admin: a cross-origin POST (${name} token) answered ${answer.status()}`);
  }
  await page.goto(`${C}/envoys/${setup.revoke_envoy_id}`);
  check((await page.textContent('main')).includes('Revoke'), 'admin: the envoy was revoked by a cross-origin POST');

  // The admin's own revoke, through the page's own form.
  await Promise.all([page.waitForURL(/\?ok=revoked$/), page.click('button:has-text("Revoke")')]);
  check((await page.textContent('.notice')).includes('revoked'), 'admin: no notice after revoking');
  await shoot(page, who, 'envoy-revoked');
  await logout(page, who);
  await context.close();
});

// --- admin again: single sign-on through the OpenID Provider -----------------------------------
await step('oidc', async () => {
  const who = 'oidc';
  const { context, page } = await newPage(who);
  await page.goto(`${C}/login`);
  await Promise.all([page.waitForURL(`${C}/`, { timeout: 30000 }), page.click('a:has-text("Log in with")')]);
  check((await page.textContent('h1')).includes('Dashboard'), 'oidc: the login did not land on the dashboard');
  check((await page.textContent('header .who')).includes('alice'), 'oidc: not logged in as alice');
  await storageIsEmpty(page, who);
  await shoot(page, who, 'dashboard');
  await logout(page, who);
  await context.close();
});

await Promise.allSettled(pending);
await browser.close();
attacker.close();

if (failures.length > 0) {
  console.log(`${failures.length} failures:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log(`console walk passed; screenshots in ${setup.shots}${notes.length ? '\n' + notes.join('\n') : ''}`);

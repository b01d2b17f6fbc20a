// The web UI in a real browser (Debian's Chromium through playwright-core)
// against a running platform: EXAMISO_URL (default http://localhost:3000).
// Screenshots of each step go to EXAMISO_ARTIFACTS (default
// ../test-artifacts/browser). Exits non-zero on the first failed step.
// With EXAMISO_CONTROL (a directory), the test that runs this script stops and
// starts a service on request (the gateway, to drop the connection under a
// live page; the environment service, to see a start that cannot progress).
// The platform's tokens live EXAMISO_TOKEN_TTL seconds (shorter than an exam).
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const base = process.env.EXAMISO_URL ?? 'http://localhost:3000';
const artifacts =
  process.env.EXAMISO_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts', 'browser');
mkdirSync(artifacts, { recursive: true });
const WAIT = 30_000;
const EXAM = 'Kubernetes Administrator Practice Lab';

let shot = 0;
async function step(page, name, fn) {
  process.stdout.write(`- ${name} ... `);
  try {
    await fn();
  } catch (e) {
    await page.screenshot({ path: join(artifacts, `${String(++shot).padStart(2, '0')}-FAILED-${name.replace(/\W+/g, '-')}.png`) }).catch(() => {});
    console.log('FAILED');
    throw e;
  }
  await page.screenshot({ path: join(artifacts, `${String(++shot).padStart(2, '0')}-${name.replace(/\W+/g, '-')}.png`) });
  console.log('ok');
}

// The terminal's screen, a line per row (xterm.js's DOM renderer: a div per row).
function screenText() {
  const rows = document.querySelector('.xterm-rows')?.children ?? [];
  return [...rows].map((row) => row.textContent.replace(/\u00a0/g, ' ')).join('\n');
}
const terminalText = (page) => page.evaluate(screenText);
async function waitForOutput(page, pattern) {
  await page.waitForFunction(
    (source) => {
      const rows = document.querySelector('.xterm-rows')?.children ?? [];
      const text = [...rows].map((row) => row.textContent.replace(/\u00a0/g, ' ')).join('\n');
      return new RegExp(source, 'm').test(text);
    },
    pattern.source,
    { timeout: WAIT },
  );
}
async function typeLine(page, line) {
  await page.locator('.xterm-helper-textarea').focus();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}
async function signIn(page, name) {
  await page.goto(base);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
// Asks the test around this script to do something (stop-<service>,
// start-<service>) and waits until it is done (the request file is gone).
async function control(request) {
  const dir = process.env.EXAMISO_CONTROL;
  if (!dir) throw new Error(`EXAMISO_CONTROL is not set: cannot ${request}`);
  writeFileSync(join(dir, request), '');
  for (const started = Date.now(); existsSync(join(dir, request)); ) {
    if (Date.now() - started > WAIT) throw new Error(`${request} was not done`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' });
// A candidate of their own: a separate browser context (storage, cookies) at 1280x720.
const candidatePage = async () => (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
try {
  const page = await candidatePage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  // Script errors and CSP violations count; the network errors of the offline step do not.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection|Failed to load resource|net::ERR_/.test(m.text())) problems.push(m.text());
  });
  const name = `alice-${Date.now()}`;
  let sessionId = '';
  let expiredToken = '';

  await step(page, 'sign in', async () => {
    await signIn(page, name);
    await page.getByRole('heading', { name: 'Your exams' }).waitFor({ timeout: WAIT });
    check((await page.locator('#who').textContent()).includes(name), 'the page does not say who is signed in');
  });

  await step(page, 'start the default exam and see it get ready', async () => {
    await page.getByRole('button', { name: `Start exam: ${EXAM}` }).click();
    await page.getByRole('heading', { name: 'Getting your exam ready' }).or(page.locator('.xterm-rows')).first().waitFor({ timeout: WAIT });
    await page.locator('.xterm-rows').waitFor({ timeout: WAIT });
    sessionId = await page.evaluate(async () => {
      const r = await fetch('/v1/sessions', { headers: { Authorization: `Bearer ${localStorage.getItem('examiso.token')}` } });
      return (await r.json()).data.sessions[0].session_id;
    });
    check(/^[0-9a-f-]{36}$/.test(sessionId), `no session id: ${sessionId}`);
  });

  await step(page, 'type a command and see its answer', async () => {
    await typeLine(page, 'echo $((6*7))');
    await waitForOutput(page, /^42\s*$/);
  });

  await step(page, 'the countdown follows the server', async () => {
    await page.locator('#clock').waitFor({ timeout: WAIT });
    const server = Number(await page.locator('#clock').getAttribute('data-server-remaining'));
    check(server > 7000 && server <= 7200, `server remaining ${server}`);
    check(/Time left 1:5\d:\d\d|Time left 2:00:00/.test(await page.locator('#clock').textContent()), 'clock text');
  });

  await step(page, 'create a file and see it with ls', async () => {
    await typeLine(page, 'touch proof-$((40+2)).txt; export MARK=$((4000+242))');
    await typeLine(page, 'ls');
    await waitForOutput(page, /proof-42\.txt/);
  });

  await step(page, 'a proctor\'s message shows on the page', async () => {
    const sent = await page.evaluate(async (id) => {
      const t = await fetch('/v1/dev/token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"role":"proctor"}' });
      const proctor = (await t.json()).data.token;
      const r = await fetch(`/v1/admin/sessions/${id}/message`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${proctor}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: 'Please keep your camera on. <b>not bold</b>' }),
      });
      return r.json();
    }, sessionId);
    check(sent.data?.delivered === true, `message not delivered: ${JSON.stringify(sent)}`);
    const box = page.locator('#proctor-message');
    await box.waitFor({ timeout: WAIT });
    const text = await box.textContent();
    check(text === 'Message from your proctor: Please keep your camera on. <b>not bold</b>', `message shown as ${text}`);
    check((await box.locator('b').count()) === 0, 'the message was rendered as HTML');
  });

  await step(page, 'a proctor watches the room and the terminal, and gives more time', async () => {
    const staff = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    staff.on('pageerror', (e) => problems.push(`proctor page: ${e.message}`));
    await staff.goto(`${base}/proctor`);
    await staff.getByLabel('Your name').fill(`proctor-${Date.now()}`);
    await staff.getByRole('button', { name: 'Sign in' }).click();
    const row = staff.locator(`tr[data-session-id="${sessionId}"]`);
    await row.waitFor({ timeout: WAIT });
    await staff.waitForFunction((id) => {
      const cells = [...(document.querySelector(`tr[data-session-id="${id}"]`)?.children ?? [])].map((c) => c.textContent);
      return cells[1] === 'running' && cells[3] === 'yes';
    }, sessionId, { timeout: WAIT });
    await row.getByRole('button').click();
    await page.locator('#watching').waitFor({ state: 'visible', timeout: WAIT });
    await typeLine(page, 'echo watched-$((6*7))');
    await staff.waitForFunction(() => /watched-42/.test(document.querySelector('.observer .xterm-rows')?.textContent ?? ''),
      null, { timeout: WAIT });
    const before = Number(await page.locator('#clock').getAttribute('data-server-remaining'));
    await staff.getByLabel('Why more time').fill('the room lost power');
    await staff.getByRole('button', { name: 'Give more time' }).click();
    await staff.getByText('10 more minutes given.').waitFor({ timeout: WAIT });
    await page.waitForFunction((b) => Number(document.querySelector('#clock')?.getAttribute('data-server-remaining')) > b + 500,
      before, { timeout: 5000 });
    await staff.getByText(/extend 600 s: the room lost power/).waitFor({ timeout: WAIT });
    await staff.screenshot({ path: join(artifacts, `${String(++shot).padStart(2, '0')}-the-proctor-s-page.png`) });
    await staff.context().close();
    await page.locator('#watching').waitFor({ state: 'hidden', timeout: WAIT });
  });

  await step(page, 'resize the window and the terminal follows', async () => {
    await typeLine(page, 'echo "size:$(stty size | tr " " x)"');
    await waitForOutput(page, /size:\d+x\d+/);
    const before = [...(await terminalText(page)).matchAll(/size:(\d+)x(\d+)/g)].pop();
    await page.setViewportSize({ width: 900, height: 560 });
    await page.waitForTimeout(300);
    await typeLine(page, 'echo "now:$(stty size | tr " " x)"');
    await waitForOutput(page, /now:\d+x\d+/);
    const after = [...(await terminalText(page)).matchAll(/now:(\d+)x(\d+)/g)].pop();
    check(Number(after[1]) < Number(before[1]) && Number(after[2]) < Number(before[2]),
      `terminal size before ${before[0]}, after ${after[0]}`);
  });

  await step(page, 'reload the page and find the same shell and file', async () => {
    await page.reload();
    await page.locator('.xterm-rows').waitFor({ timeout: WAIT });
    await typeLine(page, 'echo "mark-$MARK"; ls -1 | sed "s/^/found:/"');
    await waitForOutput(page, /mark-4242/);
    await waitForOutput(page, /found:proof-42\.txt/);
  });

  await step(page, 'the sign-in outlives its token: refreshed in the background, never back to sign-in', async () => {
    const ttl = Number(process.env.EXAMISO_TOKEN_TTL ?? 0);
    check(ttl > 0 && ttl < 7200, `the platform's token lifetime (${ttl} s) must be shorter than the exam`);
    const first = await page.evaluate(() => localStorage.getItem('examiso.token'));
    const exp = JSON.parse(Buffer.from(first.split('.')[1], 'base64url').toString()).exp;
    // Past the first token's expiry (by the server's clock, as the token says).
    await page.waitForTimeout(Math.max(0, exp * 1000 - Date.now()) + 2000);
    const now = await page.evaluate(async (old) => {
      const r = await fetch('/v1/sessions', { headers: { Authorization: `Bearer ${old}` } });
      return { token: localStorage.getItem('examiso.token'), oldStatus: r.status };
    }, first);
    check(now.oldStatus === 401, `the first token still works (${now.oldStatus}): the test did not wait past it`);
    expiredToken = first;
    check(now.token && now.token !== first, 'the token was not refreshed');
    await page.reload();
    await page.locator('.xterm-rows').waitFor({ timeout: WAIT });
    await typeLine(page, 'echo "still-$MARK"');
    await waitForOutput(page, /^still-4242\s*$/);
  });

  await step(page, 'a second tab takes the terminal; the first says so and can take it back', async () => {
    const second = await page.context().newPage();
    await second.goto(base);
    await second.locator('.xterm-rows').waitFor({ timeout: WAIT });
    await page.getByRole('heading', { name: 'Your exam is open in another window' }).waitFor({ timeout: WAIT });
    check(!(await page.getByRole('heading', { name: 'Submitted' }).count()), 'the first tab shows an end screen');
    await typeLine(second, 'echo "tab2-$MARK"');
    await waitForOutput(second, /^tab2-4242\s*$/);
    await page.getByRole('button', { name: 'Continue here' }).click();
    await page.locator('.xterm-rows').waitFor({ timeout: WAIT });
    await second.getByRole('heading', { name: 'Your exam is open in another window' }).waitFor({ timeout: WAIT });
    await typeLine(page, 'echo "tab1-$MARK"');
    await waitForOutput(page, /^tab1-4242\s*$/);
    await second.close();
  });

  await step(page, 'the connection drops, the page says so and comes back to the same shell', async () => {
    await control('stop-gateway');
    await page.getByText('Connection lost. Reconnecting to your terminal…').waitFor({ timeout: WAIT });
    // Typed while disconnected: kept, and sent once the terminal is back.
    await typeLine(page, 'echo "back-$MARK"');
    await control('start-gateway');
    await page.locator('#notice').waitFor({ state: 'hidden', timeout: WAIT });
    await waitForOutput(page, /^back-4242\s*$/);
  });

  // Another candidate in another browser context sees nothing of the first.
  const other = await candidatePage();
  await step(other, 'another candidate cannot see the first one’s session', async () => {
    await signIn(other, `bob-${Date.now()}`);
    await other.getByRole('heading', { name: 'Your exams' }).waitFor({ timeout: WAIT });
    const probe = await other.evaluate(async (id) => {
      const headers = { Authorization: `Bearer ${localStorage.getItem('examiso.token')}` };
      const list = await (await fetch('/v1/sessions', { headers })).json();
      const status = await fetch(`/v1/sessions/${id}/status`, { headers });
      const ticket = await fetch(`/v1/sessions/${id}/terminal-ticket`, { method: 'POST', headers });
      return { count: list.data.sessions.length, status: status.status, body: await status.text(), ticket: ticket.status };
    }, sessionId);
    check(probe.count === 0, `bob lists ${probe.count} sessions`);
    check(probe.status === 403 && probe.ticket === 403, `bob got ${probe.status} / ${probe.ticket}`);
    check(!probe.body.includes(sessionId), 'the denial names the session');
  });

  await step(page, 'submit the exam and see the end screen', async () => {
    await page.getByRole('button', { name: 'Submit exam' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Submit exam' }).click();
    await page.getByRole('heading', { name: 'Submitted', exact: true }).waitFor({ timeout: WAIT });
  });

  await step(page, 'the terminal is no longer reachable', async () => {
    const result = await page.evaluate(async (id) => {
      const headers = { Authorization: `Bearer ${localStorage.getItem('examiso.token')}` };
      const r = await fetch(`/v1/sessions/${id}/terminal-ticket`, { method: 'POST', headers });
      if (!r.ok) return { ticket: r.status };
      const { ticket } = (await r.json()).data;
      const ws = new WebSocket(`ws://${location.host}/v1/sessions/${id}/terminal?ticket=${encodeURIComponent(ticket)}`);
      const code = await new Promise((resolve) => {
        ws.onmessage = (m) => { if (JSON.parse(m.data).type === 'output') resolve('output'); };
        ws.onclose = (e) => resolve(e.code);
      });
      return { ticket: r.status, code };
    }, sessionId);
    check(result.code === 4006 || (result.ticket >= 400 && result.ticket < 500), `terminal after submit: ${JSON.stringify(result)}`);
  });

  await step(page, 'keyboard only: sign out and back in, nothing active', async () => {
    await page.getByRole('button', { name: 'Back to my exams' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Your exams' }).waitFor({ timeout: WAIT });
  });

  // Production sign-in: the identity provider sends the candidate to /#token=.
  const provider = await candidatePage();
  await step(provider, 'a token from the identity provider signs in, and leaves the address bar', async () => {
    const r = await fetch(`${base}/v1/dev/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: `ivan-${Date.now()}` }),
    });
    const { token } = (await r.json()).data;
    await provider.goto(`${base}/#token=${token}`);
    await provider.getByRole('heading', { name: 'Your exams' }).waitFor({ timeout: WAIT });
    check(!provider.url().includes('token'), `the token stayed in the address bar: ${provider.url()}`);
    check((await provider.evaluate(() => localStorage.getItem('examiso.token'))) === token, 'the token was not kept');
  });
  await step(provider, 'a kept token that has expired sends the candidate to sign in, saying why', async () => {
    check(expiredToken, 'no expired token from the refresh step');
    await provider.evaluate((t) => localStorage.setItem('examiso.token', t), expiredToken);
    await provider.reload();
    await provider.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: WAIT });
    await provider.getByText('Your sign-in has expired. Please sign in again.').waitFor({ timeout: WAIT });
  });

  // The clock runs out: the end screen says so, whatever the candidate does.
  const late = await candidatePage();
  await step(late, 'time runs out and the end screen says so', async () => {
    await signIn(late, `carol-${Date.now()}`);
    await late.getByRole('button', { name: 'Start exam: Two-second exam' }).click();
    await late.getByRole('heading', { name: 'Your exam time has expired' }).waitFor({ timeout: WAIT });
  });

  // The warnings come when the server's remaining time reaches them, once each,
  // and not for a mark already passed when the exam was opened.
  const alerts = async (p) => p.evaluate(() => window.__alerts);
  const recordAlerts = (p) => p.addInitScript(() => {
    window.__alerts = [];
    new MutationObserver(() => {
      const box = document.getElementById('alert');
      if (box && !box.hidden) window.__alerts.push(box.textContent);
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const fiveMinutes = await candidatePage();
  await recordAlerts(fiveMinutes);
  await step(fiveMinutes, 'a warning when 5 minutes are left', async () => {
    await signIn(fiveMinutes, `erin-${Date.now()}`);
    await fiveMinutes.getByRole('button', { name: 'Start exam: Five minutes and a bit' }).click();
    await fiveMinutes.getByRole('alert').filter({ hasText: '5 minutes left' }).waitFor({ timeout: WAIT });
    check(/Time left 0[45]:\d\d/.test(await fiveMinutes.locator('#clock').textContent()), 'clock text at the warning');
    const seen = await alerts(fiveMinutes);
    check(!seen.some((a) => a.includes('1 minute')), `alerts: ${JSON.stringify(seen)}`);
  });
  const oneMinute = await candidatePage();
  await recordAlerts(oneMinute);
  await step(oneMinute, 'a warning when 1 minute is left, none for 5 minutes already past', async () => {
    await signIn(oneMinute, `frank-${Date.now()}`);
    await oneMinute.getByRole('button', { name: 'Start exam: One minute and a bit' }).click();
    await oneMinute.getByRole('alert').filter({ hasText: '1 minute left' }).waitFor({ timeout: WAIT });
    const seen = await alerts(oneMinute);
    check(!seen.some((a) => a.includes('5 minutes')), `alerts: ${JSON.stringify(seen)}`);
  });

  // A start that cannot progress (the environment service is down): the page
  // says it takes longer than usual within 10 s, then why it failed.
  const stuck = await candidatePage();
  await step(stuck, 'a start that cannot progress says so, then why it failed', async () => {
    await signIn(stuck, `gina-${Date.now()}`);
    await stuck.getByRole('heading', { name: 'Your exams' }).waitFor({ timeout: WAIT });
    await control('stop-environment');
    try {
      const clicked = Date.now();
      await stuck.getByRole('button', { name: 'Start exam: Fifteen-second start' }).click();
      await stuck.getByText('This is taking longer than usual').waitFor({ timeout: 10_000 });
      check(Date.now() - clicked <= 10_500, `"taking longer than usual" after ${Date.now() - clicked} ms`);
      await stuck.getByRole('heading', { name: 'Your exam environment could not be prepared' }).waitFor({ timeout: WAIT });
      const reason = await stuck.locator('.error').first().textContent();
      check(/platform is having trouble/.test(reason), `reason shown: ${reason}`);
    } finally {
      await control('start-environment');
    }
  });

  // An environment that cannot be prepared: the classified reason and what to do, no spinner.
  const broken = await candidatePage();
  await step(broken, 'a failed start says why and what to do', async () => {
    await signIn(broken, `dave-${Date.now()}`);
    await broken.getByRole('button', { name: 'Start exam: Broken setup' }).click();
    await broken.getByRole('heading', { name: 'Your exam environment could not be prepared' }).waitFor({ timeout: WAIT });
    check((await broken.locator('.error').first().textContent()).trim().length > 0, 'no reason shown');
    await broken.getByRole('button', { name: 'Start again' }).waitFor();
  });

  check(problems.length === 0, `the page reported errors:\n${problems.join('\n')}`);
  console.log(`all steps passed; screenshots in ${artifacts}`);
} finally {
  await browser.close();
}

// The chat page of dsv3 serve in a real browser: Debian's chromium, headless, driven by
// puppeteer-core, against `dsv3 serve` on loopback with the shipped default model. Sends a
// message and watches the answer stream in, stops a long answer and checks on /metrics that
// the server let the sequence go, reloads and finds the conversation, renders a hostile
// answer as text, edits and regenerates, asks for the API key, and shows a clear message when
// a conversation outgrows the context.
// Run: node --test tests/browser/   (scripts/test.sh does; CHROMIUM=path overrides the browser;
// DSV3_SCREENSHOTS=dir saves the README's screenshots there.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { startServe } from '../server/serve_helper.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dsv3 = process.env.DSV3_BINARY || path.join(root, 'build/dsv3');
const shots = process.env.DSV3_SCREENSHOTS;
const KEY = 'page-key-42';
let open, keyed, browser, profile;

before(async () => {
  // The default model (no --model): what the two-command setup serves.
  open = await startServe(dsv3, ['--ctx-size', '4096', '--max-seqs', '2']);
  keyed = await startServe(dsv3, ['--ctx-size', '96', '--max-seqs', '2', '--api-key', KEY]);
  profile = mkdtempSync(path.join(tmpdir(), 'dsv3-chromium-'));
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, userDataDir: profile,
    // No network beyond loopback here: keep Chromium from trying (and from its sandbox as root).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const s of [open, keyed]) if (s) s.child.kill('SIGTERM');
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function newPage(base) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  // Anything the Content-Security-Policy blocks is an error too.
  await page.exposeFunction('__cspViolation', (d) => errors.push('CSP blocked: ' + d));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(e.violatedDirective + ' ' + e.blockedURI));
  });
  await page.setViewport({ width: 1200, height: 760 });
  await page.goto(base + '/');
  return page;
}

async function ready(page) {
  await page.waitForFunction(() => document.getElementById('model-info').textContent.includes('context'), { timeout: 30000 });
}

async function setField(page, id, value) {
  await page.$eval(id, (el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }, String(value));
}

async function setCheck(page, id, on) {
  await page.$eval(id, (el, v) => { el.checked = v; el.dispatchEvent(new Event('change')); }, on);
}

async function sendMessage(page, text) {
  await page.type('#input', text);
  await page.keyboard.press('Enter');
}

const lastAnswer = (page) => page.$eval('#messages .msg.assistant:last-child', (el) => ({
  text: el.querySelector('.content').textContent, stats: el.querySelector('.stats')?.textContent ?? null,
  note: el.querySelector(':scope > .note')?.textContent ?? null, error: el.querySelector('.error')?.textContent ?? null,
}));

async function metric(base, name) {
  const text = await (await fetch(base + '/metrics')).text();
  const m = text.match(new RegExp('^' + name + ' (\\S+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

test('a message gets a streamed answer with its figures', async () => {
  const page = await newPage(open.base);
  await ready(page);
  assert.equal(await page.$eval('#model-name', (e) => e.textContent), 'default-model');
  await setField(page, '#max-tokens', 200);
  await setField(page, '#seed', 3);
  // The chat-tuned default model answers in a line; past its EOS the answer runs to
  // max_tokens, long enough to watch it stream.
  await setCheck(page, '#ignore-eos', true);
  // Record what the answer shows each time the page changes it.
  await page.evaluate(() => {
    window.__lengths = [];
    new MutationObserver(() => {
      const c = document.querySelector('#messages .msg.assistant:last-child .content');
      if (c) window.__lengths.push(c.textContent.length);
    }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
  });
  await sendMessage(page, 'And God said');
  await page.waitForSelector('#messages .msg.assistant:last-child .stats', { timeout: 60000 });
  const a = await lastAnswer(page);
  assert.ok(a.text.length > 20, a.text);
  assert.match(a.stats, /\d+ prompt tokens · \d+ generated · [\d.]+ tokens\/s · first token [\d.]+ s · \d+ cached/);
  // The page sends the conversation as the API takes it: the answer being written is not in
  // the request (an empty assistant turn after the question changes what the model sees).
  const direct = await (await fetch(open.base + '/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'And God said' }], max_tokens: 1 }),
  })).json();
  assert.equal(Number(a.stats.match(/(\d+) prompt tokens/)[1]), direct.usage.prompt_tokens);
  const lengths = await page.evaluate(() => window.__lengths);
  const partial = new Set(lengths.filter((n) => n > 0 && n < a.text.length));
  assert.ok(partial.size >= 2, `the answer should appear piece by piece, saw lengths ${[...new Set(lengths)]}`);
  assert.equal(await page.$eval('#conversations li.current span', (e) => e.textContent), 'And God said');
  await setCheck(page, '#ignore-eos', false);
  if (shots) {
    // The README's picture: questions of the kinds post-training taught, greedy.
    await page.click('#new-chat');
    await setField(page, '#temperature', 0);
    const questions = ['Who begat Nahshon?', 'How long did Adam live?', 'How many chapters are in Ruth?'];
    for (let i = 0; i < questions.length; ++i) {
      await sendMessage(page, questions[i]);
      await page.waitForFunction((n) => document.querySelectorAll('#messages .msg.assistant .stats').length === n,
                                 { timeout: 60000 }, i + 1);
    }
    await page.click('#toggle-settings');
    await page.screenshot({ path: path.join(shots, 'webui.png') });
    await page.click('#toggle-settings');
    await setField(page, '#temperature', 0.7);
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('stop ends a long answer and the server frees its sequence; reload keeps the conversation', async () => {
  const page = await newPage(open.base);
  await ready(page);
  await page.click('#new-chat');
  await setField(page, '#max-tokens', 3500);
  await page.$eval('#ignore-eos', (el) => { el.checked = true; el.dispatchEvent(new Event('change')); });
  await sendMessage(page, 'Tell me everything about the kings of Israel');
  await page.waitForFunction(() => {
    const c = document.querySelector('#messages .msg.assistant:last-child .content');
    return c && c.textContent.length > 10;
  }, { timeout: 60000 });
  assert.equal(await metric(open.base, 'dsv3_active_sequences'), 1);
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelector('#messages .msg.assistant:last-child > .note')?.textContent === 'stopped');
  const deadline = Date.now() + 10000;
  while (await metric(open.base, 'dsv3_active_sequences') !== 0) {
    assert.ok(Date.now() < deadline, 'the server still decodes the stopped answer');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await metric(open.base, 'dsv3_queue_length'), 0);
  const stopped = await lastAnswer(page);
  assert.ok(stopped.text.length > 10 && stopped.stats === null);
  // The send button is back and the page still works.
  assert.equal(await page.$eval('#send', (b) => b.hidden), false);

  await page.reload();
  await ready(page);
  const titles = await page.$$eval('#conversations li span', (s) => s.map((e) => e.textContent));
  assert.ok(titles.includes('Tell me everything about the kings of Israel'), titles.join(' | '));
  assert.ok(titles.includes('And God said'));
  const again = await lastAnswer(page);
  assert.equal(again.text, stopped.text);
  assert.equal(again.note, 'stopped');
  // Conversations export as JSON.
  const exported = await page.evaluate(() => JSON.parse(localStorage.getItem('dsv3.conversations')));
  assert.ok(exported.some((c) => c.messages.some((m) => m.content === 'Tell me everything about the kings of Israel')));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('an answer with markup and script is shown as text; markdown renders as elements', async () => {
  const page = await newPage(open.base);
  await ready(page);
  await page.click('#new-chat');
  const hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> **bold** and `code`\n\n' +
    '```html\n<b onmouseover="window.__pwned = 3">hi</b>\n```\n- [x](javascript:window.__pwned=4)';
  const chunks = [hostile.slice(0, 20), hostile.slice(20, 70), hostile.slice(70)].map((piece) =>
    `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
  const usage = { choices: [], usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14, prompt_tokens_details: { cached_tokens: 0 } } };
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (!req.url().endsWith('/v1/chat/completions')) return req.continue();
    return req.respond({ status: 200, contentType: 'text/event-stream',
      body: chunks.join('') + `data: ${JSON.stringify(usage)}\n\ndata: [DONE]\n\n` });
  });
  await sendMessage(page, 'Show me some HTML');
  await page.waitForSelector('#messages .msg.assistant:last-child .stats');
  const r = await page.$eval('#messages .msg.assistant:last-child .bubble', (b) => ({
    text: b.textContent, scripts: b.querySelectorAll('script, img, a, [onmouseover], [onerror]').length,
    strong: b.querySelector('strong')?.textContent, code: [...b.querySelectorAll('code')].map((c) => c.textContent),
  }));
  assert.ok(r.text.includes('<script>window.__pwned = 1</script>'), r.text);
  assert.ok(r.text.includes('<img src=x onerror="window.__pwned = 2">'));
  assert.equal(r.scripts, 0);
  assert.equal(r.strong, 'bold');
  assert.ok(r.code.includes('code') && r.code.includes('<b onmouseover="window.__pwned = 3">hi</b>'), r.code.join(' | '));
  await page.hover('#messages .msg.assistant:last-child pre');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('edit-and-resend and regenerate replace the answer', async () => {
  const page = await newPage(open.base);
  await ready(page);
  await page.click('#new-chat');
  await setField(page, '#max-tokens', 12);
  await setField(page, '#temperature', 0);
  await sendMessage(page, 'In the beginning');
  await page.waitForSelector('#messages .msg.assistant:last-child .stats');
  const first = (await lastAnswer(page)).text;
  await page.click('#messages .msg.assistant:last-child .regenerate');
  await page.waitForSelector('#messages .msg.assistant:last-child .stats');
  assert.equal((await lastAnswer(page)).text, first);  // temperature 0: the same answer again
  assert.equal(await page.$$eval('#messages .msg', (m) => m.length), 2);
  await page.click('#messages .msg.user .edit');
  await page.$eval('#messages .edit-area', (t) => { t.value = 'The LORD is my shepherd'; });
  await page.click('#messages .resend');
  await page.waitForSelector('#messages .msg.assistant:last-child .stats');
  const msgs = await page.$$eval('#messages .msg', (m) => m.map((e) => e.className));
  assert.deepEqual(msgs, ['msg user', 'msg assistant']);
  assert.equal(await page.$eval('#messages .msg.user .bubble', (b) => b.textContent), 'The LORD is my shepherd');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the page asks for the API key, and says when a conversation outgrows the context', async () => {
  const page = await newPage(keyed.base);
  await page.waitForSelector('#key-dialog:not([hidden])');
  if (shots) await page.screenshot({ path: path.join(shots, 'webui-key.png') });
  await page.type('#key-input', 'wrong');
  await page.click('#key-save');
  await page.waitForFunction(() => document.getElementById('key-error').textContent.includes('refused'));
  await page.type('#key-input', KEY);
  await page.click('#key-save');
  await ready(page);
  assert.match(await page.$eval('#model-info', (e) => e.textContent), /context 96 tokens/);
  await setField(page, '#max-tokens', 8);
  await sendMessage(page, 'Hello');
  await page.waitForSelector('#messages .msg.assistant:last-child .stats');
  // The key is remembered: a reload does not ask again.
  await page.reload();
  await ready(page);
  assert.equal(await page.$eval('#key-dialog', (d) => d.hidden), true);
  await sendMessage(page, 'word '.repeat(120));
  await page.waitForSelector('#messages .msg.assistant:last-child .error');
  assert.match((await lastAnswer(page)).error, /no longer fits the model's context \(96 tokens/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('--no-webui serves no page; / needs no key but the API does', async () => {
  const res = await fetch(keyed.base + '/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  const nonce = csp.match(/script-src 'nonce-([A-Za-z0-9]+)'/)[1];
  const html = await res.text();
  assert.ok(html.includes(`<script nonce="${nonce}">`) && !html.includes('__CSP_NONCE__'));
  assert.notEqual((await fetch(keyed.base + '/')).headers.get('content-security-policy'), csp);  // fresh per load
  assert.equal((await fetch(keyed.base + '/v1/models')).status, 401);
  const off = await startServe(dsv3, ['--ctx-size', '64', '--max-seqs', '1', '--no-webui']);
  try {
    const r = await fetch(off.base + '/');
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.type, 'not_found_error');
  } finally {
    off.child.kill('SIGTERM');
  }
});

// Terminal load over WebSocket, the same for examiso and the Node.js peer.
//   node load.js echo <targets.json> <keystrokes>   keystroke echo latency, one terminal
//   node load.js throughput <targets.json> <bytes> [lines|long]
//                                                  output throughput, one terminal: 64-byte
//                                                  lines (the default) or one long line
//   node load.js pauses <targets.json> <keystrokes> keystroke echo latency with a pause of about a second
//                                                  before each key, as people type
//   node load.js hold <targets.json> <keystrokes>   every target open at once; TYPING of them typing
// targets.json: [{"url": "ws://...", "headers": {...}}, ...]. Prints one JSON line.
const fs = require('fs');
const WebSocket = require('ws');

const [mode, file, amount] = process.argv.slice(2);
const targets = JSON.parse(fs.readFileSync(file, 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Terminal {
  constructor(target) {
    this.ws = new WebSocket(target.url, { headers: target.headers || {}, perMessageDeflate: false,
                                          maxPayload: 64 << 20 });
    this.waiters = [];
    this.bytes = 0;
    this.tail = '';
    this.ws.on('message', (raw) => {
      const m = JSON.parse(raw);
      if (m.type !== 'output') return;
      this.bytes += m.data.length;
      this.messages = (this.messages || 0) + 1;
      this.last = Date.now();
      const seen = this.tail + m.data;  // a marker may be split between messages
      this.tail = seen.slice(-32);
      const ready = this.waiters.filter((w) => w.test(w.tail ? seen : m.data));
      this.waiters = this.waiters.filter((w) => !ready.includes(w));
      ready.forEach((w) => w.resolve());
    });
    this.open = new Promise((resolve, reject) => {
      this.ws.on('open', resolve);
      this.ws.on('error', reject);
      this.ws.on('close', (code) => reject(new Error('closed ' + code)));
    });
  }
  send(data) { this.ws.send(JSON.stringify({ type: 'input', data })); }
  // Resolves on the first message that passes `test`; with `tail`, the end of
  // the previous messages is tested too.
  output(test, tail = false) { return new Promise((resolve) => this.waiters.push({ test, tail, resolve })); }
  // Waits until the shell has been quiet for `ms`.
  async quiet(ms) {
    this.last = Date.now();
    while (Date.now() - this.last < ms) await sleep(ms / 4);
  }
}

function percentile(samples, q) {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

// Types `n` keystrokes, each timed until its echo; a line is cleared now and then.
async function type(t, n, pause, samples) {
  for (let i = 0; i < n; i++) {
    if (i % 40 === 39) {
      t.send('\x15');
      await t.quiet(30);
    }
    const ch = String.fromCharCode(97 + (i % 26));
    const echoed = t.output((d) => d.includes(ch));
    const start = process.hrtime.bigint();
    t.send(ch);
    await echoed;
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (pause) await sleep(pause());
  }
  t.send('\x15');
}

async function main() {
  if (mode === 'echo' || mode === 'pauses') {
    // 'pauses': as people type, a key, then a pause of about a second (0.9-1.3 s).
    const pause = mode === 'pauses' ? () => 900 + Math.random() * 400 : null;
    const t = new Terminal(targets[0]);
    await t.open;
    await t.quiet(300);
    const samples = [];
    await type(t, 50, null, []);  // warm up
    await type(t, Number(amount), pause, samples);
    t.ws.close();
    return { keystrokes: samples.length, p50_ms: percentile(samples, 0.5), p99_ms: percentile(samples, 0.99),
             max_ms: Math.max(...samples) };
  }
  if (mode === 'throughput') {
    const t = new Terminal(targets[0]);
    await t.open;
    await t.quiet(300);
    const bytes = Number(amount);
    const done = t.output((d) => d.includes('DONE-2'), true);
    // The commands of bench/terminal_output.h.
    const command = process.argv[5] === 'long'
      ? `head -c ${Math.round(bytes * 3 / 4)} /dev/zero | base64 -w 0`
      : `yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c ${bytes}`;
    t.send(`${command}; echo DONE-$((1+1))\n`);
    const start = process.hrtime.bigint();
    t.bytes = 0;
    t.messages = 0;
    await done;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    t.ws.close();
    return { bytes: t.bytes, messages: t.messages, seconds, mb_per_s: t.bytes / seconds / 1e6 };
  }
  if (mode === 'hold') {
    const terminals = targets.map((x) => new Terminal(x));
    const opened = await Promise.allSettled(terminals.map((t) => t.open));
    const failed = opened.filter((o) => o.status === 'rejected').length;
    const live = terminals.filter((_, i) => opened[i].status === 'fulfilled');
    await Promise.all(live.map((t) => t.quiet(500)));
    const samples = [];
    // TYPING of them (all by default) type at once, like people do: a key every
    // 150-450 ms; the others stay open and idle.
    const typing = live.slice(0, Number(process.env.TYPING || live.length));
    await Promise.all(typing.map((t) => type(t, Number(amount), () => 150 + Math.random() * 300, samples)));
    const result = { open: live.length, failed, typing: typing.length, keystrokes: samples.length,
                     p50_ms: percentile(samples, 0.5), p99_ms: percentile(samples, 0.99) };
    if (process.env.HOLD_FILE) {
      fs.writeFileSync(process.env.HOLD_FILE, JSON.stringify(result));
      await sleep(Number(process.env.HOLD_MS || 0));  // still open while memory is measured
    }
    live.forEach((t) => t.ws.close());
    return result;
  }
  throw new Error('unknown mode ' + mode);
}

main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); },
            (e) => { console.error(e.message); process.exit(1); });

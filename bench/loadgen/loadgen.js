'use strict';
// Load generator for `livespace bench`: one Node process driving many WebSocket clients.
//
// Usage: node loadgen.js CONFIG.json
// CONFIG (written by livespace.bench) names a mode and the URLs to connect to; this process
// writes one JSON object per line on stdout:
//   {"kind":"progress", ...}  about once a second
//   {"kind":"phase","name":N,"state":"start"|"end"}  measured windows (the caller samples CPU)
//   {"kind":"ready", ...}     idle mode: all connections are up; send "stop\n" on stdin to end
//   {"kind":"result", ...}    last line
// It exits when its stdin closes, so it never outlives the benchmark.
//
// Received frames are not JSON-parsed on the hot path: the publisher's payload carries
// "bench_t":<microseconds>, and deliveries are found by scanning the raw bytes for that
// marker (this also counts events inside batched frames, JSON arrays).

const fs = require('fs');
const net = require('net');
const readline = require('readline');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const nowUs = () => Math.round(performance.now() * 1000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
// Refs must differ between runs: a ref seen before is an idempotent retry, not a new write.
const RUN_ID = Math.random().toString(36).slice(2, 10);
const T_MARK = Buffer.from('"bench_t":');
const EVENT_MARK = Buffer.from('"event_id"');
const WS_OPTIONS = {
  perMessageDeflate: false,
  skipUTF8Validation: true,
  maxPayload: 256 * 1024 * 1024,
};

let stopRequested = false;
const stopWaiters = [];
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'stop') {
    stopRequested = true;
    stopWaiters.splice(0).forEach((fn) => fn());
  }
});
rl.on('close', () => process.exit(3));

// Latency histogram: 10 us buckets up to 5 s, exact values above.
class Histogram {
  constructor() {
    this.buckets = new Uint32Array(500000);
    this.over = [];
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }
  add(us) {
    if (us < 0) us = 0;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
    const i = (us / 10) | 0;
    if (i < 500000) this.buckets[i]++;
    else this.over.push(us);
  }
  percentile(p) {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < 500000; i++) {
      seen += this.buckets[i];
      if (seen >= rank) return (i * 10 + 5) / 1000;
    }
    this.over.sort((a, b) => a - b);
    return this.over[Math.min(this.over.length - 1, rank - seen - 1)] / 1000;
  }
  summary() {
    if (this.count === 0) return { count: 0 };
    return {
      count: this.count,
      mean_ms: this.sum / this.count / 1000,
      p50_ms: this.percentile(50),
      p90_ms: this.percentile(90),
      p99_ms: this.percentile(99),
      p999_ms: this.percentile(99.9),
      max_ms: this.max / 1000,
    };
  }
}

// Calls onValue(integer) for each "bench_t":<digits> in buf; returns how many.
function scanTimestamps(buf, onValue) {
  let found = 0;
  let i = buf.indexOf(T_MARK);
  while (i !== -1) {
    let j = i + T_MARK.length;
    while (buf[j] === 32) j++;
    let value = 0;
    let c = buf[j];
    while (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      c = buf[++j];
    }
    onValue(value);
    found++;
    i = buf.indexOf(T_MARK, j);
  }
  return found;
}

function countMarks(buf, mark) {
  let found = 0;
  let i = buf.indexOf(mark);
  while (i !== -1) {
    found++;
    i = buf.indexOf(mark, i + mark.length);
  }
  return found;
}

function bump(counter, key) {
  counter[key] = (counter[key] || 0) + 1;
}

// Opens one connection and resolves when its first frame (welcome) arrives. Frames after
// the welcome go to onMessage; a close after the welcome goes to onClose(code).
function open(url, onMessage, onClose) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, WS_OPTIONS);
    let welcomed = false;
    let settled = false;
    const timer = setTimeout(() => fail('timeout'), (cfg.connect_timeout_s || 15) * 1000);
    function fail(reason) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(String(reason)));
    }
    ws.on('error', (err) => fail(err.code || err.message));
    ws.on('unexpected-response', (req, res) => fail(`http_${res.statusCode}`));
    ws.on('close', (code) => {
      if (!welcomed) fail(`close_${code}`);
      else if (onClose) onClose(code);
    });
    ws.on('message', (data) => {
      if (welcomed) {
        if (onMessage) onMessage(data);
        return;
      }
      let welcome;
      try {
        welcome = JSON.parse(data);
      } catch (err) {
        fail('welcome_not_json');
        return;
      }
      if (Array.isArray(welcome)) welcome = welcome[0] || {};
      if (welcome.type !== 'welcome') {
        fail(`first_frame_${welcome.type}${welcome.code ? '_' + welcome.code : ''}`);
        return;
      }
      welcomed = true;
      settled = true;
      clearTimeout(timer);
      resolve({ ws, welcome, ms: performance.now() - t0 });
    });
  });
}

// A receive-only WebSocket client on a bare TCP socket, for the subscribers: the hot path
// of the generator. Every socket reads into one shared buffer (net `onread`, no stream
// machinery, no allocation per read); frames are parsed in place and a text frame is
// handed over as a view of that buffer (copied only when it spans two reads). It answers
// pings and close frames; what it sends is masked with a zero key (RFC 6455 allows any key).
const SHARED_READ = Buffer.allocUnsafe(256 * 1024);
const CRLF2 = Buffer.from('\r\n\r\n');

function rawFrame(opcode, payload) {
  const len = payload.length;
  const head = Buffer.alloc(len < 126 ? 6 : 8);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = 0x80 | len;
  else {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  }
  return Buffer.concat([head, payload]);
}

class RawSocket {
  constructor(url, onMessage, onClose) {
    const u = new URL(url);
    this.onMessage = onMessage;
    this.onClose = onClose;
    this.handshake = [];
    this.upgraded = false;
    this.closed = false;
    this.closeCode = 1006;
    this.header = Buffer.alloc(14);
    this.headerLen = 0;
    this.need = 0; // payload bytes still expected for the current frame
    this.opcode = 0;
    this.parts = null; // payload pieces of a frame that spans reads
    this.onUpgradeFailed = null;
    const key = Buffer.from(Array.from({ length: 16 }, () => (Math.random() * 256) | 0));
    this.socket = net.connect({
      host: u.hostname,
      port: Number(u.port) || 80,
      onread: { buffer: SHARED_READ, callback: (n, buf) => this.data(buf, n) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => {
      this.socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${key.toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    this.socket.on('error', (err) => this.finish(err.code || err.message));
    this.socket.on('close', () => this.finish(null));
  }

  finish(reason) {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    if (!this.upgraded && this.onUpgradeFailed) this.onUpgradeFailed(reason || 'closed');
    else if (this.onClose) this.onClose(this.closeCode);
  }

  terminate() {
    this.onClose = null;
    this.finish(null);
  }

  data(buf, n) {
    let pos = 0;
    if (!this.upgraded) {
      this.handshake.push(Buffer.from(buf.subarray(0, n)));
      const head = Buffer.concat(this.handshake);
      const end = head.indexOf(CRLF2);
      if (end === -1) return;
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!/^HTTP\/1\.1 101/.test(status)) {
        this.finish(`http_${status.split(' ')[1]}`);
        return;
      }
      this.upgraded = true;
      this.handshake = null;
      const rest = head.subarray(end + 4);
      if (rest.length) this.frames(rest, 0, rest.length);
      return;
    }
    this.frames(buf, pos, n);
  }

  frames(buf, pos, n) {
    while (pos < n && !this.closed) {
      if (this.need === 0 && this.parts === null) {
        // Read a header: 2 bytes, then 0, 2 or 8 bytes of length (server frames are unmasked).
        while (this.headerLen < 2 && pos < n) this.header[this.headerLen++] = buf[pos++];
        if (this.headerLen < 2) return;
        const len7 = this.header[1] & 0x7f;
        const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
        while (this.headerLen < 2 + extra && pos < n) this.header[this.headerLen++] = buf[pos++];
        if (this.headerLen < 2 + extra) return;
        this.opcode = this.header[0] & 0x0f;
        this.need = extra === 0 ? len7 : extra === 2 ? this.header.readUInt16BE(2)
          : Number(this.header.readBigUInt64BE(2));
        this.headerLen = 0;
        if (this.need === 0) {
          this.complete(Buffer.alloc(0));
          continue;
        }
        if (n - pos >= this.need) {
          const payload = buf.subarray(pos, pos + this.need);
          pos += this.need;
          this.need = 0;
          this.complete(payload);
          continue;
        }
        this.parts = [];
      }
      const take = Math.min(this.need, n - pos);
      this.parts.push(Buffer.from(buf.subarray(pos, pos + take)));
      pos += take;
      this.need -= take;
      if (this.need === 0) {
        const payload = Buffer.concat(this.parts);
        this.parts = null;
        this.complete(payload);
      }
    }
  }

  complete(payload) {
    const op = this.opcode;
    if (op === 1 || op === 2 || op === 0) this.onMessage(payload);
    else if (op === 9) this.socket.write(rawFrame(10, Buffer.from(payload)));
    else if (op === 8) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.socket.write(rawFrame(8, Buffer.from(payload.subarray(0, 2))));
      this.socket.end();
      this.finish(null);
    }
  }
}

// Like open(), on a RawSocket: resolves with { ws, welcome, ms } at the welcome frame.
function openRaw(url, onMessage, onClose) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let welcomed = false;
    const timer = setTimeout(() => {
      raw.terminate();
      reject(new Error('timeout'));
    }, (cfg.connect_timeout_s || 15) * 1000);
    const raw = new RawSocket(url, (payload) => {
      if (welcomed) {
        if (onMessage) onMessage(payload);
        return;
      }
      let welcome;
      try {
        welcome = JSON.parse(payload.toString());
      } catch (err) {
        welcome = {};
      }
      if (Array.isArray(welcome)) welcome = welcome[0] || {};
      clearTimeout(timer);
      if (welcome.type !== 'welcome') {
        raw.terminate();
        reject(new Error(`first_frame_${welcome.type}${welcome.code ? '_' + welcome.code : ''}`));
        return;
      }
      welcomed = true;
      resolve({ ws: raw, welcome, ms: performance.now() - t0 });
    }, (code) => {
      if (welcomed) {
        if (onClose) onClose(code);
        return;
      }
      clearTimeout(timer);
      reject(new Error(`close_${code}`));
    });
    raw.onUpgradeFailed = (reason) => {
      clearTimeout(timer);
      reject(new Error(String(reason)));
    };
  });
}

// Opens every URL with `concurrency` handshakes in flight; reports progress.
async function openAll(urls, makeHandlers, label, opener = open) {
  const conns = new Array(urls.length);
  const failures = {};
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const ticker = setInterval(() => {
    emit({ kind: 'progress', phase: label, connected: done, total: urls.length,
      elapsed_s: (performance.now() - t0) / 1000 });
  }, 1000);
  async function worker() {
    while (next < urls.length) {
      const index = next++;
      const { onMessage, onClose } = makeHandlers(index);
      try {
        conns[index] = await opener(urls[index], onMessage, onClose);
        done++;
      } catch (err) {
        bump(failures, err.message);
      }
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(cfg.concurrency || 50, urls.length); i++) workers.push(worker());
  await Promise.all(workers);
  clearInterval(ticker);
  return {
    conns: conns.filter(Boolean),
    byIndex: conns,
    failures,
    seconds: (performance.now() - t0) / 1000,
  };
}

function closeAll(conns) {
  for (const c of conns) c.ws.terminate();
}

function payloadPadding() {
  const target = cfg.payload_bytes || 200;
  // {"bench_t":1234567890123,"pad":"..."} : 32 bytes besides the padding.
  return 'x'.repeat(Math.max(0, target - 32));
}

async function waitUntil(predicate, timeoutMs, stallMs) {
  const t0 = performance.now();
  let last = -1;
  let lastChange = t0;
  for (;;) {
    const state = predicate();
    if (state === true) return true;
    const now = performance.now();
    if (state !== last) {
      last = state;
      lastChange = now;
    }
    if (now - t0 > timeoutMs || (stallMs && now - lastChange > stallMs)) return false;
    await sleep(20);
  }
}

async function fanout() {
  const pad = payloadPadding();
  const closes = {};
  const publisherErrors = {};
  let alive = 0;
  let deliveredTotal = 0;
  let sentTotal = 0;
  let lastDelivery = performance.now();
  let phase = null;
  let pumpScheduled = false;
  let stale = 0;

  function onDelivery(now) {
    return (t) => {
      deliveredTotal++;
      if (phase && t >= phase.startUs) {
        phase.delivered++;
        phase.hist.add(now - t);
      } else stale++;
    };
  }
  function onSubscriberMessage(data) {
    const now = nowUs();
    if (scanTimestamps(data, onDelivery(now)) > 0) {
      lastDelivery = performance.now();
      if (phase && phase.closedLoop && !pumpScheduled) {
        pumpScheduled = true;
        setImmediate(pump);
      }
    }
  }
  const subs = await openAll(cfg.targets, () => ({
    onMessage: onSubscriberMessage,
    onClose: (code) => {
      alive--;
      bump(closes, code);
    },
  }), 'connect', cfg.raw === false ? open : openRaw);
  alive = subs.conns.length;
  let pub;
  try {
    pub = await open(cfg.publisher, (data) => {
      if (data.indexOf('"error"') !== -1) {
        try {
          const frame = JSON.parse(data);
          for (const f of Array.isArray(frame) ? frame : [frame]) {
            if (f.type === 'error') bump(publisherErrors, f.code);
          }
        } catch (err) {
          bump(publisherErrors, 'unparsable');
        }
      }
    }, (code) => bump(closes, `publisher_${code}`));
  } catch (err) {
    emit({ kind: 'result', mode: 'fanout', error: `publisher could not connect: ${err.message}` });
    closeAll(subs.conns);
    return;
  }
  const result = {
    mode: 'fanout',
    subscribers: cfg.targets.length,
    connected: subs.conns.length,
    connect_failures: subs.failures,
    connect_s: subs.seconds,
  };
  await sleep((cfg.settle_s || 1) * 1000);

  function sendOne() {
    pub.ws.send('{"type":"broadcast","data":{"event":"bench","payload":{"bench_t":' + nowUs() +
      ',"pad":"' + pad + '"}}}');
    sentTotal++;
    if (phase) phase.sent++;
  }
  function pump() {
    pumpScheduled = false;
    if (!phase || !phase.closedLoop || !phase.sending) return;
    const window = cfg.window || 16;
    const stalled = performance.now() - lastDelivery > 250;
    let budget = 64;
    while (budget-- > 0 && pub.ws.bufferedAmount < 1 << 20 &&
      (sentTotal - deliveredTotal / Math.max(1, alive) < window || (stalled && budget === 63))) {
      sendOne();
    }
    if (budget < 0) {
      pumpScheduled = true;
      setImmediate(pump);
    }
  }
  function newPhase(name, closedLoop) {
    phase = { name, closedLoop, sending: true, startUs: nowUs(), sent: 0, delivered: 0,
      hist: new Histogram() };
    return phase;
  }
  async function drain(p) {
    p.sending = false;
    await waitUntil(() => (p.delivered >= p.sent * alive ? true : p.delivered),
      (cfg.drain_s || 3) * 1000, 500);
  }
  function progressTicker(p, t0) {
    let lastCount = 0;
    let lastT = t0;
    return setInterval(() => {
      const now = performance.now();
      emit({ kind: 'progress', phase: p.name, elapsed_s: (now - t0) / 1000,
        delivered: p.delivered, rate: ((p.delivered - lastCount) * 1000) / (now - lastT),
        alive });
      lastCount = p.delivered;
      lastT = now;
    }, 1000);
  }

  // Closed loop: keep `window` messages in flight (per subscriber), as fast as they come back.
  if (cfg.closed_s > 0) {
    const warm = newPhase('warmup', true);
    pump();
    const warmTicker = setInterval(pump, 50);
    await sleep((cfg.warmup_s || 1) * 1000);
    clearInterval(warmTicker);
    await drain(warm);
    const p = newPhase('closed', true);
    emit({ kind: 'phase', name: 'closed', state: 'start' });
    const t0 = performance.now();
    const ticker = progressTicker(p, t0);
    const pumpTicker = setInterval(pump, 50);
    pump();
    await sleep(cfg.closed_s * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const deliveredInWindow = p.delivered;
    emit({ kind: 'phase', name: 'closed', state: 'end' });
    clearInterval(pumpTicker);
    clearInterval(ticker);
    await drain(p);
    result.closed = {
      seconds,
      sent: p.sent,
      delivered: deliveredInWindow,
      deliveries_per_s: deliveredInWindow / seconds,
      messages_per_s: deliveredInWindow / seconds / Math.max(1, alive),
      latency: p.hist.summary(),
      alive,
    };
  }

  // Open loop: a fixed rate of deliveries/s (rate / subscribers messages/s), on a timer.
  if (cfg.open_s > 0) {
    const msgRate = cfg.rate / Math.max(1, alive);
    const p = newPhase('open', false);
    emit({ kind: 'phase', name: 'open', state: 'start' });
    const t0 = performance.now();
    const ticker = progressTicker(p, t0);
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const elapsed = (performance.now() - t0) / 1000;
        const due = Math.min(Math.floor(elapsed * msgRate) + 1,
          Math.floor(cfg.open_s * msgRate) + 1);
        while (p.sent < due) sendOne();
        if (elapsed >= cfg.open_s) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const seconds = (performance.now() - t0) / 1000;
    emit({ kind: 'phase', name: 'open', state: 'end' });
    clearInterval(ticker);
    const expected = p.sent * alive;
    await drain(p);
    result.open = {
      seconds,
      target_deliveries_per_s: cfg.rate,
      messages_per_s: p.sent / seconds,
      sent: p.sent,
      expected,
      delivered: p.delivered,
      delivered_pct: expected ? (100 * p.delivered) / expected : 0,
      deliveries_per_s: p.delivered / seconds,
      latency: p.hist.summary(),
      alive,
    };
  }
  result.closes = closes;
  result.publisher_errors = publisherErrors;
  result.stale_deliveries = stale;
  closeAll(subs.conns);
  pub.ws.terminate();
  emit({ kind: 'result', ...result });
}

async function idle() {
  const closes = {};
  let received = 0;
  const pingTimers = [];
  const conns = await openAll(cfg.targets, () => ({
    onMessage: () => received++,
    onClose: (code) => bump(closes, code),
  }), 'connect');
  // Keep the connections alive the way a client SDK would (application ping per heartbeat).
  for (const c of conns.conns) {
    const hb = Number(c.welcome.heartbeat_s) || 0;
    if (hb > 0) {
      const timer = setInterval(() => {
        if (c.ws.readyState === WebSocket.OPEN) c.ws.send('{"type":"ping"}');
      }, hb * 1000 * (0.8 + Math.random() * 0.15));
      pingTimers.push(timer);
    }
  }
  emit({ kind: 'ready', connected: conns.conns.length, connect_failures: conns.failures,
    connect_s: conns.seconds });
  const holdMs = (cfg.hold_s || 600) * 1000;
  await new Promise((resolve) => {
    if (stopRequested) resolve();
    stopWaiters.push(resolve);
    setTimeout(resolve, holdMs);
  });
  pingTimers.forEach(clearInterval);
  closeAll(conns.conns);
  emit({ kind: 'result', mode: 'idle', connections: cfg.targets.length,
    connected: conns.conns.length, connect_failures: conns.failures, connect_s: conns.seconds,
    closed_while_idle: closes, frames_while_idle: received });
}

async function connect() {
  const failures = {};
  let hist = new Histogram();
  let ok = 0;
  let next = 0;
  let running = true;
  let t0 = performance.now();
  if (cfg.warmup_s) {
    // the same loops, not counted: every target once at least (caches, rooms)
    setTimeout(() => { ok = 0; hist = new Histogram(); t0 = performance.now();
      emit({ kind: 'phase', name: 'connect', state: 'start' }); }, cfg.warmup_s * 1000);
  } else {
    emit({ kind: 'phase', name: 'connect', state: 'start' });
  }
  const ticker = setInterval(() => {
    emit({ kind: 'progress', phase: 'connect', elapsed_s: (performance.now() - t0) / 1000,
      handshakes: ok });
  }, 1000);
  async function worker() {
    while (running) {
      const url = cfg.targets[next++ % cfg.targets.length];
      const started = performance.now();
      try {
        const c = await open(url, null, null);
        hist.add(Math.round((performance.now() - started) * 1000));
        ok++;
        await new Promise((resolve) => {
          const timer = setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 2000);
          c.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          c.ws.close(1000);
        });
      } catch (err) {
        bump(failures, err.message);
        await sleep(10);
      }
    }
  }
  const workers = [];
  for (let i = 0; i < (cfg.concurrency || 50); i++) workers.push(worker());
  await sleep(((cfg.warmup_s || 0) + cfg.duration_s) * 1000);
  running = false;
  const seconds = (performance.now() - t0) / 1000;
  const counted = ok;
  emit({ kind: 'phase', name: 'connect', state: 'end' });
  clearInterval(ticker);
  await Promise.all(workers);
  emit({ kind: 'result', mode: 'connect', seconds, handshakes: counted,
    handshakes_per_s: counted / seconds, failures, latency: hist.summary(),
    concurrency: cfg.concurrency || 50 });
}

async function durable() {
  const pipeline = cfg.pipeline || 32;
  const updateRatio = cfg.update_ratio || 0;
  const target = cfg.target_events || 0;
  const errors = {};
  const closes = {};
  let phase = null;
  let acks = 0;
  let maxSeq = 0;
  let stopping = false;
  const writers = [];

  function makeWriter(index) {
    const w = { index, inFlight: new Map(), ids: [], counter: 0, ws: null, pausedUntil: 0 };
    w.onMessage = (data) => {
      if (data.indexOf('"ack"') === -1 && data.indexOf('"error"') === -1) return;
      let frames;
      try {
        frames = JSON.parse(data);
      } catch (err) {
        bump(errors, 'unparsable');
        return;
      }
      const now = nowUs();
      for (const f of Array.isArray(frames) ? frames : [frames]) {
        if (f.type !== 'ack' && f.type !== 'error') continue;
        const sent = w.inFlight.get(f.ref);
        if (sent === undefined) continue;
        w.inFlight.delete(f.ref);
        if (f.type === 'ack') {
          acks++;
          if (typeof f.seq === 'number' && f.seq > maxSeq) maxSeq = f.seq;
          if (phase && sent.t >= phase.startUs) {
            phase.acks++;
            phase.hist.add(now - sent.t);
          }
          if (sent.create && f.data && f.data.id) {
            w.ids.push(f.data.id);
            if (w.ids.length > 256) w.ids.shift();
          }
        } else {
          bump(errors, f.code);
          if (f.retry_after) w.pausedUntil = performance.now() + f.retry_after * 1000;
        }
      }
      fill(w);
    };
    return w;
  }
  function fill(w) {
    if (stopping || !w.ws || w.ws.readyState !== WebSocket.OPEN) return;
    if (performance.now() < w.pausedUntil) return;
    while (w.inFlight.size < pipeline) {
      if (target && acks + inFlightTotal() >= target) return;
      sendOp(w);
    }
  }
  function sendOp(w) {
    const i = w.counter++;
    const ref = `${RUN_ID}-w${w.index}-${i}`;
    let frame;
    let create = true;
    if (w.ids.length > 0 && Math.random() < updateRatio) {
      const id = w.ids[(Math.random() * w.ids.length) | 0];
      frame = { type: 'contact_updated', ref,
        data: { id, changes: { company: `Company ${i}`, phone: `+1555${i}` } } };
      create = false;
    } else {
      frame = { type: 'contact_created', ref,
        data: { name: `Bench ${w.index}-${i}`, email: `w${w.index}.${i}@bench.example`,
          company: 'Bench Inc', tags: ['bench'] } };
    }
    w.inFlight.set(ref, { t: nowUs(), create });
    w.ws.send(JSON.stringify(frame));
  }
  function inFlightTotal() {
    let n = 0;
    for (const w of writers) n += w.inFlight.size;
    return n;
  }
  for (let i = 0; i < cfg.targets.length; i++) writers.push(makeWriter(i));
  const opened = await openAll(cfg.targets, (i) => ({
    onMessage: (data) => writers[i].onMessage(data),
    onClose: (code) => bump(closes, code),
  }), 'connect');
  for (let i = 0; i < writers.length; i++) {
    if (opened.byIndex[i]) writers[i].ws = opened.byIndex[i].ws;
  }
  const active = writers.filter((w) => w.ws);
  const refill = setInterval(() => active.forEach(fill), 20);
  const result = { mode: 'durable', writers: cfg.targets.length, connected: active.length,
    connect_failures: opened.failures, pipeline, update_ratio: updateRatio };
  if (!target && cfg.warmup_s > 0) {
    phase = { startUs: nowUs(), acks: 0, hist: new Histogram() };
    active.forEach(fill);
    await sleep(cfg.warmup_s * 1000);
  }
  phase = { startUs: nowUs(), acks: 0, hist: new Histogram() };
  const startAcks = acks;
  // Closed loop: every writer keeps `pipeline` frames unacknowledged.
  emit({ kind: 'phase', name: 'durable', state: 'start' });
  const t0 = performance.now();
  let lastAcks = acks;
  let lastT = t0;
  const ticker = setInterval(() => {
    const now = performance.now();
    emit({ kind: 'progress', phase: 'durable', elapsed_s: (now - t0) / 1000, acks: acks - startAcks,
      rate: ((acks - lastAcks) * 1000) / (now - lastT), max_seq: maxSeq });
    lastAcks = acks;
    lastT = now;
  }, 1000);
  active.forEach(fill);
  if (target) {
    const limit = (cfg.timeout_s || 600) * 1000;
    await waitUntil(() => acks >= target || active.every((w) => w.ws.readyState !== 1),
      limit, 0);
  } else {
    await sleep(cfg.duration_s * 1000);
  }
  const seconds = (performance.now() - t0) / 1000;
  const counted = acks - startAcks;
  emit({ kind: 'phase', name: 'durable', state: 'end' });
  stopping = true;
  clearInterval(ticker);
  clearInterval(refill);
  await waitUntil(() => inFlightTotal() === 0 || inFlightTotal(), 5000, 1000);
  Object.assign(result, { seconds, acks: counted, events_per_s: counted / seconds,
    latency: phase.hist.summary() });

  // Open loop: a fixed rate of writes/s spread over the writers, whatever the acks do.
  if (!target && cfg.open_s > 0 && cfg.rate > 0) {
    const p = { startUs: nowUs(), acks: 0, hist: new Histogram() };
    phase = p;
    let sent = 0;
    let next = 0;
    const total = Math.floor(cfg.open_s * cfg.rate);
    emit({ kind: 'phase', name: 'durable_open', state: 'start' });
    const o0 = performance.now();
    let lastOpen = 0;
    let lastOpenT = o0;
    const openTicker = setInterval(() => {
      const now = performance.now();
      emit({ kind: 'progress', phase: 'durable_open', elapsed_s: (now - o0) / 1000,
        acks: p.acks, rate: ((p.acks - lastOpen) * 1000) / (now - lastOpenT), max_seq: maxSeq });
      lastOpen = p.acks;
      lastOpenT = now;
    }, 1000);
    let overloaded = 0;
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - o0) / 1000) * cfg.rate) + 1);
        while (sent < due) {
          const w = active[next++ % active.length];
          sent++;
          // A writer with this many unacknowledged frames is not keeping up: skip, count it.
          if (w.inFlight.size >= 4096 || w.ws.readyState !== WebSocket.OPEN) overloaded++;
          else sendOp(w);
        }
        if (sent >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const openSeconds = (performance.now() - o0) / 1000;
    emit({ kind: 'phase', name: 'durable_open', state: 'end' });
    clearInterval(openTicker);
    await waitUntil(() => inFlightTotal() === 0 || inFlightTotal(), 5000, 1000);
    result.open = { seconds: openSeconds, target_events_per_s: cfg.rate, sent,
      skipped_overloaded: overloaded, acks: p.acks, events_per_s: p.acks / openSeconds,
      acked_pct: sent ? (100 * p.acks) / sent : 0, latency: p.hist.summary() };
  }
  closeAll(opened.conns);
  Object.assign(result, { errors, closes, max_seq: maxSeq, unacked: inFlightTotal() });
  emit({ kind: 'result', ...result });
}

async function replay() {
  const url = cfg.targets[0];
  let received = 0;
  let expected = null;
  let closeCode = null;
  let doneAt = null;
  const t0 = performance.now();
  emit({ kind: 'phase', name: 'replay', state: 'start' });
  let conn;
  try {
    conn = await (cfg.raw === false ? open : openRaw)(url, (data) => {
      received += countMarks(data, EVENT_MARK);
      if (expected !== null && doneAt === null && received >= expected) doneAt = performance.now();
    }, (code) => {
      closeCode = code;
    });
  } catch (err) {
    emit({ kind: 'result', mode: 'replay', error: err.message });
    return;
  }
  const welcomeMs = performance.now() - t0;
  const info = conn.welcome.replay || {};
  const resync = Boolean(conn.welcome.resync_required);
  expected = typeof info.count === 'number' ? info.count : cfg.expect || 0;
  if (received >= expected) doneAt = performance.now();
  const ticker = setInterval(() => {
    emit({ kind: 'progress', phase: 'replay', elapsed_s: (performance.now() - t0) / 1000,
      received, expected });
  }, 1000);
  await waitUntil(() => doneAt !== null || closeCode !== null, (cfg.timeout_s || 120) * 1000, 0);
  clearInterval(ticker);
  emit({ kind: 'phase', name: 'replay', state: 'end' });
  conn.ws.terminate();
  const totalMs = (doneAt || performance.now()) - t0;
  emit({ kind: 'result', mode: 'replay', expected, received, resync_required: resync,
    welcome_seq: conn.welcome.seq, welcome_ms: welcomeMs, total_ms: totalMs,
    events_per_s: received / (totalMs / 1000), complete: doneAt !== null,
    close_code: closeCode });
}

// Join storm: every target connects once (`concurrency` handshakes in flight) and stays
// connected; then all close. Handshakes/s and their latency over the whole storm. The
// members that joined are bare sockets (no parsing): each join reaches all of them as
// presence, and the generator must not be what limits the storm.
async function storm() {
  const failures = {};
  const hist = new Histogram();
  const conns = [];
  let next = 0;
  const t0 = performance.now();
  emit({ kind: 'phase', name: 'storm', state: 'start' });
  const ticker = setInterval(() => {
    emit({ kind: 'progress', phase: 'storm', elapsed_s: (performance.now() - t0) / 1000,
      handshakes: conns.length });
  }, 1000);
  async function worker() {
    while (next < cfg.targets.length) {
      const url = cfg.targets[next++];
      const started = performance.now();
      try {
        const c = await openRaw(url, null, null);
        hist.add(Math.round((performance.now() - started) * 1000));
        conns.push(c);
      } catch (err) {
        bump(failures, err.message);
      }
    }
  }
  const workers = [];
  for (let i = 0; i < (cfg.concurrency || 50); i++) workers.push(worker());
  await Promise.all(workers);
  const seconds = (performance.now() - t0) / 1000;
  emit({ kind: 'phase', name: 'storm', state: 'end' });
  clearInterval(ticker);
  for (const c of conns) c.ws.terminate();
  emit({ kind: 'result', mode: 'storm', seconds, handshakes: conns.length,
    handshakes_per_s: conns.length / seconds, failures, latency: hist.summary(),
    concurrency: cfg.concurrency || 50 });
}

const modes = { fanout, idle, connect, durable, replay, storm };
if (!modes[cfg.mode]) {
  emit({ kind: 'result', error: `unknown mode ${cfg.mode}` });
  process.exit(2);
}
// Linger a moment after the result so the caller can still read this process's CPU time.
modes[cfg.mode]().then(
  () => setTimeout(() => process.exit(0), 300),
  (err) => {
    emit({ kind: 'result', error: String(err && err.stack ? err.stack : err) });
    process.exit(1);
  },
);

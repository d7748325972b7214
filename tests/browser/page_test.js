/*
 * page_test.js - `cgrad serve`'s page end to end, in headless Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core over the DevTools
 * protocol; nothing is downloaded). Run by CTest through run.sh:
 *
 *   node page_test.js CGRAD OUT_DIR      (CGRAD_DATA names the real data)
 *
 * For a two-class model (linear, 3 or 7, trained on mnist_sample) and a
 * ten-class one (an MLP, one epoch of full MNIST) it starts `cgrad serve` on
 * a free loopback port and, on the page:
 *   - draws digits with real mouse events (press, moves, release through
 *     the DevTools input API, so the page gets pointer events), and checks
 *     that the 28x28 image the page sent is MNIST-like (ink box 20 pixels,
 *     centre of mass at (14,14)), that the class and every bar the page
 *     shows are what `cgrad predict --json` says for that image written as
 *     a PNG, and that a digit drawn small in a corner is sent like the same
 *     digit drawn big;
 *   - uploads MNIST PNGs (file input and drag-and-drop) and checks the
 *     class against `cgrad predict` on the same file, that a dark-on-light
 *     copy is sent exactly like the light-on-dark one, that one 1400 pixels
 *     wide gets the same class, and that a file that is no image is refused
 *     with a message;
 *   - checks Clear, that the page logs no console error and asks nothing
 *     of any other origin, and saves a screenshot in OUT_DIR.
 * Every wait is bounded and the servers are stopped (SIGTERM, then SIGKILL)
 * whatever happens. Exit 0: passed, 1: failed, 77: skipped (no data, no
 * Chromium or no playwright-core; run.sh says which).
 */
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { spawn, spawnSync } = require("child_process");

const SKIP = 77;
const TOTAL_TIMEOUT_MS = 280e3;  /* the whole run; CTest's limit is above it */
const STEP_TIMEOUT_MS = 20e3;    /* one page action, a server start or stop */
const CMD_TIMEOUT_MS = 240e3;    /* one `cgrad train` (slow under ASan) */
const CHROMIUM = process.env.CGRAD_CHROMIUM || "/usr/bin/chromium";

function skip(why) {
  console.log("skipped: " + why);
  process.exit(SKIP);
}

const [cgrad, outDir] = process.argv.slice(2);
if (!cgrad || !outDir) {
  console.error("usage: node page_test.js CGRAD OUT_DIR");
  process.exit(2);
}
const data = process.env.CGRAD_DATA;
if (!data) skip("set CGRAD_DATA to the folder holding mnist_sample/ and mnist/ (to train on)");
for (const d of ["mnist_sample/valid/3", "mnist/train-images-idx3-ubyte.gz"])
  if (!fs.existsSync(path.join(data, d))) skip(`no ${d} under CGRAD_DATA=${data}`);
if (!fs.existsSync(CHROMIUM)) skip(`no Chromium at ${CHROMIUM} (apt-get install chromium)`);
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (e) {
  skip("playwright-core is not installed (scripts/install-browser-test.sh): " + e.message);
}
fs.mkdirSync(outDir, { recursive: true });

/* ------------------------------------------------------------------ */
/* Checks and processes                                                */
/* ------------------------------------------------------------------ */

let failures = 0;
function check(ok, what) {
  console.log((ok ? "ok   " : "FAIL ") + what);
  if (!ok) failures++;
  return ok;
}

/* `cgrad ARGS...`, bounded in time; its stdout, or a thrown error. */
function cgradRun(args, timeout = CMD_TIMEOUT_MS) {
  const r = spawnSync(cgrad, args, { encoding: "utf8", timeout, killSignal: "SIGKILL" });
  if (r.error || r.status !== 0)
    throw new Error(`cgrad ${args.join(" ")}: ${r.error ? r.error.message : "exit " + r.status}` +
                    (r.stderr ? "\n" + r.stderr.trim() : ""));
  return r.stdout;
}

const servers = new Set();
process.on("exit", () => { for (const s of servers) s.kill("SIGKILL"); });

/* Starts `cgrad serve MODEL --port 0` and reads the address from its first
 * line. */
function startServer(model) {
  const proc = spawn(cgrad, ["serve", model, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  servers.add(proc);
  let out = "", err = "";
  proc.stderr.on("data", d => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("cgrad serve did not start: " + err)),
                             STEP_TIMEOUT_MS);
    proc.stdout.on("data", d => {
      out += d;
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1], stderr: () => err }); }
    });
    proc.on("exit", code => {
      clearTimeout(timer);
      reject(new Error(`cgrad serve exited (${code}) before serving: ${err}`));
    });
  });
}

/* SIGTERM, as Ctrl-C would; the exit status, or a thrown error after
 * SIGKILL if it does not stop. */
function stopServer(s) {
  return new Promise((resolve, reject) => {
    if (s.proc.exitCode !== null) { servers.delete(s.proc); return resolve(s.proc.exitCode); }
    const timer = setTimeout(() => {
      s.proc.kill("SIGKILL");
      reject(new Error("cgrad serve did not stop on SIGTERM"));
    }, STEP_TIMEOUT_MS);
    s.proc.on("exit", code => { clearTimeout(timer); servers.delete(s.proc); resolve(code); });
    s.proc.kill("SIGTERM");
  });
}

/* ------------------------------------------------------------------ */
/* Images                                                              */
/* ------------------------------------------------------------------ */

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/* An 8-bit grayscale PNG of w x h bytes: each row is filter byte 0 then the
 * row, deflated into one IDAT chunk. */
function pngGray(px, w, h) {
  const chunk = (type, body) => {
    const len = Buffer.alloc(4), crc = Buffer.alloc(4);
    const tb = Buffer.concat([Buffer.from(type), body]);
    len.writeUInt32BE(body.length);
    crc.writeUInt32BE(crc32(tb));
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;  /* bit depth; colour type 0 (gray), the rest 0 */
  const raw = Buffer.alloc(h * (w + 1));
  for (let y = 0; y < h; y++)
    Buffer.from(px.subarray(y * w, (y + 1) * w)).copy(raw, y * (w + 1) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
                        chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

/* The ink's bounding box, centre of mass (pixel centres at i + 0.5), and
 * stroke width: a stroke of width t and length l covers t * l pixels and has
 * a perimeter of 2 * l, so t = 2 * area / perimeter, taking the pixels over
 * 127 and their edges, whose staircase is 4 / pi times longer than the
 * outline on average over directions. MNIST's test digits: 2.3 (median),
 * 1.7 to 3.3 (10th to 90th percentile). */
function measure(px) {
  let x0 = 28, y0 = 28, x1 = -1, y1 = -1, m = 0, mx = 0, my = 0, area = 0, edges = 0;
  const on = (x, y) => x >= 0 && y >= 0 && x < 28 && y < 28 && px[28 * y + x] > 127;
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const v = px[28 * y + x];
    if (on(x, y)) area++;
    if (x < 27 && on(x, y) !== on(x + 1, y)) edges++;
    if (y < 27 && on(x, y) !== on(x, y + 1)) edges++;
    if (!v) continue;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    m += v; mx += v * (x + 0.5); my += v * (y + 0.5);
  }
  return { w: x1 - x0 + 1, h: y1 - y0 + 1, cx: mx / m, cy: my / m,
           stroke: 2 * area / (edges * Math.PI / 4) };
}

/* ------------------------------------------------------------------ */
/* The page                                                            */
/* ------------------------------------------------------------------ */

/* What the page shows now: the 784 bytes it sent, its class, its bars. */
async function shown(page) {
  await page.waitForSelector('#answer[aria-busy="false"]', { timeout: STEP_TIMEOUT_MS });
  return page.evaluate(() => {
    const hex = document.getElementById("seen").dataset.pixels || "";
    const bars = [...document.querySelectorAll("#bars li")].map(li => ({
      name: li.children[0].textContent, pct: li.children[2].textContent,
      top: li.classList.contains("top")
    }));
    return { hex, cls: document.getElementById("cls").textContent, bars,
             note: document.getElementById("note").textContent };
  });
}

/* Strokes (lists of [x, y] in the canvas's 280x280 pixels) drawn with the
 * mouse: press at the first point, move through the others in small steps,
 * release. */
async function draw(page, strokes) {
  const box = await page.locator("#pad").boundingBox();
  const at = ([x, y]) => [box.x + x * box.width / 280, box.y + y * box.height / 280];
  for (const s of strokes) {
    await page.mouse.move(...at(s[0]));
    await page.mouse.down();
    for (const p of s.slice(1)) await page.mouse.move(...at(p), { steps: 6 });
    await page.mouse.up();
  }
  return shown(page);
}

/* The page's answer for an image must be `cgrad predict`'s for the bytes it
 * sent (written as a PNG): the class, and each bar's percentage. */
function agreesWithPredict(s, model, file, what) {
  const px = Buffer.from(s.hex, "hex");
  if (!check(px.length === 784, `${what}: the page sent 784 bytes (${px.length})`)) return null;
  fs.writeFileSync(file, pngGray(px, 28, 28));
  const want = JSON.parse(cgradRun(["predict", model, file, "--json"]));
  check(s.cls === want.class, `${what}: the page says ${s.cls}, cgrad predict ${want.class}`);
  const bars = s.bars.map(b => `${b.name} ${b.pct}${b.top ? "*" : ""}`).join(", ");
  const wantBars = Object.entries(want.probabilities)
    .map(([k, p]) => `${k} ${(100 * p).toFixed(1)}%${k === want.class ? "*" : ""}`).join(", ");
  check(bars === wantBars, `${what}: bars ${bars} (predict: ${wantBars})`);
  return { px, cls: want.class };
}

function mnistLike(px, what, drawn) {
  const m = measure(px);
  if (drawn)
    check(m.stroke >= 1.7 && m.stroke <= 3.3,
          `${what}: strokes ${m.stroke.toFixed(2)} pixels wide, as MNIST's 1.7 to 3.3`);
  check(Math.max(m.w, m.h) >= 19 && Math.max(m.w, m.h) <= 21,
        `${what}: the ink's box is ${m.w}x${m.h}, the longer side 20 +- 1 as in MNIST`);
  check(Math.hypot(m.cx - 14, m.cy - 14) < 0.5,
        `${what}: centre of mass (${m.cx.toFixed(2)}, ${m.cy.toFixed(2)}), within 0.5 of (14, 14)`);
}

/* A file dropped on the canvas: the drag events a browser sends, with the
 * file in their DataTransfer (DevTools cannot drag a file from the desktop). */
async function drop(page, name, bytes, type) {
  await page.evaluate(([b64, name, type]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, { type }));
    const pad = document.getElementById("pad");
    pad.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, cancelable: true }));
    pad.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, cancelable: true }));
  }, [bytes.toString("base64"), name, type]);
}

const SEVEN = [[[70, 60], [210, 60], [120, 230]]];
const SEVEN_SMALL = [[[12, 12], [82, 12], [37, 97]]];  /* half the size, in a corner */
/* Points every 15 degrees from `from` to `to` (degrees, clockwise from the
 * x axis, since y grows downwards) of a circle. */
const arc = (cx, cy, r, from, to) => Array.from({ length: (to - from) / 15 + 1 }, (_, i) => {
  const a = (from + 15 * i) * Math.PI / 180;
  return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
});
const THREE = [[...arc(140, 95, 48, -165, 90), ...arc(140, 190, 50, -90, 165)]];
const ONE = [[[140, 40], [140, 240]]];
const ZERO = [Array.from({ length: 33 }, (_, i) => {
  const a = 2 * Math.PI * i / 32;
  return [140 + 60 * Math.sin(a), 140 - 90 * Math.cos(a)];
})];

/* The first PNG (by name) of a class of mnist_sample's validation set. */
function mnistPng(cls) {
  const dir = path.join(data, "mnist_sample/valid", cls);
  return path.join(dir, fs.readdirSync(dir).filter(f => f.endsWith(".png")).sort()[0]);
}

async function testModel(browser, model, name, digits) {
  const server = await startServer(model);
  const page = await browser.newPage({ viewport: { width: 860, height: 660 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const errors = [], elsewhere = [];
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", e => errors.push(e.message));
  page.on("request", r => { if (!r.url().startsWith(server.url)) elsewhere.push(r.url()); });
  try {
    await page.goto(server.url);
    const info = await page.evaluate(() => fetch("model").then(r => r.json()));
    await page.waitForFunction(n => document.querySelectorAll("#bars li").length === n,
                               info.classes.length);
    const names = await page.$$eval("#bars li > :first-child", e => e.map(x => x.textContent));
    check(names.join() === info.classes.join(),
          `${name}: a bar per class, in the model's order (${names.join(" ")})`);
    const task = await page.textContent("#task");
    check(task.includes(info.kind) && info.classes.every(c => task.includes(c)),
          `${name}: the page says what the model tells apart ("${task}")`);

    let big = null;
    for (const [label, strokes] of digits) {
      await page.click("#clear");
      const s = await draw(page, strokes);
      const r = agreesWithPredict(s, model, path.join(outDir, `${name}-drawn-${label}.png`),
                                  `${name}, a drawn ${label}`);
      if (!r) continue;
      mnistLike(r.px, `${name}, a drawn ${label}`, true);
      check(r.cls === label, `${name}: a drawn ${label} is read as ${r.cls}`);
      if (label === "7") big = r.px;
    }
    await page.screenshot({ path: path.join(outDir, `page-${name}.png`), fullPage: true });

    if (big) {  /* the same 7, half the size, in the top left corner */
      await page.click("#clear");
      const s = await draw(page, SEVEN_SMALL);
      const small = Buffer.from(s.hex, "hex");
      let diff = 0;
      for (let i = 0; i < 784; i++) diff += Math.abs(small[i] - big[i]) / 784;
      check(diff < 8, `${name}: a 7 drawn small in a corner is sent like a big one ` +
                      `(mean difference ${diff.toFixed(2)} of 255)`);
    }

    await page.click("#clear");
    const cleared = await shown(page);
    const none = "\u2013";  /* the dash shown for no answer */
    check(cleared.hex === "" && cleared.cls === none && cleared.bars.every(b => b.pct === none),
          `${name}: Clear empties the drawing, the answer and the bars`);

    /* Uploads: the file input, then a drop on the canvas. */
    for (const [cls, how] of [["3", "opened"], ["7", "dropped"]]) {
      const file = mnistPng(cls), what = `${name}, ${path.basename(file)} (a ${cls}) ${how}`;
      await page.click("#clear");
      if (how === "opened") {
        await page.setInputFiles("#file", file);
      } else {
        await drop(page, path.basename(file), fs.readFileSync(file), "image/png");
      }
      await page.waitForFunction(() => document.getElementById("seen").dataset.pixels);
      const s = await shown(page);
      const r = agreesWithPredict(s, model, path.join(outDir, `${name}-upload-${cls}.png`), what);
      if (!r) continue;
      mnistLike(r.px, what);
      const orig = JSON.parse(cgradRun(["predict", model, file, "--json"]));
      check(r.cls === orig.class,
            `${what}: the page says ${r.cls}, cgrad predict on the file ${orig.class}`);

      /* The image the page made, its negative, and the negative 50 times
       * bigger (1400x1400, which the page first reduces to 1000x1000). */
      const K = 50, bigNeg = new Uint8Array(28 * K * 28 * K);
      for (let y = 0; y < 28 * K; y++) for (let x = 0; x < 28 * K; x++)
        bigNeg[28 * K * y + x] = 255 - r.px[28 * Math.floor(y / K) + Math.floor(x / K)];
      const copies = [["light", pngGray(r.px, 28, 28)],
                      ["dark", pngGray(r.px.map(v => 255 - v), 28, 28)],
                      ["dark-big", pngGray(bigNeg, 28 * K, 28 * K)]];
      const sent = [];
      for (const [kind, png] of copies) {
        const f = path.join(outDir, `${name}-${kind}.png`);
        fs.writeFileSync(f, png);
        await page.click("#clear");
        await page.setInputFiles("#file", f);
        await page.waitForFunction(() => document.getElementById("seen").dataset.pixels);
        sent.push(await shown(page));
      }
      check(sent[0].hex === sent[1].hex && sent[0].hex.length === 1568,
            `${what}: a dark-on-light copy is sent exactly like the light-on-dark one`);
      check(sent[2].cls === sent[0].cls,
            `${what}: a dark-on-light copy 1400 pixels wide is read as ${sent[2].cls} too`);
      mnistLike(Buffer.from(sent[2].hex, "hex"), `${what}, 1400 pixels wide`);
    }

    /* A file that is no image: named in a message, nothing sent. */
    await page.click("#clear");
    await drop(page, "notes.txt", Buffer.from("not a picture\n"), "text/plain");
    await page.waitForFunction(() => document.getElementById("note").textContent);
    const bad = await shown(page);
    check(bad.note.includes("notes.txt") && bad.hex === "" && bad.cls === none,
          `${name}: a dropped text file is refused, named ("${bad.note}")`);

    check(errors.length === 0, `${name}: no console errors ${errors.join(" | ")}`);
    check(elsewhere.length === 0, `${name}: nothing asked of another origin: ${elsewhere}`);
  } finally {
    await page.close();
    const code = await stopServer(server);
    check(code === 0, `${name}: cgrad serve stopped on SIGTERM with status ${code}` +
                      (code ? ": " + server.stderr() : ""));
  }
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`FAIL the test took over ${TOTAL_TIMEOUT_MS / 1000} s`);
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);
  watchdog.unref();

  const two = path.join(outDir, "linear37.cgm"), ten = path.join(outDir, "mlp10.cgm");
  cgradRun(["train", "--model", "linear", "--data", path.join(data, "mnist_sample"),
            "--save", two, "--quiet"]);
  cgradRun(["train", "--model", "mlp", "--hidden", "64", "--epochs", "1", "--data",
            path.join(data, "mnist"), "--save", ten, "--quiet"]);

  /* Chromium's sandbox needs namespaces that CI containers (and root) do not
   * get; the browser only ever loads this test's own page on loopback. */
  const browser = await chromium.launch({
    executablePath: CHROMIUM, timeout: STEP_TIMEOUT_MS,
    args: ["--no-sandbox", "--disable-dev-shm-usage"]
  });
  try {
    await testModel(browser, two, "linear37", [["7", SEVEN], ["3", THREE]]);
    await testModel(browser, ten, "mlp10", [["0", ZERO], ["1", ONE], ["7", SEVEN], ["3", THREE]]);
  } finally {
    await browser.close();
  }
  console.log(failures ? `${failures} checks failed` : "all checks passed");
  process.exit(failures ? 1 : 0);
}

main().catch(e => {
  console.error("FAIL " + (e && e.stack ? e.stack : e));
  process.exit(1);
});

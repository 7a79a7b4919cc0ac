/* Upload page: hash each file in the browser, skip contents the journal already has, send the rest
   one file per request (a few in parallel) with progress, automatic retries and a Retry button.
   No dependencies; works on http://LAN-address too (a small SHA-256 replaces crypto.subtle there). */
(function () {
  "use strict";

  const root = document.getElementById("uploader");
  if (!root) return;

  const PARALLEL = 3;
  const RETRY_DELAYS_MS = [2000, 6000, 15000]; // after these, a Retry button
  const STALL_MS = 45000; // no upload progress this long: drop the request and retry
  const PROCESSING_MS = 180000; // upload sent, server still importing: give up waiting after this
  const CHECK_BATCH = 40;
  const HASH_CHUNK = 4 * 1024 * 1024;
  const SUBTLE_MAX = 64 * 1024 * 1024; // larger files are hashed in chunks to keep memory low
  const FORM_OVERHEAD = 64 * 1024; // the limit counts the whole request, not just the file
  const PHOTO_NAME = /\.(jpe?g|jpe|jfif|png|webp|heic|heif|hif|avif|tiff?|dng|mpo|gpx)$/i;

  const form = root.querySelector("form");
  const fileInput = document.getElementById("upload-files");
  const folderInput = document.getElementById("upload-folder");
  const folderButton = document.getElementById("choose-folder");
  const dropzone = root.querySelector(".dropzone");
  const queue = document.getElementById("upload-queue");
  const list = document.getElementById("upload-list");
  const rowTemplate = document.getElementById("file-row");
  const overallText = document.getElementById("overall-text");
  const overallPct = document.getElementById("overall-pct");
  const overallBar = document.getElementById("overall-bar");
  const countsEl = document.getElementById("overall-counts");
  const notice = document.getElementById("upload-notice");
  const retryAll = document.getElementById("retry-all");
  const clearDone = document.getElementById("clear-done");
  const libraryLink = document.getElementById("open-library");
  const csrfToken = form.querySelector("input[name=csrf_token]").value;
  const uploadUrl = root.dataset.uploadUrl;
  const checkUrl = root.dataset.checkUrl;
  const thumbUrl = root.dataset.thumbUrl; // ".../photos/0/thumb"
  const maxBytes = Number(root.dataset.maxBytes);

  const FINAL = new Set(["imported", "duplicate", "failed"]);
  const LABELS = {
    waiting: "Waiting", checking: "Checking", ready: "Queued", uploading: "Uploading",
    processing: "Processing", retrying: "Retrying", imported: "Imported", duplicate: "Duplicate", failed: "Failed",
  };

  const items = [];
  const hashQueue = [];
  let pendingCheck = [];
  let hashing = false;
  let checksInFlight = 0;
  let active = 0;
  let sentBytes = 0; // every byte the progress events reported, for the speed shown
  const speedSamples = []; // [time ms, sentBytes] over the last few seconds

  root.classList.add("js");

  // --- SHA-256 -------------------------------------------------------------------------------
  // Incremental SHA-256 (FIPS 180-4) for when crypto.subtle is missing (plain http on a LAN address)
  // or a file is too large to read in one piece.
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  class Sha256 {
    constructor() {
      this.h = new Int32Array([
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
      ]);
      this.w = new Int32Array(64);
      this.buffer = new Uint8Array(64);
      this.buffered = 0;
      this.length = 0;
    }

    update(data) {
      let i = 0;
      const n = data.length;
      this.length += n;
      if (this.buffered) {
        const take = Math.min(64 - this.buffered, n);
        this.buffer.set(data.subarray(0, take), this.buffered);
        this.buffered += take;
        i = take;
        if (this.buffered < 64) return;
        this.block(this.buffer, 0);
        this.buffered = 0;
      }
      for (; i + 64 <= n; i += 64) this.block(data, i);
      if (i < n) {
        this.buffer.set(data.subarray(i), 0);
        this.buffered = n - i;
      }
    }

    block(p, o) {
      const w = this.w;
      const H = this.h;
      for (let t = 0; t < 16; t++, o += 4) w[t] = (p[o] << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3];
      for (let t = 16; t < 64; t++) {
        const x = w[t - 15];
        const y = w[t - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (let t = 0; t < 64; t++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }

    hex() {
      const bits = this.length * 8;
      const tail = new Uint8Array(this.buffered < 56 ? 64 - this.buffered : 128 - this.buffered);
      tail[0] = 0x80;
      const view = new DataView(tail.buffer);
      view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
      view.setUint32(tail.length - 4, bits >>> 0);
      this.update(tail);
      return Array.from(this.h, (v) => (v >>> 0).toString(16).padStart(8, "0")).join("");
    }
  }

  function readBytes(blob) {
    if (blob.arrayBuffer) return blob.arrayBuffer();
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsArrayBuffer(blob);
    });
  }

  function toHex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function sha256File(file, onProgress) {
    const subtle = window.isSecureContext && window.crypto && window.crypto.subtle;
    if (subtle && file.size <= SUBTLE_MAX) {
      return toHex(await subtle.digest("SHA-256", await readBytes(file)));
    }
    const hash = new Sha256();
    for (let offset = 0; offset < file.size; offset += HASH_CHUNK) {
      hash.update(new Uint8Array(await readBytes(file.slice(offset, offset + HASH_CHUNK))));
      onProgress(Math.min(offset + HASH_CHUNK, file.size) / file.size);
    }
    return hash.hex();
  }

  // --- showing things ------------------------------------------------------------------------

  function formatBytes(size) {
    const units = ["bytes", "KB", "MB", "GB"];
    let value = size;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function extension(name) {
    const match = /\.([A-Za-z0-9]{1,5})$/.exec(name);
    return match ? match[1].toUpperCase() : "FILE";
  }

  function makeRow(item) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    const el = {
      row,
      thumb: row.querySelector(".file-thumb"),
      name: row.querySelector(".file-name"),
      size: row.querySelector(".file-size"),
      bar: row.querySelector(".bar"),
      fill: row.querySelector(".bar > span"),
      message: row.querySelector(".file-message"),
      status: row.querySelector(".status"),
      retry: row.querySelector(".file-retry"),
    };
    el.name.textContent = item.name;
    el.name.title = item.name;
    el.size.textContent = formatBytes(item.size);
    row.querySelector(".file-ext").textContent = extension(item.name);
    el.retry.addEventListener("click", () => retry(item));
    return el;
  }

  function setBar(item, fraction) {
    const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    item.el.fill.style.width = `${pct}%`;
    item.el.bar.setAttribute("aria-valuenow", String(pct));
  }

  function show(item, state, message) {
    item.state = state;
    const el = item.el;
    el.row.dataset.state = state;
    el.status.className = `status ${state}`;
    el.status.textContent = state === "uploading" ? `${Math.floor((item.loaded / (item.size || 1)) * 100)}%` : LABELS[state];
    el.message.textContent = message || "";
    el.retry.hidden = !(state === "failed" && item.retryable);
    if (FINAL.has(state)) setBar(item, 1);
    else if (state === "uploading") setBar(item, item.loaded / (item.size || 1));
    else if (state !== "checking") setBar(item, 0);
    renderOverall();
  }

  function showThumb(item) {
    if (!item.photoId || item.el.thumb.querySelector("img")) return;
    const img = document.createElement("img");
    img.alt = "";
    img.loading = "lazy";
    img.decoding = "async";
    img.src = thumbUrl.replace(/\/0\/thumb$/, `/${item.photoId}/thumb`) + (item.sha ? `?v=${item.sha.slice(0, 16)}` : "");
    img.addEventListener("error", () => img.remove());
    item.el.thumb.appendChild(img);
  }

  function noteSent(bytes) {
    if (bytes <= 0) return;
    sentBytes += bytes;
    const now = performance.now();
    speedSamples.push([now, sentBytes]);
    while (speedSamples.length > 2 && now - speedSamples[0][0] > 8000) speedSamples.shift();
  }

  function speedText(remaining) {
    if (speedSamples.length < 2) return "";
    const [t0, b0] = speedSamples[0];
    const [t1, b1] = speedSamples[speedSamples.length - 1];
    if (t1 - t0 < 1500 || performance.now() - t1 > 5000) return "";
    const rate = (b1 - b0) / ((t1 - t0) / 1000);
    const seconds = remaining / rate;
    const left = seconds < 60 ? "less than a minute left" : `about ${Math.round(seconds / 60)} min left`;
    return `${formatBytes(rate)}/s · ${left}`;
  }

  function renderOverall() {
    const counts = { imported: 0, duplicate: 0, failed: 0 };
    let total = 0;
    let done = 0;
    let retryable = 0;
    let remaining = 0;
    for (const item of items) {
      total += item.size || 1;
      if (FINAL.has(item.state)) {
        counts[item.state] += 1;
        done += item.size || 1;
        if (item.state === "failed" && item.retryable) retryable += 1;
      } else {
        if (item.state === "uploading" || item.state === "processing") done += item.loaded;
        remaining += item.size - item.loaded;
      }
    }
    const finished = counts.imported + counts.duplicate + counts.failed;
    const pct = total ? Math.floor((done / total) * 100) : 0;
    const busy = finished < items.length;
    queue.hidden = items.length === 0;
    queue.dataset.state = busy ? "busy" : "done";
    const speed = busy ? speedText(remaining) : "";
    overallPct.textContent = speed ? `${speed} · ${pct}%` : `${pct}%`;
    overallBar.firstElementChild.style.width = `${pct}%`;
    overallBar.setAttribute("aria-valuenow", String(pct));
    if (!busy) overallText.textContent = `Done: ${items.length} ${items.length === 1 ? "file" : "files"}`;
    else if (!navigator.onLine) overallText.textContent = "Offline: uploads go on when the connection is back";
    else overallText.textContent = `Uploading: ${finished} of ${items.length} done`;
    countsEl.replaceChildren(
      ...[
        ["imported", `${counts.imported} imported`],
        ["duplicate", `${counts.duplicate} already there`],
        ["failed", `${counts.failed} failed`],
      ]
        .filter(([state]) => counts[state] > 0)
        .map(([state, text]) => {
          const chip = document.createElement("span");
          chip.className = `status ${state}`;
          chip.textContent = text;
          return chip;
        }),
    );
    retryAll.hidden = retryable === 0;
    clearDone.hidden = finished === 0;
    if (libraryLink) libraryLink.hidden = busy || counts.imported === 0;
  }

  // --- the pipeline: hash -> check -> upload ---------------------------------------------------

  function addFiles(files, skipped) {
    const batch = {
      caption: form.elements.caption.value.trim(),
      trip: form.elements.trip.value.trim(),
      onePost: form.elements.mode.value === "one",
      postId: null,
      inflight: 0,
    };
    const fragment = document.createDocumentFragment();
    for (const file of files) {
      const item = { file, batch, name: file.name, size: file.size, state: "waiting", sha: null, loaded: 0,
        attempts: 0, retryable: false, photoId: null, timer: null };
      item.el = makeRow(item);
      items.push(item);
      fragment.appendChild(item.el.row);
      if (file.size > maxBytes - FORM_OVERHEAD) {
        finish(item, "failed", `Too large (${formatBytes(file.size)}): this journal takes files up to ` +
          `${formatBytes(maxBytes - FORM_OVERHEAD)}.`);
      } else {
        show(item, "waiting", "");
        hashQueue.push(item);
      }
    }
    list.appendChild(fragment);
    notice.textContent = skipped ? `${skipped} ${skipped === 1 ? "file was" : "files were"} left out: not photos.` : "";
    notice.hidden = !skipped;
    renderOverall();
    hashNext();
  }

  async function hashNext() {
    if (hashing) return;
    hashing = true;
    while (hashQueue.length) {
      const item = hashQueue.shift();
      show(item, "checking", "Checking whether your journal has it already…");
      try {
        item.sha = await sha256File(item.file, (fraction) => setBar(item, fraction));
      } catch (err) {
        item.retryable = true;
        finish(item, "failed", "Could not read this file on your device. Choose it again, or press Retry.");
        continue;
      }
      pendingCheck.push(item);
      if (pendingCheck.length >= CHECK_BATCH || (active === 0 && checksInFlight === 0)) flushCheck();
    }
    hashing = false;
    flushCheck();
  }

  async function flushCheck() {
    if (!pendingCheck.length) return;
    const batch = pendingCheck;
    pendingCheck = [];
    checksInFlight += 1;
    const known = await askKnown(batch.map((item) => item.sha));
    checksInFlight -= 1;
    for (const item of batch) {
      if (known[item.sha] !== undefined) {
        item.photoId = known[item.sha];
        finish(item, "duplicate", "Already in your journal: not uploaded again.");
      } else {
        show(item, "ready", "Waiting for a free connection…");
      }
    }
    pump();
  }

  async function askKnown(hashes) {
    // A failed check is not fatal: the server recognises duplicates on upload too.
    for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
      await online(); // waiting for the network does not use up tries
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 30000);
      try {
        const response = await fetch(checkUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
          body: JSON.stringify({ sha256: hashes }),
          signal: controller.signal,
        });
        if (response.ok) return (await response.json()).known || {};
        if (response.status < 500) return {};
      } catch (err) {
        // network error or timeout: try again below
      } finally {
        clearTimeout(timer);
      }
      if (attempt < RETRY_DELAYS_MS.length) await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
    }
    return {};
  }

  function online() {
    if (navigator.onLine) return Promise.resolve();
    return new Promise((resolve) => window.addEventListener("online", () => resolve(), { once: true }));
  }

  function canStart(item) {
    const batch = item.batch;
    // "One post for all": the first photo creates the post, the others then join it.
    return item.state === "ready" && (!batch.onePost || batch.postId !== null || batch.inflight === 0);
  }

  function pump() {
    if (!navigator.onLine) {
      renderOverall();
      return;
    }
    for (const item of items) {
      if (active >= PARALLEL) break;
      if (canStart(item)) send(item);
    }
    renderOverall();
  }

  function send(item) {
    const batch = item.batch;
    active += 1;
    batch.inflight += 1;
    item.attempts += 1;
    item.loaded = 0;
    const data = new FormData();
    data.append("caption", batch.caption);
    data.append("trip", batch.trip);
    data.append("mode", batch.onePost ? "one" : "each");
    if (batch.postId !== null) data.append("post", String(batch.postId));
    data.append("sha256", item.sha);
    data.append("file", item.file, item.name);

    const xhr = new XMLHttpRequest();
    let timer = null;
    let why = "";
    const watch = (ms, reason) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        why = reason;
        xhr.abort();
      }, ms);
    };
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      active -= 1;
      batch.inflight -= 1;
      return true;
    };
    xhr.upload.addEventListener("progress", (event) => {
      watch(STALL_MS, "The connection stalled.");
      if (event.lengthComputable && event.total) {
        const loaded = (event.loaded / event.total) * item.size;
        noteSent(loaded - item.loaded);
        item.loaded = loaded;
      }
      show(item, "uploading", `${formatBytes(item.loaded)} of ${formatBytes(item.size)} sent`);
    });
    xhr.upload.addEventListener("load", () => {
      watch(PROCESSING_MS, "The server took too long to answer.");
      item.loaded = item.size;
      show(item, "processing", "Sent. Making thumbnails…");
    });
    xhr.addEventListener("load", () => {
      if (settle()) answer(item, xhr.status, parseJson(xhr.responseText));
    });
    xhr.addEventListener("error", () => {
      if (settle()) retryLater(item, "The connection dropped.");
    });
    xhr.addEventListener("abort", () => {
      if (settle()) retryLater(item, why || "The upload was interrupted.");
    });
    xhr.open("POST", uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    watch(STALL_MS, "The connection stalled.");
    show(item, "uploading", "Starting…");
    xhr.send(data);
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (err) {
      return null;
    }
  }

  function answer(item, status, body) {
    const result = body && Array.isArray(body.results) ? body.results[0] : null;
    const reason = body && typeof body.error === "string" ? body.error : "";
    if (status === 200 && result) {
      applyResult(item, result);
    } else if (status === 413) {
      finish(item, "failed", reason || "Too large for this journal.");
    } else if (status === 401) {
      item.retryable = true;
      finish(item, "failed", "You were signed out. Sign in again in another tab, then press Retry.");
    } else if (status === 0 || status === 408 || status === 429 || status >= 500) {
      retryLater(item, `The server answered ${status || "nothing"}.`);
    } else {
      item.retryable = true;
      finish(item, "failed", reason || `The server refused the upload (${status}).`);
    }
    pump();
  }

  function applyResult(item, result) {
    const batch = item.batch;
    item.sha = result.sha256 || item.sha;
    // A "duplicate" answer to a retry means an earlier try of this very file got through.
    const stored = result.status === "imported" || (result.status === "duplicate" && item.attempts > 1);
    if (stored && batch.onePost && batch.postId === null && result.post) batch.postId = result.post;
    if (result.id) item.photoId = result.id;
    let where = "";
    if (result.position_source === "track") where = " Placed on your GPS track.";
    else if (result.position_source === "track-nearest") where = " Placed at the nearest point of your GPS track.";
    else if (result.not_placed) where = ` No position from your tracks: ${result.not_placed}.`;
    else if (result.note) where = ` Track: ${result.note}.`;
    const added = batch.trip ? `Added to your journal, trip “${batch.trip}”.` : "Added to your journal.";
    if (stored) finish(item, "imported", added + where);
    else if (result.status === "duplicate") finish(item, "duplicate", "Already in your journal: not uploaded again.");
    else {
      item.retryable = Boolean(result.retry);
      finish(item, "failed", result.error || "Could not be imported.");
    }
  }

  function retryLater(item, reason) {
    if (!navigator.onLine) {
      item.attempts = Math.max(0, item.attempts - 1); // waiting for the network is not a failed try
      show(item, "ready", "Offline: continues when the connection is back.");
      return;
    }
    const delay = RETRY_DELAYS_MS[item.attempts - 1];
    if (delay === undefined) {
      item.retryable = true;
      finish(item, "failed", `${reason} Gave up after ${item.attempts} tries: press Retry when the connection is better.`);
      return;
    }
    const wait = delay + Math.floor(Math.random() * 1000);
    show(item, "retrying", `${reason} Trying again in ${Math.round(wait / 1000)} s…`);
    item.timer = setTimeout(() => {
      item.timer = null;
      show(item, "ready", "Waiting for a free connection…");
      pump();
    }, wait);
  }

  function finish(item, state, message) {
    item.loaded = item.size;
    show(item, state, message);
    showThumb(item);
  }

  function retry(item) {
    if (item.state !== "failed" || !item.retryable) return;
    item.attempts = 0;
    item.retryable = false;
    if (item.sha) {
      show(item, "ready", "Waiting for a free connection…");
      pump();
    } else {
      show(item, "waiting", "");
      hashQueue.push(item);
      hashNext();
    }
  }

  // --- input: picker, folder picker, drag and drop --------------------------------------------

  function isWanted(file) {
    return !file.name.startsWith(".") && (file.type.startsWith("image/") || PHOTO_NAME.test(file.name));
  }

  function take(files, filter) {
    const all = Array.from(files);
    const wanted = filter ? all.filter(isWanted) : all;
    if (all.length) addFiles(wanted, all.length - wanted.length);
  }

  function entryFiles(entry) {
    if (entry.isFile) return new Promise((resolve) => entry.file((file) => resolve([file]), () => resolve([])));
    if (!entry.isDirectory) return Promise.resolve([]);
    const reader = entry.createReader();
    const entries = [];
    return new Promise((resolve) => {
      const next = () =>
        reader.readEntries(
          (batch) => {
            if (batch.length) {
              entries.push(...batch);
              next();
            } else {
              Promise.all(entries.map(entryFiles)).then((lists) => resolve(lists.flat()));
            }
          },
          () => resolve([]),
        );
      next();
    });
  }

  function dropped(transfer) {
    const entries = Array.from(transfer.items || [])
      .filter((it) => it.kind === "file" && it.webkitGetAsEntry)
      .map((it) => it.webkitGetAsEntry())
      .filter(Boolean);
    if (!entries.length || entries.every((entry) => entry.isFile)) {
      take(transfer.files, false);
      return;
    }
    Promise.all(entries.map(entryFiles)).then((lists) => take(lists.flat(), true));
  }

  fileInput.addEventListener("change", () => {
    take(fileInput.files, false);
    fileInput.value = ""; // choosing the same files again must fire "change" again
  });
  if (folderInput && "webkitdirectory" in folderInput) {
    folderButton.hidden = false;
    folderButton.addEventListener("click", () => folderInput.click());
    folderInput.addEventListener("change", () => {
      take(folderInput.files, true);
      folderInput.value = "";
    });
  }
  form.addEventListener("submit", (event) => event.preventDefault());

  let dragDepth = 0;
  window.addEventListener("dragenter", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    dragDepth += 1;
    dropzone.classList.add("over");
  });
  window.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dropzone.classList.remove("over");
  });
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => {
    event.preventDefault(); // anywhere on the page: never let the browser navigate to the file
    dragDepth = 0;
    dropzone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) dropped(event.dataTransfer);
  });

  retryAll.addEventListener("click", () => items.filter((item) => item.state === "failed").forEach(retry));
  clearDone.addEventListener("click", () => {
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i];
      if (item.state === "imported" || item.state === "duplicate") {
        item.el.row.remove();
        items.splice(i, 1);
      }
    }
    renderOverall();
  });
  window.addEventListener("online", () => {
    flushCheck();
    pump();
  });
  window.addEventListener("offline", renderOverall);
  window.addEventListener("beforeunload", (event) => {
    if (items.some((item) => !FINAL.has(item.state))) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();

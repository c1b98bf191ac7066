// The explore page: plain JavaScript, no framework and nothing fetched but this server's API.
// Every request carries the access token the page was opened with.
"use strict";

const token = document.body.dataset.token;
const $ = (id) => document.getElementById(id);
const url = (path, params = {}) => `${path}?${new URLSearchParams({ ...params, token })}`;
let info = null;
let selected = 0;

function say(el, text, ok = false) {
  el.textContent = text;
  el.classList.toggle("ok", ok);
  el.hidden = !text;
}

// GET an image; resolves to {blob, seconds}, or throws an Error with the server's one line.
async function getImage(path, params) {
  const r = await fetch(url(path, params));
  if (!r.ok) throw new Error((await r.text()).trim() || `HTTP ${r.status}`);
  return { blob: await r.blob(), seconds: parseFloat(r.headers.get("X-Render-Seconds") || "0") };
}

async function setImage(img, path, params) {
  const { blob, seconds } = await getImage(path, params);
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  return seconds;
}

// Runs `draw` at most once at a time; calls made meanwhile collapse into one more run. draw gets
// a function telling whether a newer call is waiting (then finer work can be skipped).
function latest(draw) {
  let busy = false, again = false;
  const run = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try { await draw(() => again); say($("message"), ""); } catch (e) { say($("message"), e.message); }
    busy = false;
    if (again) { again = false; run(); }
  };
  return run;
}

async function loadInfo() {
  const r = await fetch(url("api/info"));
  if (!r.ok) throw new Error((await r.text()).trim());
  info = await r.json();
  const size = info.modality === "image" ? `, ${info.width}x${info.height}` : "";
  $("run-info").textContent = `${info.run}: ${info.modality} run${size}, ${info.backend} backend, ` +
    `${info.items.length} items, --max-memory ${info.max_memory_mib} MiB`;
}

function buildGallery() {
  const gallery = $("gallery");
  gallery.replaceChildren();
  for (const item of info.items) {
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.id = item.id;
    const pics = info.modality === "image" ? ["truth", "recon"] : ["preview"];
    for (const kind of pics) {
      const img = document.createElement("img");
      img.alt = `${item.name} ${kind}`;
      img.title = kind;
      img.src = url(`api/item/${item.id}/${kind}.png`);
      if (kind === "preview") img.className = "preview";
      card.append(img);
    }
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = item.name;
    const meta = document.createElement("div");
    meta.className = "split";
    meta.textContent = item.psnr === null ? item.split : `${item.split} · ${item.psnr.toFixed(2)} dB`;
    card.append(name, meta);
    card.addEventListener("click", () => select(item.id));
    gallery.append(card);
  }
  if (!info.items.length) $("gallery-hint").textContent = info.note || "No items: upload an image.";
  for (const id of ["walk-a", "walk-b"]) {
    const sel = $(id), keep = sel.value;
    sel.replaceChildren(...info.items.map((it) => new Option(`${it.id}: ${it.name}`, it.id)));
    if (keep !== "" && keep < info.items.length) sel.value = keep;
  }
  if (!$("walk-b").dataset.set && info.items.length > 1) { $("walk-b").value = 1; $("walk-b").dataset.set = 1; }
}

function select(id) {
  selected = id;
  for (const c of document.querySelectorAll(".card")) c.classList.toggle("selected", +c.dataset.id === id);
  const name = info.items[id] ? info.items[id].name : "";
  if (info.modality === "image") { $("zoom-name").textContent = name; resetZoom(); }
  else { $("slice-name").textContent = name; drawSlice(); updateMeshLink(); }
}

// ---- zoom: the view rectangle in coordinate space ([-1, 1]^2 is the whole image) ----
let rect = { x0: -1, y0: -1, x1: 1, y1: 1 };
let renders = 0;
const canvases = () => [$("zoom-decoder"), $("zoom-bicubic")];

function sizeCanvases() {
  const ratio = window.devicePixelRatio || 1;
  for (const c of canvases()) {
    c.style.width = c.style.height = "384px";
    c.width = c.height = Math.round(384 * ratio);
  }
}

function resetZoom() { rect = { x0: -1, y0: -1, x1: 1, y1: 1 }; drawZoom(); }

// A view is drawn coarse first (a quarter of the pixels per side: 1/16 of the work), then at
// full resolution unless the user has moved on meanwhile: the page follows the wheel at once.
const drawZoom = latest(async (moved) => {
  if (!info.items.length) return;
  const [dec, bic] = canvases();
  const view = { ...rect };
  let a;
  for (const scale of dec.width > 128 ? [4, 1] : [1]) {
    const params = { item: selected, ...view, w: dec.width / scale | 0, h: dec.height / scale | 0 };
    let b;
    [a, b] = await Promise.all([getImage("api/view.png", params), getImage("api/bicubic.png", params)]);
    for (const [canvas, got] of [[dec, a], [bic, b]]) {
      const bitmap = await createImageBitmap(got.blob);
      const ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = scale === 1;
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    }
    if (moved()) return;
  }
  renders += 1;
  dec.dataset.renders = renders;
  const zoom = 2 / (rect.x1 - rect.x0);
  $("zoom-time").textContent = `(${dec.width}x${dec.height} in ${a.seconds.toFixed(3)} s)`;
  $("zoom-rect").textContent = `x ${rect.x0.toFixed(4)} to ${rect.x1.toFixed(4)}, ` +
    `y ${rect.y0.toFixed(4)} to ${rect.y1.toFixed(4)}: zoom ${zoom.toFixed(2)}x`;
});

function clampRect(r) {
  const w = r.x1 - r.x0, h = r.y1 - r.y0;
  if (w < 1e-4 || h < 1e-4 || w > 16 || h > 16) return rect;  // too deep or too far out
  const shift = (lo, hi) => (lo < -8 ? -8 - lo : hi > 8 ? 8 - hi : 0);
  const dx = shift(r.x0, r.x1), dy = shift(r.y0, r.y1);
  return { x0: r.x0 + dx, x1: r.x1 + dx, y0: r.y0 + dy, y1: r.y1 + dy };
}

function setupZoom() {
  sizeCanvases();
  let drag = null;
  for (const c of canvases()) {
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const box = c.getBoundingClientRect();
      const fx = (e.clientX - box.left) / box.width, fy = (e.clientY - box.top) / box.height;
      const px = rect.x0 + fx * (rect.x1 - rect.x0), py = rect.y0 + fy * (rect.y1 - rect.y0);
      const k = Math.exp(Math.max(-1, Math.min(1, e.deltaY * 0.002)));
      rect = clampRect({ x0: px - (px - rect.x0) * k, x1: px + (rect.x1 - px) * k,
                         y0: py - (py - rect.y0) * k, y1: py + (rect.y1 - py) * k });
      drawZoom();
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, r: { ...rect } }; c.setPointerCapture(e.pointerId); });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const box = c.getBoundingClientRect();
      const dx = (e.clientX - drag.x) / box.width * (drag.r.x1 - drag.r.x0);
      const dy = (e.clientY - drag.y) / box.height * (drag.r.y1 - drag.r.y0);
      rect = clampRect({ x0: drag.r.x0 - dx, x1: drag.r.x1 - dx, y0: drag.r.y0 - dy, y1: drag.r.y1 - dy });
      drawZoom();
    });
    c.addEventListener("pointerup", () => { drag = null; });
  }
  $("zoom-reset").addEventListener("click", resetZoom);
}

// ---- interpolation and prior samples ----
const drawWalk = latest(async () => {
  if (!info.items.length) return;
  const t = parseFloat($("walk-t").value);
  $("walk-t-value").textContent = t.toFixed(2);
  const s = await setImage($("walk-image"), "api/interpolate.png",
    { a: $("walk-a").value, b: $("walk-b").value, t, w: 4 * info.width, h: 4 * info.height });
  $("walk-caption").textContent = `t = ${t.toFixed(2)}, ${4 * info.width}x${4 * info.height} in ${s.toFixed(3)} s`;
});

function setupWalk() {
  for (const id of ["walk-a", "walk-b", "walk-t"]) $(id).addEventListener("input", drawWalk);
  if (info.variational) {
    $("sample-figure").hidden = false;
    $("sample-button").addEventListener("click", latest(async () => {
      await setImage($("sample-image"), "api/sample.png",
        { seed: Math.floor(Math.random() * 2 ** 31), w: 4 * info.width, h: 4 * info.height });
    }));
  }
}

// ---- upload: fitted in one pass, shown at 4x beside bicubic ----
async function fitFile(file) {
  const msg = $("upload-message");
  if (!file) { say(msg, "choose an image file first"); return; }
  if (file.size > info.max_upload_bytes) {
    say(msg, `error: ${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB, over the ` +
      `${info.max_upload_bytes / 2 ** 20} MiB limit`);
    return;
  }
  say(msg, `fitting ${file.name}…`, true);
  const refine = $("upload-refine").value || "0";
  const r = await fetch(url("api/upload", { refine, name: file.name.replace(/\.[^.]*$/, "") }),
    { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
  const text = await r.text();
  if (!r.ok) { say(msg, text.trim() || `HTTP ${r.status}`); $("upload-result").hidden = true; return; }
  const item = JSON.parse(text);
  const size = { w: 4 * info.width, h: 4 * info.height, item: item.id };
  await Promise.all([setImage($("upload-decoder"), "api/view.png", size),
                     setImage($("upload-bicubic"), "api/bicubic.png", size)]);
  const steps = item.refine_steps ? ` + ${item.refine_steps} refinement steps` : " (one pass)";
  $("upload-caption").textContent = `fitted in ${item.seconds.toFixed(3)} s${steps}, ` +
    `${item.psnr.toFixed(2)} dB at ${info.width}x${info.height}; 4x`;
  say(msg, `${item.name}: fitted in ${item.seconds.toFixed(3)} s`, true);
  $("upload-result").hidden = false;
  await loadInfo();
  buildGallery();
}

function setupUpload() {
  $("upload-button").addEventListener("click", () => fitFile($("upload-file").files[0]).catch((e) => say($("upload-message"), e.message)));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    fitFile(e.dataTransfer.files[0]).catch((err) => say($("upload-message"), err.message));
  });
}

// ---- shapes: SDF slices and mesh downloads ----
const drawSlice = latest(async () => {
  if (!info.items.length) return;
  const t = parseFloat($("slice-t").value);
  $("slice-t-value").textContent = t.toFixed(2);
  await setImage($("slice-image"), "api/slice.png",
    { item: selected, axis: $("slice-axis").value, t, size: 384 });
});

function updateMeshLink() {
  const r = $("mesh-resolution").value || "64";
  $("mesh-link").href = url("api/mesh", { item: selected, resolution: r });
}

function setupShapes() {
  for (const id of ["slice-axis", "slice-t"]) $(id).addEventListener("input", drawSlice);
  $("mesh-resolution").addEventListener("input", updateMeshLink);
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function main() {
  try {
    await loadInfo();
    while (info.loading) {  // the server encodes the gallery after it starts serving
      $("gallery-hint").textContent = "loading the gallery…";
      await sleep(300);
      await loadInfo();
    }
  } catch (e) { say($("message"), e.message); return; }
  $("gallery-hint").textContent = info.modality === "image"
    ? "Truth and reconstruction at the training size; click an item to zoom into it."
    : "Shaded previews (meshed at 64^3); click an item to slice it.";
  if (info.note) say($("message"), info.note);
  const image = info.modality === "image";
  for (const el of document.querySelectorAll(image ? ".image-only" : ".shape-only")) el.hidden = false;
  buildGallery();
  if (image) { setupZoom(); setupWalk(); setupUpload(); } else setupShapes();
  select(0);
  if (image) drawWalk();
  document.body.dataset.ready = "1";
}

main();

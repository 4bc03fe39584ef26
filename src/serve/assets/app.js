// t2v serve's page: a form that queues jobs, the queue with live progress (SSE), the history
// with rerun / vary seed / downloads, and a synced side-by-side player with a parameter diff.
// No framework, no CDN: this file is embedded in the t2v binary.
"use strict";

const $ = (s) => document.querySelector(s);
// Exposed for the browser test (and the curious): every job and every progress event seen.
const t2v = (window.t2v = { jobs: new Map(), progress: new Map(), progressLog: [], selected: new Set(), models: [] });

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(j.error || r.statusText);
    e.detail = j;
    throw e;
  }
  return j;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

const PARAM_KEYS = ["prompt", "negative_prompt", "model", "width", "height", "num_frames", "fps", "num_inference_steps", "guidance_scale", "scheduler", "seed"];

function describe(p) {
  return `${p.model} · ${p.width}×${p.height} · ${p.num_frames} frames @ ${p.fps} fps · ${p.num_inference_steps} steps · ` +
    `guidance ${p.guidance_scale} · ${p.scheduler || "model's scheduler"} · seed ${p.seed}${p.random_seed ? " (random)" : ""}`;
}

function progressText(job) {
  const p = t2v.progress.get(job.id) || job.progress;
  if (!p) return job.state === "interrupted" ? "interrupted: resumes from its last checkpoint" : "";
  const eta = (s) => (s === undefined ? "" : ` · ETA ${s < 90 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min"}`);
  switch (p.phase) {
    case "load": return "loading the model";
    case "encode": return "encoding the prompt";
    case "step": {
      const per = p.s_per_step === undefined ? "" : ` · ${p.s_per_step.toFixed(2)} s/step`;
      const res = p.resumed_from ? ` (resumed at ${p.resumed_from})` : "";
      return `step ${p.step}/${p.steps}${per}${eta(p.eta_s)}${res}`;
    }
    case "decode": return `decoding frame ${p.frame}/${p.frames}${eta(p.eta_s)}`;
    case "write": return "writing the video";
    default: return p.phase || "";
  }
}

function progressFraction(job) {
  const p = t2v.progress.get(job.id) || job.progress;
  if (!p) return 0;
  if (p.phase === "step") return 0.1 + 0.75 * (p.step / Math.max(1, p.steps));
  if (p.phase === "decode") return 0.85 + 0.12 * (p.frame / Math.max(1, p.frames));
  if (p.phase === "write") return 0.98;
  return 0.05;
}

// ---------------------------------------------------------------- rendering (keyed: a card is
// made once per job and place, so videos keep playing while other jobs update)
const cards = new Map();

function queueCard(job) {
  const c = el("div", { class: "job", "data-job": job.id });
  c.title_ = el("div", { class: "title" });
  c.state_ = el("span", { class: "state" });
  c.meta_ = el("div", { class: "meta" });
  c.bar_ = el("div");
  c.text_ = el("div", { class: "meta progress-text" });
  c.err_ = el("div", { class: "error" });
  const act = (label, fn) => el("button", { type: "button", onclick: () => fn().catch(showError) }, label);
  c.append(
    el("div", {}, c.state_, " ", c.title_),
    c.meta_,
    el("div", { class: "bar" }, c.bar_),
    c.text_,
    c.err_,
    el("div", { class: "actions" },
      act("Cancel", () => api("POST", `/api/jobs/${job.id}/cancel`)),
      act("↑", () => move(job.id, -1)),
      act("↓", () => move(job.id, +1)),
      act("Duplicate", () => api("POST", `/api/jobs/${job.id}/duplicate`, {})))
  );
  return c;
}

function historyCard(job) {
  const c = el("div", { class: "job", "data-job": job.id });
  c.state_ = el("span", { class: "state" });
  c.title_ = el("div", { class: "title" });
  c.meta_ = el("div", { class: "meta" });
  c.err_ = el("div", { class: "error" });
  const pick = el("input", { type: "checkbox", title: "select for comparison", onchange: (e) => select(job.id, e.target.checked) });
  if (t2v.selected.has(job.id)) pick.checked = true;
  const act = (label, fn) => el("button", { type: "button", onclick: () => fn().catch(showError) }, label);
  const actions = el("div", { class: "actions" });
  if (job.state === "done" && job.outputs) {
    const v = el("video", { class: "job-video", src: job.outputs.mp4, muted: true, loop: true, autoplay: true, playsinline: true, controls: true, "data-job": job.id });
    v.muted = true;
    c.append(v);
    actions.append(
      act("Rerun exactly", () => api("POST", `/api/jobs/${job.id}/duplicate`, {})),
      act("Vary seed", () => api("POST", `/api/jobs/${job.id}/duplicate`, { seed: "random" })),
      el("a", { href: job.outputs.mp4 + "?download=1" }, "MP4"),
      el("a", { href: job.outputs.gif + "?download=1" }, "GIF"),
      el("a", { href: job.outputs.json + "?download=1" }, "JSON"),
      el("label", { class: "inline" }, pick, "compare"));
  } else {
    actions.append(
      act("Retry", () => api("POST", `/api/jobs/${job.id}/retry`)),
      act("Rerun from scratch", () => api("POST", `/api/jobs/${job.id}/duplicate`, {})));
  }
  c.append(el("div", {}, c.state_, " ", c.title_), c.meta_, c.err_, actions);
  return c;
}

function place(job) {
  return ["queued", "running", "interrupted"].includes(job.state) ? "queue" : "history:" + job.state;
}

function render() {
  const jobs = [...t2v.jobs.values()];
  const rank = (j) => (j.state === "running" ? -2 : j.state === "interrupted" ? -1 : j.queue_index ?? 1e9);
  const active = jobs.filter((j) => place(j) === "queue").sort((a, b) => rank(a) - rank(b) || a.id - b.id);
  const done = jobs.filter((j) => place(j) !== "queue").sort((a, b) => b.id - a.id);
  const sync = (container, list, make) => {
    const want = list.map((job) => {
      const key = job.id + "|" + place(job);
      let c = cards.get(key);
      if (!c) {
        c = make(job);
        cards.set(key, c);
      }
      c.title_.textContent = `#${job.id} ${job.params.prompt}`;
      c.state_.textContent = job.state;
      c.state_.className = "state " + job.state;
      c.meta_.textContent = describe(job.params);
      c.err_.textContent = job.error || "";
      if (c.bar_) {
        c.bar_.style.width = (100 * progressFraction(job)).toFixed(1) + "%";
        c.text_.textContent = job.state === "queued" ? `queued (${(job.queue_index ?? 0) + 1} in line)` : progressText(job);
      }
      return c;
    });
    for (const [key, c] of cards) if (c.parentNode === container && !want.includes(c)) { c.remove(); cards.delete(key); }
    want.forEach((c, i) => { if (container.children[i] !== c) container.insertBefore(c, container.children[i] || null); });
  };
  const q = $("#queue");
  q.querySelector(".empty")?.remove();
  sync(q, active, queueCard);
  if (!active.length) q.append(el("p", { class: "muted empty" }, "Nothing queued."));
  sync($("#history"), done, historyCard);
}

async function move(id, delta) {
  const j = t2v.jobs.get(id);
  if (!j || j.queue_index === null || j.queue_index === undefined) return;
  await api("POST", `/api/jobs/${id}/move`, { index: Math.max(0, j.queue_index + delta) });
  await reload();
}

function showError(e) {
  const box = $("#form-error");
  box.hidden = false;
  box.textContent = e.message + (e.detail && e.detail.plan ? "\n\nmemory plan:\n" + e.detail.plan : "");
}

// ---------------------------------------------------------------- compare
function select(id, on) {
  if (on) t2v.selected.add(id); else t2v.selected.delete(id);
  const n = t2v.selected.size;
  $("#compare-btn").disabled = n < 2 || n > 4;
  $("#compare-btn").textContent = n > 4 ? "Compare (2–4 runs)" : `Compare selected (${n})`;
}

function openCompare() {
  const jobs = [...t2v.selected].map((id) => t2v.jobs.get(id)).filter((j) => j && j.outputs);
  const box = $("#compare-videos");
  box.replaceChildren();
  const vids = jobs.map((j) => {
    const v = el("video", { src: j.outputs.mp4, muted: true, playsinline: true, preload: "auto" });
    v.muted = true;
    box.append(el("div", {}, v, el("div", { class: "meta" }, `#${j.id} · seed ${j.params.seed}`)));
    return v;
  });
  const table = $("#compare-diff");
  table.replaceChildren(el("tr", {}, el("th", {}, "parameter"), ...jobs.map((j) => el("th", {}, `#${j.id}`))));
  for (const k of PARAM_KEYS) {
    const vals = jobs.map((j) => String(j.params[k] ?? ""));
    const differs = new Set(vals).size > 1;
    table.append(el("tr", { class: differs ? "differs" : "" }, el("td", {}, k), ...vals.map((v) => el("td", {}, v))));
  }
  // One clock: the first video leads, the others follow it (and loop with it).
  const lead = vids[0];
  const follow = () => {
    for (const v of vids.slice(1)) {
      const t = Math.min(lead.currentTime, (v.duration || Infinity) - 0.001);
      if (Math.abs(v.currentTime - t) > 0.04) v.currentTime = t;
    }
    if (lead.duration) $("#compare-seek").value = Math.round((1000 * lead.currentTime) / lead.duration);
  };
  lead.addEventListener("timeupdate", follow);
  lead.addEventListener("ended", () => { vids.forEach((v) => { v.currentTime = 0; v.play(); }); });
  $("#compare-play").onclick = () => {
    if (lead.paused) { follow(); vids.forEach((v) => v.play()); $("#compare-play").textContent = "Pause"; }
    else { vids.forEach((v) => v.pause()); $("#compare-play").textContent = "Play"; }
  };
  $("#compare-seek").oninput = (e) => { if (lead.duration) { lead.currentTime = (e.target.value / 1000) * lead.duration; follow(); } };
  $("#compare").hidden = false;
  $("#compare").scrollIntoView();
}

// ---------------------------------------------------------------- data
let source = null;

async function reload() {
  const r = await api("GET", "/api/jobs");
  t2v.jobs = new Map(r.jobs.map((j) => [j.id, j]));
  $("#paused").checked = r.paused;
  render();
  return r.last_event_id;
}

function listen(after) {
  if (source) source.close();
  // EventSource reconnects by itself and sends Last-Event-ID: the server replays what was missed.
  source = new EventSource(`/api/events?after=${after}`);
  source.addEventListener("job", (e) => {
    const j = JSON.parse(e.data);
    t2v.jobs.set(j.id, j);
    if (j.state !== "running") t2v.progress.delete(j.id);
    render();
  });
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    t2v.progressLog.push(p);
    t2v.progress.set(p.job, p);
    const j = t2v.jobs.get(p.job);
    if (j) { j.progress = p; render(); }
  });
  source.addEventListener("queue", () => reload());
  source.addEventListener("resync", () => reload());
}

function formRequest() {
  const num = (id) => Number($("#" + id).value);
  const req = {
    prompt: $("#prompt").value,
    negative_prompt: $("#negative_prompt").value,
    model: $("#model").value,
    width: num("width"), height: num("height"),
    num_frames: num("num_frames"), fps: num("fps"),
    num_inference_steps: num("num_inference_steps"),
    guidance_scale: num("guidance_scale"),
    scheduler: $("#scheduler").value || null,
  };
  if (!$("#random_seed").checked) req.seed = num("seed");
  return req;
}

async function init() {
  const info = await api("GET", "/api/info");
  $("#adapter").textContent = `${info.adapter} · ${info.driver} ${info.driver_info} · t2v ${info.t2v_version}`;
  const { models } = await api("GET", "/api/models");
  t2v.models = models;
  const sel = $("#model");
  for (const m of models) sel.append(el("option", { value: m.name }, m.name + (m.available ? "" : " (downloads on first use)")));
  const pickModel = () => {
    const m = models.find((x) => x.name === sel.value);
    if (!m) return;
    // The model family's own defaults (Wan: 832×480, 81 frames at 16 fps, 50 steps, guidance 5).
    for (const k of ["width", "height", "num_frames", "fps", "num_inference_steps", "guidance_scale"]) $("#" + k).value = m[k];
    $("#model-about").textContent = m.about;
  };
  sel.addEventListener("change", pickModel);
  pickModel();
  $("#random_seed").addEventListener("change", (e) => { $("#seed").disabled = e.target.checked; });
  $("#paused").addEventListener("change", (e) => api("POST", "/api/queue", { paused: e.target.checked }).catch(showError));
  $("#form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#form-error").hidden = true;
    try {
      const job = await api("POST", "/api/jobs", formRequest());
      t2v.jobs.set(job.id, job);
      // The seed used is shown and kept (random or not).
      $("#seed").value = job.params.seed;
      render();
    } catch (err) {
      showError(err);
    }
  });
  $("#compare-btn").addEventListener("click", openCompare);
  $("#compare-close").addEventListener("click", () => { $("#compare").hidden = true; $("#compare-videos").replaceChildren(); });
  listen(await reload());
}

init().catch(showError);

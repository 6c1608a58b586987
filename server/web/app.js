// The blipcuda search page: text → images through POST /v1/search, and a
// dropped photo → ranked captions (POST /v1/rerank) and similar images
// (POST /v1/search with an image). No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem("blipcuda-key") || "";

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers.Authorization = "Bearer " + apiKey;
  const resp = await fetch(path, body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) {
    $("key").hidden = false;
    $("apikey").focus();
    throw new Error("this server needs an API key: enter it above and search again");
  }
  if (!resp.ok) throw new Error((data.error && data.error.message) || ("HTTP " + resp.status));
  return data;
}

function status(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "muted";
}

function fmt(x) { return (x >= 0 ? "" : "−") + Math.abs(x).toFixed(3); }

// imageURL fetches an indexed image with the key (an <img> cannot send
// headers), or links it directly when no key is needed.
async function imageURL(url) {
  if (!apiKey) return url;
  const resp = await fetch(url, { headers: { Authorization: "Bearer " + apiKey } });
  return URL.createObjectURL(await resp.blob());
}

async function showResults(res, label) {
  const grid = $("results");
  grid.replaceChildren();
  res.results.forEach(async (r, i) => {
    const fig = document.createElement("figure");
    fig.className = "result";
    fig.dataset.path = r.path;
    const img = document.createElement("img");
    img.alt = r.path;
    img.loading = "lazy";
    const cap = document.createElement("figcaption");
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = "#" + (i + 1);
    const score = document.createElement("span");
    score.className = "score";
    score.title = r.itm_prob !== undefined ? `P(match) ${r.itm_prob.toFixed(3)} · ITC ${r.itc.toFixed(3)}` : `ITC ${r.itc.toFixed(3)}`;
    score.textContent = res.score + " " + fmt(r.score);
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = r.path;
    cap.append(rank, score, path);
    fig.append(img, cap);
    grid.append(fig);
    img.src = await imageURL(r.image_url);
  });
  status(`${res.results.length} of ${res.collection} images for ${label} (ranked by ${res.score}` +
    (res.score === "itc" ? ")" : `, re-ranking the ${res.k} best by ITC)`) + (res.skipped ? `; ${res.skipped} unreadable skipped` : ""));
}

async function search(ev) {
  ev.preventDefault();
  apiKey = $("apikey").value || apiKey;
  if (apiKey) sessionStorage.setItem("blipcuda-key", apiKey);
  const q = $("q").value.trim();
  if (!q) return;
  status("Searching…");
  $("captions-out").hidden = true;
  try {
    const res = await api("/v1/search", { query: q, top_k: 24, score: $("score").value });
    document.body.dataset.state = "results";
    await showResults(res, `“${q}”`);
  } catch (e) {
    status(e.message, true);
  }
}

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(fr.result);
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(file);
  });
}

async function photo(file) {
  if (!file) return;
  status("Reading the photo…");
  try {
    const data = await readAsDataURL(file);
    const captions = $("captions").value.split("\n").map((s) => s.trim()).filter(Boolean);
    const [ranked, similar] = await Promise.all([
      captions.length ? api("/v1/rerank", { image: data, documents: captions }) : null,
      api("/v1/search", { image: data, top_k: 24 }),
    ]);
    const list = $("caption-list");
    list.replaceChildren();
    if (ranked) {
      for (const r of ranked.results) {
        const li = document.createElement("li");
        li.textContent = r.document.text;
        const s = document.createElement("span");
        s.className = "score";
        s.textContent = `${ranked.score} ${fmt(r.relevance_score)} · P(match) ${r.itm_prob.toFixed(3)} · ITC ${fmt(r.itc)}`;
        li.append(s);
        list.append(li);
      }
    }
    $("captions-out").hidden = !ranked;
    await showResults(similar, `the photo ${file.name}`);
  } catch (e) {
    status(e.message, true);
  }
}

async function init() {
  $("search").addEventListener("submit", search);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); photo(e.dataTransfer.files[0]); });
  $("file").addEventListener("change", (e) => photo(e.target.files[0]));
  try {
    const models = await api("/v1/models");
    const m = models.data[0];
    $("about").textContent = `${m.id} · ${m.device} · ${m.precision} · protocol ${m.protocol}`;
  } catch (e) {
    $("about").textContent = e.message;
  }
}

init();

// stepsound live dashboard: shows the session's snapshots pushed over server-sent events.
// Written for this project; no library, nothing loaded from elsewhere.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const meta = (name) => { const m = document.querySelector(`meta[name="${name}"]`); return m ? m.content : ""; };
  const TOKEN = meta("stepsound-token");
  const CSRF = meta("stepsound-csrf");
  const withToken = (path) => TOKEN ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}` : path;
  const WORDS = {speed_up: "SPEED UP", slow_down: "SLOW DOWN", on_target: "ON TARGET", land_softer: "LAND SOFTER",
                 warmup: "WARM-UP", measuring: "MEASURING", paused: "CUES PAUSED", no_steps: "NO STEPS",
                 ended: "SESSION ENDED"};
  const STALE_MS = 2500;
  let last = null;          // the newest snapshot shown
  let lastAt = 0;           // when it came (performance.now())
  let ended = false;
  let source = null;

  const fmtTime = (s) => {
    s = Math.max(0, Math.floor(s || 0));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
  };
  const signed = (v, digits) => (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(digits);

  function setConn(state, text) {
    document.body.dataset.conn = state;
    $("conn").textContent = text;
  }

  function show(st) {
    last = st; lastAt = performance.now();
    const body = document.body;
    body.dataset.seq = String(st.seq);
    body.dataset.cue = st.cue;
    $("cue-word").textContent = st.cue_word || WORDS[st.cue] || st.cue;
    $("cue-use").setAttribute("href", `#shape-${WORDS[st.cue] ? st.cue : "none"}`);
    $("spm").textContent = st.cadence_spm == null ? "---" : String(Math.round(st.cadence_spm));
    $("target-spm").textContent = st.target_spm == null ? "—" : String(Math.round(st.target_spm));
    const diff = $("diff");
    if (st.diff_spm == null) {
      diff.textContent = "—"; diff.className = "val";
    } else {
      const d = Math.round(st.diff_spm);
      diff.textContent = d === 0 ? "±0" : signed(d, 0);
      const inBand = st.band_spm != null && Math.abs(st.diff_spm) <= st.band_spm;
      diff.className = "val " + (inBand ? "on" : "off");
    }
    $("elapsed").textContent = fmtTime(st.elapsed_s);
    $("steps").textContent = String(st.steps);
    $("heavy").textContent = st.heavy_share == null ? "—" : `${Math.round(100 * st.heavy_share)}%`;
    $("metronome").textContent = st.metronome_on ? "ON" : "off";
    $("xruns").textContent = String(st.xruns);
    $("xruns-fact").classList.toggle("bad", st.xruns > 0);
    drawSteps(st.last_steps || []);
    drawTrace(st.trace || [], st.band_spm, st.target_spm);
    // controls
    const running = st.state === "running";
    const pause = $("pause");
    pause.disabled = !running;
    pause.textContent = st.cues_paused ? "Resume cues" : "Pause cues";
    pause.setAttribute("aria-pressed", st.cues_paused ? "true" : "false");
    $("nudge-up").disabled = $("nudge-down").disabled = !running || st.target_spm == null;
    if (st.state === "ended") {
      ended = true;
      setConn("ended", "session ended");
    } else {
      setConn("live", "live");
    }
  }

  function drawSteps(steps) {
    const ol = $("last-steps");
    const items = steps.slice(-6).reverse().map((s) => {
      const li = document.createElement("li");
      if (s.heavy) li.className = "heavy";
      const db = document.createElement("span");
      db.className = "db";
      db.textContent = s.impact_db == null ? "—" : `${signed(s.impact_db, 0)} dB`;
      const m = document.createElement("span");
      m.className = "meta";
      const parts = [];
      if (s.side) parts.push(s.side === "L" ? "left" : s.side === "R" ? "right" : s.side);
      if (s.strike && s.strike !== "uncertain") parts.push(s.strike === "heel" ? "heel first" : s.strike);
      else if (s.strike === "uncertain") parts.push("strike unsure");
      m.textContent = parts.join(" · ") || "step";
      if (s.heavy) {
        const flag = document.createElement("span");
        flag.className = "flag";
        flag.textContent = "▲ HEAVY";
        li.append(db, flag, m);
      } else {
        li.append(db, m);
      }
      return li;
    });
    ol.replaceChildren(...items);
  }

  function drawTrace(trace, band, target) {
    const W = 600, H = 200, SPAN = 300;
    const pts = trace.filter((p) => p[1] != null);
    if (!pts.length) {
      $("trace-line").setAttribute("d", ""); $("trace-band").setAttribute("d", ""); $("trace-target").setAttribute("d", "");
      return;
    }
    const tEnd = Math.max(pts[pts.length - 1][0], SPAN), t0 = tEnd - SPAN;
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); if (p[2] != null) { lo = Math.min(lo, p[2] * 0.95); hi = Math.max(hi, p[2] * 1.05); } }
    if (hi - lo < 20) { const mid = (hi + lo) / 2; lo = mid - 10; hi = mid + 10; }
    lo = Math.floor(lo / 5) * 5; hi = Math.ceil(hi / 5) * 5;
    const x = (t) => ((t - t0) / SPAN * W).toFixed(1);
    const y = (v) => (H - (v - lo) / (hi - lo) * H).toFixed(1);
    $("trace-line").setAttribute("d", pts.map((p, i) => `${i ? "L" : "M"}${x(p[0])} ${y(p[1])}`).join(" "));
    const withTarget = pts.filter((p) => p[2] != null);
    if (withTarget.length) {
      const frac = band != null && target ? band / target : 0.03;
      const upper = withTarget.map((p, i) => `${i ? "L" : "M"}${x(p[0])} ${y(p[2] * (1 + frac))}`);
      const lower = withTarget.slice().reverse().map((p) => `L${x(p[0])} ${y(p[2] * (1 - frac))}`);
      $("trace-band").setAttribute("d", upper.concat(lower).join(" ") + " Z");
      $("trace-target").setAttribute("d", withTarget.map((p, i) => `${i ? "L" : "M"}${x(p[0])} ${y(p[2])}`).join(" "));
    } else {
      $("trace-band").setAttribute("d", ""); $("trace-target").setAttribute("d", "");
    }
    $("trace-range").textContent = `${lo}–${hi} steps/min`;
  }

  function connect() {
    source = new EventSource(withToken("/api/events"));
    source.onmessage = (ev) => { try { show(JSON.parse(ev.data)); } catch (e) { /* a bad frame: wait for the next */ } };
    source.addEventListener("end", () => {
      ended = true; setConn("ended", "session ended");
      document.body.dataset.cue = "ended";
      $("cue-word").textContent = WORDS.ended; $("cue-use").setAttribute("href", "#shape-ended");
      $("pause").disabled = $("nudge-up").disabled = $("nudge-down").disabled = true;
      source.close();
    });
    source.onerror = () => { if (!ended) setConn("lost", "reconnecting…"); };
  }

  setInterval(() => {
    if (!ended && last && performance.now() - lastAt > STALE_MS && document.body.dataset.conn === "live") {
      setConn("stale", "no data");
    }
  }, 500);

  async function control(body) {
    const msg = $("control-msg");
    try {
      const res = await fetch(withToken("/api/control"), {
        method: "POST", credentials: "omit", cache: "no-store",
        headers: {"Content-Type": "application/json", "X-Stepsound-CSRF": CSRF},
        body: JSON.stringify(body)});
      const doc = await res.json().catch(() => ({}));
      msg.textContent = res.ok ? "" : (doc.error || `refused (${res.status})`);
    } catch (e) {
      msg.textContent = "not sent: no connection";
    }
  }
  $("pause").addEventListener("click", () => control({action: last && last.cues_paused ? "resume_cues" : "pause_cues"}));
  $("nudge-up").addEventListener("click", () => control({action: "nudge_target", delta_spm: 1}));
  $("nudge-down").addEventListener("click", () => control({action: "nudge_target", delta_spm: -1}));

  // keep the screen on while the page is shown (where the browser allows it: secure contexts)
  let lock = null;
  async function keepAwake() {
    if (!("wakeLock" in navigator)) { $("awake").textContent = "may sleep"; return; }
    try {
      lock = await navigator.wakeLock.request("screen");
      $("awake").textContent = "stays on";
      lock.addEventListener("release", () => { $("awake").textContent = "may sleep"; });
    } catch (e) {
      $("awake").textContent = "may sleep";
    }
  }
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") keepAwake(); });
  document.addEventListener("click", () => { if (!lock || lock.released) keepAwake(); }, {passive: true});
  $("fullscreen").addEventListener("click", () => {
    const el = document.documentElement;
    if (document.fullscreenElement) document.exitFullscreen();
    else if (el.requestFullscreen) el.requestFullscreen().catch(() => {});
  });

  keepAwake();
  connect();
})();

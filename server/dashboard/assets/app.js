/* grayzone live dashboard. Plain JavaScript, no build step: it reads the
 * server-sent events of /v1/events (a snapshot, then a tick a second), keeps
 * at most an hour of points per resource, and draws the page from that. */
'use strict';

(function () {
  const MAX_POINTS = 3600; // one hour at one point a second, per resource
  const MAX_AUDIT = 300;
  const MAX_SPANS = 200;
  const TOKEN_KEY = 'grayzone.token'; // sessionStorage: this tab only, never the URL
  const PHASES = [
    ['idle', 'watching'],
    ['shifting', 'shifting traffic'],
    ['shifted', 'shifted · waiting for recovery'],
    ['restoring', 'restoring capacity'],
    ['ramping', 'giving traffic back in steps'],
    ['ending', 'ending the shift'],
  ];

  const $ = function (id) { return document.getElementById(id); };
  const readOnly = document.body.dataset.readonly || '';

  const S = {
    res: new Map(),   // resource name -> state (points, spans, alarms)
    status: null,
    now: 0,           // server time, ms
    shifts: [], practices: [], audit: [], maxSeq: 0,
    selected: sessionStorage.getItem('grayzone.resource') || '',
    windowSec: 900,
    conn: 'connecting', lastMsgAt: 0, lastId: '', error: '',
    needsToken: false,
    dirty: { shifts: true, practices: true, audit: true, alarms: true, controls: true },
  };
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let charts = null; // { name, zones, avail, lat }
  let pendingRender = false;
  const openAlarms = new Map(); // alarm name -> open, as the user left it

  // ---- DOM helpers (text only: nothing from the server becomes markup)

  function el(tag, attrs) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k === 'zone') e.style.setProperty('--zone', v);
        else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : v);
      }
    }
    for (let i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function append(e, kid) {
    if (kid == null || kid === false) return;
    if (Array.isArray(kid)) { kid.forEach(function (k) { append(e, k); }); return; }
    e.append(kid instanceof Node ? kid : String(kid));
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

  function fmtTime(t) {
    if (!t) return '–';
    const d = typeof t === 'number' ? new Date(t) : new Date(t);
    const today = new Date(S.now || Date.now());
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    if (d.toDateString() === today.toDateString()) return time;
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
  }
  function fmtAgo(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60 ? (s % 60) + ' s' : '');
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  }
  function fmtInt(n) { return Number(n || 0).toLocaleString('en-US'); }

  // ---- state

  function resource(name) {
    let r = S.res.get(name);
    if (!r) {
      r = { name: name, zones: [], x: [], cols: {}, spans: new Map(), target: 0.99, thresholds: {}, alarms: [], lastT: 0, rs: null };
      S.res.set(name, r);
    }
    return r;
  }

  function addZone(r, z) {
    if (r.cols[z]) return;
    const pad = function () { return r.x.map(function () { return null; }); };
    r.cols[z] = { a: pad(), ca: pad(), p: pad(), cp: pad() };
    r.zones.push(z);
    if (charts && charts.name === r.name) destroyCharts(); // rebuilt with the new series
  }

  function addPoints(r, points) {
    for (const p of points) {
      if (p.t <= r.lastT) continue; // a resume may repeat a few
      r.lastT = p.t;
      const zs = p.zones || [];
      zs.forEach(function (zp) { addZone(r, zp.zone); });
      r.x.push(p.t / 1000);
      for (const z of r.zones) {
        const zp = zs.find(function (q) { return q.zone === z; });
        const c = r.cols[z];
        // No requests in the window is no data, not 100 %.
        c.a.push(zp && zp.requests > 0 ? zp.availability * 100 : null);
        c.ca.push(zp && zp.canary_availability >= 0 ? zp.canary_availability * 100 : null);
        c.p.push(zp && zp.p99_ms > 0 ? zp.p99_ms : null);
        c.cp.push(zp && zp.canary_p99_ms > 0 ? zp.canary_p99_ms : null);
      }
    }
    const extra = r.x.length - MAX_POINTS;
    if (extra > 0) {
      r.x.splice(0, extra);
      for (const z of r.zones) {
        const c = r.cols[z];
        c.a.splice(0, extra); c.ca.splice(0, extra); c.p.splice(0, extra); c.cp.splice(0, extra);
      }
    }
  }

  function mergeSpans(r, spans) {
    for (const s of spans) r.spans.set(s.kind + '|' + s.zone + '|' + s.from, s);
    const oldest = (S.now || Date.now()) - MAX_POINTS * 1000;
    for (const [k, s] of r.spans) if (s.to != null && s.to < oldest) r.spans.delete(k);
    if (r.spans.size > MAX_SPANS) {
      const keys = Array.from(r.spans.keys()).sort(function (a, b) { return r.spans.get(a).from - r.spans.get(b).from; });
      keys.slice(0, r.spans.size - MAX_SPANS).forEach(function (k) { r.spans.delete(k); });
    }
  }

  function onMessage(data) {
    let m;
    try { m = JSON.parse(data); } catch (e) { return; }
    S.lastMsgAt = Date.now();
    if (m.reset) {
      S.res.clear(); S.audit = []; S.maxSeq = 0;
      destroyCharts();
      S.dirty.audit = true;
    }
    S.now = Date.parse(m.now) || Date.now();
    S.error = m.error || '';
    if (m.status) {
      S.status = m.status;
      for (const rs of m.status.resources || []) {
        const r = resource(rs.name);
        r.rs = rs;
        (rs.zones || []).forEach(function (z) { addZone(r, z.zone); });
      }
      if (!S.selected || !S.res.has(S.selected)) S.selected = (m.status.resources || [{}])[0].name || '';
    }
    for (const name of Object.keys(m.resources || {})) {
      const rm = m.resources[name];
      const r = resource(name);
      if (rm.availability_target != null) r.target = rm.availability_target;
      if (rm.latency_thresholds_ms) r.thresholds = rm.latency_thresholds_ms;
      addPoints(r, rm.points || []);
      mergeSpans(r, rm.spans || []);
      if (rm.alarms) { r.alarms = rm.alarms; S.dirty.alarms = true; }
    }
    if (m.shifts) { S.shifts = m.shifts; S.dirty.shifts = true; }
    if (m.practices) { S.practices = m.practices; S.dirty.practices = true; }
    const fresh = (m.audit || []).filter(function (e) { return e.seq > S.maxSeq; });
    if (fresh.length) {
      S.maxSeq = Math.max.apply(null, fresh.map(function (e) { return e.seq; }));
      S.audit = fresh.concat(S.audit).slice(0, MAX_AUDIT);
      S.dirty.audit = true;
    }
    setConn('live');
    scheduleRender();
  }

  // ---- connection

  function setConn(state) {
    if (S.conn === state) return;
    S.conn = state;
    const c = $('conn');
    c.className = 'conn ' + state.replace(/\s.*/, '');
    c.textContent = { live: 'live', reconnecting: 'reconnecting…', connecting: 'connecting…', offline: 'offline', stale: 'no updates', locked: 'token needed' }[state] || state;
  }

  function eventsURL() { return 'v1/events' + (S.lastId ? '?since=' + encodeURIComponent(S.lastId) : ''); }

  function connect() {
    if (S.needsToken) { connectFetch(); return; }
    const es = new EventSource(eventsURL());
    const handle = function (e) { if (e.lastEventId) S.lastId = e.lastEventId; onMessage(e.data); };
    es.addEventListener('snapshot', handle);
    es.addEventListener('tick', handle);
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (not a dropped stream, which EventSource retries itself):
        // find out whether reads need a token, then start over.
        setConn('offline');
        setTimeout(function () { probe().then(connect); }, 3000);
      } else {
        setConn('reconnecting');
      }
    };
  }

  // connectFetch reads the same stream with fetch, which, unlike
  // EventSource, can send the token when reads need one.
  async function connectFetch() {
    if (!token) { setConn('locked'); renderAuth(); return; }
    try {
      const resp = await fetch(eventsURL(), { headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' }, cache: 'no-store' });
      if (resp.status === 401) { setConn('locked'); flash('The server did not accept the token for reading.', true); return; }
      if (!resp.ok || !resp.body) throw new Error('HTTP ' + resp.status);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buf += chunk.value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          parseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) { /* dropped: retried below */ }
    setConn('reconnecting');
    setTimeout(connect, 2000);
  }

  function parseBlock(block) {
    let data = '', id = null;
    for (const line of block.split('\n')) {
      if (!line || line[0] === ':') continue;
      const c = line.indexOf(':');
      const f = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (f === 'data') data += (data ? '\n' : '') + v;
      else if (f === 'id') id = v;
    }
    if (id != null) S.lastId = id;
    if (data) onMessage(data);
  }

  // probe learns whether reads need a token (open_reads: false).
  async function probe() {
    try {
      const h = token ? { Authorization: 'Bearer ' + token } : {};
      const resp = await fetch('v1/status', { headers: h, cache: 'no-store' });
      S.needsToken = resp.status === 401;
    } catch (e) { /* offline: EventSource will keep trying */ }
  }

  // ---- rendering

  function scheduleRender() {
    if (pendingRender) return;
    pendingRender = true;
    requestAnimationFrame(function () { pendingRender = false; render(); });
  }

  function render() {
    const r = S.res.get(S.selected);
    renderTabs();
    renderBanner();
    renderEngine();
    $('clock').textContent = S.now ? fmtTime(S.now) : '';
    if (!r || !r.rs) {
      $('headline').textContent = S.status && !(S.status.resources || []).length ? 'No resources are configured.' : 'Waiting for the first status…';
      return;
    }
    renderStory(r);
    renderZones(r);
    renderCharts(r);
    renderWhy(r);
    if (S.dirty.alarms) { renderAlarms(r); S.dirty.alarms = false; }
    if (S.dirty.controls) { renderAuth(); renderForm(); S.dirty.controls = false; }
    if (S.dirty.shifts) { renderShifts(); S.dirty.shifts = false; }
    if (S.dirty.practices) { renderPractices(); S.dirty.practices = false; }
    if (S.dirty.audit) { renderAudit(); S.dirty.audit = false; }
  }

  function renderTabs() {
    const nav = $('resources');
    const names = Array.from(S.res.keys());
    if (nav.dataset.names === names.join(',') + '|' + S.selected) return;
    nav.dataset.names = names.join(',') + '|' + S.selected;
    clear(nav);
    if (names.length < 2) return;
    names.forEach(function (n) {
      nav.append(el('button', { type: 'button', class: n === S.selected ? 'on' : '', text: n, onclick: function () { select(n); } }));
    });
  }

  function select(name) {
    S.selected = name;
    sessionStorage.setItem('grayzone.resource', name);
    destroyCharts();
    S.dirty.alarms = S.dirty.controls = true;
    scheduleRender();
  }

  function renderBanner() {
    const b = $('banner');
    const e = S.status && S.status.engine;
    const msgs = [];
    if (S.error) msgs.push('The server reported a problem: ' + S.error);
    // The tick loop runs every resource's detection and runbook: behind, all of them detect and act late.
    if (e && e.behind) msgs.push('The engine falls behind: ' + e.why + '.');
    b.hidden = !msgs.length;
    b.textContent = msgs.join(' ');
  }

  function renderEngine() {
    const e = S.status && S.status.engine;
    const d = $('engine');
    if (!e || !e.passes) { d.textContent = ''; return; }
    d.textContent = 'engine: tick p99 ' + GZ.fmtMs(e.tick_p99_ms) + ', lag ' + (e.lag_s < 1 ? Math.round(e.lag_s * 1000) + ' ms' : e.lag_s.toFixed(1) + ' s');
    d.className = e.behind ? 'mono engine-behind' : 'muted mono';
  }

  function zoneIndex(r, z) { return Math.max(0, r.zones.indexOf(z)); }

  function detectionOf(r, zone) {
    let at = 0;
    for (const s of r.spans.values()) if (s.kind === 'detection' && s.zone === zone && s.from > at) at = s.from;
    return at;
  }

  function verdict(rs, z) {
    const excluded = (rs.excluded || []).indexOf(z.zone) >= 0;
    // A shifted zone stops getting customer requests, so the detector soon
    // loses the server-side evidence of isolation; while its canaries still
    // see it failing, it stays the zone the shift is for.
    if (z.shifted && (z.isolated || z.impacted)) {
      return { cls: 'isolated', text: 'ISOLATED — SHIFTED', sub: (z.isolated ? 'failing on its own' : 'still failing to its canaries') + '; traffic moved away' + (excluded ? '; capacity excluded' : '') };
    }
    if (z.shifted) {
      const recovering = rs.phase_zone === z.zone && rs.phase !== 'idle';
      return { cls: 'shifted', text: 'SHIFTED', sub: recovering ? 'recovered; waiting before traffic returns' : 'traffic moved away (zonal shift)' };
    }
    if (z.isolated) return { cls: 'bad', text: 'ISOLATED', sub: 'failing on its own; not shifted yet' };
    if (z.silent) return { cls: 'warn', text: 'SILENT', sub: 'its instances stopped reporting' };
    if (z.impacted && rs.regional_impact) return { cls: 'warn', text: 'IMPACTED', sub: 'part of a regional impact' };
    if (z.impacted) return { cls: 'warn', text: 'IMPACTED', sub: 'impact seen; not confirmed isolated' };
    if (!z.healthy && z.targets && z.targets.length) return { cls: 'ok', text: 'OK', sub: 'serving normally; canaries not all green' };
    return { cls: 'ok', text: 'OK', sub: 'serving normally' };
  }

  function renderStory(r) {
    const rs = r.rs;
    const zones = rs.zones || [];
    $('story-resource').textContent = 'resource ' + rs.name;
    let head, sub = '';
    const iso = zones.find(function (z) { return z.isolated; });
    const shifted = zones.find(function (z) { return z.shifted; });
    const act = rs.active_shift;
    const detected = iso ? detectionOf(r, iso.zone) : shifted ? detectionOf(r, shifted.zone) : 0;
    const parts = [];
    if (detected) parts.push('detected ' + fmtTime(detected));
    if (act) {
      const started = Date.parse(act.started_at);
      let s = act.origin + ' shift away from ' + act.away_from + ' since ' + fmtTime(started);
      if (detected && started >= detected) s += ' (' + fmtAgo(started - detected) + ' after detection)';
      parts.push(s, 'expires ' + fmtTime(act.expires_at));
    }
    if ((rs.excluded || []).length) parts.push('excluded from the instance group: ' + rs.excluded.join(', '));
    if ((rs.pending_actions || []).length) parts.push('in progress: ' + rs.pending_actions.join(', '));
    if (rs.fail_static) {
      // grayzone doubts its own view: say so before anything it would conclude.
      head = 'grayzone cannot trust its own view (' + rs.fail_static.reason.replace('_', ' ') + ' since ' + fmtTime(Date.parse(rs.fail_static.since)) +
        '): ' + rs.fail_static.why + '. It keeps what is in force: no new shift starts and no shift ends on its own until this clears.';
    } else if (rs.regional_impact) {
      head = 'More than one zone is impacted: a regional problem. grayzone does not shift — moving traffic would not help.';
    } else if (iso && iso.shifted) {
      head = iso.zone + ' is failing on its own. Its traffic has been shifted to the other zones.';
    } else if (iso) {
      head = iso.zone + ' is failing on its own. ' + ({
        enabled: 'grayzone is shifting traffic away from it.',
        disabled: 'Autoshift is off here: shift it away from this page.',
        dry_run: 'Autoshift is in dry-run: it records the decision but shifts nothing.',
        approval: 'The decision waits for an operator\'s approval.',
      }[rs.autoshift] || '');
    } else if (shifted && (shifted.impacted || !shifted.healthy)) {
      head = shifted.zone + ' is still impaired. Its traffic stays shifted to the other zones.';
    } else if (shifted) {
      head = shifted.zone + ' looks healthy again; its traffic is still shifted away' +
        (rs.phase === 'ramping' ? ' in steps: returning ' + (rs.returning_percent || 0) + ' %.' :
          rs.phase === 'shifted' || rs.phase === 'restoring' || rs.phase === 'ending' ? ' and grayzone is bringing it back.' : ' until the shift ends.');
    } else if (zones.some(function (z) { return z.impacted; })) {
      const z = zones.find(function (q) { return q.impacted; });
      head = z.zone + ' shows impact, not (yet) confirmed as isolated to it.';
    } else {
      head = 'All zones are healthy. Nothing to do.';
    }
    $('headline').textContent = head;
    // The tab's title carries the verdict, for an operator looking elsewhere.
    document.title = (rs.fail_static ? 'FAIL STATIC · ' : rs.regional_impact ? 'REGIONAL · ' : iso ? iso.zone + ' ISOLATED · ' : shifted ? shifted.zone + ' SHIFTED · ' : '') + rs.name + ' · grayzone';
    $('headline').className = iso || rs.regional_impact || rs.fail_static ? 'alert' : shifted ? 'mitigated' : '';
    $('subline').textContent = parts.join(' · ');

    // Customers: server-side outcomes, weighted by each zone's requests.
    let req = 0, good = 0;
    zones.forEach(function (z) { if (z.requests > 0) { req += z.requests; good += z.availability * z.requests; } });
    const kpi = $('customers');
    if (req > 0) {
      const a = 100 * good / req;
      kpi.textContent = GZ.fmtPct(a);
      kpi.className = 'kpi-value ' + (a >= 100 * r.target ? 'ok' : a >= 100 * r.target - 5 ? 'warn' : 'bad');
      $('customers-sub').textContent = 'of ' + fmtInt(req) + ' requests succeeded' + (a >= 100 * r.target ? '' : ' — customers are affected');
    } else {
      kpi.textContent = '–';
      kpi.className = 'kpi-value';
      $('customers-sub').textContent = 'no server-side requests reported';
    }

    $('autoshift').textContent = 'autoshift ' + rs.autoshift.replace('_', ' ');
    $('autoshift').className = 'tag ' + (rs.autoshift === 'enabled' ? 'ok' : 'muted');
    const ol = clear($('phases'));
    PHASES.forEach(function (p) {
      const on = rs.phase === p[0];
      const at = on && rs.phase_zone ? ' ' + rs.phase_zone + (rs.returning_percent ? ', returning: ' + rs.returning_percent + ' %' : '') : '';
      ol.append(el('li', { class: on ? 'on' : '' }, p[1], at ? el('b', { text: at }) : null));
    });
  }

  function renderZones(r) {
    const rs = r.rs;
    const box = clear($('zones'));
    (rs.zones || []).forEach(function (z) {
      const v = verdict(rs, z);
      const c = GZ.zoneColor(zoneIndex(r, z.zone));
      const col = r.cols[z.zone];
      const last = function (arr) { for (let i = arr.length - 1; i >= 0 && i >= arr.length - 5; i--) if (arr[i] != null) return arr[i]; return null; };
      const canaryA = col ? last(col.ca) : null, canaryP = col ? last(col.cp) : null;
      const healthyTargets = (z.targets || []).filter(function (t) { return t.healthy; }).length;
      const excluded = (rs.excluded || []).indexOf(z.zone) >= 0;
      const check = function (on, label) { return el('span', { class: 'chk ' + (on ? 'on' : '') }, (on ? '● ' : '○ ') + label); };
      box.append(el('article', { class: 'zone ' + v.cls, zone: c, 'data-zone': z.zone },
        el('header', null,
          el('span', { class: 'zname' }, el('i', { class: 'swatch' }), z.zone),
          excluded ? el('span', { class: 'tag exclusion', text: 'capacity excluded' }) : null),
        el('div', { class: 'verdict', text: v.text }),
        el('div', { class: 'vsub', text: v.sub }),
        el('div', { class: 'metrics' },
          metric('availability', z.requests > 0 ? GZ.fmtPct(z.availability * 100) : '–', z.requests > 0 ? fmtInt(z.requests) + ' requests, 10 s' : 'no requests, 10 s',
            z.requests > 0 && z.availability < r.target ? 'bad' : ''),
          metric('p99 latency', z.p99_ms >= 0 ? GZ.fmtMs(z.p99_ms) : '–', 'server-side', z.p99_ms > maxThreshold(r) ? 'bad' : ''),
          metric('canaries', canaryA == null ? '–' : GZ.fmtPct(canaryA), canaryP == null ? 'no canary data' : 'p99 ' + GZ.fmtMs(canaryP), z.healthy ? '' : 'warn')),
        el('div', { class: 'checks' },
          check(z.impacted, 'impact'), check(z.outlier, 'outlier'),
          check(z.contributors >= 2, z.contributors + ' instance' + (z.contributors === 1 ? '' : 's')),
          el('span', { class: 'chk targets' }, healthyTargets + '/' + (z.targets || []).length + ' targets pass health checks'))));
    });
  }

  function metric(label, value, sub, cls) {
    return el('div', { class: 'metric' },
      el('div', { class: 'mlabel', text: label }),
      el('div', { class: 'mvalue ' + (cls || ''), text: value }),
      el('div', { class: 'msub', text: sub }));
  }

  function maxThreshold(r) {
    const v = Object.values(r.thresholds || {});
    return v.length ? Math.max.apply(null, v) : Infinity;
  }

  // ---- charts

  function destroyCharts() {
    if (!charts) return;
    charts.avail.destroy(); charts.lat.destroy();
    charts = null;
  }

  function chartSpans(r) {
    const out = [];
    for (const s of r.spans.values()) {
      if (s.kind === 'detection') continue;
      let label = s.label;
      if (s.kind === 'shift') {
        const origin = /^(manual|auto|practice|autoshift)\b/.exec(s.label || '');
        label = 'shifted away from ' + s.zone + (origin ? ' (' + origin[1].replace('autoshift', 'auto') + ')' : '');
      }
      if (s.kind === 'exclusion') label = s.zone + ' excluded from the instance group';
      if (s.kind === 'fault') label = 'fault: ' + s.label;
      if (s.kind === 'fail_static') label = 'fail static: ' + s.label;
      out.push({ kind: s.kind, from: s.from / 1000, to: s.to == null ? null : s.to / 1000, label: label });
    }
    return out;
  }

  function chartDetections(r) {
    const out = [];
    for (const s of r.spans.values()) if (s.kind === 'detection') out.push({ at: s.from / 1000, label: 'detected ' + s.zone });
    return out;
  }

  function latencyThresholds(r) {
    const byValue = {};
    for (const op of Object.keys(r.thresholds || {}).sort()) (byValue[r.thresholds[op]] = byValue[r.thresholds[op]] || []).push(op);
    return Object.keys(byValue).map(function (v) {
      const ops = byValue[v];
      return { value: +v, label: 'threshold ' + GZ.fmtMs(+v) + (ops.length > 3 ? '' : ' (' + ops.join(', ') + ')') };
    });
  }

  function renderCharts(r) {
    const kinds = Array.from(new Set(Array.from(r.spans.values()).map(function (s) { return s.kind === 'exclusion' ? 'excluded' : s.kind === 'fail_static' ? 'fail static' : s.kind; })));
    const lanes = GZ.lanesFor(kinds);
    if (!charts || charts.name !== r.name || charts.zones !== r.zones.join(',') || charts.lanes !== lanes.join(',')) {
      destroyCharts();
      const xRange = function (min, max) {
        if (min == null) return [min, max];
        return [Math.max(min, max - S.windowSec), max];
      };
      const common = { zones: r.zones, time: true, xRange: xRange, spans: function () { return chartSpans(r); }, detections: function () { return chartDetections(r); } };
      GZ.zoneKey($('zone-key'), r.zones);
      const avail = [r.x], lat = [r.x];
      r.zones.forEach(function (z) { avail.push(r.cols[z].a, r.cols[z].ca); lat.push(r.cols[z].p, r.cols[z].cp); });
      charts = {
        name: r.name, zones: r.zones.join(','), lanes: lanes.join(','),
        avail: GZ.chart($('chart-avail'), Object.assign({}, common, {
          kind: 'availability', data: avail, height: 230, lanes: lanes,
          thresholds: function () { return [{ value: r.target * 100, label: 'target ' + +(r.target * 100).toPrecision(4) + '%' }]; },
        })),
        lat: GZ.chart($('chart-lat'), Object.assign({}, common, {
          kind: 'latency', data: lat, height: 210,
          thresholds: function () { return latencyThresholds(r); },
        })),
      };
      return;
    }
    charts.avail.update();
    charts.lat.update();
  }

  // ---- why and the alarm tree

  function renderWhy(r) {
    $('why').textContent = r.rs.why || 'No zone shows impact.';
    $('detector').textContent = 'detector: ' + r.rs.detector;
    renderTelemetry(r);
  }

  // renderTelemetry lists the resource's telemetry sources (middleware,
  // otlp, prometheus, emf, batch): what each delivered, refused and dropped.
  function renderTelemetry(r) {
    const ts = r.rs.telemetry || [];
    $('telemetry').hidden = !ts.length;
    const body = clear($('telemetry-table').tBodies[0]);
    ts.forEach(function (t) {
      const rejected = Object.keys(t.rejected || {}).reduce(function (n, k) { return n + t.rejected[k]; }, 0);
      body.append(el('tr', {}, [
        el('td', { class: 'mono', text: t.source }),
        el('td', { text: fmtInt(t.accepted) }),
        el('td', { text: fmtInt(t.requests) }),
        el('td', { class: rejected ? 'bad' : '', text: fmtInt(rejected) }),
        el('td', { class: t.dropped ? 'bad' : '', text: fmtInt(t.dropped) }),
        el('td', { text: t.newest_age_s < 0 ? '–' : t.newest_age_s.toFixed(1) + ' s ago' }),
        el('td', { class: 'muted', text: t.last_reject || '' }),
      ]));
    });
  }

  // children finds an alarm's inputs: the names its rule refers to
  // (CloudWatch syntax: ALARM("x")), else the alarms sharing its zone prefix
  // (the default profile's per-zone tests), plus regional-impact when the
  // rule says NOT regional-impact.
  function children(a, byName) {
    const out = [];
    const seen = new Set();
    const add = function (n) { if (n !== a.name && byName.has(n) && !seen.has(n)) { seen.add(n); out.push(byName.get(n)); } };
    const re = /ALARM\(\s*"?([^")]+?)"?\s*\)/g;
    let m;
    while ((m = re.exec(a.reason || '')) !== null) add(m[1]);
    if (!out.length && /-isolated-impact$/.test(a.name)) {
      const prefix = a.name.replace(/isolated-impact$/, '');
      byName.forEach(function (b, n) { if (n.indexOf(prefix) === 0 && !/isolated-impact$/.test(n)) add(n); });
      if (/regional-impact/.test(a.reason || '')) add('regional-impact');
    }
    return out;
  }

  function stateClass(s) { return s === 'ALARM' ? 'alarm' : s === 'OK' ? 'ok' : 'nodata'; }

  function alarmNode(a, byName, depth, path) {
    const kids = depth < 3 ? children(a, byName).filter(function (k) { return path.indexOf(k.name) < 0; }) : [];
    const row = el('div', { class: 'arow' },
      el('span', { class: 'state ' + stateClass(a.state), text: a.state === 'INSUFFICIENT_DATA' ? 'NO DATA' : a.state }),
      el('span', { class: 'aname', text: a.name }),
      el('span', { class: 'reason', text: a.reason || '' }));
    if (!kids.length) return el('div', { class: 'anode leaf' }, row);
    // Inputs in ALARM first: they are the explanation.
    kids.sort(function (x, y) { return (x.state === 'ALARM' ? 0 : 1) - (y.state === 'ALARM' ? 0 : 1); });
    const firing = kids.filter(function (k) { return k.state === 'ALARM'; });
    const rest = kids.filter(function (k) { return k.state !== 'ALARM'; });
    const body = el('div', { class: 'akids' }, firing.map(function (k) { return alarmNode(k, byName, depth + 1, path.concat(a.name)); }));
    if (rest.length) {
      const more = el('details', { class: 'more' }, el('summary', { text: rest.length + (firing.length ? ' more' : '') + ' input' + (rest.length === 1 ? '' : 's') + ' not in alarm' }),
        rest.map(function (k) { return alarmNode(k, byName, depth + 1, path.concat(a.name)); }));
      if (depth === 0 && a.state === 'ALARM' && rest.length <= 8) more.open = true;
      body.append(more);
    }
    const d = el('details', { class: 'anode', 'data-alarm': a.name }, el('summary', null, row), body);
    d.open = openAlarms.has(a.name) ? openAlarms.get(a.name) : depth === 0 && a.state === 'ALARM';
    d.addEventListener('toggle', function () { openAlarms.set(a.name, d.open); });
    return d;
  }

  function renderAlarms(r) {
    const box = clear($('alarms'));
    const byName = new Map(r.alarms.map(function (a) { return [a.name, a]; }));
    const roots = [];
    if (byName.has('regional-impact')) roots.push(byName.get('regional-impact'));
    r.zones.forEach(function (z) { if (byName.has(z + '-isolated-impact')) roots.push(byName.get(z + '-isolated-impact')); });
    if (!roots.length) {
      box.append(el('p', { class: 'muted', text: r.alarms.length ? 'No composite alarms.' : 'No alarm states yet.' }));
      return;
    }
    box.append(el('div', { class: 'muted small', text: 'Composite alarms and their inputs, with the numbers behind each state.' }));
    roots.forEach(function (a) { box.append(alarmNode(a, byName, 0, [])); });
  }

  // ---- controls

  function canMutate() { return !readOnly && !!token; }

  function renderAuth() {
    const box = clear($('auth'));
    if (readOnly) {
      box.append(el('p', { class: 'note' }, el('b', { text: 'Read-only. ' }), readOnly));
      return;
    }
    if (token) {
      box.append(el('p', { class: 'note ok' }, el('b', { text: 'Token set' }), ' for this browser tab only (sent in the Authorization header, never in a URL). ',
        el('button', { type: 'button', class: 'link', id: 'forget', text: 'Forget token', onclick: function () { setToken(''); } })));
      return;
    }
    const input = el('input', { type: 'password', id: 'token', placeholder: 'API token', autocomplete: 'off', 'aria-label': 'API token' });
    const form = el('form', { class: 'tokenform', id: 'token-form' }, input, el('button', { type: 'submit', id: 'token-save', text: 'Use token' }));
    form.addEventListener('submit', function (e) { e.preventDefault(); if (input.value.trim()) setToken(input.value.trim()); });
    box.append(el('p', { class: 'note' }, el('b', { text: 'Read-only until you give a token. ' }),
      'Starting, extending or ending a shift needs an API token (a line of the server\'s tokens file). It is kept in this tab only.'), form);
  }

  function setToken(t) {
    token = t;
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    S.dirty.controls = S.dirty.shifts = true;
    if (S.needsToken && t) connect();
    scheduleRender();
    loadDecision(); // its Approve button needs the token
  }

  function renderForm() {
    const rsel = $('f-resource'), zsel = $('f-zone');
    const names = Array.from(S.res.keys());
    clear(rsel);
    names.forEach(function (n) { rsel.append(el('option', { value: n, text: n, selected: n === S.selected })); });
    rsel.parentElement.hidden = names.length < 2;
    const r = S.res.get(rsel.value || S.selected);
    const prev = zsel.value;
    clear(zsel);
    (r ? r.zones : []).forEach(function (z) { zsel.append(el('option', { value: z, text: z })); });
    if (prev && r && r.zones.indexOf(prev) >= 0) zsel.value = prev;
    const off = !canMutate();
    for (const c of $('start').elements) c.disabled = off;
    $('f-submit').title = off ? (readOnly || 'Give an API token first') : '';
  }

  function flash(msg, bad) {
    const box = $('action-result');
    box.textContent = msg;
    box.className = 'result ' + (bad ? 'bad' : 'ok');
  }

  // call makes an authenticated API request and turns a refusal into the
  // server's own words.
  async function call(method, path, body) {
    const resp = await fetch(path, {
      method: method, cache: 'no-store',
      headers: Object.assign({ Authorization: 'Bearer ' + token }, body ? { 'Content-Type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const why = (data && data.error) || resp.statusText;
      const err = new Error(resp.status === 401 ? 'Refused: the server did not accept the token (' + why + ').' : 'Refused (' + resp.status + '): ' + why);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function upsertShift(sh) {
    S.shifts = [sh].concat(S.shifts.filter(function (x) { return x.id !== sh.id; }));
    S.dirty.shifts = true;
    scheduleRender();
  }

  async function startShift(e) {
    e.preventDefault();
    if (!canMutate()) return;
    const body = { resource: $('f-resource').value, away_from: $('f-zone').value, expires_in: $('f-duration').value, comment: $('f-comment').value.trim() };
    $('f-submit').disabled = true;
    try {
      const sh = await call('POST', 'v1/shifts', body);
      upsertShift(sh);
      $('f-comment').value = '';
      flash('Shift ' + sh.id + ' started: traffic is moving away from ' + sh.away_from + ' until ' + fmtTime(sh.expires_at) + '.');
    } catch (err) {
      flash(err.message, true);
    } finally {
      $('f-submit').disabled = !canMutate();
    }
  }

  async function extendShift(sh, dur, btn) {
    btn.disabled = true;
    try {
      const out = await call('PATCH', 'v1/shifts/' + encodeURIComponent(sh.id), { expires_in: dur });
      upsertShift(out);
      flash('Shift ' + out.id + ' now ends ' + fmtTime(out.expires_at) + '.');
    } catch (err) { flash(err.message, true); btn.disabled = false; }
  }

  async function endShift(sh, btn) {
    // Two clicks: ending a shift sends traffic back to the zone.
    if (btn.dataset.armed !== '1') {
      btn.dataset.armed = '1';
      btn.textContent = 'Confirm: send traffic back';
      setTimeout(function () { btn.dataset.armed = ''; btn.textContent = 'End shift'; }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      const out = await call('POST', 'v1/shifts/' + encodeURIComponent(sh.id) + '/cancel');
      upsertShift(out);
      flash('Shift ' + out.id + ' ended: traffic returns to ' + out.away_from + '.');
    } catch (err) { flash(err.message, true); btn.disabled = false; }
  }

  function statusTag(st) {
    return el('span', { class: 'tag ' + (st === 'ACTIVE' ? 'active' : 'muted'), text: st });
  }

  function renderShifts() {
    const tb = clear($('shifts').tBodies[0]);
    if (!S.shifts.length) {
      tb.append(el('tr', null, el('td', { colspan: 7, class: 'muted', text: 'No zonal shifts yet.' })));
      return;
    }
    const off = !canMutate();
    for (const sh of S.shifts) {
      const r = S.res.get(sh.resource);
      const zc = r ? GZ.zoneColor(zoneIndex(r, sh.away_from)) : '#888';
      let actions = null;
      if (sh.status === 'ACTIVE') {
        const dur = el('select', { 'aria-label': 'extend by', disabled: off },
          ['30m', '1h', '2h', '4h', '8h', '24h'].map(function (d) { return el('option', { value: d, text: 'to ' + d + ' from now', selected: d === '2h' }); }));
        const ext = el('button', { type: 'button', class: 'extend', disabled: off, text: 'Extend' });
        ext.addEventListener('click', function () { extendShift(sh, dur.value, ext); });
        const end = el('button', { type: 'button', class: 'end danger', disabled: off, text: 'End shift' });
        end.addEventListener('click', function () { endShift(sh, end); });
        actions = el('div', { class: 'actions' }, dur, ext, end);
      }
      const until = sh.ended_at ? 'ended ' + fmtTime(sh.ended_at) : fmtTime(sh.expires_at);
      tb.append(el('tr', { 'data-shift': sh.id, class: sh.status === 'ACTIVE' ? 'active' : '' },
        el('td', null, el('span', { class: 'zname', zone: zc }, el('i', { class: 'swatch' }), sh.away_from), S.res.size > 1 ? el('div', { class: 'muted small', text: sh.resource }) : null),
        el('td', null, statusTag(sh.status)),
        el('td', null, el('span', { class: 'tag origin-' + sh.origin, text: sh.origin }), el('div', { class: 'muted small', text: sh.started_by })),
        el('td', { text: fmtTime(sh.started_at) }),
        el('td', { text: until }),
        el('td', { class: 'comment', text: sh.comment || sh.reason || '' }),
        el('td', null, actions)));
    }
  }

  function renderPractices() {
    const tb = clear($('practices').tBodies[0]);
    if (!S.practices.length) {
      tb.append(el('tr', null, el('td', { colspan: 5, class: 'muted', text: 'No practice runs (enable practice for a resource to rehearse shifts).' })));
      return;
    }
    for (const p of S.practices) {
      const cls = p.outcome === 'SUCCEEDED' ? 'ok' : p.outcome ? 'bad' : 'active';
      tb.append(el('tr', null,
        el('td', { text: p.zone }),
        el('td', null, el('span', { class: 'tag ' + cls, text: p.outcome || 'RUNNING' })),
        el('td', { text: fmtTime(p.started_at) }),
        el('td', { text: p.ended_at ? fmtTime(p.ended_at) : '–' }),
        el('td', { class: 'comment', text: p.reason || '' })));
    }
  }

  function renderAudit() {
    const tb = clear($('audit').tBodies[0]);
    if (!S.audit.length) {
      tb.append(el('tr', null, el('td', { colspan: 5, class: 'muted', text: 'Nothing recorded yet.' })));
      return;
    }
    for (const e of S.audit) {
      tb.append(el('tr', { 'data-seq': e.seq },
        el('td', { class: 'mono nowrap', text: fmtTime(e.at) }),
        el('td', null, el('span', { class: 'tag kind-' + e.kind, text: e.kind })),
        el('td', null, e.zone || '', S.res.size > 1 && e.resource ? el('div', { class: 'muted small', text: e.resource }) : null),
        el('td', { class: 'muted', text: e.actor || '' }),
        el('td', { class: 'msg', text: e.message })));
    }
  }

  // ---- approval (the link an approval alert carries: /?decision=ID) and delivery

  const decisionID = new URLSearchParams(location.search).get('decision');

  async function loadDecision() {
    if (!decisionID) return;
    const box = $('approval');
    box.hidden = false;
    let d = null;
    try {
      const h = token ? { Authorization: 'Bearer ' + token } : {};
      const resp = await fetch('v1/decisions', { headers: h, cache: 'no-store' });
      if (resp.ok) d = (await resp.json()).find(function (x) { return x.id === decisionID; }) || null;
    } catch (e) { /* shown below */ }
    if (!d) {
      $('approval-what').textContent = 'Decision ' + decisionID + ' is not known to this server (it may have restarted, or the token is missing).';
      $('approval-approve').hidden = true;
      return;
    }
    $('approval-status').textContent = d.status;
    $('approval-what').textContent = 'Shift ' + d.resource + ' away from ' + d.zone + ' (decided ' + fmtTime(d.at) + ', ' + d.id + ').';
    $('approval-why').textContent = d.why || '';
    const btn = $('approval-approve');
    btn.hidden = d.status !== 'pending';
    btn.disabled = !canMutate();
    btn.title = canMutate() ? '' : (readOnly || 'Give an API token first');
  }

  async function approve() {
    if (!canMutate()) return;
    $('approval-approve').disabled = true;
    try {
      const d = await call('POST', 'v1/decisions/' + encodeURIComponent(decisionID) + '/approve');
      // Shown from the answer: the server forgets an approved decision once its shift starts.
      $('approval-status').textContent = d.status;
      $('approval-approve').hidden = true;
      $('approval-result').textContent = 'Approved: the shift away from ' + d.zone + ' starts at the next tick.';
      $('approval-result').className = 'result ok';
    } catch (err) {
      $('approval-result').textContent = err.message;
      $('approval-result').className = 'result bad';
      loadDecision();
    }
  }

  async function loadDelivery() {
    try {
      const h = token ? { Authorization: 'Bearer ' + token } : {};
      const resp = await fetch('v1/status', { headers: h, cache: 'no-store' });
      if (!resp.ok) return;
      const ns = (await resp.json()).notifications || [];
      const p = $('delivery');
      p.hidden = !ns.length;
      p.textContent = 'Notifications: ' + ns.map(function (n) {
        return n.endpoint + ' (' + n.kind + ') ' + n.delivered + ' delivered, ' + n.pending + ' waiting' +
          (n.pending ? ' for ' + Math.round(n.lag_seconds) + 's' : '') + (n.failures ? ', ' + n.failures + ' failed attempts' : '') +
          (n.gave_up ? ', ' + n.gave_up + ' given up' : '');
      }).join(' · ');
    } catch (e) { /* the next try */ }
  }

  // ---- wiring

  $('approval-approve').addEventListener('click', approve);
  loadDecision();
  loadDelivery();
  setInterval(loadDelivery, 10000);

  $('start').addEventListener('submit', startShift);
  $('f-resource').addEventListener('change', function () { S.dirty.controls = true; select($('f-resource').value); });
  $('window').addEventListener('click', function (e) {
    const b = e.target.closest('button');
    if (!b) return;
    S.windowSec = +b.dataset.w;
    for (const x of $('window').children) x.classList.toggle('on', x === b);
    if (charts) { charts.avail.update(); charts.lat.update(); }
  });
  // A quiet stream is worth saying: the page would otherwise look live.
  setInterval(function () {
    if (S.conn === 'live' && Date.now() - S.lastMsgAt > 5000) setConn('stale');
  }, 1000);

  // For the browser tests and the curious: the live charts and state.
  window.grayzone = { charts: function () { return charts; }, state: S };

  renderAuth();
  renderForm();
  probe().then(connect);
})();

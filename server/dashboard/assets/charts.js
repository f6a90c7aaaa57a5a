/* grayzone charts: per-zone time series drawn with uPlot, with shaded spans
 * (faults, shifts, control-plane exclusions), detection markers and
 * threshold lines. Shared by the live dashboard (app.js) and the lab report
 * (report.js), so both read the same way. */
'use strict';

window.GZ = (function () {
  // Zone colors avoid the verdict colors (green, amber, red) and the
  // mitigation indigo, so a line is never mistaken for a state.
  const ZONE_COLORS = ['#5cc8ff', '#f2a65a', '#c49bff', '#ff85c0', '#e8e46d', '#7fd6c2'];
  // Spans are shaded across the plot and, on a chart with lanes, also drawn
  // as labeled bars in a strip above it, one lane per kind, in the order of
  // a story: the fault, its detection, the shift, the exclusion.
  const SPAN = {
    fault: { fill: 'rgba(229,83,75,0.13)', bar: 'rgba(229,83,75,0.85)', lane: 'fault' },
    shift: { fill: 'rgba(110,118,240,0.16)', bar: 'rgba(110,118,240,0.92)', lane: 'shifted' },
    exclusion: { hatch: 'rgba(150,156,255,0.22)', bar: 'rgba(75,82,184,0.95)', lane: 'excluded' },
    // grayzone's own view in doubt: nothing new decided (docs/failstatic.md).
    fail_static: { fill: 'rgba(139,148,158,0.16)', bar: 'rgba(139,148,158,0.9)', lane: 'fail static' },
  };
  const LANES = ['fault', 'fail static', 'detected', 'shifted', 'excluded'];
  const AXIS = '#8b949e';
  const GRID = 'rgba(139,148,158,0.13)';
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
  const LANE_H = 14, LANE_GAP = 2; // CSS px

  // lanesFor lists the lanes a chart needs: detection and shift always (the
  // story of any incident), fault, fail static and exclusion once such a
  // span exists.
  function lanesFor(kinds) {
    return LANES.filter(function (l) { return l === 'detected' || l === 'shifted' || kinds.indexOf(l) >= 0; });
  }
  function stripHeight(lanes) { return lanes.length * (LANE_H + LANE_GAP) + 8; }

  function zoneColor(i) { return ZONE_COLORS[i % ZONE_COLORS.length]; }

  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }

  function fmtMs(v) {
    if (v == null || !isFinite(v)) return '–';
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 2) + ' s';
    if (v >= 10) return Math.round(v) + ' ms';
    return v.toFixed(1) + ' ms';
  }

  // fmtPct shows enough digits to tell 99.9 % from 100 %.
  function fmtPct(v) {
    if (v == null || !isFinite(v)) return '–';
    if (v >= 99.995) return '100%';
    if (v >= 99) return v.toFixed(2) + '%';
    return v.toFixed(1) + '%';
  }

  function fmtClock(sec) {
    const d = new Date(sec * 1000);
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  // fmtOffset is a run offset in seconds as m:ss (the report's time axis).
  function fmtOffset(s) {
    if (s == null) return '–';
    const neg = s < 0;
    s = Math.abs(Math.round(s));
    return (neg ? '-' : '') + Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  let hatchCache = null;
  function hatch(ctx, color) {
    if (hatchCache && hatchCache.color === color) return hatchCache.pattern;
    const px = Math.round(8 * uPlot.pxRatio);
    const c = document.createElement('canvas');
    c.width = c.height = px;
    const g = c.getContext('2d');
    g.strokeStyle = color;
    g.lineWidth = 2 * uPlot.pxRatio;
    g.beginPath();
    g.moveTo(0, px); g.lineTo(px, 0);
    g.moveTo(-px / 2, px / 2); g.lineTo(px / 2, -px / 2);
    g.moveTo(px / 2, px * 1.5); g.lineTo(px * 1.5, px / 2);
    g.stroke();
    hatchCache = { color: color, pattern: ctx.createPattern(c, 'repeat') };
    return hatchCache.pattern;
  }

  function laneTop(b, lanes, name, r) {
    return b.top - (stripHeight(lanes) - lanes.indexOf(name) * (LANE_H + LANE_GAP)) * r;
  }

  function fitText(ctx, text, room) {
    if (ctx.measureText(text).width <= room) return text;
    while (text.length > 3 && ctx.measureText(text + '…').width > room) text = text.slice(0, -1);
    return text.length > 3 ? text + '…' : '';
  }

  // drawSpans shades spans under the series and, with lanes, draws each as a
  // labeled bar in its lane above the plot, where it hides no data.
  function drawSpans(u, spans, lanes) {
    const ctx = u.ctx, b = u.bbox, r = uPlot.pxRatio;
    const xmin = u.scales.x.min, xmax = u.scales.x.max;
    if (xmin == null || xmax == null) return;
    ctx.save();
    ctx.font = (11 * r) + 'px ' + FONT;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    if (lanes) {
      ctx.textAlign = 'right';
      lanes.forEach(function (n) {
        const y = laneTop(b, lanes, n, r);
        ctx.fillStyle = 'rgba(139,148,158,0.07)';
        ctx.fillRect(b.left, y, b.width, LANE_H * r);
        ctx.fillStyle = '#6e7681';
        ctx.fillText(n, b.left - 8 * r, y + LANE_H * r / 2);
      });
      ctx.textAlign = 'left';
    }
    for (const s of spans) {
      const st = SPAN[s.kind];
      if (!st) continue;
      const from = Math.max(s.from, xmin), to = Math.min(s.to == null ? xmax : s.to, xmax);
      if (to <= from) continue;
      const x0 = u.valToPos(from, 'x', true), x1 = u.valToPos(to, 'x', true);
      const w = Math.max(x1 - x0, 2 * r);
      ctx.fillStyle = st.fill || hatch(ctx, st.hatch);
      ctx.fillRect(x0, b.top, w, b.height);
      if (!lanes || lanes.indexOf(st.lane) < 0) continue;
      const y = laneTop(b, lanes, st.lane, r);
      ctx.fillStyle = st.bar;
      ctx.fillRect(x0, y, w, LANE_H * r);
      const label = fitText(ctx, s.label || s.kind, w - 8 * r);
      if (label) {
        ctx.fillStyle = '#ffffff';
        ctx.fillText(label, x0 + 4 * r, y + LANE_H * r / 2 + 0.5 * r);
      }
    }
    ctx.restore();
  }

  // drawMarks draws threshold lines and detection markers over the series.
  function drawMarks(u, thresholds, detections, lanes) {
    const ctx = u.ctx, b = u.bbox, r = uPlot.pxRatio;
    ctx.save();
    ctx.font = (11 * r) + 'px ' + FONT;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left'; // uPlot leaves its axes' alignment behind
    const smin = u.scales.y.min, smax = u.scales.y.max;
    for (const t of thresholds) {
      if (smin == null || t.value < smin || t.value > smax) continue;
      const y = Math.round(u.valToPos(t.value, 'y', true)) + 0.5;
      ctx.strokeStyle = 'rgba(255,214,102,0.8)';
      ctx.lineWidth = 1.25 * r;
      ctx.setLineDash([6 * r, 4 * r]);
      ctx.beginPath(); ctx.moveTo(b.left, y); ctx.lineTo(b.left + b.width, y); ctx.stroke();
      ctx.setLineDash([]);
      const w = ctx.measureText(t.label).width;
      const ly = y - 10 * r < b.top + 4 * r ? y + 10 * r : y - 10 * r; // below the line when at the top
      ctx.fillStyle = 'rgba(13,17,23,0.8)';
      ctx.fillRect(b.left + b.width - w - 12 * r, ly - 7 * r, w + 8 * r, 14 * r);
      ctx.fillStyle = '#ffd666';
      ctx.fillText(t.label, b.left + b.width - w - 8 * r, ly);
    }
    const xmin = u.scales.x.min, xmax = u.scales.x.max;
    for (const d of detections) {
      if (xmin == null || d.at < xmin || d.at > xmax) continue;
      const x = Math.round(u.valToPos(d.at, 'x', true)) + 0.5;
      ctx.strokeStyle = 'rgba(240,243,246,0.9)';
      ctx.lineWidth = 1.5 * r;
      ctx.setLineDash([3 * r, 3 * r]);
      const top = lanes ? laneTop(b, lanes, 'detected', r) + LANE_H * r / 2 : b.top;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, b.top + b.height); ctx.stroke();
      ctx.setLineDash([]);
      if (!lanes) continue;
      const cy = top, s = 5.5 * r;
      ctx.fillStyle = '#f0f3f6';
      ctx.beginPath();
      ctx.moveTo(x, cy - s); ctx.lineTo(x + s, cy); ctx.lineTo(x, cy + s); ctx.lineTo(x - s, cy);
      ctx.closePath(); ctx.fill();
      const label = d.label || 'detected';
      const lw = ctx.measureText(label).width;
      const lx = x + lw + 14 * r > b.left + b.width ? x - lw - 10 * r : x + 10 * r;
      ctx.fillText(label, lx, cy + 0.5 * r);
    }
    ctx.restore();
  }

  function fmtTick(v) {
    if (v == null) return ''; // uPlot thins log ticks to null
    if (v >= 1000) return +(v / 1000).toPrecision(3) + ' s';
    return +v.toPrecision(3) + ' ms';
  }

  // tooltip shows every zone's values at the cursor: the chart's legend,
  // only when it has something to say.
  function tooltip(u, cfg, fmt) {
    const tip = document.createElement('div');
    tip.className = 'gz-tip';
    tip.hidden = true;
    u.over.appendChild(tip);
    return function () {
      const i = u.cursor.idx;
      if (i == null || u.cursor.left == null || u.cursor.left < 0) { tip.hidden = true; return; }
      while (tip.firstChild) tip.removeChild(tip.firstChild);
      const x = u.data[0][i];
      const head = document.createElement('div');
      head.className = 'gz-tip-head';
      head.textContent = cfg.time ? fmtClock(x) : fmtOffset(x);
      tip.appendChild(head);
      cfg.zones.forEach(function (z, k) {
        const row = document.createElement('div');
        row.className = 'gz-tip-row';
        const sw = document.createElement('i');
        sw.style.background = zoneColor(k);
        const name = document.createElement('span');
        name.textContent = z;
        const sv = document.createElement('b');
        sv.textContent = fmt(u.data[1 + 2 * k][i]);
        const cv = document.createElement('span');
        cv.className = 'gz-tip-canary';
        cv.textContent = 'canary ' + fmt(u.data[2 + 2 * k][i]);
        row.append(sw, name, sv, cv);
        tip.appendChild(row);
      });
      tip.hidden = false;
      const w = tip.offsetWidth;
      const left = u.cursor.left + 14 + w > u.over.clientWidth ? u.cursor.left - w - 14 : u.cursor.left + 14;
      tip.style.transform = 'translate(' + Math.max(0, left) + 'px, 6px)';
    };
  }

  // chart draws one metric for every zone: the server-side series solid,
  // the canaries' dashed, in the zone's color.
  //   cfg.kind: 'availability' (values in %) or 'latency' (ms, log scale)
  //   cfg.zones: zone names, in the order of cfg.data's series pairs
  //   cfg.data: [x, z1 server, z1 canary, z2 server, ...] (uPlot columns)
  //   cfg.time: x is Unix seconds (dashboard) rather than run offsets (report)
  //   cfg.lanes: the labeled span lanes to draw above the plot (lanesFor)
  //   cfg.spans(), cfg.thresholds(), cfg.detections(): read at every draw
  //   cfg.xRange(min, max): the visible window (default: everything)
  function chart(el, cfg) {
    const isLat = cfg.kind === 'latency';
    const fmt = isLat ? fmtMs : fmtPct;
    const series = [{}];
    cfg.zones.forEach(function (z, i) {
      const c = zoneColor(i);
      series.push({ label: z, stroke: c, width: 2, points: { show: false } });
      series.push({ label: z + ' canary', stroke: alpha(c, 0.8), width: 1.4, dash: [5, 4], points: { show: false } });
    });
    const thresholds = cfg.thresholds || function () { return []; };
    const spans = cfg.spans || function () { return []; };
    const detections = cfg.detections || function () { return []; };
    const yScale = isLat ? {
      distr: 3, log: 10,
      range: function (u, min, max) {
        const ts = thresholds().map(function (t) { return t.value; });
        let lo = Math.min.apply(null, [10].concat(ts.map(function (v) { return v / 3; })));
        let hi = Math.max.apply(null, [100].concat(ts.map(function (v) { return v * 3; })));
        if (min != null && min > 0) lo = Math.min(lo, min);
        if (max != null && max > 0) hi = Math.max(hi, max * 1.3);
        return uPlot.rangeLog(Math.max(lo, 0.1), hi, 10, true);
      },
    } : {
      range: function (u, min) {
        const ts = thresholds().map(function (t) { return t.value; });
        let lo = Math.min.apply(null, [min == null ? 100 : min, 99].concat(ts));
        lo = lo >= 97 ? 96 : lo >= 90 ? 90 : Math.max(0, Math.floor(lo / 10) * 10);
        return [lo, 100.6];
      },
    };
    const axis = {
      stroke: AXIS, font: '11px ' + FONT,
      grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1, size: 4 },
    };
    let tip = null;
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height: (cfg.height || 240) + (cfg.lanes ? stripHeight(cfg.lanes) : 0),
      padding: [cfg.lanes ? stripHeight(cfg.lanes) + 6 : 10, 12, null, null],
      series: series,
      legend: { show: false },
      scales: {
        x: {
          time: !!cfg.time,
          range: function (u, min, max) { return cfg.xRange ? cfg.xRange(min, max) : [min, max]; },
        },
        y: yScale,
      },
      axes: [
        Object.assign({}, axis, {
          space: cfg.time ? 80 : 50,
          values: function (u, vals) { return vals.map(function (v) { return v == null ? '' : cfg.time ? fmtClock(v) : fmtOffset(v); }); },
        }),
        Object.assign({}, axis, {
          size: 64,
          values: function (u, vals) { return vals.map(function (v) { return isLat ? fmtTick(v) : (v == null || v > 100 ? '' : v + '%'); }); },
        }),
      ],
      cursor: { sync: { key: cfg.sync || 'gz' }, drag: { x: false, y: false }, points: { size: 6 } },
      hooks: {
        drawClear: [function (u) { drawSpans(u, spans(), cfg.lanes); }],
        draw: [function (u) { drawMarks(u, thresholds(), detections(), cfg.lanes); }],
        setCursor: [function () { if (tip) tip(); }],
      },
    };
    const u = new uPlot(opts, cfg.data, el);
    tip = tooltip(u, cfg, fmt);
    let width = el.clientWidth;
    const ro = new ResizeObserver(function () {
      if (el.clientWidth && el.clientWidth !== width) {
        width = el.clientWidth;
        u.setSize({ width: width, height: opts.height });
      }
    });
    ro.observe(el);
    return {
      u: u,
      update: function () { u.setData(u.data, true); },
      destroy: function () { ro.disconnect(); u.destroy(); },
    };
  }

  // zoneKey fills box with each zone's color and name: the charts' legend.
  function zoneKey(box, zones) {
    while (box.firstChild) box.removeChild(box.firstChild);
    zones.forEach(function (z, i) {
      const s = document.createElement('span');
      const sw = document.createElement('i');
      sw.className = 'swatch';
      sw.style.background = zoneColor(i);
      s.append(sw, z);
      box.appendChild(s);
    });
  }

  return {
    zoneColor: zoneColor, alpha: alpha, chart: chart, zoneKey: zoneKey, lanesFor: lanesFor,
    fmtMs: fmtMs, fmtPct: fmtPct, fmtClock: fmtClock, fmtOffset: fmtOffset,
  };
})();

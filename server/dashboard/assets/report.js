/* grayzone lab report: draws the run's per-zone timeline from the data
 * inlined in the page (see report.go). No network: everything is here. */
'use strict';

(function () {
  const node = document.getElementById('report-data');
  if (!node) return;
  const d = JSON.parse(node.textContent);
  const avail = [d.x].concat(d.avail);
  const lat = [d.x].concat(d.latency);
  const spans = function () { return d.spans; };
  const detections = function () { return d.detections; };
  const byValue = {};
  Object.keys(d.thresholds || {}).sort().forEach(function (op) { (byValue[d.thresholds[op]] = byValue[d.thresholds[op]] || []).push(op); });
  const latThresholds = Object.keys(byValue).map(function (v) {
    const ops = byValue[v];
    return { value: +v, label: 'threshold ' + GZ.fmtMs(+v) + (ops.length > 3 ? '' : ' (' + ops.join(', ') + ')') };
  });
  GZ.zoneKey(document.getElementById('zone-key'), d.zones);
  const common = { zones: d.zones, time: false, spans: spans, detections: detections, sync: 'report' };
  window.grayzoneReport = {
    avail: GZ.chart(document.getElementById('chart-avail'), Object.assign({}, common, {
      kind: 'availability', data: avail, height: 250,
      lanes: GZ.lanesFor(d.spans.map(function (s) { return s.kind === 'exclusion' ? 'excluded' : s.kind; })),
      thresholds: function () { return [{ value: d.target * 100, label: 'target ' + +(d.target * 100).toPrecision(4) + '%' }]; },
    })),
    lat: GZ.chart(document.getElementById('chart-lat'), Object.assign({}, common, {
      kind: 'latency', data: lat, height: 220,
      thresholds: function () { return latThresholds; },
    })),
  };
})();

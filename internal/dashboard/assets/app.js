// netsentinel dashboard. Every value that came from the input is written
// as text (textContent, never parsed as HTML), so addresses, labels and dead-letter
// bytes show as text whatever they contain.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  // el builds an element; string children become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, String(v));
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fill(tbody, rows, emptyText, cols) {
    tbody.replaceChildren(...rows);
    if (rows.length === 0 && emptyText) {
      tbody.appendChild(el('tr', { class: 'empty' }, el('td', { colSpan: cols || 1 }, emptyText)));
    }
  }

  const fmtInt = (n) => Number(n).toLocaleString('en-US');
  const fmtRate = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : Number(n).toFixed(1));
  function fmtPct(f) {
    const p = 100 * f;
    if (p === 0) return '0%';
    return p < 1 ? p.toFixed(2) + '%' : p.toFixed(1) + '%';
  }
  function fmtTime(s) {
    if (!s || s.startsWith('0001-')) return 'never';
    const d = new Date(s);
    return d.toISOString().replace('T', ' ').slice(0, 19);
  }
  const endpoint = (addr, port) => (addr ? (port >= 0 ? addr + ':' + port : addr) : '');

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* keep the status */ }
      throw new Error(msg);
    }
    return r.json();
  }

  // --- state ---
  let span = new URLSearchParams(location.search).get('span') || '1h';
  if (!['5m', '1h', '24h'].includes(span)) span = '1h';
  let source = null;
  let alertsBefore = 0; // 0: the newest page
  let alertsNext = 0;
  let alertsTotal = -1;
  let deadTotal = -1;
  let incidentsBefore = 0; // 0: the newest page
  let incidentsNext = 0;
  let incidentMessages = -1;
  let rateChart = null;
  let catChart = null;

  // --- summary ---
  function showSummary(s) {
    $('records-count').textContent = fmtInt(s.records);
    $('attacks-count').textContent = fmtInt(s.attacks);
    $('unknown-count').textContent = fmtInt(s.unknown);
    $('dead-count').textContent = fmtInt(s.dead_letters);
    $('records-rate').textContent = fmtRate(s.records_per_second) + ' records/s now';
    $('attacks-rate').textContent = fmtPct(s.attack_share) + ' of records · ' + fmtRate(s.attacks_per_second) + '/s now';
    $('unknown-share').textContent = s.records ? fmtPct(s.unknown / s.records) + ' of records' : '';
    $('incidents-open').textContent = fmtInt(s.incidents_open);
    $('incidents-span').textContent = fmtInt(s.incidents) + ' with verdicts in the span';
    $('withheld-line').textContent = s.withheld.length ? 'withheld by rules in the span (kept out of incidents, counted in the attacks): ' +
      s.withheld.map((r) => r.name + ' ' + fmtInt(r.count)).join(', ') : '';
    $('span-label').textContent = 'last ' + { '5m': '5 minutes', '1h': 'hour', '24h': '24 hours' }[s.span];
    $('bucket-label').textContent = 'per ' + s.bucket.replace(/0s$/, '').replace(/0m$/, '') + ', spikes in red';

    fill($('categories-body'), s.categories.map((c) => el('tr', { 'data-category': c.name },
      el('td', {}, c.name), el('td', { class: 'num' }, fmtInt(c.count)), el('td', { class: 'num' }, fmtPct(c.share)),
      el('td', { class: 'num' }, c.name === 'normal' ? '' : fmtInt(s.incidents_by_category[c.name] || 0)),
      el('td', {}, (c.attacks || []).slice(0, 3).map((a) => a.name + ' ' + fmtInt(a.count)).join(', ')))));

    fill($('spikes'), s.spikes.map((k) => el('li', {},
      fmtTime(k.start) + ': ' + k.metric + ' ' + fmtPct(k.rate) + ' against a baseline of ' + fmtPct(k.baseline) +
      ' (z ' + k.z.toFixed(1) + ')' + (k.drivers && k.drivers.length ? ', mostly ' + k.drivers.map((d) => d.name).join(', ') : '') +
      (k.incidents && k.incidents.length ? '; incidents: ' + k.incidents.join('; ') : '') +
      (k.features && k.features.length ? '; features: ' + k.features.map((f) => f.name + ' ' + fmtInt(f.count)).join(', ') : ''))));

    const addrRows = (list) => list.map((a) => el('tr', {}, el('td', {}, a.address), el('td', { class: 'num' }, fmtInt(a.alerts))));
    fill($('sources-body'), addrRows(s.top_sources), 'no verdict with a source address in this span', 2);
    fill($('targets-body'), addrRows(s.top_targets), 'no verdict with a destination address in this span', 2);
    $('sources-note').textContent = s.untracked_sources ? fmtInt(s.untracked_sources) + ' verdicts from further addresses not counted by name' : '';
    $('targets-note').textContent = s.untracked_targets ? fmtInt(s.untracked_targets) + ' verdicts to further addresses not counted by name' : '';

    drawRate(s);
    drawCategories(s);
  }

  function chartWidth(id) {
    return Math.max(240, $(id).clientWidth || 600);
  }

  function drawRate(s) {
    if (typeof uPlot === 'undefined') return;
    const xs = s.buckets.map((b) => Date.parse(b.start) / 1000);
    const rate = s.buckets.map((b) => (b.records ? 100 * b.attack_rate : null));
    const spikes = s.buckets.map((b) => (b.spike ? 100 * b.attack_rate : null));
    const data = [xs, rate, spikes];
    if (rateChart) {
      rateChart.setData(data);
      return;
    }
    rateChart = new uPlot({
      width: chartWidth('rate-chart'), height: 220,
      scales: { y: { range: (u, lo, hi) => [0, Math.max(5, hi * 1.1)] } },
      axes: [{}, { label: '% attacks', size: 50 }],
      series: [
        { label: 'time' },
        { label: 'attack rate %', stroke: '#2563eb', width: 2, value: (u, v) => (v == null ? '–' : v.toFixed(1) + '%') },
        { label: 'spike', stroke: '#dc2626', fill: '#dc2626', paths: () => null, points: { show: true, size: 10, fill: '#dc2626' },
          value: (u, v) => (v == null ? '' : 'spike') },
      ],
    }, data, $('rate-chart'));
  }

  const catNames = ['normal', 'dos', 'probe', 'r2l', 'u2r', 'unknown'];
  function drawCategories(s) {
    if (typeof uPlot === 'undefined') return;
    const by = Object.fromEntries(s.categories.map((c) => [c.name, c.count]));
    const data = [catNames.map((_, i) => i), catNames.map((n) => by[n] || 0)];
    if (catChart) {
      catChart.setData(data);
      return;
    }
    catChart = new uPlot({
      width: chartWidth('category-chart'), height: 220,
      scales: { x: { time: false, range: [-0.5, catNames.length - 0.5] }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
      axes: [{ values: (u, ticks) => ticks.map((t) => catNames[t] || ''), splits: () => catNames.map((_, i) => i) }, { size: 60 }],
      legend: { show: false },
      series: [{}, { label: 'records', stroke: '#0f766e', fill: '#5eead4', paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }],
    }, data, $('category-chart'));
  }

  // --- health ---
  function showHealth(h) {
    fill($('banners'), h.banners.map((b) => el('div', { class: 'banner ' + b.level }, b.text)));
    const g = h.group;
    let line = 'consumer group ' + g.name + ': ';
    if (!g.polled_at || g.polled_at.startsWith('0001-')) line += 'not described yet';
    else line += (g.state || 'unknown') + ', ' + (g.members || []).length + ' member(s), lag ' + fmtInt(g.total_lag);
    if (g.error) line += ' (error: ' + g.error + ')';
    $('group-line').textContent = line;
    fill($('instances-body'), h.instances.map((i) => el('tr', { class: i.status },
      el('td', {}, i.name), el('td', { class: 'num' }, fmtRate(i.records_per_second)),
      el('td', {}, fmtTime(i.last_report)), el('td', {}, i.status))), 'no detector has reported statistics', 4);
    fill($('lag-body'), (g.partitions || []).map((p) => el('tr', {},
      el('td', {}, p.topic + '/' + p.partition), el('td', { class: 'num' }, p.committed < 0 ? 'none' : fmtInt(p.committed)),
      el('td', { class: 'num' }, fmtInt(p.end)), el('td', { class: 'num' }, p.lag < 0 ? '?' : fmtInt(p.lag)),
      el('td', {}, fmtTime(p.last_commit)))), '', 5);
    const r = h.reader;
    $('reader-line').textContent = 'read ' + fmtInt(r.stats) + ' statistics, ' + fmtInt(r.alerts) + ' alerts, ' +
      fmtInt(r.dead_letters) + ' dead letters, ' + fmtInt(r.incidents) + ' incident messages' + (r.bad ? '; ' + fmtInt(r.bad) + ' undecodable, last: ' + r.last_bad : '') +
      (r.out_of_range ? '; ' + fmtInt(r.out_of_range) + ' for times outside the kept history (in no span)' : '') +
      (r.fetch_error ? '; last read error at ' + fmtTime(r.fetch_error_at) + ': ' + r.fetch_error : '');
  }

  // --- alerts table ---
  function filterQuery() {
    const p = new URLSearchParams();
    for (const [k, id] of [['category', 'filter-category'], ['attack', 'filter-attack'], ['addr', 'filter-addr'], ['q', 'filter-text']]) {
      const v = $(id).value.trim();
      if (v) p.set(k, v);
    }
    return p;
  }

  let alertsSeq = 0;
  async function loadAlerts() {
    const seq = ++alertsSeq;
    const p = filterQuery();
    if (alertsBefore) p.set('before', alertsBefore);
    p.set('limit', '25');
    let page;
    try {
      page = await getJSON('api/alerts?' + p.toString());
    } catch (e) {
      $('alerts-count').textContent = 'cannot load alerts: ' + e.message;
      return;
    }
    if (seq !== alertsSeq) return; // a newer request is on its way
    alertsNext = page.next;
    $('older').disabled = !page.next;
    $('newest').disabled = !alertsBefore;
    $('alerts-count').textContent = fmtInt(page.matching) + ' matching of the ' + fmtInt(page.kept) + ' newest kept (' + fmtInt(page.total) + ' read)';
    fill($('alerts-body'), page.alerts.map((a) => {
      const tr = el('tr', { 'data-id': a.id, class: 'cat-' + a.category.replace(/[^a-z0-9]/gi, '') , tabIndex: 0 },
        el('td', {}, fmtTime(a.time)),
        el('td', {}, a.src || a.dst ? endpoint(a.src, a.src_port) + ' → ' + endpoint(a.dst, a.dst_port) : '–'),
        el('td', {}, a.attack), el('td', {}, a.category),
        el('td', { class: 'num' }, a.probability.toFixed(3)), el('td', { class: 'num' }, a.novelty.toFixed(3)),
        el('td', {}, a.flagged_by));
      tr.addEventListener('click', () => openAlert(a.id));
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') openAlert(a.id); });
      return tr;
    }), page.total === 0 && incidentMessages > 0
      ? 'no per-record alerts: the detectors write incidents (detect --alerts incidents, the default), listed above'
      : 'no alert matches', 7);
  }

  let filterTimer = null;
  function filtersChanged() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { alertsBefore = 0; loadAlerts(); }, 150);
  }

  async function openAlert(id) {
    let d;
    try {
      d = await getJSON('api/alerts/' + encodeURIComponent(id));
    } catch (e) {
      $('detail-title').textContent = 'alert ' + id + ': ' + e.message;
      $('alert-detail').showModal();
      return;
    }
    $('detail-title').textContent = d.attack + ' (' + d.category + ')';
    const facts = [
      ['time', fmtTime(d.time)],
      ['source', endpoint(d.src, d.src_port) || 'unknown'],
      ['destination', endpoint(d.dst, d.dst_port) || 'unknown'],
      ['connection id', d.uid || 'unknown'],
      ['probability', d.probability.toFixed(4)],
      ['P(attack)', d.attack_probability.toFixed(4)],
      ['novelty', d.novelty.toFixed(4)],
      ['flagged by', d.flagged_by],
      ['label in the record', d.label || 'none'],
      ['detector', d.instance],
      ['from', d.topic + ' partition ' + d.partition + ' offset ' + d.offset],
    ];
    $('detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    $('detail-standout').textContent = d.standout.length ? d.standout.join(', ') : 'the alert names no standout features';
    fill($('detail-reasons'), d.reasons.map((r) => el('tr', {}, el('td', {}, r.feature), el('td', { class: 'num' }, String(r.value)),
      el('td', { class: 'num' }, String(r.typical)), el('td', { class: 'num' }, r.contribution.toFixed(3)))));
    $('detail-reasons-table').hidden = d.reasons.length === 0;
    fill($('detail-classes'), d.top_classes.map((c) => el('tr', {}, el('td', {}, c.name), el('td', { class: 'num' }, c.probability.toFixed(4)))),
      'the alert carries no class probabilities', 2);
    fill($('detail-features'), d.features.map((f) => el('tr', { class: f.standout ? 'standout' : '', 'data-feature': f.name },
      el('td', {}, f.name), el('td', { class: 'num' }, typeof f.value === 'string' ? f.value : JSON.stringify(f.value)))), 'no features', 2);
    const extra = Object.keys(d.extra).sort();
    $('detail-extra-title').hidden = extra.length === 0;
    fill($('detail-extra'), extra.map((k) => el('tr', {}, el('td', {}, k), el('td', {}, el('code', {}, d.extra[k])))));
    $('alert-detail').showModal();
  }

  // --- incidents table ---
  function incidentFilterQuery() {
    const p = new URLSearchParams();
    for (const [k, id] of [['state', 'incident-state'], ['category', 'incident-category'], ['attack', 'incident-attack'],
      ['addr', 'incident-addr'], ['q', 'incident-text']]) {
      const v = $(id).value.trim();
      if (v) p.set(k, v);
    }
    return p;
  }
  const counts = (list) => (list || []).map((c) => c.value + ' ' + fmtInt(c.count)).join(', ');
  function incidentWhat(i) {
    if (i.src && i.dst) return i.src + ' → ' + i.dst;
    if (i.src) return i.src + ' → many';
    if (i.dst) return '? → ' + i.dst;
    return (i.service || '?') + (i.flag ? ' (' + i.flag + ')' : '');
  }

  let incidentsSeq = 0;
  async function loadIncidents() {
    const seq = ++incidentsSeq;
    const p = incidentFilterQuery();
    if (incidentsBefore) p.set('before', incidentsBefore);
    p.set('limit', '25');
    let page;
    try {
      page = await getJSON('api/incidents?' + p.toString());
    } catch (e) {
      $('incidents-count').textContent = 'cannot load incidents: ' + e.message;
      return;
    }
    if (seq !== incidentsSeq) return;
    incidentsNext = page.next;
    $('incidents-older').disabled = !page.next;
    $('incidents-newest').disabled = !incidentsBefore;
    $('incidents-count').textContent = fmtInt(page.matching) + ' matching (' + fmtInt(page.open) + ' open) of ' +
      fmtInt(page.kept) + ' kept, from ' + fmtInt(page.messages) + ' messages';
    fill($('incidents-body'), page.incidents.map((i) => {
      const tops = [counts(i.top_destinations), counts(i.top_ports), counts(i.top_services)].filter((x) => x).join(' · ');
      const tr = el('tr', { 'data-incident': i.id, class: i.state, tabIndex: 0 },
        el('td', {}, i.state), el('td', {}, i.attack), el('td', {}, i.category), el('td', {}, incidentWhat(i)),
        el('td', {}, fmtTime(i.first_seen)), el('td', {}, fmtTime(i.last_seen)),
        el('td', { class: 'num' }, fmtInt(i.count)), el('td', { class: 'num' }, fmtRate(i.rate)),
        el('td', {}, tops), el('td', {}, i.features.slice(0, 3).join(', ')), el('td', {}, counts(i.withheld)));
      tr.addEventListener('click', () => openIncident(i.id));
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') openIncident(i.id); });
      return tr;
    }), 'no incident matches', 11);
  }

  let incidentFilterTimer = null;
  function incidentFiltersChanged() {
    clearTimeout(incidentFilterTimer);
    incidentFilterTimer = setTimeout(() => { incidentsBefore = 0; loadIncidents(); }, 150);
  }

  async function openIncident(id) {
    let d;
    try {
      d = await getJSON('api/incident?id=' + encodeURIComponent(id));
    } catch (e) {
      $('incident-title').textContent = 'incident ' + id + ': ' + e.message;
      $('incident-detail').showModal();
      return;
    }
    $('incident-title').textContent = d.attack + ' (' + d.category + '), ' + d.state;
    const facts = [
      ['incident', d.id],
      ['what', incidentWhat(d)],
      ['first seen', fmtTime(d.first_seen)],
      ['last seen', fmtTime(d.last_seen)],
      ['verdicts', fmtInt(d.count) + ' (' + fmtRate(d.rate) + ' per second)'],
      ['highest probability', d.max_probability.toFixed(4)],
      ['withheld by rules', counts(d.withheld) || 'none'],
      ['messages', d.seq + ', last ' + d.status + ' at ' + fmtTime(d.updated) + ' by ' + d.instance],
      ['sample records', d.topic + ' partition ' + d.partition + ' offsets ' + d.samples.join(', ')],
    ];
    $('incident-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    fill($('incident-reasons'), d.explanation.map((r) => el('tr', { 'data-feature': r.feature }, el('td', {}, r.feature),
      el('td', { class: 'num' }, String(r.value)), el('td', { class: 'num' }, String(r.typical)),
      el('td', { class: 'num' }, r.contribution.toFixed(3)))), 'the incident carries no explanation', 4);
    const tops = [['sources', d.top_sources], ['destinations', d.top_destinations], ['ports', d.top_ports],
      ['services', d.top_services], ['novelty features', d.novelty_features]];
    fill($('incident-tops'), tops.filter(([, l]) => l.length).map(([k, l]) => el('tr', {}, el('td', {}, k), el('td', {}, counts(l)))), 'none', 2);
    $('incident-detail').showModal();
  }

  // --- dead letters ---
  async function loadDeadLetters() {
    let page;
    try {
      page = await getJSON('api/dead-letters?limit=20');
    } catch (e) {
      $('dead-total').textContent = 'cannot load: ' + e.message;
      return;
    }
    $('dead-total').textContent = fmtInt(page.total) + ' read, newest ' + page.dead_letters.length + ' shown';
    fill($('dead-body'), page.dead_letters.map((d) => el('tr', {},
      el('td', {}, fmtTime(d.time)), el('td', {}, d.topic + '/' + d.partition + '@' + d.offset),
      el('td', {}, d.reason),
      el('td', {}, el('code', {}, d.value), d.size > d.shown ? el('div', { class: 'hint' }, 'first ' + fmtInt(d.shown) + ' of ' + fmtInt(d.size) + ' bytes') : null))),
    'no dead letters', 4);
  }

  // --- live updates ---
  function connect() {
    if (source) source.close();
    source = new EventSource('api/events?span=' + encodeURIComponent(span));
    source.addEventListener('update', (ev) => {
      const u = JSON.parse(ev.data);
      $('live').textContent = 'live';
      $('live').className = 'live on';
      showSummary(u.summary);
      showHealth(u.health);
      if (u.alerts_total !== alertsTotal) {
        alertsTotal = u.alerts_total;
        if (!alertsBefore) loadAlerts();
      }
      if (u.incident_messages !== incidentMessages) {
        incidentMessages = u.incident_messages;
        if (!incidentsBefore) loadIncidents();
        if (alertsTotal === 0 && !alertsBefore) loadAlerts(); // says why the table is empty
      }
      if (u.dead_letters_total !== deadTotal) {
        deadTotal = u.dead_letters_total;
        loadDeadLetters();
      }
    });
    source.onerror = () => {
      $('live').textContent = 'reconnecting…';
      $('live').className = 'live off';
    };
  }

  function setSpan(s) {
    span = s;
    for (const b of document.querySelectorAll('#spans button')) b.classList.toggle('active', b.dataset.span === s);
    const u = new URL(location.href);
    u.searchParams.set('span', s);
    history.replaceState(null, '', u);
    connect();
  }

  document.addEventListener('DOMContentLoaded', () => {
    for (const b of document.querySelectorAll('#spans button')) b.addEventListener('click', () => setSpan(b.dataset.span));
    const f = $('filters');
    f.addEventListener('input', filtersChanged);
    f.addEventListener('change', filtersChanged);
    f.addEventListener('submit', (ev) => ev.preventDefault());
    f.addEventListener('reset', () => setTimeout(filtersChanged, 0));
    const inf = $('incident-filters');
    inf.addEventListener('input', incidentFiltersChanged);
    inf.addEventListener('change', incidentFiltersChanged);
    inf.addEventListener('submit', (ev) => ev.preventDefault());
    inf.addEventListener('reset', () => setTimeout(incidentFiltersChanged, 0));
    $('incidents-older').addEventListener('click', () => { if (incidentsNext) { incidentsBefore = incidentsNext; loadIncidents(); } });
    $('incidents-newest').addEventListener('click', () => { incidentsBefore = 0; loadIncidents(); });
    $('older').addEventListener('click', () => { if (alertsNext) { alertsBefore = alertsNext; loadAlerts(); } });
    $('newest').addEventListener('click', () => { alertsBefore = 0; loadAlerts(); });
    window.addEventListener('resize', () => {
      if (rateChart) rateChart.setSize({ width: chartWidth('rate-chart'), height: 220 });
      if (catChart) catChart.setSize({ width: chartWidth('category-chart'), height: 220 });
    });
    setSpan(span);
    loadAlerts();
    loadIncidents();
    loadDeadLetters();
  });
})();

// Osprey's web UI: a live service map and flow table over one Server-Sent Events stream.
// Everything from the network is shown with textContent or SVG text nodes, never parsed as HTML.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

const state = {
  params: new URLSearchParams(location.search),
  source: null,
  map: null,
  rows: [],          // newest first: {line, flow, time}
  held: [],          // rows that arrived while paused
  paused: false,
  selectedCard: null,
  selectedRow: null,
  status: null,
  columns: null,
};

// Hubble UI's columns, plus identity, L7 info and direction; its default set first.
const COLUMNS = [
  ['srcService', 'Source Service'], ['dstService', 'Destination Service'], ['dstPort', 'Destination Port'],
  ['verdict', 'Verdict'], ['timestamp', 'Timestamp'], ['srcPod', 'Source Pod'], ['srcIP', 'Source IP'],
  ['srcIdentity', 'Source Identity'], ['dstPod', 'Destination Pod'], ['dstIP', 'Destination IP'],
  ['dstIdentity', 'Destination Identity'], ['l7', 'L7 info'], ['direction', 'Direction'], ['tcpFlags', 'TCP Flags'],
];
const DEFAULT_COLUMNS = ['srcService', 'dstService', 'dstPort', 'verdict', 'timestamp'];
const MAX_ROWS = 1000;

// ---------- URL state ----------

function viewQuery() {
  const query = new URLSearchParams();
  for (const key of ['namespace', 'verdict', 'window']) {
    const value = state.params.get(key);
    if (value) query.set(key, value);
  }
  for (const filter of state.params.getAll('filter')) query.append('filter', filter);
  return query;
}

function setParam(key, value) {
  if (value) state.params.set(key, value); else state.params.delete(key);
  changed();
}

function changed() {
  history.replaceState(null, '', '?' + state.params.toString());
  syncControls();
  connect();
}

function syncControls() {
  $('namespace').value = state.params.get('namespace') || '';
  $('verdict').value = state.params.get('verdict') || '';
  $('window').value = state.params.get('window') || '300';
  const chips = $('filter-chips');
  chips.replaceChildren();
  for (const filter of state.params.getAll('filter')) {
    const chip = document.createElement('span');
    chip.className = 'chip';
    chip.dataset.test = 'filter-chip';
    chip.textContent = filter;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = '×';
    remove.addEventListener('click', () => removeFilter(filter));
    chip.append(remove);
    chips.append(chip);
  }
}

function addFilter(text) {
  text = text.trim();
  if (!text || state.params.getAll('filter').includes(text)) return;
  state.params.append('filter', text);
  changed();
}

function removeFilter(text) {
  const rest = state.params.getAll('filter').filter((f) => f !== text);
  state.params.delete('filter');
  for (const f of rest) state.params.append('filter', f);
  changed();
}

// ---------- the stream ----------

function connect() {
  if (state.source) state.source.close();
  state.rows = [];
  state.held = [];
  state.map = null;
  renderRows();
  renderMap();
  const source = new EventSource('api/events?' + viewQuery().toString());
  state.source = source;
  source.addEventListener('map', (event) => { state.map = JSON.parse(event.data); renderMap(); });
  source.addEventListener('flows', (event) => addRows(JSON.parse(event.data)));
  source.addEventListener('status', (event) => { state.status = JSON.parse(event.data); renderStatus(); });
  source.onerror = () => {
    state.status = Object.assign({}, state.status || {}, { upstream: 'reconnecting' });
    renderStatus();
  };
  // The server answers a view it cannot show with one sentence: show it.
  fetch('api/map?' + viewQuery().toString()).then(async (response) => {
    if (!response.ok) showProblem(await response.text());
  });
  $('export-json').href = 'api/map?' + viewQuery().toString();
}

function showProblem(text) {
  const empty = $('empty');
  empty.hidden = false;
  empty.textContent = text.trim();
}

// ---------- the flow table ----------

function addRows(lines) {
  const rows = [];
  for (const line of lines) {
    try {
      const response = JSON.parse(line);
      if (response.flow) rows.push({ line, flow: response.flow });
    } catch (e) { /* not a flow line */ }
  }
  if (state.paused) {
    state.held = rows.reverse().concat(state.held).slice(0, MAX_ROWS);
    renderNewCount();
    return;
  }
  state.rows = rows.reverse().concat(state.rows).slice(0, MAX_ROWS);
  renderRows();
}

function togglePause() {
  state.paused = !state.paused;
  $('pause').textContent = state.paused ? 'Resume' : 'Pause';
  if (!state.paused) {
    state.rows = state.held.concat(state.rows).slice(0, MAX_ROWS);
    state.held = [];
    renderRows();
  }
  renderNewCount();
}

function renderNewCount() {
  $('new-rows').textContent = state.paused && state.held.length ? `${state.held.length} new` : '';
}

function workloadName(endpoint, names, ip) {
  if (endpoint && endpoint.namespace) {
    const workload = (endpoint.workloads && endpoint.workloads[0] && endpoint.workloads[0].name)
      || ((endpoint.labels || []).find((l) => l.startsWith('k8s:app=')) || '').slice(8)
      || endpoint.pod_name || '';
    return `${endpoint.namespace}/${workload}`;
  }
  const reserved = (endpoint && endpoint.labels || []).find((l) => l.startsWith('reserved:'));
  if (reserved && reserved !== 'reserved:world') return reserved.slice(9);
  return (names && names[0]) || ip || 'world';
}

function ports(flow) {
  const l4 = flow.l4 || {};
  const layer = l4.TCP || l4.UDP || l4.SCTP;
  return layer ? [layer.source_port || 0, layer.destination_port || 0] : [0, 0];
}

function cell(flow, column) {
  const ip = flow.IP || {};
  const src = flow.source || {};
  const dst = flow.destination || {};
  switch (column) {
    case 'srcService': return workloadName(src, flow.source_names, ip.source);
    case 'dstService': return workloadName(dst, flow.destination_names, ip.destination);
    case 'dstPort': {
      const [, port] = ports(flow);
      const proto = Object.keys(flow.l4 || {})[0] || '';
      return port ? `${port} ${proto}` : proto;
    }
    case 'verdict': return flow.verdict || '';
    case 'timestamp': return (flow.time || '').replace('T', ' ').replace('Z', '');
    case 'srcPod': return src.pod_name ? `${src.namespace}/${src.pod_name}` : '';
    case 'srcIP': return ip.source || '';
    case 'srcIdentity': return String(src.identity || '');
    case 'dstPod': return dst.pod_name ? `${dst.namespace}/${dst.pod_name}` : '';
    case 'dstIP': return ip.destination || '';
    case 'dstIdentity': return String(dst.identity || '');
    case 'l7': {
      const dns = flow.l7 && flow.l7.dns;
      if (!dns) return '';
      const kind = flow.l7.type === 'RESPONSE' ? 'answer' : 'query';
      return `DNS ${kind} ${dns.query || ''} ${(dns.qtypes || []).join(',')}` + (dns.rcode ? ` rcode ${dns.rcode}` : '');
    }
    case 'direction': return (flow.traffic_direction || '').toLowerCase();
    case 'tcpFlags': return Object.keys((flow.l4 && flow.l4.TCP && flow.l4.TCP.flags) || {}).join(', ');
  }
  return '';
}

function visibleColumns() {
  if (!state.columns) {
    const saved = localStorage.getItem('osprey.columns');
    state.columns = saved ? JSON.parse(saved) : DEFAULT_COLUMNS.slice();
  }
  return COLUMNS.filter(([key]) => state.columns.includes(key));
}

function renderColumnsMenu() {
  const menu = $('columns');
  menu.replaceChildren();
  for (const [key, title] of COLUMNS) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = visibleColumns().some(([k]) => k === key);
    box.addEventListener('change', () => {
      state.columns = box.checked ? state.columns.concat([key]) : state.columns.filter((k) => k !== key);
      localStorage.setItem('osprey.columns', JSON.stringify(state.columns));
      renderRows();
    });
    label.append(box, ' ' + title);
    menu.append(label);
  }
}

function renderRows() {
  const columns = visibleColumns();
  const head = $('flows-head');
  head.replaceChildren(...columns.map(([, title]) => {
    const th = document.createElement('th');
    th.textContent = title;
    return th;
  }));
  const body = $('flows-body');
  const fragment = document.createDocumentFragment();
  for (const row of state.rows) {
    if (hidden(row.flow)) continue;
    const tr = document.createElement('tr');
    tr.dataset.test = 'flow-row';
    if (row === state.selectedRow) tr.className = 'selected';
    for (const [key] of columns) {
      const td = document.createElement('td');
      td.textContent = cell(row.flow, key);
      if (key === 'verdict') td.className = 'verdict-' + row.flow.verdict;
      tr.append(td);
    }
    tr.addEventListener('click', () => { state.selectedRow = row; showFlow(row.flow); renderRows(); });
    fragment.append(tr);
  }
  body.replaceChildren(fragment);
}

// ---------- hiding (never drops) ----------

function isHiddenEndpoint(endpoint, cardID) {
  const labels = (endpoint && endpoint.labels) || [];
  const id = cardID || '';
  if ($('hide-host').checked && (labels.includes('reserved:host') || id === 'reserved/host')) return true;
  if ($('hide-remote-node').checked && (labels.includes('reserved:remote-node') || id === 'reserved/remote-node')) return true;
  if ($('hide-kube-dns').checked && (labels.includes('k8s:k8s-app=kube-dns') || labels.includes('k8s:app=kube-dns') || /\/(kube-dns|coredns)$/.test(id))) return true;
  if ($('hide-prometheus').checked && (labels.some((l) => /app(\.kubernetes\.io\/name)?=prometheus$/.test(l)) || /\/prometheus$/.test(id))) return true;
  return false;
}

function hidden(flow) {
  if (flow.verdict === 'DROPPED') return false;
  return isHiddenEndpoint(flow.source) || isHiddenEndpoint(flow.destination);
}

function hiddenCard(card) {
  return isHiddenEndpoint({ labels: card.labels }, card.id);
}

// ---------- the details panel ----------

const FILTERS = {
  'source.pod_name': (f) => `from:pod=${f.source.namespace}/${f.source.pod_name}`,
  'destination.pod_name': (f) => `to:pod=${f.destination.namespace}/${f.destination.pod_name}`,
  'IP.source': (f) => `from:ip=${f.IP.source}`,
  'IP.destination': (f) => `to:ip=${f.IP.destination}`,
  'source.identity': (f) => `from:identity=${f.source.identity}`,
  'destination.identity': (f) => `to:identity=${f.destination.identity}`,
  'l7.dns.query': (f) => `dns=${f.l7.dns.query.replace(/\.$/, '')}`,
};

function flatten(value, prefix, out) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const key of Object.keys(value)) flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.push([prefix, Array.isArray(value) ? value.map((v) => typeof v === 'object' ? JSON.stringify(v) : v).join(', ') : String(value)]);
  }
  return out;
}

function showDetails(title, entries) {
  $('details').hidden = false;
  $('details-title').textContent = title;
  const body = $('details-body');
  body.replaceChildren();
  for (const [key, value, filter] of entries) {
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.field = key;
    if (filter) {
      dd.className = 'filterable';
      dd.title = 'Add filter ' + filter;
      dd.addEventListener('click', () => addFilter(filter));
    }
    body.append(dt, dd);
  }
}

function showFlow(flow) {
  const entries = flatten(flow, '', []).map(([key, value]) => {
    let filter = FILTERS[key] ? FILTERS[key](flow) : null;
    if (key === 'verdict') filter = null;
    if (/^(source|destination)\.labels$/.test(key)) filter = null;
    if (/\.destination_port$/.test(key)) filter = `to:port=${value}`;
    return [key, value, filter];
  });
  // Labels one per line, each a filter.
  for (const side of ['source', 'destination']) {
    for (const label of (flow[side] && flow[side].labels) || []) {
      entries.push([`${side} label`, label, `${side === 'source' ? 'from' : 'to'}:label=${label.replace(/^k8s:/, '')}`]);
    }
  }
  showDetails(flow.Summary || 'Flow', entries);
}

function showCard(card) {
  state.selectedCard = card.id;
  const entries = [['kind', card.kind], ['namespace', card.namespace || '—']];
  for (const pod of card.pods) entries.push(['pod', pod, `pod=${card.namespace}/${pod}`]);
  for (const port of card.ports) entries.push(['receives', portText(port)]);
  for (const label of card.labels) entries.push(['label', label, `label=${label.replace(/^k8s:/, '')}`]);
  showDetails(card.name, entries);
  if (card.kind === 'workload') addFilter(`workload=${card.namespace}/${card.name}`);
  else if (card.kind === 'world') addFilter(/^[0-9a-f.:]+$/.test(card.name) ? `to:ip=${card.name}` : `to:dns=${card.name}`);
  renderMap();
}

// ---------- the map ----------

function portText(port) {
  if (port.protocol.startsWith('ICMP')) return port.protocol;
  return `${port.port} • ${port.protocol}` + (port.dns ? ' • DNS' : '');
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// On the map, in two short lines that fit between two columns of cards: port, protocol, how
// much (TCP connections opened, DNS queries, else flows) and the handshake RTT; then what went
// wrong (for TCP, connections dropped or reset; else dropped flows). The rest on hover and in the
// details panel.
function edgeLabel(edge) {
  const head = edge.protocol.startsWith('ICMP') || !edge.port ? edge.protocol : `${edge.port}/${edge.protocol}`;
  const tcp = edge.protocol === 'TCP';
  const first = [head, tcp && edge.connections ? `${edge.connections} conn`
    : edge.dnsQueries ? `${edge.dnsQueries} queries` : `${edge.flows} flows`];
  if (edge.handshakeRTT) first.push(`rtt ${ms(edge.handshakeRTT.p50)}`);
  const second = [];
  const dropped = tcp ? edge.droppedConnections : edge.verdicts.DROPPED || 0;
  if (dropped) second.push(`${dropped} dropped`);
  if (edge.resets) second.push(`${edge.resets} RST`);
  const dnsErrors = Object.values(edge.dnsErrors).reduce((a, b) => a + b, 0);
  if (dnsErrors) second.push(`${dnsErrors} DNS errors`);
  if (edge.unansweredDNS) second.push(`${edge.unansweredDNS} unanswered`);
  return [first.join(' · '), ...(second.length ? [second.join(' · ')] : [])];
}

function ms(value) { return value >= 10 ? `${value.toFixed(0)} ms` : `${value.toFixed(2)} ms`; }

function edgeDetails(edge) {
  const entries = [['from', edge.source, `from:workload=${edge.source}`], ['to', edge.destination, `to:workload=${edge.destination}`]];
  if (!edge.protocol.startsWith('ICMP') && edge.port) entries.push(['port', `${edge.port}/${edge.protocol}`, `to:port=${edge.port}`]);
  else entries.push(['protocol', edge.protocol]);
  if (edge.protocol === 'TCP') {
    entries.push(['connections', String(edge.connections)]);
    if (edge.droppedConnections) entries.push(['connections with drops', String(edge.droppedConnections)]);
    if (edge.resets) entries.push(['connections reset', String(edge.resets)]);
  }
  entries.push(['flows', String(edge.flows)]);
  for (const [verdict, count] of Object.entries(edge.verdicts)) entries.push([`${verdict.toLowerCase()} flows`, String(count)]);
  for (const [reason, count] of Object.entries(edge.dropReasons)) entries.push(['drop reason', `${reason} × ${count}`]);
  if (edge.handshakeRTT) entries.push(['handshake RTT', `p50 ${ms(edge.handshakeRTT.p50)} · p95 ${ms(edge.handshakeRTT.p95)} (${edge.handshakeRTT.samples})`]);
  if (edge.dnsQueries) entries.push(['DNS queries', String(edge.dnsQueries)]);
  if (edge.dnsLatency) entries.push(['DNS latency', `p50 ${ms(edge.dnsLatency.p50)} · p95 ${ms(edge.dnsLatency.p95)} (${edge.dnsLatency.samples})`]);
  for (const [rcode, count] of Object.entries(edge.dnsErrors)) entries.push(['DNS error', `${rcode} × ${count}`]);
  if (edge.unansweredDNS) entries.push(['unanswered DNS', String(edge.unansweredDNS)]);
  entries.push(['last seen', edge.lastSeen]);
  showDetails(`${edge.source} → ${edge.destination}`, entries);
}

function renderMap() {
  const root = $('map');
  root.replaceChildren();
  const map = state.map;
  const empty = $('empty');
  if (!map || map.cards.length === 0) {
    const namespace = state.params.get('namespace');
    empty.hidden = false;
    empty.textContent = map ? `No flows seen yet${namespace ? ' in namespace ' + namespace : ''} in this window.` : 'Loading…';
    root.setAttribute('width', 10);
    root.setAttribute('height', 10);
    return;
  }
  empty.hidden = true;
  const margin = 20;
  root.setAttribute('width', map.width + margin * 2 + 260);
  root.setAttribute('height', map.height + margin * 2);
  const defs = svg('defs');
  for (const kind of ['ok', 'warn', 'drop']) {
    const marker = svg('marker', {
      id: `arrow-${kind}`, class: `arrow ${kind}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 5, markerHeight: 5, orient: 'auto',
    });
    marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
    defs.append(marker);
  }
  const layer = svg('g', { transform: `translate(${margin},${margin})` });
  root.append(defs, layer);
  for (const box of map.boxes) {
    const group = svg('g', { class: 'box', 'data-namespace': box.namespace });
    group.append(svg('rect', { x: box.x, y: box.y, width: box.width, height: box.height, rx: 10 }));
    group.append(svg('text', { x: box.x + 12, y: box.y + 20 }, box.namespace || 'outside the cluster'));
    layer.append(group);
  }
  const cards = new Map(map.cards.map((card) => [card.id, card]));
  const hiddenIDs = new Set(map.cards.filter(hiddenCard).map((card) => card.id));
  const edgesLayer = svg('g');
  layer.append(edgesLayer);
  const labels = [];
  const shownCards = new Set();
  for (const edge of map.edges) {
    const dropped = (edge.verdicts.DROPPED || 0) > 0;
    if (!dropped && (hiddenIDs.has(edge.source) || hiddenIDs.has(edge.destination))) continue;
    const from = cards.get(edge.source);
    const to = cards.get(edge.destination);
    if (!from || !to) continue;
    shownCards.add(from.id);
    shownCards.add(to.id);
    const warn = edge.resets > 0 || Object.keys(edge.dnsErrors).length > 0 || edge.unansweredDNS > 0;
    const group = svg('g', {
      class: 'edge' + (dropped ? ' dropped' : warn ? ' warn' : ''), 'data-test': 'edge', 'data-edge': edge.id,
      'data-source': edge.source, 'data-destination': edge.destination,
    });
    // The route is computed by the server, around the cards: Bézier curves end to end.
    const d = edge.path.map((c, i) => (i === 0 ? `M${c[0]},${c[1]} ` : '') + `C${c[2]},${c[3]} ${c[4]},${c[5]} ${c[6]},${c[7]}`).join(' ');
    group.append(svg('path', { d, 'marker-end': `url(#arrow-${dropped ? 'drop' : warn ? 'warn' : 'ok'})` }));
    group.append(svg('title', {}, `${edge.source} → ${edge.destination}\n${edgeLabel(edge).join('\n')}`));
    group.addEventListener('click', () => edgeDetails(edge));
    edgesLayer.append(group);
    const label = svg('text', {
      x: edge.label.x, y: edge.label.y, 'text-anchor': edge.label.anchor, class: 'edge-label' + (dropped ? ' dropped' : warn ? ' warn' : ''),
      'data-test': 'edge-label', 'data-edge': edge.id,
    });
    edgeLabel(edge).forEach((line, index) => label.append(svg('tspan', { x: edge.label.x, dy: index ? '1.15em' : 0 }, line)));
    label.addEventListener('click', () => edgeDetails(edge));
    labels.push(label);
  }
  for (const card of map.cards) {
    if (hiddenIDs.has(card.id) && !shownCards.has(card.id)) continue;
    const group = svg('g', {
      class: 'card' + (state.selectedCard === card.id ? ' selected' : ''), 'data-test': 'card', 'data-card': card.id,
      transform: `translate(${card.x},${card.y})`,
    });
    group.append(svg('rect', { width: card.width, height: card.height, rx: 8 }));
    group.append(svg('text', { x: 12, y: 22, class: 'title', 'data-test': 'card-title' }, card.name));
    const sub = card.kind === 'workload'
      ? `${card.pods.length} pod${card.pods.length === 1 ? '' : 's'}`
      : card.kind === 'world' ? 'world' : 'node';
    group.append(svg('text', { x: 12, y: 40, class: 'sub', 'data-test': 'card-sub' }, sub));
    const lines = card.ports.slice(0, 5).map(portText);
    if (card.ports.length > 5) lines.push(`+${card.ports.length - 5} more`);
    lines.forEach((line, index) => group.append(svg('text', { x: 12, y: 62 + index * 18, class: 'port', 'data-test': 'card-port' }, line)));
    group.addEventListener('click', () => showCard(card));
    layer.append(group);
  }
  layer.append(...labels);
  separateLabels(labels);
}

// Moves edge labels down until none covers another (labels of edges into one card meet there).
function separateLabels(labels) {
  const placed = [];
  const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  for (const label of labels.sort((a, b) => a.getAttribute('y') - b.getAttribute('y'))) {
    let box = label.getBBox();
    for (let tries = 0; tries < 8 && placed.some((other) => overlaps(box, other)); tries++) {
      label.setAttribute('y', Number(label.getAttribute('y')) + box.height + 1);
      box = label.getBBox();
    }
    placed.push(box);
  }
}

// ---------- status ----------

function renderStatus() {
  const status = state.status || {};
  const bar = $('status');
  bar.replaceChildren();
  const upstream = document.createElement('span');
  upstream.dataset.test = 'status-upstream';
  upstream.textContent = status.upstream === 'connected' ? '● connected' : status.upstream === 'reconnecting' ? 'reconnecting…' : 'connecting…';
  if (status.upstream !== 'connected') upstream.className = 'bad';
  const nodes = document.createElement('span');
  nodes.dataset.test = 'status-nodes';
  nodes.textContent = status.nodesTotal ? `  ·  ${status.nodesConnected}/${status.nodesTotal} nodes` : '';
  if (status.nodesTotal && status.nodesConnected < status.nodesTotal) nodes.className = 'bad';
  const rate = document.createElement('span');
  rate.dataset.test = 'status-rate';
  rate.textContent = `  ·  ${(status.flowsPerSecond || 0).toFixed(1)} flows/s`;
  const lost = document.createElement('span');
  lost.textContent = status.lostEvents ? `  ·  ${status.lostEvents} events lost upstream` : '';
  bar.append(upstream, nodes, rate, lost);
}

// ---------- exports and theme ----------

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function exportSVG() {
  const original = $('map');
  const copy = original.cloneNode(true);
  // The page's styles as attributes, so the file looks the same on its own.
  const from = original.querySelectorAll('*');
  const to = copy.querySelectorAll('*');
  from.forEach((element, index) => {
    const style = getComputedStyle(element);
    for (const property of ['fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'font-size', 'font-weight', 'font-family', 'opacity']) {
      to[index].setAttribute(property, style.getPropertyValue(property));
    }
  });
  copy.setAttribute('xmlns', SVG);
  download('osprey-map.svg', 'image/svg+xml', new XMLSerializer().serializeToString(copy));
}

function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'light' : 'dark';
  localStorage.setItem('osprey.theme', document.documentElement.dataset.theme);
}

// ---------- start ----------

// The namespaces the server has seen flows in, asked again every 10 s (new ones appear).
async function loadNamespaces() {
  try {
    const response = await fetch('api/namespaces');
    if (!response.ok) return;
    const select = $('namespace');
    const current = state.params.get('namespace') || '';
    const names = new Set(await response.json());
    if (current) names.add(current);
    const shown = [...select.options].map((o) => o.value).filter((v) => v);
    if ([...names].sort().join(',') === shown.join(',')) return;
    const all = select.options[0];
    select.replaceChildren(all, ...[...names].sort().map((name) => {
      const option = document.createElement('option');
      option.value = name;
      option.textContent = name;
      return option;
    }));
    select.value = current;
  } catch (e) { /* the status bar says the server is away */ }
}

function start() {
  const theme = localStorage.getItem('osprey.theme');
  if (theme) document.documentElement.dataset.theme = theme;
  $('namespace').addEventListener('change', (e) => setParam('namespace', e.target.value));
  $('verdict').addEventListener('change', (e) => setParam('verdict', e.target.value));
  $('window').addEventListener('change', (e) => setParam('window', e.target.value === '300' ? '' : e.target.value));
  $('filter-form').addEventListener('submit', (e) => {
    e.preventDefault();
    addFilter($('filter-input').value);
    $('filter-input').value = '';
  });
  for (const id of ['hide-host', 'hide-kube-dns', 'hide-remote-node', 'hide-prometheus']) {
    $(id).addEventListener('change', () => { renderMap(); renderRows(); });
  }
  $('pause').addEventListener('click', togglePause);
  $('details-close').addEventListener('click', () => {
    $('details').hidden = true;
    state.selectedCard = null;
    state.selectedRow = null;
    renderMap();
  });
  $('theme').addEventListener('click', toggleTheme);
  $('export-flows').addEventListener('click', () => {
    const lines = state.rows.filter((row) => !hidden(row.flow)).slice().reverse().map((row) => row.line);
    download('osprey-flows.json', 'application/x-ndjson', lines.join('\n') + (lines.length ? '\n' : ''));
  });
  $('export-svg').addEventListener('click', exportSVG);
  renderColumnsMenu();
  syncControls();
  loadNamespaces();
  setInterval(loadNamespaces, 10000);
  connect();
  renderStatus();
}

document.addEventListener('DOMContentLoaded', start);

// dfnet ui: the fleet's page (issue 24 item 5; docs/ui.md). Plain JavaScript, no build
// chain. Reads the documents of clients/cli/JSON.md from /api/* (the same ones `dfnet ...
// --json` prints) and the live feed from /api/events (Server-Sent Events, one `watch`
// event each); on an event it appends it to the feed and re-reads the lists, without
// reloading the page. Every string from the fleet goes into the page as text
// (textContent), never as HTML.
'use strict';

const MAX_EVENTS = 200;
const REFRESH_DELAY_MS = 250;

const state = {
  hosts: [], certs: [], nodes: [], boards: [], leases: [], queue: [],
  why: new Map(),      // moniker -> bind-why document, or {error}
  whyOpen: new Set(),  // monikers whose why panel is open
  events: 0,
};

// ---- small helpers ---------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function timeText(ms) {
  if (!ms) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// "in 3 d", "2 h ago"
function relative(ms) {
  if (!ms) return '';
  const d = ms - Date.now();
  const a = Math.abs(d);
  const units = [[86400e3, 'd'], [3600e3, 'h'], [60e3, 'min'], [1e3, 's']];
  let text = '0 s';
  for (const [u, name] of units) {
    if (a >= u) { text = `${Math.floor(a / u)} ${name}`; break; }
  }
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

// "dfnet-boot:///virtio-rng#meta/virtio-rng.json" -> "virtio-rng"
function driverName(url) {
  if (!url) return '';
  const m = /#meta\/([^/]+?)(\.json)?$/.exec(url);
  return m ? m[1] : url;
}

// Monikers in tree order: '.' sorts before every other character (as `node dump`).
function monikerCompare(a, b) {
  const x = a.replaceAll('.', '\u0001'), y = b.replaceAll('.', '\u0001');
  return x < y ? -1 : x > y ? 1 : 0;
}

function badge(text, kind) {
  return el('span', {class: `badge ${kind}`, text});
}

function stateKind(s) {
  switch (s) {
    case 'bound': return 'ok';
    case 'unbound': return 'warn';
    case 'quarantined': return 'bad';
    default: return 'muted';
  }
}

async function getJSON(path) {
  const r = await fetch(path, {credentials: 'same-origin', cache: 'no-store'});
  let doc = null;
  try { doc = await r.json(); } catch (e) { /* not JSON: a 401's text */ }
  if (!r.ok) {
    const e = doc && doc.error;
    throw new Error(e ? `${e.code}: ${e.message}` : `${path}: HTTP ${r.status}`);
  }
  return doc;
}

function showError(text) {
  const box = document.getElementById('error');
  box.hidden = !text;
  box.textContent = text || '';
}

function fillBody(table, rows, emptyText, columns) {
  const body = document.querySelector(`#${table} tbody`);
  body.replaceChildren(...rows);
  if (rows.length === 0)
    body.append(el('tr', {class: 'empty'}, el('td', {colspan: columns, text: emptyText})));
}

// ---- hosts -----------------------------------------------------------------------------

// The latest certificate of role host issued to or seen from `name`, not revoked.
function hostCert(name) {
  let best = null;
  for (const c of state.certs) {
    if (c.role !== 'host' || c.name !== name || c.revoked) continue;
    if (!best || c.not_after_ms > best.not_after_ms) best = c;
  }
  return best;
}

function renderHosts() {
  const rows = state.hosts.map(h => {
    const labels = el('td', {class: 'labels'});
    for (const [k, v] of Object.entries(h.labels || {}))
      labels.append(el('span', {class: 'chip', text: `${k}=${v}`}));
    const cert = hostCert(h.name);
    const certCell = el('td', {class: 'cert'});
    if (cert) {
      const left = cert.not_after_ms - Date.now();
      certCell.append(el('span', {class: left < 7 * 86400e3 ? 'soon' : '', text: timeText(cert.not_after_ms)}),
                      el('span', {class: 'rel', text: ` (${relative(cert.not_after_ms)})`}));
    } else {
      certCell.textContent = state.certsError ? 'not readable' : '—';
      if (state.certsError) certCell.title = state.certsError;
    }
    const version = (h.software_version || '').replace(/^dfnet /, '') || '—';
    return el('tr', {'data-host': h.name, class: h.online ? 'online' : 'offline'},
      el('td', {class: 'name'}, h.name),
      el('td', {class: 'state'}, badge(h.online ? 'online' : 'offline', h.online ? 'ok' : 'bad'),
         h.sandboxed ? null : badge('SANDBOX OFF', 'bad')),
      el('td', {text: h.address || '—'}),
      el('td', {text: h.arch || '—'}),
      el('td', {class: 'version', text: version}),
      el('td', {class: 'num', text: h.node_count}),
      el('td', {class: 'num', text: h.driver_host_count}),
      labels,
      certCell,
      el('td', {text: (h.lease_holders || []).join(', ') || '—'}));
  });
  fillBody('hosts', rows, 'No host has connected.', 10);
  document.getElementById('hosts-count').textContent =
      `${state.hosts.filter(h => h.online).length}/${state.hosts.length} online`;
}

// ---- nodes -----------------------------------------------------------------------------

function whyPanel(moniker) {
  const doc = state.why.get(moniker);
  const panel = el('div', {class: 'why', 'data-why': moniker});
  if (!doc) { panel.textContent = 'asking the manager…'; return panel; }
  if (doc.error) { panel.append(el('p', {class: 'bad', text: doc.error})); return panel; }
  if (doc.traces.length === 0) {
    panel.append(el('p', {text: `No driver was considered for ${doc.node}.`}));
    return panel;
  }
  const table = el('table', {class: 'traces'},
    el('thead', {}, el('tr', {}, el('th', {text: 'Driver'}), el('th', {text: 'Result'}),
                    el('th', {text: 'Instruction'}), el('th', {text: 'Reason'}))));
  const body = el('tbody');
  for (const t of doc.traces) {
    body.append(el('tr', {},
      el('td', {title: t.driver}, driverName(t.driver), t.composite_node ? ` (${t.composite_node})` : ''),
      el('td', {}, badge(t.result, t.result === 'MATCH' ? 'ok' : t.result === 'ERROR' ? 'bad' : 'warn')),
      el('td', {class: 'mono', text: t.instruction ? `[${t.offset}] ${t.instruction}` : ''}),
      el('td', {text: t.reason || ''})));
  }
  table.append(body);
  panel.append(table);
  return panel;
}

async function toggleWhy(moniker) {
  if (state.whyOpen.has(moniker)) {
    state.whyOpen.delete(moniker);
    renderNodes();
    return;
  }
  state.whyOpen.add(moniker);
  state.why.delete(moniker);
  renderNodes();
  try {
    state.why.set(moniker, await getJSON(`/api/bind-why?node=${encodeURIComponent(moniker)}`));
  } catch (e) {
    state.why.set(moniker, {error: e.message});
  }
  renderNodes();
}

function nodeRow(n) {
  const reason = n.unbound_reason ? `${n.unbound_reason.code}: ${n.unbound_reason.message}` : '';
  const flags = [];
  if (n.offline) flags.push(badge('host offline', 'bad'));
  if (n.suspended) flags.push(badge('suspended', 'warn'));
  if (n.test) flags.push(badge('test node', 'muted'));
  if (n.lease) flags.push(badge(`lease ${n.lease.id} · ${n.lease.holder}`, 'lease'));
  const open = state.whyOpen.has(n.moniker);
  return el('tr', {'data-moniker': n.moniker, 'data-state': n.state, class: `node ${stateKind(n.state)}`},
    el('td', {class: 'tree', title: n.moniker},
       el('span', {class: 'indent'}), n.name),
    el('td', {class: 'state'}, badge(n.state, stateKind(n.state)), ...flags),
    el('td', {class: 'driver', title: n.driver || ''}, n.driver ? driverName(n.driver) : '—'),
    el('td', {class: 'class mono', text: n.class_path || ''}),
    el('td', {class: 'reason', text: reason}),
    el('td', {class: 'act'},
       el('button', {class: open ? 'why-btn open' : 'why-btn', type: 'button',
                     title: `bind why ${n.moniker}`, onclick: () => toggleWhy(n.moniker)}, 'why')));
}

function renderNodes() {
  const byHost = new Map();
  for (const n of state.nodes) {
    if (!byHost.has(n.host)) byHost.set(n.host, []);
    byHost.get(n.host).push(n);
  }
  const cards = [];
  for (const host of [...byHost.keys()].sort()) {
    const nodes = byHost.get(host).sort((a, b) => monikerCompare(a.moniker, b.moniker));
    const top = Math.min(...nodes.map(n => n.moniker.split('.').length));
    const body = el('tbody');
    for (const n of nodes) {
      const depth = n.moniker.split('.').length - top;
      const row = nodeRow(n);
      row.querySelector('.indent').style.width = `${depth * 1.1}em`;
      body.append(row);
      if (state.whyOpen.has(n.moniker))
        body.append(el('tr', {class: 'why-row'}, el('td', {colspan: 6}, whyPanel(n.moniker))));
    }
    const bound = nodes.filter(n => n.state === 'bound').length;
    cards.push(el('div', {class: 'card', 'data-tree': host},
      el('h3', {}, host, el('span', {class: 'count', text: `${nodes.length} nodes, ${bound} bound`})),
      el('table', {class: 'grid nodes'},
        el('thead', {}, el('tr', {}, el('th', {text: 'Node'}), el('th', {text: 'State'}),
                        el('th', {text: 'Driver'}), el('th', {text: 'Class'}),
                        el('th', {text: 'Why unbound'}), el('th', {text: ''}))),
        body)));
  }
  if (cards.length === 0) cards.push(el('p', {class: 'empty', text: 'No nodes.'}));
  document.getElementById('trees').replaceChildren(...cards);
  document.getElementById('nodes-count').textContent = `${state.nodes.length}`;
}

// ---- boards and leases -------------------------------------------------------------------

function renderBoards() {
  const rows = state.boards.map(b => el('tr', {'data-board': b.name},
    el('td', {class: 'name', text: b.name}),
    el('td', {class: 'mono', text: b.moniker}),
    el('td', {}, ...b.parents.map((p, i) =>
      el('div', {}, el('span', {class: 'role', text: i === 0 ? 'power' : i === 1 ? 'console' : `part ${i}`}),
         el('span', {class: 'mono', text: p})))),
    el('td', {text: b.lease_holder || '—'})));
  fillBody('boards', rows, 'No board is up.', 4);
  document.getElementById('boards-count').textContent = `${state.boards.length}`;
}

function renderLeases() {
  const held = state.leases.map(l => el('tr', {'data-lease': l.id},
    el('td', {class: 'num', text: l.id}),
    el('td', {text: l.holder}),
    el('td', {class: 'mono', text: l.nodes.join(', ') + (l.node_count > l.nodes.length ? ` (+${l.node_count - l.nodes.length})` : '')}),
    el('td', {text: timeText(l.acquired_ms)}),
    el('td', {text: l.expires_ms ? `${timeText(l.expires_ms)} (${relative(l.expires_ms)})` : 'never'}),
    el('td', {text: l.priority}),
    el('td', {text: l.reason || ''})));
  fillBody('leases', held, 'No lease is held.', 7);
  const queue = state.queue.map(l => el('tr', {'data-lease': l.id},
    el('td', {class: 'num', text: l.queue_position}),
    el('td', {text: l.holder}),
    el('td', {class: 'mono', text: l.targets.join(', ')}),
    el('td', {text: timeText(l.acquired_ms)}),
    el('td', {text: l.expires_ms ? relative(l.expires_ms) : 'with its session'}),
    el('td', {text: l.priority}),
    el('td', {text: l.reason || ''})));
  fillBody('queue', queue, 'Nobody waits.', 7);
  document.getElementById('leases-count').textContent = `${state.leases.length}`;
  document.getElementById('queue-count').textContent = `${state.queue.length}`;
}

// ---- refreshing --------------------------------------------------------------------------

let lastDrawn = {};

async function refresh() {
  const [hosts, nodes, boards, leases, certs] = await Promise.allSettled([
    getJSON('/api/hosts'), getJSON('/api/nodes'), getJSON('/api/boards'),
    getJSON('/api/leases'), getJSON('/api/certs')]);
  const errors = [];
  if (hosts.status === 'fulfilled') state.hosts = hosts.value.hosts; else errors.push(hosts.reason.message);
  if (nodes.status === 'fulfilled') state.nodes = nodes.value.nodes; else errors.push(nodes.reason.message);
  if (boards.status === 'fulfilled') state.boards = boards.value.boards; else errors.push(boards.reason.message);
  if (leases.status === 'fulfilled') { state.leases = leases.value.leases; state.queue = leases.value.queue; }
  else errors.push(leases.reason.message);
  // certificates need role viewer's CertList: without it the column says so
  if (certs.status === 'fulfilled') { state.certs = certs.value.certificates; state.certsError = null; }
  else state.certsError = certs.reason.message;
  // what did not change is not drawn again (a row being clicked stays where it is)
  const drawn = {
    hosts: JSON.stringify([state.hosts, state.certs, state.certsError]),
    nodes: JSON.stringify(state.nodes), boards: JSON.stringify(state.boards),
    leases: JSON.stringify([state.leases, state.queue]),
  };
  if (drawn.hosts !== lastDrawn.hosts) renderHosts();
  if (drawn.nodes !== lastDrawn.nodes) renderNodes();
  if (drawn.boards !== lastDrawn.boards) renderBoards();
  if (drawn.leases !== lastDrawn.leases) renderLeases();
  lastDrawn = drawn;
  showError(errors.join('\n'));
  document.getElementById('updated').textContent = `updated ${timeText(Date.now())}`;
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
}

let refreshTimer = null;
let refreshing = null;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    if (refreshing) await refreshing;
    refreshing = refresh().finally(() => { refreshing = null; });
  }, REFRESH_DELAY_MS);
}

// ---- the live feed -----------------------------------------------------------------------

function eventKindClass(kind) {
  if (/BOUND$|CONNECTED$|ENABLED|REGISTERED|ACQUIRED|RESUMED/.test(kind) && !/UNBOUND|DISCONNECTED/.test(kind)) return 'ok';
  if (/UNBOUND|DISCONNECTED|EXITED|REMOVED|DISABLED|EXPIRED|SUSPENDED|UNREGISTERED/.test(kind)) return 'warn';
  return 'muted';
}

function addEvent(ev) {
  const list = document.getElementById('events');
  const item = el('li', {'data-kind': ev.kind, 'data-subject': ev.subject},
    el('span', {class: 'time', text: timeText(ev.time_ms).slice(11)}),
    badge(ev.kind, eventKindClass(ev.kind)),
    el('span', {class: 'subject mono', text: ev.subject}),
    ev.detail ? el('span', {class: 'detail', text: ev.detail}) : null,
    ev.code !== 'OK' || ev.message ? el('span', {class: 'detail bad', text: `${ev.code}: ${ev.message || ''}`}) : null);
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  state.events++;
  document.getElementById('events-count').textContent = `${state.events}`;
}

function setLive(s, text) {
  const live = document.getElementById('live');
  live.dataset.state = s;
  document.getElementById('live-text').textContent = text;
}

let lastEventId = 0; // the events are numbered since `dfnet ui` started

function connectFeed() {
  const feed = new EventSource('/api/events');
  feed.onopen = () => { setLive('live', 'live'); scheduleRefresh(); };
  feed.onerror = () => {
    // CLOSED: refused for good (a 401: `dfnet ui` was restarted with a new token)
    if (feed.readyState === EventSource.CLOSED)
      setLive('down', 'disconnected: open the URL dfnet ui printed');
    else
      setLive('down', 'reconnecting');
  };
  feed.onmessage = m => {
    const id = Number(m.lastEventId || 0);
    if (id && id <= lastEventId) return; // replayed after a reconnect: shown already
    lastEventId = Math.max(lastEventId, id);
    try { addEvent(JSON.parse(m.data)); } catch (e) { return; }
    scheduleRefresh();
  };
  feed.addEventListener('watch-ended', m => {
    const why = JSON.parse(m.data);
    setLive('down', `watch ended (${why.code}); restarting`);
  });
}

async function start() {
  // The token has become a cookie (HttpOnly): take it out of the address bar and history.
  if (location.search.includes('token=')) history.replaceState(null, '', location.pathname);
  try {
    const info = await getJSON('/api/info');
    document.getElementById('who').textContent =
        `${info.name} (${info.role}) → ${info.manager_name} at ${info.manager}`;
  } catch (e) {
    document.getElementById('who').textContent = e.message;
  }
  await refresh();
  connectFeed();
}

start();

// Drover's web UI: plain JavaScript, no build step and no dependencies.
//
// It reads only Drover's own REST API (Marathon's /v2, Chronos' /v1/scheduler)
// and follows the /v2/events stream: every event re-fetches what the current
// page shows, so the page stays current without reloading. Pages are routed on
// the client (#/apps, #/apps/<id>, #/deployments, #/queue, #/jobs, #/jobs/<name>).
// Everything is built with DOM calls (never innerHTML), so names and messages
// from the API are shown as text.

const TOKEN_KEY = 'drover.token';
// The page is served at <root>/ui/; the API lives at <root>/.
const API_ROOT = new URL('../', document.baseURI);
// Job runs are timed, not announced on the event stream: pages about jobs
// also re-fetch this often.
const JOB_POLL_MS = 10000;
// An event stream that sent nothing (not even its 15 s keep-alive) this long
// is considered dead and reopened.
const STREAM_IDLE_MS = 45000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const JOBS_GROUP = '/drover.jobs/';

// ----- the API ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The bearer token for the API (`name:secret`), kept for this tab's session only. */
function authToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

/** Asks for a token: the API answered 401 (none, or a wrong one). */
function needToken() {
  document.getElementById('token-form').hidden = false;
  document.getElementById('sign-out').hidden = true;
  showError(authToken()
    ? 'The API refused this token: enter another one (NAME:SECRET).'
    : 'Drover needs an API token: enter NAME:SECRET (from `drover credentials add`, or the one `drover dev` printed).',
  'auth');
}

/** The token form in the header: sign in (stores the token) and sign out. */
function setUpToken() {
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  const signOut = document.getElementById('sign-out');
  signOut.hidden = !authToken();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // storage unavailable: nothing to keep it in
    }
    input.value = '';
    form.hidden = true;
    signOut.hidden = false;
    clearError('auth');
    refreshSoon(true);
    live.reconnectNow();
  });
  signOut.addEventListener('click', () => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
    signOut.hidden = true;
    form.hidden = false;
  });
}

function authHeaders() {
  const token = authToken();
  // X-Requested-With: a 401 then challenges with Bearer, not Basic, so the
  // browser shows no password dialog of its own (the page asks instead).
  const headers = { 'X-Requested-With': 'XMLHttpRequest' };
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

function apiUrl(path) {
  return new URL(path.replace(/^\/+/, ''), API_ROOT);
}

/** The message of an error answer: Marathon's `message` and `details`, or Chronos' `message`. */
function errorMessage(status, statusText, body) {
  if (body && typeof body === 'object') {
    let text = String(body.message || body.status || `${status} ${statusText}`);
    const details = body.details;
    if (typeof details === 'string' && details) {
      text += `: ${details}`;
    } else if (Array.isArray(details) && details.length) {
      const parts = details.map((d) =>
        [d.path && d.path !== '/' ? d.path : '', (d.errors || []).join(', ')].filter(Boolean).join(': '));
      text += ` (${parts.join('; ')})`;
    }
    return text;
  }
  if (typeof body === 'string' && body.trim()) return `${status} ${statusText}: ${body.trim().slice(0, 300)}`;
  return `${status} ${statusText}`.trim();
}

/** One API request; answers the parsed body, or throws an ApiError with the API's message. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(apiUrl(path), init);
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: Drover cannot be reached (${e.message})`);
  }
  if (resp.status === 401) needToken();
  const text = await resp.text();
  let data = text;
  if (text && (resp.headers.get('Content-Type') || '').includes('json')) {
    try {
      data = JSON.parse(text);
    } catch {
      // keep the text
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, errorMessage(resp.status, resp.statusText, data));
  return data;
}

const appPath = (id) => `/v2/apps/${id.split('/').filter(Boolean).map(encodeURIComponent).join('/')}`;
const jobPath = (name) => `/v1/scheduler/job/${encodeURIComponent(name)}`;

// ----- DOM helpers --------------------------------------------------------------

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

/** An HTML element: h('td', {class: 'num'}, 3). */
function h(tag, attrs, ...children) {
  return append(setAttrs(document.createElement(tag), attrs), children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), children);
}

function table(testid, caption, headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty', 'data-testid': `${testid}-empty` }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { 'data-testid': testid },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((c) =>
        h('th', { scope: 'col', class: c.startsWith('#') ? 'num' : null }, c.replace(/^#/, ''))))),
      h('tbody', {}, rows)));
}

function badge(kind, text, title) {
  return h('span', { class: `badge badge-${kind}`, title, 'data-testid': 'badge' }, text);
}

const dash = () => h('span', { class: 'muted', title: 'none' }, '—');

// ----- time ---------------------------------------------------------------------

function parseTime(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** 2024-05-01 12:00:03 UTC */
function utc(d) {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${m % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** A <time> showing how long ago (or until), with the UTC time as its title. */
function when(value) {
  const d = parseTime(value);
  if (!d) return dash();
  const delta = d.getTime() - Date.now();
  let text = delta < 0 ? `${span(delta)} ago` : `in ${span(delta)}`;
  if (Math.abs(delta) < 1000) text = 'now';
  else if (Math.abs(delta) > 30 * 86400 * 1000) text = utc(d).slice(0, 10);
  return h('time', { datetime: d.toISOString(), title: utc(d) }, text);
}

function duration(from, to) {
  const a = parseTime(from);
  const b = parseTime(to);
  return a && b ? span(b - a) : '';
}

// ----- messages -----------------------------------------------------------------

const errorsEl = () => document.getElementById('errors');

/** Shows an error until it is dismissed (or, for `key`ed ones, replaced or cleared). */
function showError(message, key) {
  const box = errorsEl();
  if (key) box.querySelector(`[data-key="${key}"]`)?.remove();
  const item = h('div', { class: 'error', 'data-testid': 'error', 'data-key': key || null },
    h('span', {}, message),
    h('button', {
      type: 'button', class: 'link', 'aria-label': 'Dismiss this message',
      onclick: () => item.remove(),
    }, 'Dismiss'));
  box.append(item);
}

function clearError(key) {
  errorsEl().querySelector(`[data-key="${key}"]`)?.remove();
}

let noticeTimer = 0;
function notice(message) {
  const el = document.getElementById('notice');
  el.textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.textContent = ''; }, 8000);
}

// ----- the confirmation dialog --------------------------------------------------

/**
 * Asks before an action. `fields` are extra form controls; `run(form)` does the
 * action and answers the notice to show; an error keeps the dialog open and
 * shows the API's message in it.
 */
function confirmAction({ title, text, fields = [], confirm, danger = false, run }) {
  const dialog = document.getElementById('dialog');
  const error = h('p', { class: 'dialog-error', role: 'alert', 'data-testid': 'dialog-error', hidden: true });
  const cancel = h('button', { type: 'button', 'data-testid': 'dialog-cancel', onclick: () => dialog.close() }, 'Cancel');
  const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', 'data-testid': 'dialog-confirm' }, confirm);
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'dialog-title' }, title),
    h('p', {}, text),
    fields,
    error,
    h('div', { class: 'dialog-buttons' }, cancel, ok));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    ok.disabled = true;
    cancel.disabled = true;
    error.hidden = true;
    try {
      const done = await run(form);
      dialog.close();
      if (done) notice(done);
      refreshSoon(true);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      ok.disabled = false;
      cancel.disabled = false;
    }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
  (form.querySelector('input') || ok).focus();
}

function scaleApp(app) {
  const input = h('input', {
    id: 'scale-instances', name: 'instances', type: 'number', min: 0, step: 1, required: true,
    value: app.instances, inputmode: 'numeric', 'data-testid': 'scale-input',
  });
  // A deployment in progress locks the app (409) unless it is overridden.
  const force = app.deployments?.length
    ? h('input', { id: 'scale-force', name: 'force', type: 'checkbox', 'data-testid': 'scale-force' })
    : null;
  confirmAction({
    title: `Scale ${app.id}`,
    text: `It has ${app.instances} instance${app.instances === 1 ? '' : 's'} now. Drover starts or stops tasks to match the new count.`,
    fields: [
      h('p', { class: 'field' }, h('label', { for: 'scale-instances' }, 'Instances'), input),
      force ? h('p', { class: 'check' }, force, h('label', { for: 'scale-force' }, 'Override the deployment in progress')) : null,
    ],
    confirm: 'Scale',
    run: async () => {
      const n = Number(input.value);
      if (input.value.trim() === '' || !Number.isInteger(n) || n < 0) {
        throw new Error('Instances must be a whole number, 0 or more.');
      }
      const query = force?.checked ? '?force=true' : '';
      const r = await api('PUT', `${appPath(app.id)}${query}`, { instances: n });
      return `Scaling ${app.id} to ${n} instance${n === 1 ? '' : 's'} (deployment ${r?.deploymentId ?? '?'}).`;
    },
  });
}

function restartApp(app) {
  confirmAction({
    title: `Restart ${app.id}`,
    text: `Every task of ${app.id} is replaced by a new one, following the app's upgrade strategy.`,
    confirm: 'Restart',
    danger: true,
    run: async () => {
      const r = await api('POST', `${appPath(app.id)}/restart`);
      return `Restarting ${app.id} (deployment ${r?.deploymentId ?? '?'}).`;
    },
  });
}

function runJob(name) {
  confirmAction({
    title: `Run ${name} now`,
    text: `Starts a run of ${name} now, besides its schedule.`,
    confirm: 'Run now',
    run: async () => {
      await api('PUT', jobPath(name));
      return `Started a run of ${name}.`;
    },
  });
}

function appActions(app) {
  return h('div', { class: 'actions' },
    h('button', { type: 'button', 'data-testid': 'scale-button', onclick: () => scaleApp(app) }, 'Scale…'),
    h('button', { type: 'button', 'data-testid': 'restart-button', onclick: () => restartApp(app) }, 'Restart…'));
}

// ----- apps -----------------------------------------------------------------------

function queueByApp(queue) {
  return new Map((queue?.queue || []).map((q) => [q.app?.id, q]));
}

/** The status of an app, as [kind, text, detail]. */
function appStatus(app, waiting) {
  const running = app.tasksRunning || 0;
  if (waiting && waiting.delay && !waiting.delay.overdue && waiting.delay.timeLeftSeconds > 0) {
    return ['delayed', 'Delayed', `Launches are delayed for ${waiting.delay.timeLeftSeconds}s after failures`];
  }
  if (waiting) {
    // Offers came and none fit: say so, rather than "Deploying".
    const declined = (waiting.processedOffersSummary?.rejectSummaryLastOffers || [])
      .filter((r) => r.declined > 0).map((r) => r.reason);
    const detail = `${waiting.count} waiting for offers${declined.length ? ` (declined: ${declined.join(', ')})` : ''}`;
    if (declined.length || !app.deployments?.length) return ['waiting', 'Waiting', detail];
    return ['deploying', 'Deploying', detail];
  }
  if (app.deployments?.length) return ['deploying', 'Deploying', `deployment ${app.deployments[0].id}`];
  if (app.instances === 0 && running === 0) return ['suspended', 'Suspended', 'Scaled to 0 instances'];
  if ((app.tasksUnhealthy || 0) > 0) return ['unhealthy', 'Unhealthy', `${app.tasksUnhealthy} unhealthy tasks`];
  if (running < app.instances) return ['waiting', 'Waiting', `${app.instances - running} not running`];
  return ['running', 'Running', `${running} running`];
}

function statusBadge(app, waiting) {
  const [kind, text, detail] = appStatus(app, waiting);
  return badge(kind, text, detail);
}

const appHref = (id) => `#/apps${id}`;

const appsPage = {
  nav: 'apps',
  title: 'Apps',
  async load() {
    const [apps, queue] = await Promise.all([
      api('GET', '/v2/apps?embed=apps.tasks&embed=apps.deployments&embed=apps.lastTaskFailure'),
      api('GET', '/v2/queue'),
    ]);
    return { apps: apps.apps || [], queue: queueByApp(queue) };
  },
  render({ apps, queue }) {
    const visible = apps.filter((a) => !a.id.startsWith(JOBS_GROUP)).sort((a, b) => a.id.localeCompare(b.id));
    const hidden = apps.length - visible.length;
    const sum = (f) => visible.reduce((n, a) => n + (a[f] || 0), 0);
    const rows = visible.map((app) => {
      const healthChecked = (app.healthChecks || []).length > 0;
      return h('tr', { 'data-testid': 'app-row', 'data-app-id': app.id },
        h('th', { scope: 'row' }, h('a', { href: appHref(app.id), 'data-testid': 'app-link' }, app.id)),
        h('td', { class: 'num', 'data-testid': 'app-instances' }, app.instances),
        h('td', { class: 'num', 'data-testid': 'app-running' }, app.tasksRunning || 0),
        h('td', { class: 'num', 'data-testid': 'app-healthy' }, healthChecked ? app.tasksHealthy || 0 : dash()),
        h('td', { class: 'num', 'data-testid': 'app-staged' }, app.tasksStaged || 0),
        h('td', { 'data-testid': 'app-status' }, statusBadge(app, queue.get(app.id))),
        h('td', {}, appActions(app)));
    });
    return [
      h('div', { class: 'page-head' },
        h('h1', {}, 'Apps'),
        h('p', { class: 'summary', 'data-testid': 'apps-summary' },
          `${visible.length} app${visible.length === 1 ? '' : 's'} · ${sum('tasksRunning')} of ${sum('instances')} instances running`)),
      table('apps-table', 'Apps with their instances and status',
        ['App', '#Target', '#Running', '#Healthy', '#Starting', 'Status', 'Actions'], rows,
        'No apps yet. Create one with POST /v2/apps.'),
      hidden ? h('p', { class: 'muted' }, `${hidden} app${hidden === 1 ? '' : 's'} under /drover.jobs (job runs) not shown: see `, h('a', { href: '#/jobs' }, 'Jobs'), '.') : null,
    ];
  },
};

function tasksTable(tasks) {
  const rows = tasks.map((t) => {
    const checks = t.healthCheckResults || [];
    const health = !checks.length ? dash()
      : checks.every((c) => c.alive) ? badge('running', 'Healthy')
        : badge('unhealthy', 'Unhealthy', checks.map((c) => c.lastFailureCause).filter(Boolean).join('; '));
    return h('tr', { 'data-testid': 'task-row', 'data-task-id': t.id },
      h('th', { scope: 'row' }, h('code', {}, t.id)),
      h('td', {}, t.host || dash()),
      h('td', {}, (t.ports || []).length ? t.ports.join(', ') : dash()),
      h('td', {}, taskState(t.state)),
      h('td', {}, health),
      h('td', {}, when(t.startedAt || t.stagedAt)));
  });
  return table('tasks-table', 'Tasks', ['Task', 'Host', 'Ports', 'State', 'Health', 'Started'], rows,
    'No tasks.');
}

function taskState(state) {
  const text = String(state || '').replace(/^TASK_/, '');
  const kind = { RUNNING: 'running', STAGING: 'deploying', STARTING: 'deploying', KILLING: 'waiting' }[text] || 'failed';
  return badge(kind, text.toLowerCase());
}

function deploymentProgress(d, app) {
  const target = app.instances;
  const healthChecked = (app.healthChecks || []).length > 0;
  const ready = healthChecked ? app.tasksHealthy || 0 : app.tasksRunning || 0;
  const actions = (d.currentActions || []).map((a) => `${a.action} ${a.app}`).join(', ');
  const label = `${healthChecked ? 'Healthy' : 'Running'}: ${ready} of ${target}`;
  return h('section', { class: 'card', 'data-testid': 'deployment-progress', 'aria-label': `Deployment ${d.id}` },
    h('h3', {}, 'Deployment ', h('code', {}, d.id)),
    h('p', {}, `Step ${d.currentStep} of ${d.totalSteps}`, actions ? `: ${actions}` : ''),
    h('p', { class: 'progress-line' },
      h('label', { for: `progress-${d.id}` }, label),
      h('progress', { id: `progress-${d.id}`, max: Math.max(target, 1), value: Math.min(ready, Math.max(target, 1)) })));
}

function rejectReasons(waiting) {
  const rows = (waiting?.processedOffersSummary?.rejectSummaryLastOffers || []).filter((r) => r.declined > 0);
  if (!rows.length) return h('span', { class: 'muted' }, 'none yet');
  return h('ul', { class: 'reasons', 'data-testid': 'reject-reasons' },
    rows.map((r) => h('li', {}, h('strong', {}, r.reason), ` declined ${r.declined} of ${r.processed} offers`)));
}

function describeCommand(app) {
  if (app.cmd) return h('code', {}, app.cmd);
  if (app.args?.length) return h('code', {}, app.args.join(' '));
  if (app.container?.docker?.image) return h('span', {}, 'Docker image ', h('code', {}, app.container.docker.image));
  return dash();
}

function definitionList(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function appPage(id) {
  return {
    nav: 'apps',
    title: id,
    async load() {
      const [app, deployments, queue] = await Promise.all([
        api('GET', appPath(id)).then((r) => r.app).catch((e) => {
          if (e.status === 404) return null;
          throw e;
        }),
        api('GET', '/v2/deployments'),
        api('GET', '/v2/queue'),
      ]);
      return { app, deployments, waiting: queueByApp(queue).get(id) };
    },
    render({ app, deployments, waiting }) {
      if (!app) {
        return [h('h1', {}, id), h('p', { class: 'empty', 'data-testid': 'app-missing' }, `There is no app ${id}. `, h('a', { href: '#/apps' }, 'All apps'))];
      }
      const mine = (deployments || []).filter((d) => (d.affectedApps || []).includes(app.id));
      const res = `${app.cpus} CPUs · ${app.mem} MiB · ${app.disk} MiB disk${app.gpus ? ` · ${app.gpus} GPUs` : ''}`;
      const failure = app.lastTaskFailure;
      return [
        h('p', { class: 'crumbs' }, h('a', { href: '#/apps' }, 'Apps'), ' / '),
        h('div', { class: 'page-head' },
          h('h1', { 'data-testid': 'app-title' }, app.id, ' ', statusBadge(app, waiting)),
          appActions(app)),
        definitionList([
          ['Command', describeCommand(app)],
          ['Instances', h('span', { 'data-testid': 'detail-counts' },
            `${app.tasksRunning || 0} running of ${app.instances}`,
            app.tasksStaged ? `, ${app.tasksStaged} starting` : '',
            (app.healthChecks || []).length ? `, ${app.tasksHealthy || 0} healthy` : '')],
          ['Resources', res],
          ['Version', when(app.version)],
          failure ? ['Last failure', h('span', {}, `${failure.state} on ${failure.host}: ${failure.message || 'no message'} `, when(failure.timestamp))] : null,
        ]),
        mine.length ? h('h2', {}, 'Deployments') : null,
        mine.map((d) => deploymentProgress(d, app)),
        waiting ? [
          h('h2', {}, 'Waiting to launch'),
          h('section', { class: 'card', 'data-testid': 'app-waiting' },
            h('p', {}, `${waiting.count} instance${waiting.count === 1 ? '' : 's'} waiting for a matching offer since `, when(waiting.since), '.'),
            h('p', {}, 'Offers declined: '), rejectReasons(waiting)),
        ] : null,
        h('h2', {}, 'Tasks'),
        tasksTable(app.tasks || []),
      ];
    },
  };
}

// ----- deployments and the launch queue ---------------------------------------------

const deploymentsPage = {
  nav: 'deployments',
  title: 'Deployments',
  async load() {
    const [deployments, apps] = await Promise.all([api('GET', '/v2/deployments'), api('GET', '/v2/apps')]);
    return { deployments, apps: new Map((apps.apps || []).map((a) => [a.id, a])) };
  },
  render({ deployments, apps }) {
    const rows = (deployments || []).map((d) => h('tr', { 'data-testid': 'deployment-row' },
      h('th', { scope: 'row' }, h('code', {}, d.id)),
      h('td', {}, (d.affectedApps || []).map((id, i) => [i ? ', ' : '', h('a', { href: appHref(id) }, id)])),
      h('td', { class: 'num' }, `${d.currentStep} of ${d.totalSteps}`),
      h('td', {}, (d.currentActions || []).map((a) => `${a.action} ${a.app}`).join(', ') || dash()),
      h('td', {}, (d.affectedApps || []).map((id) => {
        const a = apps.get(id);
        return a ? h('span', { class: 'chip' }, `${id}: ${a.tasksRunning || 0}/${a.instances}`) : null;
      })),
      h('td', {}, when(d.version))));
    return [
      h('h1', {}, 'Deployments'),
      table('deployments-table', 'Deployments in progress',
        ['Deployment', 'Apps', '#Step', 'Current actions', 'Running / target', 'Started'], rows,
        'No deployment in progress.'),
    ];
  },
};

const queuePage = {
  nav: 'queue',
  title: 'Launch queue',
  async load() {
    return api('GET', '/v2/queue');
  },
  render(queue) {
    const rows = (queue.queue || []).map((q) => {
      const s = q.processedOffersSummary || {};
      const delay = q.delay || {};
      return h('tr', { 'data-testid': 'queue-row', 'data-app-id': q.app?.id },
        h('th', { scope: 'row' }, h('a', { href: appHref(q.app?.id || '') }, q.app?.id)),
        h('td', { class: 'num' }, q.count),
        h('td', {}, delay.overdue ? 'none' : `${delay.timeLeftSeconds}s left`),
        h('td', {}, when(q.since)),
        h('td', { class: 'num' }, `${s.processedOffersCount ?? 0} / ${s.unusedOffersCount ?? 0}`),
        h('td', {}, rejectReasons(q)));
    });
    return [
      h('h1', {}, 'Launch queue'),
      h('p', { class: 'muted' }, 'Instances waiting for a matching offer, and why recent offers did not fit.'),
      table('queue-table', 'Instances waiting to launch',
        ['App', '#Waiting', 'Backoff delay', 'Waiting since', '#Offers seen / unused', 'Reject reasons'], rows,
        'Nothing is waiting to launch.'),
    ];
  },
};

// ----- jobs -----------------------------------------------------------------------

/** `node,<name>,<last result>,<activity>` and `link,<parent>,<child>` lines. */
function parseGraph(csv) {
  const nodes = new Map();
  const links = [];
  for (const line of String(csv || '').split('\n')) {
    const [kind, a, b, ...rest] = line.trim().split(',');
    if (kind === 'node' && a) nodes.set(a, { name: a, result: b || 'fresh', activity: rest.join(',') || 'idle' });
    else if (kind === 'link' && a && b) links.push([a, b]);
  }
  for (const [p, c] of links) {
    for (const n of [p, c]) if (!nodes.has(n)) nodes.set(n, { name: n, result: 'fresh', activity: 'idle' });
  }
  return { nodes, links };
}

/** The dependency graph as SVG: one column per depth (longest path from a root). */
function graphSvg({ nodes, links }) {
  const parents = new Map([...nodes.keys()].map((n) => [n, []]));
  for (const [p, c] of links) parents.get(c).push(p);
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (n) => {
    if (depth.has(n)) return depth.get(n);
    if (visiting.has(n)) return 0; // a cycle: Drover refuses them, but never loop
    visiting.add(n);
    const d = Math.max(-1, ...parents.get(n).map(depthOf)) + 1;
    visiting.delete(n);
    depth.set(n, d);
    return d;
  };
  const columns = [];
  for (const n of [...nodes.keys()].sort()) {
    const d = depthOf(n);
    (columns[d] ||= []).push(n);
  }
  const W = 170; const H = 46; const GX = 60; const GY = 18; const PAD = 10;
  const pos = new Map();
  columns.forEach((col, x) => col.forEach((n, y) => pos.set(n, { x: PAD + x * (W + GX), y: PAD + y * (H + GY) })));
  const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GX;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const edges = links.map(([p, c]) => {
    const a = pos.get(p); const b = pos.get(c);
    const x1 = a.x + W; const y1 = a.y + H / 2; const x2 = b.x - 4; const y2 = b.y + H / 2;
    const mx = (x1 + x2) / 2;
    return svg('path', { class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)', 'data-testid': 'graph-edge' },
      svg('title', {}, `${c} runs after ${p}`));
  });
  const boxes = [...nodes.values()].map((n) => {
    const { x, y } = pos.get(n.name);
    const running = /running/.test(n.activity);
    const label = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
    return svg('a', { href: `#/jobs/${encodeURIComponent(n.name)}`, class: `node node-${n.result}${running ? ' node-running' : ''}`, 'data-testid': 'graph-node', 'data-job': n.name },
      svg('title', {}, `${n.name}: last result ${n.result}, ${n.activity}`),
      svg('rect', { x, y, width: W, height: H, rx: 6 }),
      svg('text', { x: x + 10, y: y + 19, class: 'node-name' }, label),
      svg('text', { x: x + 10, y: y + 36, class: 'node-state' }, `${n.result} · ${n.activity}`));
  });
  return svg('svg', {
    class: 'graph', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-labelledby': 'graph-title', 'data-testid': 'job-graph',
  },
  svg('title', { id: 'graph-title' }, `Job dependencies: ${nodes.size} jobs, ${links.length} dependencies`),
  svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))),
  edges, boxes);
}

function resultBadge(result) {
  const kind = { success: 'running', failure: 'failed', fresh: 'suspended' }[result] || 'suspended';
  return badge(kind, result || 'fresh');
}

function runStatusBadge(status) {
  const kind = { succeeded: 'running', running: 'deploying', queued: 'waiting', failed: 'failed', killed: 'failed', missed: 'unhealthy' }[status] || 'suspended';
  return badge(kind, status);
}

const jobHref = (name) => `#/jobs/${encodeURIComponent(name)}`;

function scheduleText(job) {
  if (job.parents?.length) return h('span', {}, 'after ', job.parents.map((p, i) => [i ? ', ' : '', h('a', { href: jobHref(p) }, p)]));
  if (!job.schedule) return dash();
  return h('span', {}, h('code', {}, job.schedule), job.scheduleTimeZone ? ` (${job.scheduleTimeZone})` : '');
}

const jobsPage = {
  nav: 'jobs',
  title: 'Jobs',
  poll: JOB_POLL_MS,
  async load() {
    const [jobs, summary, graph] = await Promise.all([
      api('GET', '/v1/scheduler/jobs'),
      api('GET', '/v1/scheduler/jobs/summary'),
      api('GET', '/v1/scheduler/graph/csv'),
    ]);
    return { jobs, summary: new Map((summary.jobs || []).map((s) => [s.name, s])), graph: parseGraph(graph) };
  },
  render({ jobs, summary, graph }) {
    const rows = [...jobs].sort((a, b) => a.name.localeCompare(b.name)).map((job) => {
      const s = summary.get(job.name) || {};
      return h('tr', { 'data-testid': 'job-row', 'data-job': job.name },
        h('th', { scope: 'row' }, h('a', { href: jobHref(job.name), 'data-testid': 'job-link' }, job.name)),
        h('td', {}, scheduleText(job), s.disabled ? [' ', badge('suspended', 'disabled')] : null),
        h('td', {}, job.parents?.length ? h('span', { class: 'muted' }, 'after its parents') : when(job.nextRunAt)),
        h('td', { 'data-testid': 'job-result' }, resultBadge(s.status)),
        h('td', { 'data-testid': 'job-activity' }, s.state || 'idle'),
        h('td', { class: 'num' }, `${job.successCount} / ${job.errorCount}`),
        h('td', {}, h('button', { type: 'button', 'data-testid': 'run-job-button', onclick: () => runJob(job.name) }, 'Run now…')));
    });
    return [
      h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'),
        h('p', { class: 'summary' }, `${jobs.length} job${jobs.length === 1 ? '' : 's'}`)),
      table('jobs-table', 'Jobs with their schedule and last result',
        ['Job', 'Schedule', 'Next run', 'Last result', 'Activity', '#Succeeded / failed', 'Actions'], rows,
        'No jobs yet. Create one with POST /v1/scheduler/iso8601.'),
      graph.nodes.size ? h('figure', { class: 'graph-box' },
        h('figcaption', {}, h('h2', {}, 'Dependencies')),
        h('div', { class: 'graph-scroll' }, graphSvg(graph))) : null,
    ];
  },
};

function triggerText(t) {
  if (!t) return '';
  if (t.type === 'schedule') return h('span', {}, 'schedule, due ', when(t.dueAt));
  if (t.type === 'manual') return `manual${t.arguments?.length ? ` (${t.arguments.join(' ')})` : ''}`;
  return t.type;
}

function jobPage(name) {
  return {
    nav: 'jobs',
    title: name,
    poll: JOB_POLL_MS,
    async load() {
      const [job, runs] = await Promise.all([
        api('GET', jobPath(name)).catch((e) => {
          if (e.status === 404) return null;
          throw e;
        }),
        api('GET', `${jobPath(name)}/runs`).catch((e) => {
          if (e.status === 404) return [];
          throw e;
        }),
      ]);
      return { job, runs };
    },
    render({ job, runs }) {
      if (!job) {
        return [h('h1', {}, name), h('p', { class: 'empty' }, `There is no job ${name}. `, h('a', { href: '#/jobs' }, 'All jobs'))];
      }
      const rows = [...runs].reverse().map((r) => h('tr', { 'data-testid': 'run-row', 'data-run-id': r.id },
        h('th', { scope: 'row' }, h('code', {}, r.id)),
        h('td', {}, triggerText(r.trigger)),
        h('td', { 'data-testid': 'run-status' }, runStatusBadge(r.status)),
        h('td', { class: 'num' }, r.attempts),
        h('td', {}, when(r.createdAt)),
        h('td', {}, when(r.startedAt)),
        h('td', {}, duration(r.startedAt, r.finishedAt) || (r.startedAt && !r.finishedAt ? h('span', { class: 'muted' }, 'running') : dash())),
        h('td', { class: 'message' }, r.message || '')));
      return [
        h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, 'Jobs'), ' / '),
        h('div', { class: 'page-head' },
          h('h1', { 'data-testid': 'job-title' }, job.name, ' ', job.lastRunStatus ? runStatusBadge(job.lastRunStatus) : resultBadge('fresh')),
          h('button', { type: 'button', 'data-testid': 'run-job-button', onclick: () => runJob(job.name) }, 'Run now…')),
        definitionList([
          ['Command', h('code', {}, job.command)],
          ['Schedule', scheduleText(job)],
          job.parents?.length ? null : ['Next run', when(job.nextRunAt)],
          ['Runs', `${job.successCount} succeeded, ${job.errorCount} failed`],
          ['Last success', when(job.lastSuccess)],
          ['Last failure', when(job.lastError)],
          job.description ? ['Description', job.description] : null,
        ]),
        h('h2', {}, 'Run history'),
        table('runs-table', `Runs of ${job.name}, newest first`,
          ['Run', 'Trigger', 'Status', '#Attempts', 'Created', 'Started', 'Duration', 'Message'], rows,
          'No runs kept yet.'),
      ];
    },
  };
}

// ----- routing and refreshing ---------------------------------------------------------

function route(hash) {
  const path = hash.replace(/^#/, '');
  let m;
  if ((m = path.match(/^\/apps(\/.+)$/))) return appPage(decodeURIComponent(m[1]).replace(/\/+$/, ''));
  if ((m = path.match(/^\/jobs\/(.+)$/))) return jobPage(decodeURIComponent(m[1]));
  return { '/jobs': jobsPage, '/queue': queuePage, '/deployments': deploymentsPage }[path] || appsPage;
}

let current = null; // the page shown
let shown = false; // whether it has rendered once
let loading = null; // the page a load runs for: one at a time
let again = false; // something changed during that load
let loads = 0;
let lastLoadMs = 0;
let pollTimer = 0;

/** Loads and renders the current page (once more afterwards if asked again meanwhile). */
async function refresh() {
  const page = current;
  if (loading === page) {
    again = true;
    return;
  }
  loading = page;
  const main = document.getElementById('main');
  const t0 = performance.now();
  try {
    const data = await page.load();
    lastLoadMs = performance.now() - t0;
    if (page !== current) return;
    main.replaceChildren(...[page.render(data)].flat(Infinity).filter(Boolean));
    shown = true;
    main.setAttribute('aria-busy', 'false');
    main.dataset.loaded = String(++loads);
    clearError('load');
  } catch (e) {
    if (page !== current) return;
    showError(`Loading ${page.title} failed: ${e.message}`, 'load');
    if (!shown) main.replaceChildren(h('p', { class: 'muted' }, 'Could not load this page.'));
    main.setAttribute('aria-busy', 'false');
  } finally {
    if (loading === page) loading = null;
    if (again && page === current) {
      again = false;
      refreshSoon();
    }
  }
}

let refreshTimer = 0;
let settleTimer = 0;
/**
 * Re-fetches the page: at once (`now`), or soon, at most once per interval
 * (a quarter second, or twice the last load's time, up to 5 s) however
 * many events arrive; and once more 1.5 s after the last call, since an
 * event can arrive just before the state it announces is published.
 */
function refreshSoon(now = false) {
  if (now) {
    clearTimeout(refreshTimer);
    refreshTimer = 0;
    refresh();
  } else if (!refreshTimer) {
    const wait = Math.min(5000, Math.max(250, 2 * lastLoadMs));
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      refresh();
    }, wait);
  }
  clearTimeout(settleTimer);
  settleTimer = setTimeout(refresh, 1500);
}

function show() {
  const page = route(location.hash);
  const first = current === null;
  current = page;
  shown = false;
  document.title = `${page.title} · Drover`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === page.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.setAttribute('aria-busy', 'true');
  if (!first) main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  clearInterval(pollTimer);
  if (page.poll) pollTimer = setInterval(refresh, page.poll);
  refreshSoon(true);
  if (!first) main.focus({ preventScroll: true });
}

// ----- the event stream ---------------------------------------------------------------

/**
 * Follows /v2/events with fetch (so the bearer token can be sent, which
 * EventSource cannot): every event re-fetches the current page; a lost
 * stream is reopened with capped, jittered exponential backoff, and the page
 * is re-fetched on each reconnect (events were missed meanwhile).
 */
const live = {
  attempt: 0,
  retry: 0,
  events: 0,
  connected: false,

  setState(state, text) {
    const el = document.getElementById('live');
    el.dataset.state = state;
    el.dataset.events = String(this.events);
    document.getElementById('live-text').textContent = text;
  },

  async connect() {
    const ctrl = new AbortController();
    let idle = 0;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ctrl.abort(new Error('the stream went silent')), STREAM_IDLE_MS);
    };
    try {
      this.setState('connecting', this.attempt ? 'Reconnecting…' : 'Connecting…');
      alive();
      const resp = await fetch(apiUrl('/v2/events'), {
        headers: { Accept: 'text/event-stream', ...authHeaders() },
        cache: 'no-store',
        signal: ctrl.signal,
      });
      if (resp.status === 401) needToken();
      if (!resp.ok || !resp.body) throw new Error(`the event stream answered ${resp.status}`);
      this.attempt = 0;
      this.connected = true;
      this.setState('live', 'Live');
      refreshSoon(true);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the server ended the event stream');
        alive();
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.frame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      clearTimeout(idle);
      ctrl.abort();
      this.connected = false;
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
      const wait = Math.round(base / 2 + Math.random() * base / 2);
      this.attempt += 1;
      this.setState('down', `Live updates lost (${e.message}); retrying in ${Math.ceil(wait / 1000)}s`);
      this.retry = setTimeout(() => this.connect(), wait);
    }
  },

  /** After signing in: reconnect now instead of after the backoff. */
  reconnectNow() {
    if (this.connected) return;
    clearTimeout(this.retry);
    this.attempt = 0;
    this.connect();
  },

  frame(text) {
    let type = 'message';
    let data = '';
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) continue; // keep-alive
      if (line.startsWith('event:')) type = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trim();
    }
    if (!data || type === 'event_stream_attached' || type === 'event_stream_detached') return;
    this.events += 1;
    document.getElementById('live').dataset.events = String(this.events);
    refreshSoon();
  },
};

// ----- start --------------------------------------------------------------------------

function start() {
  document.querySelector('[data-skip]')?.addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  setUpToken();
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/apps');
  window.addEventListener('hashchange', show);
  show();
  live.connect();
}

start();

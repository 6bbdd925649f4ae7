// turf's dashboard. Every figure comes from the public Stats API
// (POST /api/v2/query); the page adds no numbers of its own. Everything that
// came from visitors (paths, referrers, props, UTM values) is put into the
// page with textContent, never as HTML.
'use strict';
(() => {
  const boot = JSON.parse(document.getElementById('boot').textContent);
  const I18N = window.turfI18n;
  const SVGNS = 'http://www.w3.org/2000/svg';

  // ---- language -------------------------------------------------------
  let lang = (() => {
    const q = new URLSearchParams(location.search).get('lang');
    if (q === 'nl' || q === 'en') return q;
    try { const s = localStorage.getItem('turf.lang'); if (s === 'nl' || s === 'en') return s; } catch (e) { /* storage off */ }
    for (const l of navigator.languages || [navigator.language || 'en']) {
      if (/^nl\b/i.test(l)) return 'nl';
      if (/^en\b/i.test(l)) return 'en';
    }
    return 'en';
  })();
  const t = (k) => (I18N[lang] && I18N[lang][k]) ?? I18N.en[k] ?? k;
  let nf, nf1, dfDay, dfMonth, dfHour, regionNames;
  function setLocale() {
    const loc = lang === 'nl' ? 'nl-NL' : 'en-GB';
    nf = new Intl.NumberFormat(loc);
    nf1 = new Intl.NumberFormat(loc, { maximumFractionDigits: 2 });
    dfDay = new Intl.DateTimeFormat(loc, { day: 'numeric', month: 'short', timeZone: 'UTC' });
    dfMonth = new Intl.DateTimeFormat(loc, { month: 'short', year: 'numeric', timeZone: 'UTC' });
    dfHour = new Intl.DateTimeFormat(loc, { hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });
    try { regionNames = new Intl.DisplayNames([loc], { type: 'region' }); } catch (e) { regionNames = null; }
    document.documentElement.lang = lang;
  }
  setLocale();

  // ---- state in the URL ------------------------------------------------
  const PERIODS = ['today', 'yesterday', '7d', '30d', 'month', 'lastmonth', '12mo', 'custom'];
  const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
  const state = { site: boot.sites[0], period: '30d', from: '', to: '', filters: [] };

  function readURL() {
    const q = new URLSearchParams(location.search);
    const site = q.get('site');
    state.site = boot.sites.includes(site) ? site : boot.sites[0];
    const p = q.get('period');
    state.period = PERIODS.includes(p) ? p : '30d';
    state.from = DATE_RE.test(q.get('from') || '') ? q.get('from') : '';
    state.to = DATE_RE.test(q.get('to') || '') ? q.get('to') : '';
    if (state.period === 'custom' && (!state.from || !state.to || state.from > state.to)) state.period = '30d';
    // A filter is "op,dimension,value": the dimension holds no comma, the
    // value may.
    state.filters = [];
    for (const f of q.getAll('f')) {
      const i = f.indexOf(','), j = f.indexOf(',', i + 1);
      if (i < 0 || j < 0) continue;
      const op = f.slice(0, i), dim = f.slice(i + 1, j), val = f.slice(j + 1);
      if (op === 'is' && /^(visit|event):[a-z_]+(:.+)?$/.test(dim)) state.filters.push([op, dim, val]);
    }
  }

  function writeURL(push) {
    const q = new URLSearchParams();
    if (boot.sites.length > 1 || state.site !== boot.sites[0]) q.set('site', state.site);
    q.set('period', state.period);
    if (state.period === 'custom') { q.set('from', state.from); q.set('to', state.to); }
    for (const f of state.filters) q.append('f', f.join(','));
    const url = location.pathname + '?' + q.toString();
    if (url === location.pathname + location.search) return;
    if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  }

  // ---- dates -----------------------------------------------------------
  const pad = (n) => String(n).padStart(2, '0');
  const ymd = (d) => d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  // clockIn is the date and hour now in time zone tz (the browser's when
  // tz is missing or unknown).
  function clockIn(tz) {
    const d = new Date();
    try {
      const parts = {};
      new Intl.DateTimeFormat('en-CA', { timeZone: tz || undefined, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' })
        .formatToParts(d).forEach((p) => { parts[p.type] = p.value; });
      return { date: parts.year + '-' + parts.month + '-' + parts.day, hour: parts.hour };
    } catch (e) {
      return { date: ymd(d), hour: pad(d.getHours()) };
    }
  }
  function dateRange() {
    const now = new Date();
    switch (state.period) {
      case 'today': return 'day';
      case 'yesterday': { const y = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1); return [ymd(y), ymd(y)]; }
      case '7d': return '7d';
      case '30d': return '30d';
      case 'month': return 'month';
      case 'lastmonth': return [ymd(new Date(now.getFullYear(), now.getMonth() - 1, 1)), ymd(new Date(now.getFullYear(), now.getMonth(), 0))];
      case '12mo': return '12mo';
      default: return [state.from, state.to];
    }
  }
  function interval() {
    switch (state.period) {
      case 'today': case 'yesterday': return 'hour';
      case '12mo': return 'month';
      case 'custom': {
        const days = (Date.parse(state.to) - Date.parse(state.from)) / 864e5 + 1;
        return days <= 2 ? 'hour' : days <= 92 ? 'day' : days <= 366 ? 'week' : 'month';
      }
      default: return 'day';
    }
  }

  // ---- the API ---------------------------------------------------------
  let generation = 0; // bumped on every state change; stale answers are dropped
  let aborter = new AbortController();
  function headers() {
    const h = { 'Content-Type': 'application/json' };
    if (boot.share) h['X-Turf-Share'] = boot.share; else h['X-Turf-CSRF'] = boot.csrf;
    return h;
  }
  async function call(url, init) {
    const r = await fetch(url, Object.assign({ headers: headers(), credentials: 'same-origin', signal: aborter.signal }, init));
    if (r.status === 401 && !boot.share) {
      location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
      throw new Error('logged out');
    }
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }
  function query(body) {
    const q = Object.assign({ site_id: state.site, date_range: dateRange() }, body);
    const filters = state.filters.map(([op, dim, v]) => [op, dim, [v]]).concat(body.filters || []);
    if (filters.length) q.filters = filters; else delete q.filters;
    return call('/api/v2/query', { method: 'POST', body: JSON.stringify(q) });
  }

  // ---- small DOM helpers -------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids.flat(Infinity)) if (c != null) el.append(c);
    return el;
  }
  function s(tag, attrs) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  }

  // ---- formatting ------------------------------------------------------
  function fmtDuration(sec) {
    sec = Math.round(sec || 0);
    const hh = Math.floor(sec / 3600), mm = Math.floor(sec % 3600 / 60), ss = sec % 60;
    if (hh) return hh + t('hours') + ' ' + pad(mm) + t('minutes');
    if (mm) return mm + t('minutes') + ' ' + pad(ss) + t('seconds');
    return ss + t('seconds');
  }
  function fmtMetric(m, v) {
    if (v == null) return '–';
    if (typeof v === 'object') return v.short || String(v.value);
    switch (m) {
      case 'bounce_rate': case 'conversion_rate': case 'percentage': return nf1.format(v) + '%';
      case 'visit_duration': case 'time_on_page': return fmtDuration(v);
      case 'scroll_depth': return nf.format(v) + '%';
      case 'views_per_visit': return nf1.format(v);
      default: return nf.format(v);
    }
  }
  function fmtBucket(label, gran) {
    const d = new Date(Date.UTC(+label.slice(0, 4), +label.slice(5, 7) - 1, +label.slice(8, 10), +(label.slice(11, 13) || 0)));
    if (gran === 'hour') return dfHour.format(d);
    if (gran === 'month') return dfMonth.format(d);
    return dfDay.format(d);
  }
  function fmtBucketLong(label, gran) {
    const d = new Date(Date.UTC(+label.slice(0, 4), +label.slice(5, 7) - 1, +label.slice(8, 10), +(label.slice(11, 13) || 0)));
    const loc = lang === 'nl' ? 'nl-NL' : 'en-GB';
    const o = { timeZone: 'UTC' };
    if (gran === 'month') Object.assign(o, { month: 'long', year: 'numeric' });
    else Object.assign(o, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
    if (gran === 'hour') Object.assign(o, { hour: '2-digit', minute: '2-digit' });
    return new Intl.DateTimeFormat(loc, o).format(d);
  }

  // Flags are emoji when the system can draw them, a code badge otherwise
  // (Windows and bare Linux have no flag glyphs).
  const emojiFlags = (() => {
    try {
      const c = document.createElement('canvas'); c.width = c.height = 16;
      const x = c.getContext('2d'); x.font = '14px sans-serif'; x.textBaseline = 'top';
      x.fillText('\u{1F1F3}\u{1F1F1}', 0, 0);
      const d = x.getImageData(0, 0, 16, 16).data;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (Math.abs(d[i] - d[i + 1]) > 40 || Math.abs(d[i + 1] - d[i + 2]) > 40)) return true;
    } catch (e) { /* no canvas */ }
    return false;
  })();
  function flag(code) {
    if (!/^[A-Z]{2}$/.test(code)) return h('span', { class: 'flag flag-code', 'aria-hidden': 'true', text: '··' });
    if (emojiFlags) return h('span', { class: 'flag', 'aria-hidden': 'true', text: String.fromCodePoint(...[...code].map((c) => 0x1F1A5 + c.charCodeAt(0))) });
    return h('span', { class: 'flag flag-code', 'aria-hidden': 'true', text: code });
  }

  // displayValue is how a dimension value reads; the raw value is what
  // filters use.
  function displayValue(dim, v) {
    if (v === '(not set)') return t('v_unknown');
    if (dim === 'visit:country') {
      if (!v) return t('v_unknown');
      try { return (regionNames && regionNames.of(v)) || v; } catch (e) { return v; }
    }
    if (v === 'Direct / None') return t('v_direct');
    if (v === '(none)') return t('v_none');
    if (v === '' || v === '(not set)') return t('v_unknown');
    if (dim === 'visit:device' && I18N.en['v_' + v]) return t('v_' + v);
    return v;
  }
  function dimLabel(dim) {
    const k = 'd_' + dim;
    if (I18N.en[k]) return t(k);
    if (dim.startsWith('event:props:')) return t('d_props') + ' ' + dim.slice(12);
    return dim;
  }

  // ---- panels ------------------------------------------------------------
  const SOCIAL = ['Organic Social', 'Paid Social'];
  const PANELS = [
    { id: 'sources', tabs: [
      { id: 'sources', dim: 'visit:source', metrics: ['visitors'] },
      { id: 'channels', dim: 'visit:channel', metrics: ['visitors'] },
      { id: 'social', dim: 'visit:source', metrics: ['visitors'], filters: [['is', 'visit:channel', SOCIAL]] },
      { id: 'referrers', dim: 'visit:referrer', metrics: ['visitors'] },
    ] },
    { id: 'pages', tabs: [
      // Scroll depth and time on page come from the engagement beacons, by a
      // query of their own (engagementQuery).
      { id: 'pages', dim: 'event:page', metrics: ['visitors', 'pageviews', 'scroll_depth', 'time_on_page'], filters: [['is', 'event:name', ['pageview']]],
        eng: ['scroll_depth', 'time_on_page'] },
      { id: 'entry', dim: 'visit:entry_page', metrics: ['visitors', 'visits'] },
      { id: 'exit', dim: 'visit:exit_page', metrics: ['visitors', 'visits'] },
    ] },
    { id: 'campaigns', tabs: [
      { id: 'campaign', dim: 'visit:utm_campaign', metrics: ['visitors'], skipEmpty: true },
      { id: 'medium', dim: 'visit:utm_medium', metrics: ['visitors'], skipEmpty: true },
      { id: 'utmsource', dim: 'visit:utm_source', metrics: ['visitors'], skipEmpty: true },
      { id: 'content', dim: 'visit:utm_content', metrics: ['visitors'], skipEmpty: true },
      { id: 'term', dim: 'visit:utm_term', metrics: ['visitors'], skipEmpty: true },
    ] },
    { id: 'locations', tabs: [
      { id: 'countries', dim: 'visit:country', metrics: ['visitors'] },
      { id: 'regions', dim: 'visit:region', metrics: ['visitors'] },
      { id: 'cities', dim: 'visit:city', metrics: ['visitors'] },
    ] },
    { id: 'devices', tabs: [
      { id: 'devices', dim: 'visit:device', metrics: ['visitors'] },
      { id: 'browsers', dim: 'visit:browser', metrics: ['visitors'] },
      { id: 'os', dim: 'visit:os', metrics: ['visitors'] },
    ] },
    { id: 'goals', tabs: [{ id: 'goals', dim: 'event:goal', metrics: ['visitors', 'events', 'conversion_rate'] }] },
    { id: 'outbound', tabs: [
      { id: 'links', dim: 'event:props:url', metrics: ['visitors', 'events'], filters: [['is', 'event:name', ['Outbound Link: Click']]] },
      // Clicks to social networks (prop network, set by the collector), and
      // how many of them were share intents (prop share).
      { id: 'tosocial', dim: 'event:props:network', metrics: ['visitors', 'events'], filters: [['is', 'event:name', ['Outbound Link: Click']]],
        extra: { metric: 'shares', filters: [['is_not', 'event:props:share', ['(none)']]] } },
    ] },
    { id: 'downloads', tabs: [{ id: 'files', dim: 'event:props:url', metrics: ['visitors', 'events'], filters: [['is', 'event:name', ['File Download']]] }] },
    { id: 'events', tabs: [
      { id: 'events', dim: 'event:name', metrics: ['visitors', 'events'], filters: [['is_not', 'event:name', ['pageview']]] },
      { id: 'props', prop: true, metrics: ['visitors', 'events'], filters: [['is_not', 'event:name', ['pageview']]] },
    ] },
  ];
  // The Newsletters panel lives in newsletters.js (it is one table, not a
  // list of rows); app.js gives it its helpers.
  const newsletters = window.turfNewsletters && window.turfNewsletters({
    h, t, lang: () => lang, query, limited, fmtMetric: (m, v) => fmtMetric(m, v), generation: () => generation, staff: !boot.share,
  });
  const SHOWN = 10, MORE = 100;
  const panelState = {}; // id -> { tab, rows, error, expanded, prop }
  for (const p of PANELS) panelState[p.id] = { tab: p.tabs[0].id, rows: null, error: null, expanded: false, prop: '' };
  const tabOf = (p) => p.tabs.find((x) => x.id === panelState[p.id].tab);
  function tabDim(p, tab) { return tab.prop ? 'event:props:' + panelState[p.id].prop : tab.dim; }

  // A tab's extra column is the events count of its rows under more
  // filters (the shares among clicks to social networks).
  const tabMetrics = (tab) => (tab.extra ? tab.metrics.concat(tab.extra.metric) : tab.metrics);
  async function withExtra(p, tab, limit, res) {
    if (!tab.extra) return res;
    const dim = tabDim(p, tab);
    const more = await query({ metrics: ['events'], dimensions: [dim], filters: (tab.filters || []).concat(tab.extra.filters, [['is_not', dim, ['(none)']]]), pagination: { limit } });
    const by = new Map(more.results.map((r) => [r.dimensions[0], r.metrics[0]]));
    for (const r of res.results) r.metrics.push(by.get(r.dimensions[0]) || 0);
    return res;
  }
  function tabQuery(p, tab, limit) {
    const dim = tabDim(p, tab);
    const filters = (tab.filters || []).slice();
    if (tab.skipEmpty) filters.push(['is_not', dim, ['']]);
    // Events without the property are no row of a property panel (and
    // leaving them out lets the server read its per-day property counts).
    if (dim.startsWith('event:props:')) filters.push(['is_not', dim, ['(none)']]);
    if (tab.eng) return engagementQuery(tab, dim, filters, limit);
    return query({ metrics: tab.metrics, dimensions: [dim], filters, pagination: { limit } });
  }
  // engagementQuery answers a tab with engagement metrics: its other
  // metrics as usual, then the engagement ones per page, merged in. The
  // API has those only with page and hostname filters; under any other
  // filter they show as "–".
  async function engagementQuery(tab, dim, filters, limit) {
    const base = tab.metrics.filter((m) => !tab.eng.includes(m));
    const res = await query({ metrics: base, dimensions: [dim], filters, pagination: { limit } });
    const byPage = {};
    if (res.results.length && state.filters.every((f) => f[1] === 'event:page' || f[1] === 'event:hostname')) {
      const eng = await query({ metrics: tab.eng, dimensions: [dim], pagination: { limit: 10000 } });
      for (const r of eng.results) byPage[r.dimensions[0]] = r.metrics;
    }
    for (const r of res.results) r.metrics = r.metrics.concat(byPage[r.dimensions[0]] || tab.eng.map(() => null));
    return res;
  }

  // ---- layout ------------------------------------------------------------
  const ui = {};
  function build() {
    const app = document.getElementById('app');
    app.textContent = '';
    const siteCtl = boot.sites.length > 1
      ? h('label', { class: 'ctl' }, h('span', { class: 'sr-only', text: t('site') }),
        ui.site = h('select', { id: 'site', onchange: (e) => { state.site = e.target.value; changed(); } },
          boot.sites.map((x) => h('option', { value: x, text: x }))))
      : h('span', { class: 'site-name', id: 'site', text: state.site });
    ui.period = h('select', { id: 'period', onchange: (e) => {
      if (e.target.value === 'custom') { openCustom(); return; }
      state.period = e.target.value; changed();
    } }, PERIODS.map((p) => h('option', { value: p, text: t('p_' + p) })));
    ui.customBox = h('form', { class: 'custom', hidden: true, onsubmit: (e) => {
      e.preventDefault();
      const f = ui.from.value, to = ui.to.value;
      if (!DATE_RE.test(f) || !DATE_RE.test(to) || f > to) { ui.to.setCustomValidity('≥ ' + f); ui.to.reportValidity(); return; }
      state.period = 'custom'; state.from = f; state.to = to; ui.customBox.hidden = true; changed();
    }, onkeydown: (e) => { if (e.key === 'Escape') closeCustom(); } },
    h('label', {}, t('from'), ui.from = h('input', { type: 'date', required: true })),
    h('label', {}, t('to'), ui.to = h('input', { type: 'date', required: true, oninput: () => ui.to.setCustomValidity('') })),
    h('button', { type: 'submit', class: 'primary', text: t('apply') }),
    h('button', { type: 'button', text: t('cancel'), onclick: closeCustom }));
    ui.realtime = h('span', { class: 'realtime', id: 'realtime', title: t('realtimeHint'), 'aria-live': 'polite' });
    const langs = h('div', { class: 'langs', role: 'group', 'aria-label': t('language') },
      ['en', 'nl'].map((l) => h('button', { type: 'button', lang: l, 'data-lang': l, 'aria-pressed': String(l === lang),
        text: l.toUpperCase(), title: l === 'en' ? 'English' : 'Nederlands', onclick: () => setLang(l) })));
    const account = boot.share
      ? h('span', { class: 'badge', text: t('shared') })
      : h('form', { method: 'post', action: '/logout', class: 'logout' },
        h('input', { type: 'hidden', name: 'csrf', value: boot.csrf }),
        h('button', { type: 'submit', class: 'link', title: boot.user, text: t('logout') }));
    const linksPage = boot.share ? null : h('a', { class: 'link to-links', href: '/links?lang=' + lang, text: t('links_page') });
    const header = h('header', { class: 'top' },
      h('div', { class: 'bar' },
        h('a', { class: 'brand', href: boot.share ? location.pathname : '/', 'aria-label': 'turf' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'turf'),
        siteCtl, ui.realtime, h('span', { class: 'grow' }), linksPage, langs,
        boot.admin ? h('a', { class: 'link', href: '/settings', id: 'to-settings', text: t('settings') }) : null, account),
      h('div', { class: 'bar' }, h('label', { class: 'ctl' }, h('span', { class: 'sr-only', text: t('period') }), ui.period),
        ui.range = h('span', { class: 'range', id: 'range' }), ui.customBox,
        ui.chips = h('div', { class: 'chips', role: 'list', 'aria-label': t('filters') })));
    ui.tiles = h('section', { class: 'tiles', 'aria-label': t('dashboard') });
    ui.chart = h('section', { class: 'card chart', 'aria-label': t('chartTitle') });
    ui.panels = h('div', { class: 'grid' });
    ui.panelEls = {};
    for (const p of PANELS) { const el = h('section', { class: 'card panel', 'data-panel': p.id }); ui.panelEls[p.id] = el; ui.panels.append(el); }
    ui.newsletters = h('section', { class: 'card panel wide', 'data-panel': 'newsletters' });
    app.append(header, h('main', {}, ui.tiles, ui.chart, ui.panels, newsletters ? ui.newsletters : null));
    if (newsletters) newsletters.mount(ui.newsletters);
    app.removeAttribute('aria-busy');
    renderControls(); renderTiles(); renderChart(); for (const p of PANELS) renderPanel(p); renderRealtime();
  }
  function openCustom() {
    ui.customBox.hidden = false;
    const r = dateRange();
    const today = ymd(new Date());
    ui.from.value = state.from || (Array.isArray(r) ? r[0] : ymd(new Date(Date.now() - 29 * 864e5)));
    ui.to.value = state.to || (Array.isArray(r) ? r[1] : today);
    ui.from.max = ui.to.max = today;
    ui.from.focus();
  }
  function closeCustom() { ui.customBox.hidden = true; ui.period.value = state.period; ui.period.focus(); }

  function renderControls() {
    if (ui.site && ui.site.tagName === 'SELECT') ui.site.value = state.site;
    ui.period.value = state.period;
    const custom = ui.period.querySelector('option[value=custom]');
    custom.textContent = state.period === 'custom' ? fmtBucketLong(state.from, 'day') + ' – ' + fmtBucketLong(state.to, 'day') : t('p_custom');
    ui.range.textContent = resolved ? fmtSpan(resolved[0], resolved[1]) : '';
    ui.chips.textContent = '';
    state.filters.forEach((f, i) => {
      ui.chips.append(h('span', { class: 'chip', role: 'listitem' },
        h('span', { class: 'chip-dim', text: dimLabel(f[1]) + ' ' + t('is') + ' ' }),
        h('b', { text: displayValue(f[1], f[2]) }),
        h('button', { type: 'button', class: 'chip-x', 'aria-label': t('removeFilter') + ': ' + dimLabel(f[1]) + ' ' + displayValue(f[1], f[2]),
          text: '×', onclick: () => { state.filters.splice(i, 1); changed(); } })));
    });
    if (state.filters.length > 1) ui.chips.append(h('button', { type: 'button', class: 'link', text: t('clearFilters'), onclick: () => { state.filters = []; changed(); } }));
  }

  // resolved is the range the API answered for, as local dates.
  let resolved = null;
  function fmtSpan(a, b) {
    const loc = lang === 'nl' ? 'nl-NL' : 'en-GB';
    const d = (x) => new Date(Date.UTC(+x.slice(0, 4), +x.slice(5, 7) - 1, +x.slice(8, 10)));
    const f = new Intl.DateTimeFormat(loc, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
    return a === b ? f.format(d(a)) : f.formatRange ? f.formatRange(d(a), d(b)) : f.format(d(a)) + ' – ' + f.format(d(b));
  }

  // ---- tiles -----------------------------------------------------------
  const TILES = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration'];
  let tiles = null; // {metrics, change} or {error}
  function renderTiles() {
    ui.tiles.textContent = '';
    TILES.forEach((m, i) => {
      const v = tiles && tiles.metrics ? tiles.metrics[i] : null;
      const c = tiles && tiles.change ? tiles.change[i] : null;
      let change = null;
      if (c != null) {
        // Counts change in percent, rates in points; less bouncing is good.
        const good = m === 'bounce_rate' ? c < 0 : c > 0;
        const unit = m === 'bounce_rate' ? ' pp' : '%';
        change = h('span', { class: 'change ' + (c === 0 ? 'flat' : good ? 'up' : 'down'), title: t('vsPrev'),
          text: c === 0 ? '= ' + t('noChange') : (c > 0 ? '↑ ' : '↓ ') + nf1.format(Math.abs(c)) + unit });
      }
      ui.tiles.append(h('div', { class: 'tile', 'data-metric': m, 'data-value': v == null ? null : String(v) },
        h('span', { class: 'tile-label', text: t('m_' + m) }),
        h('span', { class: 'tile-value', text: tiles && tiles.error ? '!' : v == null ? (tiles && tiles.metrics ? '–' : '…') : fmtMetric(m, v) }),
        change || h('span', { class: 'change flat', text: tiles && tiles.error ? t('failed') : ' ' })));
    });
  }

  // ---- chart -------------------------------------------------------------
  let series = null; // {gran, labels, visitors, pageviews, prevVisitors, prevPageviews, prevLabels} or {error}
  let focusIdx = -1;
  function niceMax(v) {
    if (v <= 4) return 4;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function renderChart() {
    const box = ui.chart;
    box.textContent = '';
    const legend = h('div', { class: 'legend' },
      h('span', { class: 'key k-visitors', text: t('c_visitors') }), h('span', { class: 'key k-pageviews', text: t('c_pageviews') }),
      h('span', { class: 'key k-prev', text: t('prevPeriod') }));
    box.append(h('div', { class: 'card-head' }, h('h2', { text: t('chartTitle') }), legend));
    if (!series || series.error) {
      box.append(h('div', { class: 'chart-empty', text: series ? t('failed') : t('loading') }));
      return;
    }
    const W = Math.max(280, box.clientWidth - 32), H = 240, L = 48, R = 12, T = 10, B = 28;
    const n = series.labels.length;
    const vals = [...series.visitors, ...series.pageviews, ...(series.prevVisitors || []), ...(series.prevPageviews || [])].filter((x) => x != null);
    const max = niceMax(Math.max(1, ...vals));
    const x = (i) => L + (n <= 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': t('chartTitle'), class: 'plot' });
    for (let k = 0; k <= 4; k++) {
      const v = max * k / 4, yy = y(v);
      svg.append(s('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: 'grid-line' }));
      const lbl = s('text', { x: L - 6, y: yy + 4, 'text-anchor': 'end', class: 'axis' }); lbl.textContent = nf.format(v); svg.append(lbl);
    }
    const step = Math.max(1, Math.ceil(n / Math.max(2, Math.floor((W - L) / 80))));
    for (let i = 0; i < n; i += step) {
      const lbl = s('text', { x: x(i), y: H - 8, 'text-anchor': i === 0 && n > 1 ? 'start' : 'middle', class: 'axis' });
      lbl.textContent = fmtBucket(series.labels[i], series.gran); svg.append(lbl);
    }
    const path = (arr) => {
      let d = '', pen = false;
      arr.forEach((v, i) => { if (v == null) { pen = false; return; } d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1); pen = true; });
      return d;
    };
    if (series.prevPageviews) svg.append(s('path', { d: path(series.prevPageviews), class: 'line prev pageviews' }));
    if (series.prevVisitors) svg.append(s('path', { d: path(series.prevVisitors), class: 'line prev visitors' }));
    const last = series.visitors.reduce((a, v, i) => (v == null ? a : i), -1);
    if (last >= 0) svg.dataset.last = series.labels[last] + '=' + series.visitors[last]; // the newest bucket drawn (tests read it)
    if (last >= 0) svg.append(s('path', { d: path(series.visitors) + `L${x(last).toFixed(1)} ${y(0)}L${x(0)} ${y(0)}Z`, class: 'area' }));
    svg.append(s('path', { d: path(series.pageviews), class: 'line pageviews' }));
    svg.append(s('path', { d: path(series.visitors), class: 'line visitors' }));
    const cursor = s('line', { y1: T, y2: H - B, class: 'cursor', visibility: 'hidden' });
    const dotV = s('circle', { r: 4, class: 'dot visitors', visibility: 'hidden' });
    const dotP = s('circle', { r: 4, class: 'dot pageviews', visibility: 'hidden' });
    svg.append(cursor, dotV, dotP);
    const tip = h('div', { class: 'tip', hidden: true, role: 'status' });
    const wrap = h('div', { class: 'plot-wrap', tabindex: '0', 'aria-describedby': 'chart-hint' }, svg, tip);
    const show = (i) => {
      if (i < 0 || i >= n) { cursor.setAttribute('visibility', 'hidden'); dotV.setAttribute('visibility', 'hidden'); dotP.setAttribute('visibility', 'hidden'); tip.hidden = true; return; }
      focusIdx = i;
      cursor.setAttribute('x1', x(i)); cursor.setAttribute('x2', x(i)); cursor.setAttribute('visibility', 'visible');
      for (const [dot, arr] of [[dotV, series.visitors], [dotP, series.pageviews]]) {
        if (arr[i] == null) { dot.setAttribute('visibility', 'hidden'); continue; }
        dot.setAttribute('cx', x(i)); dot.setAttribute('cy', y(arr[i])); dot.setAttribute('visibility', 'visible');
      }
      tip.textContent = '';
      tip.append(h('b', { text: fmtBucketLong(series.labels[i], series.gran) }),
        h('span', { class: 'k-visitors', text: t('c_visitors') + ': ' + fmtMetric('visitors', series.visitors[i]) }),
        h('span', { class: 'k-pageviews', text: t('c_pageviews') + ': ' + fmtMetric('pageviews', series.pageviews[i]) }));
      if (series.prevVisitors && series.prevLabels[i]) {
        tip.append(h('span', { class: 'k-prev', text: fmtBucketLong(series.prevLabels[i], series.gran) + ': ' +
          fmtMetric('visitors', series.prevVisitors[i]) + ' / ' + fmtMetric('pageviews', series.prevPageviews[i]) }));
      }
      tip.hidden = false;
      const px = x(i) / W * wrap.clientWidth;
      tip.style.left = Math.min(Math.max(0, px - 90), wrap.clientWidth - 190) + 'px';
    };
    svg.addEventListener('pointermove', (e) => {
      const r = svg.getBoundingClientRect();
      const px = (e.clientX - r.left) / r.width * W;
      show(Math.round(n <= 1 ? 0 : (px - L) / ((W - L - R) / (n - 1))));
    });
    svg.addEventListener('pointerleave', () => show(-1));
    wrap.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') { e.preventDefault(); show(Math.min(n - 1, Math.max(0, (focusIdx < 0 ? 0 : focusIdx + (e.key === 'ArrowRight' ? 1 : -1))))); }
      if (e.key === 'Escape') show(-1);
    });
    wrap.addEventListener('blur', () => show(-1));
    box.append(wrap, h('p', { id: 'chart-hint', class: 'sr-only', text: t('chartHint') }));
  }

  // ---- panel rendering ---------------------------------------------------
  function renderPanel(p) {
    const el = ui.panelEls[p.id], st = panelState[p.id], tab = tabOf(p);
    el.textContent = '';
    const head = h('div', { class: 'card-head' }, h('h2', { id: 'h-' + p.id, text: t('panel_' + p.id) }));
    if (p.tabs.length > 1) {
      const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-labelledby': 'h-' + p.id });
      for (const x of p.tabs) {
        tabs.append(h('button', { type: 'button', role: 'tab', 'data-tab': x.id, 'aria-selected': String(x.id === st.tab), tabindex: x.id === st.tab ? '0' : '-1',
          text: t('tab_' + x.id), onclick: () => selectTab(p, x.id),
          onkeydown: (e) => {
            const i = p.tabs.findIndex((y) => y.id === st.tab);
            const j = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : -9;
            if (j >= 0 && j < p.tabs.length) { e.preventDefault(); selectTab(p, p.tabs[j].id); el.querySelector(`[data-tab="${p.tabs[j].id}"]`).focus(); }
          } }));
      }
      head.append(tabs);
    }
    el.append(head);
    if (tab.prop) {
      const input = h('input', { type: 'text', value: st.prop, placeholder: t('propHint'), 'aria-label': t('propKey'), list: 'prop-keys', maxlength: '200' });
      el.append(h('form', { class: 'prop-form', onsubmit: (e) => { e.preventDefault(); st.prop = input.value.trim(); loadPanel(p, generation); } },
        input, h('button', { type: 'submit', text: t('apply') })));
      if (!st.prop) { el.append(h('p', { class: 'empty', text: t('propHint') })); return; }
    }
    const dim = tabDim(p, tab);
    const cols = h('div', { class: 'cols', 'aria-hidden': 'true' }, h('span', { text: dimLabel(dim) }), tabMetrics(tab).map((m) => h('span', { text: t('c_' + m) })));
    el.append(cols);
    if (st.error) { el.append(h('p', { class: 'empty error', text: t('failed') })); return; }
    if (!st.rows) { el.append(h('div', { class: 'skeleton', 'aria-label': t('loading') })); return; }
    if (!st.rows.length) { el.append(h('p', { class: 'empty', text: t('noData') })); return; }
    const max = Math.max(1, ...st.rows.map((r) => r.metrics[0]));
    const list = h('ol', { class: 'rows', 'aria-labelledby': 'h-' + p.id });
    const rows = st.rows.slice(0, st.expanded ? MORE : SHOWN);
    const filterable = !state.filters.some((f) => f[1] === dim);
    for (const r of rows) {
      const raw = r.dimensions[0];
      const label = displayValue(dim, raw);
      const bar = h('span', { class: 'fill' });
      bar.style.width = (100 * r.metrics[0] / max).toFixed(1) + '%';
      const inner = [bar, h('span', { class: 'label' }, dim === 'visit:country' ? flag(raw) : null, h('span', { class: 'text', text: label })),
        r.metrics.map((v, i) => h('span', { class: 'num' + (i ? ' secondary' : ''), text: fmtMetric(tabMetrics(tab)[i], v) }))];
      const row = filterable
        ? h('button', { type: 'button', class: 'row', 'data-value': raw, title: t('filterBy') + ' ' + dimLabel(dim) + ': ' + label,
          onclick: () => addFilter(dim, raw) }, inner)
        : h('div', { class: 'row', 'data-value': raw, title: label }, inner);
      list.append(h('li', {}, row));
    }
    el.append(list);
    const foot = h('div', { class: 'card-foot' });
    if (st.rows.length > SHOWN) {
      foot.append(h('button', { type: 'button', class: 'link', 'data-more': p.id, 'aria-expanded': String(st.expanded), text: st.expanded ? t('less') : t('more'),
        onclick: () => { st.expanded = !st.expanded; renderPanel(p); } }));
    }
    foot.append(h('button', { type: 'button', class: 'link csv', title: t('csvTitle'), 'data-csv': p.id, text: '⤓ ' + t('csv'), onclick: () => exportCSV(p) }));
    el.append(foot);
  }
  function selectTab(p, id) {
    const st = panelState[p.id];
    if (st.tab === id) return;
    st.tab = id; st.rows = null; st.error = null; st.expanded = false;
    renderPanel(p);
    loadPanel(p, generation);
  }
  function addFilter(dim, value) {
    if (state.filters.some((f) => f[1] === dim && f[2] === value)) return;
    state.filters.push(['is', dim, value]);
    changed();
  }

  // ---- CSV ---------------------------------------------------------------
  // A cell that starts with = + - @ (or a tab or CR) would be run as a
  // formula by spreadsheet programs; a leading apostrophe keeps it text.
  // Spreadsheets skip leading white space (NBSP and BOM included) and
  // invisible format characters, and some read the fullwidth and small
  // forms (＝ ＋ － ＠ ﹦ ﹢ ﹣ ﹫ −) as the ASCII ones, so those count too.
  const formulaStart = /^[\s\u00a0\ufeff\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u2212]/;
  function csvCell(v) {
    if (typeof v === 'number') return String(v);
    if (v && typeof v === 'object') return String(v.value);
    let x = String(v ?? '');
    if (formulaStart.test(x)) x = "'" + x;
    if (/[",\r\n;]/.test(x)) x = '"' + x.replace(/"/g, '""') + '"';
    return x;
  }
  async function exportCSV(p) {
    const tab = tabOf(p), dim = tabDim(p, tab);
    const btn = ui.panelEls[p.id].querySelector('.csv');
    if (btn) btn.disabled = true;
    try {
      const res = await withExtra(p, tab, 10000, await tabQuery(p, tab, 10000));
      const lines = [[dimLabel(dim), ...tabMetrics(tab).map((m) => t('c_' + m))].map(csvCell).join(',')];
      for (const r of res.results) lines.push([r.dimensions[0], ...r.metrics].map(csvCell).join(','));
      const blob = new Blob(['\ufeff' + lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
      const r = dateRange();
      const span = Array.isArray(r) ? r.join('_') : r;
      const name = `turf_${state.site}_${p.id}-${tab.id}_${span}.csv`.replace(/[^A-Za-z0-9._-]+/g, '-');
      const a = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      if (e.name !== 'AbortError') alert(t('failed'));
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  // ---- loading -----------------------------------------------------------
  async function loadTiles(gen) {
    try {
      // Views per visit has no meaning for one page (the API refuses it
      // with a page filter): that tile shows a dash then.
      const paged = state.filters.some(([, dim]) => dim === 'event:page');
      const ms = paged ? TILES.filter((m) => m !== 'views_per_visit') : TILES;
      const res = await query({ metrics: ms, include: { comparisons: { mode: 'previous_period' } } });
      if (gen !== generation) return null;
      const row = res.results[0] || { metrics: [] };
      const pick = (arr) => TILES.map((m) => (ms.indexOf(m) < 0 ? null : arr[ms.indexOf(m)]));
      tiles = { metrics: pick(row.metrics), change: row.comparison ? pick(row.comparison.change) : null };
      const dr = res.query && res.query.date_range;
      resolved = Array.isArray(dr) ? [dr[0].slice(0, 10), dr[1].slice(0, 10)] : null;
      renderTiles(); renderControls();
      return res.meta.comparison_date_range || null;
    } catch (e) {
      if (gen === generation && e.name !== 'AbortError') { tiles = { error: e.message }; renderTiles(); }
      return null;
    }
  }
  function seriesOf(res) {
    const labels = res.meta.time_labels || [];
    const byLabel = new Map(res.results.map((r) => [r.dimensions[0], r.metrics]));
    return { labels, visitors: labels.map((l) => (byLabel.get(l) || [0, 0])[0]), pageviews: labels.map((l) => (byLabel.get(l) || [0, 0])[1]) };
  }
  async function loadSeries(gen, prevRange) {
    const gran = interval();
    const body = { metrics: ['visitors', 'pageviews'], dimensions: ['time:' + gran], include: { time_labels: true } };
    try {
      const res = await query(body);
      const cur = seriesOf(res);
      if (gen !== generation) return;
      // Buckets that have not begun yet are left out rather than drawn as 0,
      // by the clock of the site's time zone (the answer's), not the
      // browser's: a site in Amsterdam viewed from UTC is an hour ahead.
      const now = clockIn(res.query && res.query.timezone);
      const nowLabel = gran === 'hour' ? now.date + ' ' + now.hour + ':00:00' : now.date;
      cur.labels.forEach((l, i) => { if (l > nowLabel) cur.visitors[i] = cur.pageviews[i] = null; });
      series = Object.assign({ gran }, cur);
      renderChart();
      const pr = await prevRange;
      if (!pr || gen !== generation) return;
      const prev = seriesOf(await query(Object.assign({}, body, { date_range: [pr[0].slice(0, 10), pr[1].slice(0, 10)] })));
      if (gen !== generation) return;
      series.prevLabels = prev.labels;
      series.prevVisitors = cur.labels.map((_, i) => (i < prev.labels.length ? prev.visitors[i] : null));
      series.prevPageviews = cur.labels.map((_, i) => (i < prev.labels.length ? prev.pageviews[i] : null));
      renderChart();
    } catch (e) {
      if (gen === generation && e.name !== 'AbortError') { series = { error: e.message }; renderChart(); }
    }
  }
  // At most three panel queries at a time, in page order: on a busy server
  // the panels at the top arrive first instead of all arriving late.
  let running = 0;
  const waiting = [];
  function limited(gen, fn) {
    return new Promise((resolve, reject) => {
      const go = () => {
        if (gen !== generation) { next(); reject(new DOMException('stale', 'AbortError')); return; }
        running++;
        fn().then(resolve, reject).finally(() => { running--; next(); });
      };
      const next = () => { while (running < 3 && waiting.length) waiting.shift()(); };
      waiting.push(go);
      next();
    });
  }
  async function loadPanel(p, gen) {
    const st = panelState[p.id], tab = tabOf(p);
    st.rows = null; st.error = null;
    renderPanel(p);
    if (tab.prop && !st.prop) return;
    try {
      const res = await limited(gen, async () => withExtra(p, tab, MORE, await tabQuery(p, tab, MORE)));
      if (gen !== generation || tabOf(p) !== tab) return;
      st.rows = res.results;
    } catch (e) {
      if (gen !== generation || e.name === 'AbortError') return;
      st.error = e.message;
    }
    renderPanel(p);
  }
  let realtime = null;
  function renderRealtime() {
    ui.realtime.textContent = '';
    if (realtime == null) return;
    ui.realtime.append(h('span', { class: 'pulse', 'aria-hidden': 'true' }), h('b', { text: nf.format(realtime) }), ' ' + (realtime === 1 ? t('realtime1') : t('realtimeN')));
  }
  async function loadRealtime() {
    if (document.hidden) return;
    const site = state.site;
    try {
      const n = await call('/api/v1/stats/realtime/visitors?site_id=' + encodeURIComponent(site), { method: 'GET', signal: undefined });
      if (site === state.site) { realtime = n; renderRealtime(); }
    } catch (e) { /* the next tick tries again */ }
  }

  async function load() {
    aborter.abort();
    aborter = new AbortController();
    const gen = ++generation;
    const start = performance.now();
    tiles = null; series = null; focusIdx = -1; resolved = null;
    renderTiles(); renderChart(); renderControls();
    const prevRange = loadTiles(gen);
    const jobs = [prevRange, loadSeries(gen, prevRange), ...PANELS.map((p) => loadPanel(p, gen)), loadRealtime()];
    if (newsletters) jobs.push(newsletters.load(gen, () => gen === generation));
    await Promise.all(jobs);
    if (gen !== generation) return;
    // For the speed benchmark and the browser tests: when every figure of
    // this state is on screen.
    performance.mark('turf:rendered');
    document.documentElement.dataset.rendered = String(gen);
    window.turfRenderedMs = performance.now() - start;
  }

  function changed() {
    writeURL(true);
    renderControls();
    for (const p of PANELS) panelState[p.id].expanded = false;
    load();
  }
  function setLang(l) {
    if (l === lang) return;
    lang = l;
    try { localStorage.setItem('turf.lang', l); } catch (e) { /* storage off */ }
    setLocale();
    build();
  }

  window.addEventListener('popstate', () => { readURL(); renderControls(); load(); });
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderChart, 150); });
  setInterval(loadRealtime, 30000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) loadRealtime(); });

  readURL();
  writeURL(false);
  build();
  load();
})();

// The dashboard's Newsletters panel and its labels, kept apart from app.js:
// app.js hands it its helpers (kit) and asks it to render and load.
//
// Per campaign (prop campaign of Newsletter Open and Newsletter Click): the
// opens and clicks of people, those of machines (mail privacy proxies, link
// scanners: prop machine, which the API counts only when a query names it),
// the click-to-open rate (people who clicked / people who opened), and the
// visits of the Email channel with that utm_campaign, which the links
// started. Clicking a campaign shows its top links.
'use strict';
(() => {
  const OPEN = 'Newsletter Open', CLICK = 'Newsletter Click';
  const MACHINE = 'event:props:machine', CAMPAIGN = 'event:props:campaign';

  Object.assign(window.turfI18n.en, {
    panel_newsletters: 'Newsletters', nl_campaign: 'Campaign', nl_opens: 'Opens', nl_mopens: 'Machine opens',
    nl_clicks: 'Clicks', nl_mclicks: 'Machine clicks', nl_ctor: 'Click-to-open', nl_visits: 'Visits',
    nl_ctorHint: 'People who clicked, as a share of people who opened (machines left out)',
    nl_machineHint: 'Mail privacy proxies and link scanners, never counted as people',
    nl_visitsHint: 'Visits from the Email channel with this campaign, which the links started',
    nl_links: 'Top links', nl_linksOf: 'Top links of', nl_noLinks: 'No clicks by people on this campaign\u2019s links yet.',
    nl_empty: 'No newsletter opens or clicks in this period.', nl_make: 'Make newsletter links',
    nl_select: 'Show the top links of',
    tab_tosocial: 'To social media', c_shares: 'Shares', 'd_event:props:network': 'Network', links_page: 'Newsletter links',
  });
  Object.assign(window.turfI18n.nl, {
    panel_newsletters: 'Nieuwsbrieven', nl_campaign: 'Campagne', nl_opens: 'Geopend', nl_mopens: 'Machine-openingen',
    nl_clicks: 'Kliks', nl_mclicks: 'Machinekliks', nl_ctor: 'Klik-per-open', nl_visits: 'Bezoeken',
    nl_ctorHint: 'Mensen die klikten, als deel van de mensen die openden (machines niet meegeteld)',
    nl_machineHint: 'Privacyproxy\u2019s van mailprogramma\u2019s en linkscanners, nooit als mensen geteld',
    nl_visitsHint: 'Bezoeken uit het kanaal E-mail met deze campagne, die de links begonnen',
    nl_links: 'Populairste links', nl_linksOf: 'Populairste links van', nl_noLinks: 'Nog geen kliks door mensen op de links van deze campagne.',
    nl_empty: 'Geen nieuwsbrieven geopend of aangeklikt in deze periode.', nl_make: 'Nieuwsbrieflinks maken',
    nl_select: 'Toon de populairste links van',
    tab_tosocial: 'Naar sociale media', c_shares: 'Gedeeld', 'd_event:props:network': 'Netwerk', links_page: 'Nieuwsbrieflinks',
  });

  // kit: { h, t, lang, query, fmtMetric, limited, generation, staff }
  window.turfNewsletters = (kit) => {
    const { h, t } = kit;
    let data = null; // { rows: [...], error } for the current state
    let selected = '', links = null; // the campaign whose links show, and them
    let el = null;

    function rowsOf(people, machines, visits) {
      const by = new Map();
      const row = (c) => {
        if (!by.has(c)) by.set(c, { campaign: c, opens: 0, openers: 0, clicks: 0, clickers: 0, mopens: 0, mclicks: 0, visits: 0 });
        return by.get(c);
      };
      for (const r of people.results) {
        const [c, name] = r.dimensions, x = row(c);
        if (name === OPEN) { x.openers = r.metrics[0]; x.opens = r.metrics[1]; } else { x.clickers = r.metrics[0]; x.clicks = r.metrics[1]; }
      }
      for (const r of machines.results) {
        const [c, name] = r.dimensions, x = row(c);
        if (name === OPEN) x.mopens = r.metrics[0]; else x.mclicks = r.metrics[0];
      }
      // Visits only for campaigns that had newsletter events: other Email
      // campaigns (links made by hand with UTM parameters) are not ours.
      for (const r of visits.results) if (by.has(r.dimensions[0])) by.get(r.dimensions[0]).visits = r.metrics[0];
      return [...by.values()].filter((x) => x.campaign !== '(none)')
        .sort((a, b) => b.opens + b.clicks - a.opens - a.clicks || a.campaign.localeCompare(b.campaign));
    }

    async function load(gen, isCurrent) {
      data = null; links = null;
      render();
      // Campaign rows only (the panel shows no '(none)' row): so the
      // per-day property counts answer the people's figures (event_props).
      const names = ['is', 'event:name', [OPEN, CLICK]], some = ['is_not', CAMPAIGN, ['(none)']];
      try {
        const [people, machines, visits] = await Promise.all([
          kit.limited(gen, () => kit.query({ metrics: ['visitors', 'events'], dimensions: [CAMPAIGN, 'event:name'], filters: [names, some], pagination: { limit: 200 } })),
          kit.limited(gen, () => kit.query({ metrics: ['events'], dimensions: [CAMPAIGN, 'event:name'], filters: [names, some, ['is_not', MACHINE, ['(none)']]], pagination: { limit: 200 } })),
          kit.limited(gen, () => kit.query({ metrics: ['visits'], dimensions: ['visit:utm_campaign'], filters: [['is', 'visit:channel', ['Email']], ['is_not', 'visit:utm_campaign', ['']]], pagination: { limit: 1000 } })),
        ]);
        if (!isCurrent()) return;
        data = { rows: rowsOf(people, machines, visits) };
        if (!data.rows.some((r) => r.campaign === selected)) selected = data.rows.length ? data.rows[0].campaign : '';
      } catch (e) {
        if (!isCurrent() || e.name === 'AbortError') return;
        data = { error: e.message };
      }
      render();
      if (selected) await loadLinks(gen, isCurrent);
    }

    async function loadLinks(gen, isCurrent) {
      const c = selected;
      links = null;
      render();
      try {
        const res = await kit.limited(gen, () => kit.query({ metrics: ['visitors', 'events'], dimensions: ['event:props:url'],
          filters: [['is', 'event:name', [CLICK]], ['is', CAMPAIGN, [c]], ['is_not', 'event:props:url', ['(none)']]], pagination: { limit: 10 } }));
        if (!isCurrent() || c !== selected) return;
        links = res.results;
      } catch (e) {
        if (!isCurrent() || e.name === 'AbortError') return;
        links = { error: e.message };
      }
      render();
    }

    const pct = (a, b) => (b ? kit.fmtMetric('percentage', Math.round(1000 * a / b) / 10) : '–');

    function render() {
      if (!el) return;
      el.textContent = '';
      const head = h('div', { class: 'card-head' }, h('h2', { id: 'h-newsletters', text: t('panel_newsletters') }));
      if (kit.staff) head.append(h('a', { class: 'link', href: '/links?lang=' + kit.lang(), 'data-links-page': '', text: t('nl_make') + ' →' }));
      el.append(head);
      if (!data) { el.append(h('div', { class: 'skeleton', 'aria-label': t('loading') })); return; }
      if (data.error) { el.append(h('p', { class: 'empty error', text: t('failed') })); return; }
      if (!data.rows.length) { el.append(h('p', { class: 'empty', text: t('nl_empty') })); return; }
      const cols = [['opens', 'nl_opens'], ['mopens', 'nl_mopens', 'nl_machineHint'], ['clicks', 'nl_clicks'], ['mclicks', 'nl_mclicks', 'nl_machineHint'],
        ['ctor', 'nl_ctor', 'nl_ctorHint'], ['visits', 'nl_visits', 'nl_visitsHint']];
      const table = h('table', { class: 'nl-table', 'aria-labelledby': 'h-newsletters' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: t('nl_campaign') }),
          cols.map(([, k, hint]) => h('th', { scope: 'col', class: 'num', title: hint ? t(hint) : null, text: t(k) })))),
        h('tbody', {}, data.rows.map((r) => h('tr', { 'data-campaign': r.campaign, class: r.campaign === selected ? 'selected' : null },
          h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', 'aria-pressed': String(r.campaign === selected),
            title: t('nl_select') + ' ' + r.campaign, text: r.campaign,
            onclick: () => { selected = r.campaign; const g = kit.generation(); loadLinks(g, () => g === kit.generation()); } })),
          cols.map(([k]) => h('td', { class: 'num', 'data-k': k,
            text: k === 'ctor' ? pct(r.clickers, r.openers) : kit.fmtMetric('events', r[k]) }))))));
      el.append(h('div', { class: 'nl-scroll' }, table));
      const box = h('div', { class: 'nl-links', 'data-links-of': selected });
      box.append(h('h3', { text: t('nl_linksOf') + ' ' + selected }));
      if (links == null) box.append(h('div', { class: 'skeleton', 'aria-label': t('loading') }));
      else if (links.error) box.append(h('p', { class: 'empty error', text: t('failed') }));
      else if (!links.length) box.append(h('p', { class: 'empty', text: t('nl_noLinks') }));
      else {
        const max = Math.max(1, ...links.map((r) => r.metrics[0]));
        box.append(h('div', { class: 'cols', 'aria-hidden': 'true' }, h('span', { text: t('d_event:props:url') }), h('span', { text: t('c_visitors') }), h('span', { text: t('nl_clicks') })));
        box.append(h('ol', { class: 'rows' }, links.map((r) => {
          const bar = h('span', { class: 'fill' });
          bar.style.width = (100 * r.metrics[0] / max).toFixed(1) + '%';
          return h('li', {}, h('div', { class: 'row', 'data-value': r.dimensions[0], title: r.dimensions[0] }, bar,
            h('span', { class: 'label' }, h('span', { class: 'text', text: r.dimensions[0] })),
            r.metrics.map((v, i) => h('span', { class: 'num' + (i ? ' secondary' : ''), text: kit.fmtMetric(i ? 'events' : 'visitors', v) }))));
        })));
      }
      el.append(box);
    }

    return {
      // mount gives the panel its element (again after a language switch).
      mount(node) { el = node; render(); },
      load,
    };
  };
})();

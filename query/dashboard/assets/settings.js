// turf's settings page, for admins: sites (with their tracking snippet and
// an installation check), goals, users, share links, API keys, retention,
// and the log of who changed what. Every change is one POST to
// /api/settings; the page then reloads the whole state, so what it shows is
// what is stored. Names and values typed by people go into the page with
// textContent only.
'use strict';
(() => {
  const boot = JSON.parse(document.getElementById('boot').textContent);
  const TEXT = {
    en: {
      title: 'Settings', dashboard: 'Dashboard', logout: 'Log out', language: 'Language',
      sites: 'Sites', sitesHint: 'Events of these sites are stored. Removing a site stops new events; its data stays until it expires or is erased with turf site erase.',
      site: 'Site', domain: 'Domain, e.g. example.com', timezone: 'Time zone', retention: 'Retention', addSite: 'Add site', remove: 'Remove',
      byFlag: 'set by a flag', snippet: 'Snippet', snippetTitle: 'Tracking snippet for', snippetHint: 'Paste this into the <head> of every page of the site.',
      copy: 'Copy', copied: 'Copied', waiting: 'Waiting for the first event… open a page of your site that has the snippet.',
      receiving: 'Installation verified: events are arriving', seeToday: 'See today on the dashboard', events: 'events', lastEvent: 'last',
      retentionHint: 'Empty: the default ({def}). Allowed: {min} to {max}, e.g. 6mo or 90d.',
      goals: 'Goals', goalsHint: 'A goal counts the visitors who did something: sent a custom event, or visited a page. A page may end in * to match every page under it, e.g. /blog/*.',
      kind: 'Kind', kindEvent: 'Custom event', kindPage: 'Page visit', eventName: 'Event name, e.g. Signup', pagePath: 'Page, e.g. /thanks or /blog/*',
      currency: 'Revenue currency', currencyHint: 'optional, e.g. EUR', addGoal: 'Add goal', goal: 'Goal', none: 'None yet.',
      users: 'Users', usersHint: 'Admins change settings and see every site; viewers see only the sites chosen for them.',
      name: 'User name', role: 'Role', admin: 'Admin', viewer: 'Viewer', allSites: 'all sites', invite: 'Invite', resetPw: 'Reset password', del: 'Delete', you: 'you',
      inviteLink: 'One-time link for {name}: send it to them. It works once, for 7 days, and is shown only now.',
      shares: 'Share links', sharesHint: 'Anyone with a share link sees that site\'s dashboard, read-only.', label: 'Label (optional)',
      createShare: 'Create share link', revoke: 'Revoke', shareMade: 'The share link, shown only now:',
      keys: 'API keys', keysHint: 'Keys for the Stats API (POST /api/v2/query with Authorization: Bearer …).', createKey: 'Create API key',
      keyMade: 'The API key, shown only now: copy it to where it is used.', forSites: 'Sites',
      activity: 'Activity', when: 'When', who: 'Who', what: 'What', target: 'Item',
      confirmRemove: 'Remove {x}?', confirmRevoke: 'Revoke {x}? Whoever uses it loses access at once.', confirmDelete: 'Delete the user {x}?',
      saved: 'Saved.', failed: 'Could not save: ',
      err_bad_site: 'That is not a domain. Give it bare, e.g. example.com.', err_site_exists: 'That site exists already.',
      err_flag_site: 'This site is set by --site when turf starts; remove the flag to remove it.', err_bad_timezone: 'Unknown time zone.',
      err_bad_goal: 'That goal cannot be read: give an event name, or a page starting with /.', err_goal_exists: 'That goal exists already.',
      err_flag_goal: 'This goal is set by --goal when turf starts.', err_bad_retention: 'That retention is not allowed.',
      err_user_exists: 'That user name is taken.', err_bad_user: 'Use letters, digits and . _ @ - in a user name.', err_no_sites: 'Choose at least one site.',
      err_self_delete: 'You cannot delete your own account.', err_no_user: 'No such user.', err_no_site: 'No such site.', err_forbidden: 'Only admins may do this.',
      noSitesYet: 'Start here: add the site you want to measure.',
    },
    nl: {
      title: 'Instellingen', dashboard: 'Dashboard', logout: 'Uitloggen', language: 'Taal',
      sites: 'Sites', sitesHint: 'Van deze sites worden gebeurtenissen opgeslagen. Een site verwijderen stopt nieuwe gebeurtenissen; de gegevens blijven tot ze verlopen of met turf site erase gewist worden.',
      site: 'Site', domain: 'Domein, bijv. voorbeeld.nl', timezone: 'Tijdzone', retention: 'Bewaartermijn', addSite: 'Site toevoegen', remove: 'Verwijderen',
      byFlag: 'vastgezet met een vlag', snippet: 'Code', snippetTitle: 'Meetcode voor', snippetHint: 'Plak dit in de <head> van elke pagina van de site.',
      copy: 'Kopiëren', copied: 'Gekopieerd', waiting: 'Wachten op de eerste gebeurtenis… open een pagina van je site met de code erin.',
      receiving: 'Installatie gecontroleerd: er komen gebeurtenissen binnen', seeToday: 'Bekijk vandaag in het dashboard', events: 'gebeurtenissen', lastEvent: 'laatste',
      retentionHint: 'Leeg: de standaard ({def}). Toegestaan: {min} tot {max}, bijv. 6mo of 90d.',
      goals: 'Doelen', goalsHint: 'Een doel telt de bezoekers die iets deden: een eigen gebeurtenis stuurden of een pagina bezochten. Een pagina mag op * eindigen voor alle pagina\'s eronder, bijv. /blog/*.',
      kind: 'Soort', kindEvent: 'Eigen gebeurtenis', kindPage: 'Paginabezoek', eventName: 'Naam, bijv. Aanmelding', pagePath: 'Pagina, bijv. /bedankt of /blog/*',
      currency: 'Valuta van omzet', currencyHint: 'optioneel, bijv. EUR', addGoal: 'Doel toevoegen', goal: 'Doel', none: 'Nog geen.',
      users: 'Gebruikers', usersHint: 'Beheerders wijzigen instellingen en zien alle sites; kijkers zien alleen de sites die voor hen gekozen zijn.',
      name: 'Gebruikersnaam', role: 'Rol', admin: 'Beheerder', viewer: 'Kijker', allSites: 'alle sites', invite: 'Uitnodigen', resetPw: 'Wachtwoord herstellen', del: 'Verwijderen', you: 'jij',
      inviteLink: 'Eenmalige link voor {name}: stuur die door. Hij werkt één keer, 7 dagen lang, en is alleen nu te zien.',
      shares: 'Deellinks', sharesHint: 'Iedereen met een deellink ziet het dashboard van die site, alleen-lezen.', label: 'Label (optioneel)',
      createShare: 'Deellink maken', revoke: 'Intrekken', shareMade: 'De deellink, alleen nu te zien:',
      keys: 'API-sleutels', keysHint: 'Sleutels voor de Stats-API (POST /api/v2/query met Authorization: Bearer …).', createKey: 'API-sleutel maken',
      keyMade: 'De API-sleutel, alleen nu te zien: kopieer hem naar waar hij gebruikt wordt.', forSites: 'Sites',
      activity: 'Activiteit', when: 'Wanneer', who: 'Wie', what: 'Wat', target: 'Onderdeel',
      confirmRemove: '{x} verwijderen?', confirmRevoke: '{x} intrekken? Wie hem gebruikt, verliest meteen de toegang.', confirmDelete: 'Gebruiker {x} verwijderen?',
      saved: 'Opgeslagen.', failed: 'Niet opgeslagen: ',
      err_bad_site: 'Dat is geen domein. Geef het kaal, bijv. voorbeeld.nl.', err_site_exists: 'Die site bestaat al.',
      err_flag_site: 'Deze site wordt bij het starten met --site ingesteld; haal de vlag weg om hem te verwijderen.', err_bad_timezone: 'Onbekende tijdzone.',
      err_bad_goal: 'Dat doel is niet te lezen: geef een naam, of een pagina die met / begint.', err_goal_exists: 'Dat doel bestaat al.',
      err_flag_goal: 'Dit doel wordt bij het starten met --goal ingesteld.', err_bad_retention: 'Die bewaartermijn is niet toegestaan.',
      err_user_exists: 'Die gebruikersnaam is al in gebruik.', err_bad_user: 'Gebruik letters, cijfers en . _ @ - in een gebruikersnaam.', err_no_sites: 'Kies minstens één site.',
      err_self_delete: 'Je kunt je eigen account niet verwijderen.', err_no_user: 'Die gebruiker bestaat niet.', err_no_site: 'Die site bestaat niet.', err_forbidden: 'Alleen beheerders mogen dit.',
      noSitesYet: 'Begin hier: voeg de site toe die je wilt meten.',
    },
  };
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
  const t = (k, vars) => {
    let s = (TEXT[lang] && TEXT[lang][k]) ?? TEXT.en[k] ?? k;
    for (const [a, b] of Object.entries(vars || {})) s = s.replace('{' + a + '}', b);
    return s;
  };
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids.flat(Infinity)) if (c != null && c !== false) el.append(c);
    return el;
  }

  // ---- the API -----------------------------------------------------------
  async function call(init) {
    const r = await fetch('/api/settings' + (init && init.path || ''), Object.assign({
      headers: { 'Content-Type': 'application/json', 'X-Turf-CSRF': boot.csrf }, credentials: 'same-origin',
    }, init));
    if (r.status === 401) { location.href = '/login?next=/settings'; throw new Error('logged out'); }
    let body = {};
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const err = new Error(TEXT[lang]['err_' + body.error] || TEXT.en['err_' + body.error] || body.detail || r.statusText);
      err.code = body.error;
      throw err;
    }
    return body;
  }
  let state = null;
  const once = {}; // what a change returned to show once: link, key, snippet
  async function load() {
    state = await call({ method: 'GET' });
    render();
  }
  async function act(a, showOnce) {
    setStatus('', false);
    try {
      const res = await call({ method: 'POST', body: JSON.stringify(a) });
      if (showOnce) showOnce(res);
      setStatus(t('saved'), false);
      await load();
      return res;
    } catch (e) {
      setStatus(t('failed') + e.message, true);
      return null;
    }
  }
  let statusEl;
  function setStatus(msg, isError) {
    if (!statusEl) return;
    statusEl.textContent = msg;
    statusEl.className = isError ? 'status error' : 'status';
    statusEl.setAttribute('role', isError ? 'alert' : 'status');
  }

  // ---- pieces --------------------------------------------------------------
  const zones = (() => { try { return Intl.supportedValuesOf('timeZone'); } catch (e) { return ['UTC', 'Europe/Amsterdam', 'Europe/London']; } })();
  function zoneInput(value, attrs) {
    return h('input', Object.assign({ type: 'text', list: 'zones', value: value || '', placeholder: 'UTC', autocomplete: 'off', spellcheck: 'false' }, attrs));
  }
  function copyBox(id, text) {
    const pre = h('pre', { class: 'secret', id, text });
    const btn = h('button', { type: 'button', class: 'copy', id: id + '-copy', text: t('copy'), onclick: async () => {
      try { await navigator.clipboard.writeText(text); } catch (e) {
        const r = document.createRange(); r.selectNodeContents(pre);
        const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r); document.execCommand('copy');
      }
      btn.textContent = t('copied'); btn.dataset.copied = '1';
    } });
    return h('div', { class: 'copybox' }, pre, btn);
  }
  function snippetFor(site) {
    return '<script defer data-domain="' + site + '" src="' + location.origin + '/js/script.js"></scr' + 'ipt>';
  }
  // The installation check polls the site's event count until one arrives.
  let verifyTimer = null;
  const verified = {}; // site -> event count once the first event arrived
  function verifyBox(site) {
    const el = h('p', { class: 'verify', id: 'verify-status', 'aria-live': 'polite', 'data-site': site }, h('span', { class: 'pulse' }), ' ', t('waiting'));
    const done = (n) => {
      el.textContent = '✓ ' + t('receiving') + ' (' + n + ' ' + t('events') + ') ';
      // Today: "Last 30 days" ends yesterday, so a new site's first visit is
      // only in today's figures.
      el.append(h('a', { href: '/?site=' + encodeURIComponent(site) + '&period=today', id: 'verify-dashboard', text: t('seeToday') }));
      el.className = 'verify ok'; el.dataset.verified = '1';
    };
    clearTimeout(verifyTimer);
    const poll = async () => {
      if (!el.isConnected) return;
      try {
        const r = await call({ method: 'GET', path: '/status?site=' + encodeURIComponent(site) });
        if (r.events > 0) { verified[site] = r.events; done(r.events); return; }
      } catch (e) { /* shown on the next try */ }
      verifyTimer = setTimeout(poll, 2000);
    };
    if (verified[site]) done(verified[site]); else verifyTimer = setTimeout(poll, 500);
    return el;
  }
  function section(id, title, hint, ...body) {
    return h('section', { class: 'card settings', id, 'aria-labelledby': id + '-h' },
      h('h2', { id: id + '-h', text: title }), hint ? h('p', { class: 'hint', text: hint }) : null, ...body);
  }
  function table(cols, rows) {
    if (!rows.length) return h('p', { class: 'hint', text: t('none') });
    return h('table', { class: 'list' }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows));
  }
  function siteChecks(name) {
    return h('fieldset', { class: 'checks' }, h('legend', { text: t('forSites') }),
      state.sites.map((s) => h('label', {}, h('input', { type: 'checkbox', name, value: s.site }), ' ', s.site)));
  }
  const checked = (form, name) => [...form.querySelectorAll('input[name=' + name + ']:checked')].map((i) => i.value);
  const fmtTime = (s) => new Date(s).toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' });

  // ---- the page ------------------------------------------------------------
  function render() {
    const app = document.getElementById('app');
    const focus = document.activeElement && document.activeElement.id;
    app.textContent = '';
    const langs = h('div', { class: 'langs', role: 'group', 'aria-label': t('language') },
      ['en', 'nl'].map((l) => h('button', { type: 'button', lang: l, 'data-lang': l, 'aria-pressed': String(l === lang),
        text: l.toUpperCase(), title: l === 'en' ? 'English' : 'Nederlands', onclick: () => {
          lang = l; try { localStorage.setItem('turf.lang', l); } catch (e) { /* storage off */ }
          document.documentElement.lang = l; render();
        } })));
    const header = h('header', { class: 'top' }, h('div', { class: 'bar' },
      h('a', { class: 'brand', href: '/', 'aria-label': 'turf' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'turf'),
      h('span', { class: 'site-name', text: t('title') }),
      state.sites.length ? h('a', { class: 'link', href: '/', id: 'to-dashboard', text: t('dashboard') }) : null,
      h('span', { class: 'grow' }), langs,
      h('form', { method: 'post', action: '/logout', class: 'logout' }, h('input', { type: 'hidden', name: 'csrf', value: boot.csrf }),
        h('button', { type: 'submit', class: 'link', title: state.me, text: t('logout') }))));
    statusEl = h('p', { class: 'status', id: 'status', role: 'status' });
    app.append(header, h('main', { class: 'settings-main' }, statusEl, h('datalist', { id: 'zones' }, zones.map((z) => h('option', { value: z }))),
      sitesSection(), goalsSection(), usersSection(), sharesSection(), keysSection(), auditSection()));
    app.removeAttribute('aria-busy');
    document.title = 'turf · ' + t('title');
    if (focus && document.getElementById(focus)) document.getElementById(focus).focus();
  }

  function sitesSection() {
    const r = state.retention;
    const rows = state.sites.map((s) => h('tr', { 'data-site': s.site },
      h('td', {}, h('b', { text: s.site }), s.flag_site ? h('span', { class: 'flag', text: ' · ' + t('byFlag') }) : null),
      h('td', {}, zoneInput(s.timezone, { 'aria-label': t('timezone') + ' ' + s.site, disabled: s.flag_timezone,
        onchange: (e) => act({ action: 'site.timezone', site: s.site, timezone: e.target.value.trim() }) })),
      h('td', {}, h('input', { type: 'text', class: 'short', value: s.retention || '', placeholder: r.default, 'aria-label': t('retention') + ' ' + s.site,
        disabled: s.flag_retention, onchange: (e) => act({ action: 'site.retention', site: s.site, retention: e.target.value.trim() }) })),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'link', text: t('snippet'), onclick: () => { once.snippet = s.site; render(); } }),
        s.flag_site ? null : h('button', { type: 'button', class: 'link danger', text: t('remove'), onclick: () => {
          if (confirm(t('confirmRemove', { x: s.site }))) act({ action: 'site.remove', site: s.site });
        } }))));
    const form = h('form', { class: 'add', id: 'site-form', onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      await act({ action: 'site.add', site: f.site.value.trim(), timezone: f.timezone.value.trim() }, (res) => { once.snippet = res.site; });
    } },
    h('label', { class: 'wide' }, h('span', { text: t('site') }), h('input', { type: 'text', name: 'site', id: 'new-site', required: true, placeholder: t('domain'), autocomplete: 'off' })),
    h('label', {}, h('span', { text: t('timezone') }), zoneInput(Intl.DateTimeFormat().resolvedOptions().timeZone || '', { name: 'timezone' })),
    h('button', { type: 'submit', class: 'primary', id: 'add-site', text: t('addSite') }));
    let snippet = null;
    if (once.snippet && state.sites.some((s) => s.site === once.snippet)) {
      snippet = h('div', { class: 'snippet', id: 'snippet-box' }, h('h3', { text: t('snippetTitle') + ' ' + once.snippet }),
        h('p', { class: 'hint', text: t('snippetHint') }), copyBox('snippet', snippetFor(once.snippet)), verifyBox(once.snippet));
    }
    return section('sites', t('sites'), state.sites.length ? t('sitesHint') : t('noSitesYet'),
      state.sites.length ? table([t('site'), t('timezone'), t('retention'), ''], rows) : null,
      h('p', { class: 'hint', text: t('retentionHint', { def: r.default, min: r.min, max: r.max }) }),
      form, snippet);
  }

  function goalsSection() {
    const rows = state.goals.map((g) => h('tr', { 'data-goal': g.goal },
      h('td', { text: g.site }), h('td', {}, h('b', { text: g.goal }), g.flag ? h('span', { class: 'flag', text: ' · ' + t('byFlag') }) : null),
      h('td', { text: g.currency || '' }),
      h('td', { class: 'actions' }, g.flag ? null : h('button', { type: 'button', class: 'link danger', text: t('remove'), onclick: () => {
        if (confirm(t('confirmRemove', { x: g.goal }))) act({ action: 'goal.remove', site: g.site, goal: g.goal });
      } }))));
    if (!state.sites.length) return section('goals', t('goals'), t('goalsHint'));
    const value = h('input', { type: 'text', name: 'value', id: 'goal-value', required: true, placeholder: t('eventName'), autocomplete: 'off' });
    const kind = h('select', { name: 'kind', id: 'goal-kind', onchange: () => { value.placeholder = kind.value === 'page' ? t('pagePath') : t('eventName'); } },
      h('option', { value: 'event', text: t('kindEvent') }), h('option', { value: 'page', text: t('kindPage') }));
    const form = h('form', { class: 'add', id: 'goal-form', onsubmit: (e) => {
      e.preventDefault();
      const f = e.target, v = f.value.value.trim();
      act({ action: 'goal.add', site: f.site.value, goal: f.kind.value === 'page' ? 'Visit ' + v : v, currency: f.currency.value.trim() });
    } },
    h('label', {}, h('span', { text: t('site') }), h('select', { name: 'site', id: 'goal-site' }, state.sites.map((s) => h('option', { value: s.site, text: s.site })))),
    h('label', {}, h('span', { text: t('kind') }), kind),
    h('label', { class: 'wide' }, h('span', { text: t('goal') }), value),
    h('label', {}, h('span', { text: t('currency') }), h('input', { type: 'text', name: 'currency', class: 'short', maxlength: 3, placeholder: t('currencyHint') })),
    h('button', { type: 'submit', class: 'primary', id: 'add-goal', text: t('addGoal') }));
    return section('goals', t('goals'), t('goalsHint'), table([t('site'), t('goal'), t('currency'), ''], rows), form);
  }

  function usersSection() {
    const rows = state.users.map((u) => h('tr', { 'data-user': u.name },
      h('td', {}, h('b', { text: u.name }), u.name === state.me ? h('span', { class: 'flag', text: ' · ' + t('you') }) : null),
      h('td', { text: t(u.role) }), h('td', { text: u.role === 'admin' || !u.sites.length ? t('allSites') : u.sites.join(', ') }),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'link', text: t('resetPw'), onclick: () => act({ action: 'user.reset', name: u.name }, (res) => { once.link = { name: u.name, link: res.link }; }) }),
        u.name === state.me ? null : h('button', { type: 'button', class: 'link danger', text: t('del'), onclick: () => {
          if (confirm(t('confirmDelete', { x: u.name }))) act({ action: 'user.delete', name: u.name });
        } }))));
    const checks = siteChecks('invite-sites');
    const role = h('select', { name: 'role', id: 'invite-role', onchange: () => { checks.hidden = role.value !== 'viewer'; } },
      h('option', { value: 'viewer', text: t('viewer') }), h('option', { value: 'admin', text: t('admin') }));
    const form = h('form', { class: 'add', id: 'invite-form', onsubmit: (e) => {
      e.preventDefault();
      const f = e.target, name = f.name.value.trim();
      act({ action: 'user.invite', name, role: f.role.value, sites: f.role.value === 'viewer' ? checked(f, 'invite-sites') : [] },
        (res) => { once.link = { name, link: res.link }; });
    } },
    h('label', {}, h('span', { text: t('name') }), h('input', { type: 'text', name: 'name', id: 'invite-name', required: true, autocomplete: 'off' })),
    h('label', {}, h('span', { text: t('role') }), role), checks,
    h('button', { type: 'submit', class: 'primary', id: 'invite', text: t('invite') }));
    const made = once.link ? h('div', { class: 'made' }, h('p', { text: t('inviteLink', { name: once.link.name }) }), copyBox('invite-link', once.link.link)) : null;
    return section('users', t('users'), t('usersHint'), table([t('name'), t('role'), t('forSites'), ''], rows), form, made);
  }

  function sharesSection() {
    const rows = state.shares.map((s) => h('tr', { 'data-share': s.id },
      h('td', { text: s.sites[0] }), h('td', { text: s.name || '—' }), h('td', { text: s.id }), h('td', { text: fmtTime(s.created) }),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'link danger', text: t('revoke'), onclick: () => {
        if (confirm(t('confirmRevoke', { x: s.name || s.id }))) act({ action: 'share.revoke', id: s.id });
      } }))));
    if (!state.sites.length) return section('shares', t('shares'), t('sharesHint'));
    const form = h('form', { class: 'add', id: 'share-form', onsubmit: (e) => {
      e.preventDefault();
      const f = e.target;
      act({ action: 'share.create', site: f.site.value, name: f.label.value.trim() }, (res) => { once.share = res.url; });
    } },
    h('label', {}, h('span', { text: t('site') }), h('select', { name: 'site', id: 'share-site' }, state.sites.map((s) => h('option', { value: s.site, text: s.site })))),
    h('label', { class: 'wide' }, h('span', { text: t('label') }), h('input', { type: 'text', name: 'label', id: 'share-label', autocomplete: 'off' })),
    h('button', { type: 'submit', class: 'primary', id: 'create-share', text: t('createShare') }));
    const made = once.share ? h('div', { class: 'made' }, h('p', { text: t('shareMade') }), copyBox('share-url', once.share)) : null;
    return section('shares', t('shares'), t('sharesHint'), table([t('site'), t('label'), 'ID', t('when'), ''], rows), form, made);
  }

  function keysSection() {
    const rows = state.keys.map((k) => h('tr', { 'data-key': k.id },
      h('td', { text: k.sites.join(', ') }), h('td', { text: k.name || '—' }), h('td', { text: k.id }), h('td', { text: fmtTime(k.created) }),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'link danger', text: t('revoke'), onclick: () => {
        if (confirm(t('confirmRevoke', { x: k.name || k.id }))) act({ action: 'key.revoke', id: k.id });
      } }))));
    if (!state.sites.length) return section('keys', t('keys'), t('keysHint'));
    const form = h('form', { class: 'add', id: 'key-form', onsubmit: (e) => {
      e.preventDefault();
      const f = e.target;
      act({ action: 'key.create', sites: checked(f, 'key-sites'), name: f.label.value.trim() }, (res) => { once.key = res.key; });
    } },
    siteChecks('key-sites'),
    h('label', { class: 'wide' }, h('span', { text: t('label') }), h('input', { type: 'text', name: 'label', id: 'key-label', autocomplete: 'off' })),
    h('button', { type: 'submit', class: 'primary', id: 'create-key', text: t('createKey') }));
    const made = once.key ? h('div', { class: 'made' }, h('p', { text: t('keyMade') }), copyBox('key-secret', once.key)) : null;
    return section('keys', t('keys'), t('keysHint'), table([t('forSites'), t('label'), 'ID', t('when'), ''], rows), form, made);
  }

  function auditSection() {
    const rows = state.audit.map((e) => h('tr', {},
      h('td', { text: fmtTime(e.time) }), h('td', { text: e.actor }), h('td', {}, h('code', { text: e.action })),
      h('td', { text: [e.target, e.detail].filter(Boolean).join(' · ') })));
    return section('activity', t('activity'), null, table([t('when'), t('who'), t('what'), t('target')], rows));
  }

  document.documentElement.lang = lang;
  load().catch((e) => { document.getElementById('app').textContent = t('failed') + e.message; });
})();

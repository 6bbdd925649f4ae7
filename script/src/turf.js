// turf's tracker, the readable source. Sites load the minified build in
// ../dist/script.min.js, made from this file by `go generate ./script`; edit
// here and regenerate (a unit test fails while dist is stale).
//
// What it promises, and why the code looks the way it does:
//   - It never breaks the page that embeds it. Every way in (loading, the
//     history hooks, clicks, the turf() function) swallows its own errors.
//   - It stores nothing in the browser: no cookies, no localStorage,
//     sessionStorage or IndexedDB. The collector counts visitors with a salted
//     hash that changes daily, so there is nothing to remember here. It only
//     reads localStorage.turf_ignore, the visitor's opt-out.
//   - It stays under 1,500 bytes gzipped (checked by script_test.go), so
//     features earn their bytes; esbuild renames the locals and strips comments.
//   - The body is a string, so the browser sends it as text/plain: a "simple"
//     cross-origin request that needs no CORS preflight.
(function () {
  'use strict';
  try {
    var w = window;
    var d = document;
    var loc = location;
    var script = d.currentScript;
    var attr = function (name) {
      return script.getAttribute('data-' + name);
    };
    var has = function (name) {
      return attr(name) != null;
    };

    // A second copy of the tag must not count everything twice.
    if (w.turf && w.turf.loaded) return;

    // The collector lives beside /js/script.js: "../api/event" relative to the
    // script keeps a path prefix that a reverse proxy may have added.
    var api = attr('api') || new URL('../api/event', script.src).href;
    var domain = attr('domain') || loc.hostname;
    var hashRouting = has('hash-routing');
    var fileTypes = (
      attr('file-types') ||
      'pdf,doc,docx,xls,xlsx,ppt,pptx,odt,ods,odp,rtf,txt,csv,epub,zip,rar,7z,gz,tgz,dmg,exe,msi,pkg,deb,rpm,apk,iso,mp3,wav,mp4,mov,avi'
    )
      .toLowerCase()
      .split(/\s*,\s*/);
    var lastPage;

    // Checked on every event rather than once: the site's opt-out switch can
    // flip while the page is open. A development copy of a site, and browsers
    // under automation (navigator.webdriver), would only pollute the numbers,
    // unless the tag asks for them (data-include-local, data-include-webdriver).
    var ignored = function () {
      return (
        localStorage.turf_ignore == 'true' ||
        (!has('include-local') &&
          (/^(localhost|127(\.\d+){3}|\[::1\]|0\.0\.0\.0)$|\.localhost$/.test(loc.hostname) ||
            loc.protocol == 'file:')) ||
        (navigator.webdriver && !has('include-webdriver'))
      );
    };

    var send = function (name, opts) {
      opts = opts || {};
      var done = function () {
        opts.callback && opts.callback();
      };
      if (ignored()) return done();
      // keepalive lets the request outlive the page, so a click on a link that
      // navigates away is still counted, without delaying the navigation.
      // Unlike sendBeacon it sends no credentials and can call back.
      fetch(api, {
        method: 'POST',
        keepalive: true,
        body: JSON.stringify({
          name: name,
          url: opts.url || loc.href,
          domain: domain,
          referrer: d.referrer,
          props: opts.props,
          revenue: opts.revenue,
          interactive: opts.interactive,
          sd: opts.sd,
          e: opts.e,
          // Tells the collector that the fragment is part of the page's path.
          hashMode: hashRouting ? 1 : 0,
        }),
      }).then(done, done);
    };

    var guard = function (f) {
      return function (a, b) {
        try {
          f(a, b);
        } catch (e) {}
      };
    };

    // Engagement, as Plausible's tracker reports it: when a page is hidden
    // or left (or a single-page app moves on), one "engagement" event with
    // the deepest scroll so far (sd, percent of the page's height) and the
    // milliseconds the page was visible and focused since the last one (e).
    // Sent only when the visitor scrolled deeper or stayed 3 s more; the
    // collector stores it apart, never as an event or page view.
    var el = d.documentElement;
    var height = function () {
      return Math.max(el.scrollHeight, d.body ? d.body.scrollHeight : 0);
    };
    var deepest, sent, engaged, since, pageURL;
    var scrolled = guard(function () {
      var h = height();
      var v = w.innerHeight;
      deepest = Math.max(deepest, h <= v ? h : w.scrollY + v);
    });
    var engagement = function () {
      var now = Date.now();
      var e = engaged + (since ? now - since : 0);
      engaged = 0;
      since = since && now;
      if (pageURL && (deepest > sent || e >= 3000)) {
        sent = deepest;
        // (the collector takes a depth over 100 for 100)
        send('engagement', { url: pageURL, sd: Math.round((deepest / height()) * 100), e: e });
      }
    };
    var visibility = guard(function (ev) {
      if (d.visibilityState == 'hidden' || ev.type == 'blur') {
        engagement();
        since = 0;
      } else if (!since) since = Date.now();
    });

    // Only the route counts: without hash routing, a jump to an anchor on the
    // same page is no new page view, and neither is a router that pushes the
    // URL it already shows.
    var pageview = guard(function () {
      var page = hashRouting ? loc.href : loc.href.split('#')[0];
      if (page != lastPage) {
        engagement(); // the page being left
        lastPage = page;
        send('pageview');
        pageURL = loc.href;
        deepest = sent = -1;
        engaged = 0;
        since = Date.now();
        scrolled();
      }
    });

    // class="turf-event-name=Download+Brochure turf-event-format=pdf" sends
    // "Download Brochure" with props {format: "pdf"}: class names cannot hold
    // spaces, so "+" stands for one.
    var tagged = function (el) {
      var name;
      var props = {};
      [].forEach.call(el.classList || [], function (c) {
        var m = c.match(/^turf-event-(.+?)=(.+)/);
        if (m) {
          var v = m[2].replace(/\+/g, ' ');
          if (m[1] == 'name') name = v;
          else props[m[1]] = v;
        }
      });
      if (name) send(name, { props: props });
      return name;
    };

    var click = guard(function (e) {
      // auxclick also fires for the right button, which opens a menu, not a link.
      if (e.type == 'auxclick' && e.button != 1) return;
      var link;
      for (var el = e.target; el && el.tagName; el = el.parentNode) {
        if (!link && el.tagName == 'A' && el.href) link = el;
        // A tagged form counts on submit, not on every click inside it.
        if (el.tagName != 'FORM' && tagged(el)) return;
      }
      if (link && /^http/.test(link.protocol)) {
        // Query and fragment are left out: they can carry tokens or personal data.
        var props = { props: { url: link.origin + link.pathname } };
        var ext = (link.pathname.match(/\.(\w+)$/) || [])[1];
        if (ext && fileTypes.indexOf(ext.toLowerCase()) >= 0) send('File Download', props);
        else if (link.hostname != loc.hostname) send('Outbound Link: Click', props);
      }
    });

    // Single-page apps change the URL with pushState and popstate; they throw
    // and return what the page expects, so the page sees no difference.
    var history = w.history;
    var push = history.pushState;
    history.pushState = function () {
      var result = push.apply(this, arguments);
      pageview();
      return result;
    };
    w.addEventListener('popstate', pageview);
    if (hashRouting) w.addEventListener('hashchange', pageview);
    // Capture, so a page handler that stops propagation does not hide the
    // click; middle clicks arrive as auxclick, ctrl/cmd-clicks as click.
    d.addEventListener('scroll', scrolled, true);
    d.addEventListener('visibilitychange', visibility);
    w.addEventListener('blur', visibility);
    w.addEventListener('focus', visibility);
    d.addEventListener('click', click, true);
    d.addEventListener('auxclick', click, true);
    d.addEventListener(
      'submit',
      guard(function (e) {
        tagged(e.target);
      }),
      true
    );

    // Calls made before the script loaded wait in turf.q (see docs/tracker.md).
    var queue = (w.turf && w.turf.q) || [];
    var turf = (w.turf = guard(send));
    turf.loaded = true;

    // A prerendered page (speculation rules) is counted when it is shown,
    // if it ever is.
    if (d.prerendering) d.addEventListener('prerenderingchange', pageview);
    else pageview();
    [].forEach.call(queue, function (args) {
      turf.apply(null, args);
    });
  } catch (e) {}
})();

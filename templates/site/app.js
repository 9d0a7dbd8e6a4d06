// matterbak site: theme toggle and search from disk. The index is many small classic
// scripts under search/ (a browser refuses fetch and modules on file://); each calls one of
// the MB.* callbacks below. Tokenizer and hash must match src/export/html/search.rs.
"use strict";
(function () {
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("mb-theme"); } catch (e) {}
  if (saved) root.setAttribute("data-theme", saved);
  document.addEventListener("DOMContentLoaded", function () {
    // `/` focuses the search box, as in Mattermost.
    document.addEventListener("keydown", function (ev) {
      var t = ev.target, typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
      if (ev.key !== "/" || typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var input = document.querySelector("form.search input");
      if (input) { ev.preventDefault(); input.focus(); input.select(); }
    });
    // A channel opens on its latest messages, as in Mattermost: its newest page (the one
    // with #latest) scrolled to the end, unless the address names a place on it.
    var latest = document.getElementById("latest");
    if (latest && !location.hash) latest.scrollIntoView({ block: "end" });
    var jump = document.getElementById("jump");
    if (jump && location.hash === "#jump") jump.open = true;
    goHome();
    var b = document.querySelector("button.theme");
    if (b) b.addEventListener("click", function () {
      var dark = root.getAttribute("data-theme") === "dark" ||
        (!root.getAttribute("data-theme") && matchMedia("(prefers-color-scheme: dark)").matches);
      var next = dark ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("mb-theme", next); } catch (e) {}
    });
    var up = document.body.getAttribute("data-up") || "";
    var form = document.querySelector("form.search");
    if (form) form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = form.querySelector("input").value;
      location.href = up + "index.html#q=" + encodeURIComponent(q);
      if (!up) runFromHash();
    });
    if (document.getElementById("results")) {
      var m = /[?&]q=([^&]*)/.exec(location.search);
      if (m && !location.hash) location.hash = "q=" + m[1];
      window.addEventListener("hashchange", runFromHash);
      runFromHash();
    }
  });

  var MB = window.MB = { shards: {}, chunks: {}, prefixes: {}, docs: {}, meta: null, bytes: 0 };
  var waiting = {};
  MB.meta = function (m) { MB.metaData = m; };
  MB.shard = function (name, terms) { MB.shards[name] = terms; };
  MB.chunk = function (name, postings) { MB.chunks[name] = postings; };
  MB.prefix = function (key, terms) { MB.prefixes[key] = terms; };
  MB.docs = function (block, docs) { MB.docs[block] = docs; };
  MB.texts = function (block, texts) { MB.longTexts[block] = texts; };
  MB.longTexts = {};
  MB.homes = function (pages) {
    MB.homeOf = {};
    Object.keys(pages).forEach(function (page) {
      pages[page].split(" ").forEach(function (id) { if (id) MB.homeOf[id] = page; });
    });
  };

  // A link saved from outside the site names a post's page as it was then: a post leaves
  // a channel's newest page (index.html) when newer ones fill it, and a reply leaves the
  // channel's pages when its thread grows long. When the post is not on this page, the
  // channel's homes.js says which page holds it now (the newest page when it lists none).
  function goHome() {
    var m = /^#p-([A-Za-z0-9]+)$/.exec(location.hash);
    var here = /\/c\/[^\/]+\/([^\/]+\.html)$/.exec(location.pathname);
    if (!m || !here || document.getElementById("p-" + m[1])) return;
    load("homes.js").then(function () {
      var to = (MB.homeOf && MB.homeOf[m[1]]) || "index.html";
      if (to !== here[1]) location.replace(to + location.hash);
    });
  }
  MB.loaded = [];

  function load(src) {
    if (waiting[src]) return waiting[src];
    waiting[src] = new Promise(function (resolve) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = function () { MB.loaded.push(s.src); resolve(true); };
      s.onerror = function () { resolve(false); };
      document.head.appendChild(s);
    });
    return waiting[src];
  }

  function fnv1a(text) {
    var bytes = new TextEncoder().encode(text), h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; }
    return h >>> 0;
  }
  function hex8(n) { return ("0000000" + n.toString(16)).slice(-8); }
  // The words of a text, the rule of search.rs `tokens` (and of the catalog's FTS5
  // unicode61 tokenizer): diacritics dropped, lower case, split at anything not a letter or
  // number (combining marks, `_`, punctuation, symbols and emoji separate words).
  var TOKEN_CHARS = 64;
  var WORD = /^[\p{Alphabetic}\p{N}\p{Co}]$/u, MARK = /^\p{M}$/u;
  function tokens(text) {
    var folded = text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").normalize("NFC").toLowerCase();
    var out = [], word = "";
    for (var ch of folded) {
      if (WORD.test(ch) && !MARK.test(ch)) { word += ch; continue; }
      if (word) out.push(word);
      word = "";
    }
    if (word) out.push(word);
    return out.filter(function (w) { return Array.from(w).length <= TOKEN_CHARS; });
  }
  function decode(s) {
    var out = [], prev = -1;
    if (!s) return out;
    s.split(",").forEach(function (d) {
      var v = parseInt(d, 36);
      prev = prev < 0 ? v : prev - v;
      out.push(prev);
    });
    out.nothing = out.words > 0 && !out.terms.length && !out.prefixes.length;
    return out;
  }

  // A term's postings. A frequent term is stored in chunks (ranges of ids, newest first):
  // `next()` loads the next older chunk and gives its ids, `ensure(ids)` loads just the
  // chunks holding those ids.
  function termStream(term) {
    var m = MB.metaData, h = fnv1a(term), shard = (h & ((1 << m.bits) - 1)).toString(16);
    return load("search/t/" + shard + ".js").then(function () {
      var entry = (MB.shards[shard] || {})[term];
      var whole = function (ids) { return { ids: ids, next: null, complete: true, ensure: function () { return Promise.resolve(); } }; };
      if (entry === undefined) return whole(new Set());
      if (typeof entry === "string") return whole(new Set(decode(entry)));
      var st = { ids: new Set(), k: 0, loaded: {}, complete: false, n: entry.n };
      var chunk = function (k) {
        if (st.loaded[k]) return Promise.resolve(decode(MB.chunks[entry.h + "-" + k]));
        var name = entry.h + "-" + k;
        return load("search/c/" + name + ".js").then(function () {
          st.loaded[k] = true;
          var ids = decode(MB.chunks[name]);
          ids.forEach(function (id) { st.ids.add(id); });
          return ids;
        });
      };
      var chunkOf = function (id) {
        for (var k = 0; k < entry.k.length; k++) if (id <= entry.k[k][0] && id >= entry.k[k][1]) return k;
        return -1;
      };
      st.ensure = function (ids) {
        var want = {};
        ids.forEach(function (id) { var k = chunkOf(id); if (k >= 0 && !st.loaded[k]) want[k] = true; });
        return Promise.all(Object.keys(want).map(function (k) { return chunk(+k); }));
      };
      // Skips chunks holding only ids above `maxId` (a date filter's end).
      st.seek = function (maxId) {
        while (st.k < entry.k.length && entry.k[st.k][1] > maxId) st.k++;
        if (st.k >= entry.k.length) st.next = null;
      };
      st.next = function () {
        var k = st.k++;
        return chunk(k).then(function (ids) {
          if (k + 1 >= entry.k.length) st.next = null;
          return ids;
        });
      };
      return st;
    });
  }
  function prefixStream(prefix) {
    var key = Array.from(prefix).slice(0, 2).join("");
    return load("search/p/" + fnv1a(key) + ".js").then(function () {
      var list = (MB.prefixes[key] || []).filter(function (t) { return t[0].indexOf(prefix) === 0; });
      list.sort(function (a, b) { return b[1] - a[1]; });
      list = list.slice(0, 30);
      return Promise.all(list.map(function (t) { return termStream(t[0]); })).then(function (streams) {
        var ids = new Set();
        var all = function () {
          var pending = streams.filter(function (s) { return s.next; });
          if (!pending.length) return Promise.resolve();
          return Promise.all(pending.map(function (s) { return s.next(); })).then(all);
        };
        return all().then(function () {
          streams.forEach(function (s) { s.ids.forEach(function (i) { ids.add(i); }); });
          return { ids: ids, next: null, complete: true, ensure: function () { return Promise.resolve(); } };
        });
      });
    });
  }

  function parse(q) {
    var out = { terms: [], prefixes: [], phrases: [], filters: [], before: null, after: null, on: null, words: 0 };
    var re = /"([^"]*)"|(\S+)/g, m;
    while ((m = re.exec(q))) {
      if (m[1] !== undefined) {
        var words = tokens(m[1]);
        out.words++;
        if (words.length) { out.phrases.push(words.join(" ")); out.terms = out.terms.concat(words); }
        continue;
      }
      var w = m[2], f = /^(in|from|has|is|before|after|on):(.+)$/i.exec(w);
      if (f) {
        var key = f[1].toLowerCase(), val = f[2].toLowerCase().replace(/^[@~]/, "");
        if (key === "before" || key === "after" || key === "on") out[key] = val;
        else out.filters.push(key + ":" + val);
        continue;
      }
      out.words++;
      if (/\*$/.test(w)) {
        var p = tokens(w.slice(0, -1));
        if (p.length) { out.terms = out.terms.concat(p.slice(0, -1)); out.prefixes.push(p[p.length - 1]); }
        continue;
      }
      // As `matterbak search` quotes each word: several tokens are a phrase; a word of none
      // (`🎉`) is left out, and a query of such words only finds nothing.
      var t = tokens(w);
      if (t.length > 1) out.phrases.push(t.join(" "));
      out.terms = out.terms.concat(t);
    }
    out.nothing = out.words > 0 && !out.terms.length && !out.prefixes.length;
    return out;
  }

  // First document id of the first day >= day (days are [["YYYY-MM-DD", firstId], ...]).
  function dayStart(day, after) {
    var days = MB.metaData.days, lo = 0, hi = days.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (after ? days[mid][0] <= day : days[mid][0] < day) lo = mid + 1; else hi = mid; }
    return lo < days.length ? days[lo][1] : MB.metaData.docs;
  }

  var WANT = 20;
  function search(q) {
    var p = parse(q), m = MB.metaData;
    var min = 0, max = m.docs - 1;
    if (p.after) min = Math.max(min, dayStart(p.after, true));
    if (p.before) max = Math.min(max, dayStart(p.before, false) - 1);
    if (p.on) { min = Math.max(min, dayStart(p.on, false)); max = Math.min(max, dayStart(p.on, true) - 1); }
    if (p.nothing) return Promise.resolve({ ids: [], phrases: [] });
    var names = p.terms.concat(p.filters).filter(function (t, i, a) { return a.indexOf(t) === i; });
    var jobs = names.map(termStream).concat(p.prefixes.map(prefixStream));
    if (!jobs.length) {
      // Only a date filter: the newest ids in range.
      var ids = [];
      for (var i = max; i >= min && ids.length < WANT; i--) ids.push(i);
      return Promise.resolve({ ids: ids, phrases: [] });
    }
    return Promise.all(jobs).then(function (streams) {
      var inRange = function (id) { return id >= min && id <= max; };
      var size = function (s) { return s.complete ? s.ids.size : s.n; };
      // The rarest term drives: its ids, newest first, are the candidates, and the other
      // terms load only the chunks where candidates fall.
      var driver = streams.slice().sort(function (a, b) { return size(a) - size(b); })[0];
      var hits = [];
      var check = function (candidates) {
        var at = 0;
        var batch = function () {
          if (hits.length >= WANT * 2 || at >= candidates.length) return Promise.resolve();
          var part = candidates.slice(at, at + WANT * 2);
          at += part.length;
          return Promise.all(streams.map(function (s) { return s.ensure(part); })).then(function () {
            part.forEach(function (id) {
              if (streams.every(function (s) { return s.ids.has(id); })) hits.push(id);
            });
            return batch();
          });
        };
        return batch();
      };
      var newestFirst = function (ids) { return ids.filter(inRange).sort(function (a, b) { return b - a; }); };
      var done = function () { return { ids: hits, phrases: p.phrases }; };
      if (driver.complete) return check(newestFirst(Array.from(driver.ids))).then(done);
      driver.seek(max);
      var more = function () {
        if (hits.length >= WANT * 2 || !driver.next) return done();
        return driver.next().then(function (chunkIds) { return check(newestFirst(chunkIds)); }).then(more);
      };
      return more();
    });
  }

  function docsFor(ids) {
    var b = MB.metaData.block, blocks = {};
    ids.forEach(function (id) { blocks[Math.floor(id / b)] = true; });
    return Promise.all(Object.keys(blocks).map(function (k) { return load("search/d/" + k + ".js"); }))
      .then(function () { return ids.map(function (id) { return MB.docs[Math.floor(id / b)][id % b]; }); });
  }

  // Whether a text shows the query: a word or prefix of it, and every phrase.
  function matches(text, p) {
    var words = tokens(text), joined = " " + words.join(" ") + " ";
    var any = !p.terms.length && !p.prefixes.length || words.some(function (t) {
      return p.terms.indexOf(t) >= 0 || p.prefixes.some(function (x) { return t.indexOf(x) === 0; });
    });
    return any && p.phrases.every(function (ph) { return joined.indexOf(" " + ph + " ") >= 0; });
  }

  // The texts to show for docs (ids in the same order): a record holds a text's first 400
  // characters, marked by a 1 after them when there is more; only where the query is not
  // in those is the whole text loaded (search/x/<block>.js), so its words are shown and
  // marked wherever they are.
  function textsFor(ids, docs, p) {
    var b = MB.metaData.block, blocks = {};
    ids.forEach(function (id, i) {
      var d = docs[i];
      if (d && d[7] && !matches(d[6], p)) blocks[Math.floor(id / b)] = true;
    });
    return Promise.all(Object.keys(blocks).map(function (k) { return load("search/x/" + k + ".js"); }))
      .then(function () {
        return ids.map(function (id, i) {
          var d = docs[i], long = d && d[7] && blocks[Math.floor(id / b)] && MB.longTexts[Math.floor(id / b)];
          return long && long[id % b] !== undefined ? long[id % b] : d && d[6];
        });
      });
  }

  // A time as pages write it ("2024-03-02 15:00"), in the site's zone (the footer names
  // it); the browser's own zone when the site was written in the machine's local time.
  function timeText(ms) {
    var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    var zone = document.body.getAttribute("data-zone"), parts = {}, fmt;
    try { fmt = new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: zone }, opts)); }
    catch (e) { fmt = new Intl.DateTimeFormat("en-US", opts); }
    fmt.formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The text of a hit around its first matching word, the query's words marked.
  function snippet(text, p) {
    var span = el("span", "hit-text");
    var hits = function (run) {
      return tokens(run).some(function (t) {
        return p.terms.indexOf(t) >= 0 || p.prefixes.some(function (x) { return t.indexOf(x) === 0; });
      });
    };
    var runs = [], re = /[\p{Alphabetic}\p{N}\p{Co}\p{M}]+/gu, m, first = -1;
    while ((m = re.exec(text))) {
      var on = hits(m[0]);
      runs.push([m.index, m.index + m[0].length, on]);
      if (on && first < 0) first = m.index;
    }
    var from = 0, to = text.length, LEN = 240;
    if (text.length > LEN) {
      from = Math.max(0, (first < 0 ? 0 : first) - 60);
      to = Math.min(text.length, from + LEN);
    }
    var at = from;
    if (from > 0) span.appendChild(document.createTextNode("…"));
    runs.forEach(function (r) {
      if (!r[2] || r[0] < from || r[1] > to) return;
      span.appendChild(document.createTextNode(text.slice(at, r[0])));
      span.appendChild(el("mark", null, text.slice(r[0], r[1])));
      at = r[1];
    });
    span.appendChild(document.createTextNode(text.slice(at, to) + (to < text.length ? "…" : "")));
    return span;
  }

  function show(q) {
    var section = document.getElementById("search-results");
    var list = document.getElementById("results");
    var status = document.getElementById("search-status");
    section.hidden = false;
    list.textContent = "";
    status.textContent = "Searching…";
    var input = document.querySelector("form.search input");
    if (input) input.value = q;
    var started = MB.started || performance.now();
    var parsed = parse(q);
    return search(q).then(function (r) {
      var want = r.phrases.length ? r.ids.slice(0, WANT * 4) : r.ids.slice(0, WANT);
      var docs;
      return docsFor(want).then(function (found) {
        docs = found;
        return textsFor(want, docs, parsed);
      }).then(function (texts) {
        var shown = 0, m = MB.metaData;
        docs.forEach(function (d, i) {
          if (!d || shown >= WANT) return;
          var text = " " + tokens(texts[i]).join(" ") + " ";
          if (!r.phrases.every(function (ph) { return text.indexOf(" " + ph + " ") >= 0; })) return;
          shown++;
          var li = el("li", "hit");
          li.setAttribute("data-id", d[5]);
          var meta = el("div", "hit-meta");
          var ch = m.channels[d[0]];
          meta.appendChild(el("span", "hit-channel", ch[1]));
          meta.appendChild(document.createTextNode(" · "));
          meta.appendChild(el("span", "hit-user", m.users[d[1]][1]));
          meta.appendChild(document.createTextNode(" · "));
          var when = el("time", "hit-time", timeText(d[2]));
          when.setAttribute("datetime", new Date(d[2]).toISOString());
          meta.appendChild(when);
          li.appendChild(meta);
          var a = el("a", "hit-link");
          a.href = ch[2] + "/" + d[3] + "#p-" + d[5];
          a.appendChild(snippet(texts[i], parsed));
          li.appendChild(a);
          if (d[4]) {
            var t = el("a", "hit-thread", " Open thread");
            t.href = ch[2] + "/" + d[4] + "#p-" + d[5];
            li.appendChild(t);
          }
          list.appendChild(li);
        });
        var ms = Math.round(performance.now() - started);
        status.textContent = shown ? (shown + (r.ids.length > shown ? "+" : "") + " result(s), newest first (" + ms + " ms)") : "No results.";
        // What the page loaded, for tests that check nothing left the site.
        var seen = performance.getEntriesByType("resource").map(function (e) { return e.name; });
        document.body.setAttribute("data-resources", seen.concat(MB.loaded).join(" "));
        document.body.setAttribute("data-search-done", "1");
      });
    });
  }

  function runFromHash() {
    var m = /^#q=(.*)$/.exec(location.hash);
    if (!m) return;
    var q = decodeURIComponent(m[1].replace(/\+/g, " "));
    // Timed from here, so the time shown includes loading the index's table of contents.
    MB.started = performance.now();
    var go = function () { return show(q); };
    (MB.metaData ? Promise.resolve() : load("search/meta.js")).then(go).catch(function (e) {
      var s = document.getElementById("search-status");
      if (s) s.textContent = "Search failed: " + e;
    });
  }
})();

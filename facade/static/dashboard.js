// Facade's dashboard: reads the admin API with the admin key and draws with plain SVG.
// No library, no build step, nothing from another origin. The key lives in this tab's
// sessionStorage only. Every value from the server goes in through textContent or an
// attribute, never as HTML.
(function () {
  "use strict";
  var API = document.getElementById("app").dataset.api;
  var STORE = "facade.adminKey";
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#a0aec0"];
  var DAYS = 30;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function money(usd) {
    if (!usd) return "$0.00";
    if (Math.abs(usd) >= 1) return "$" + usd.toFixed(2);
    var digits = Math.abs(usd) >= 0.01 ? 4 : 6;
    return "$" + usd.toFixed(digits).replace(/0+$/, "").replace(/\.$/, ".00");
  }

  function seconds(s) {
    if (s === null || s === undefined) return "–";
    return s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(2) + " s";
  }

  function isoDay(d) { return d.toISOString().slice(0, 10); }

  function lastDays() {
    var today = new Date();
    var days = [];
    for (var i = DAYS - 1; i >= 0; i--) {
      days.push(isoDay(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(),
        today.getUTCDate() - i))));
    }
    return days;
  }

  function get(path, key) {
    return fetch(API + path, {
      headers: { "Authorization": "Bearer " + key, "Accept": "application/json" },
      cache: "no-store",
      credentials: "omit",
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (!resp.ok) {
          var err = new Error(body.message || ("HTTP " + resp.status));
          err.status = resp.status;
          throw err;
        }
        return body.data;
      });
    });
  }

  function load(key) {
    var days = lastDays();
    var range = "?from=" + days[0] + "&to=" + days[days.length - 1];
    return Promise.all([get("/keys", key), get("/usage" + range, key),
      get("/usage/models" + range, key)]).then(function (parts) {
      return { keys: parts[0].data, usage: parts[1].rows, models: parts[2].rows, days: days };
    });
  }

  // -- budgets: one bar per key with a budget, the fullest first ----------------------------
  function drawBudgets(keys) {
    var box = $("budgets");
    box.textContent = "";
    var budgeted = keys.filter(function (k) { return k.budget_usd !== null && k.budget_usd !== undefined; });
    budgeted.forEach(function (k) {
      k._used = k.budget_usd > 0 ? (k.spend_usd + k.reserved_usd) / k.budget_usd : 1;
    });
    budgeted.sort(function (a, b) { return b._used - a._used || a.name.localeCompare(b.name); });
    budgeted.forEach(function (k) {
      var row = el("div", { "class": "name", "title": k.id }, k.name);
      var bar = svg("svg", { "width": "100%", "height": "16", "viewBox": "0 0 100 16",
        "preserveAspectRatio": "none", "role": "img" });
      var share = Math.min(1, k.spend_usd / (k.budget_usd || 1));
      var held = Math.min(1 - share, k.reserved_usd / (k.budget_usd || 1));
      var color = k._used >= 0.9 ? "var(--bad)" : k._used >= 0.7 ? "var(--warn)" : "var(--ok)";
      bar.appendChild(svg("rect", { x: 0, y: 0, width: 100, height: 16, rx: 2, fill: "#edf0f4" }));
      bar.appendChild(svg("rect", { x: 0, y: 0, width: (share * 100).toFixed(3), height: 16,
        rx: 2, fill: color, "class": "spent" }));
      if (held > 0) {
        bar.appendChild(svg("rect", { x: (share * 100).toFixed(3), y: 0,
          width: (held * 100).toFixed(3), height: 16, fill: color, opacity: 0.35 }));
      }
      bar.appendChild(svg("title", {}, Math.round(k._used * 100) + "% used"));
      var amount = el("div", { "class": "amount" },
        money(k.spend_usd) + " of " + money(k.budget_usd) + " " + k.budget_period +
        " (" + Math.round(k._used * 100) + "%)");
      [row, bar, amount].forEach(function (node) {
        node.setAttribute("data-key-id", k.id);
        node.setAttribute("data-spend-usd", String(k.spend_usd));
        box.appendChild(node);
      });
      bar.setAttribute("class", "bar");
    });
    if (!budgeted.length) box.appendChild(el("p", { "class": "muted" }, "No key has a budget."));
    var free = keys.filter(function (k) { return budgeted.indexOf(k) < 0; });
    $("unbudgeted").textContent = free.length ? "No budget: " + free.map(function (k) {
      return k.name + " " + money(k.spend_usd);
    }).join(", ") : "";
  }

  // -- spend per key per day: stacked bars, the biggest spenders named, the rest "others" --
  function drawSpend(usage, keys, days) {
    var names = {};
    keys.forEach(function (k) { names[k.id] = k.name; });
    var perKey = {}, cell = {};
    usage.forEach(function (r) {
      perKey[r.key_id] = (perKey[r.key_id] || 0) + r.cost_usd;
      var id = r.day + "|" + r.key_id;
      cell[id] = (cell[id] || 0) + r.cost_usd;
    });
    var ranked = Object.keys(perKey)
      .filter(function (id) { return perKey[id] > 0; })
      .sort(function (a, b) { return perKey[b] - perKey[a]; });
    var shown = ranked.slice(0, COLORS.length - 1);
    var series = shown.map(function (id, i) {
      return { ids: [id], label: names[id] || r_name(usage, id), color: COLORS[i] };
    });
    if (ranked.length > shown.length) {
      series.push({ ids: ranked.slice(shown.length), label: "others", color: COLORS[COLORS.length - 1] });
    }
    var totals = days.map(function (day) {
      return series.reduce(function (sum, s) {
        return sum + s.ids.reduce(function (t, id) { return t + (cell[day + "|" + id] || 0); }, 0);
      }, 0);
    });
    var top = Math.max.apply(null, totals.concat([0]));
    var W = 900, H = 240, L = 64, B = 22, T = 8, plotW = W - L - 8, plotH = H - B - T;
    var chart = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
      "aria-label": "Spend per key per day" });
    var scale = top > 0 ? niceMax(top) : 1;
    for (var g = 0; g <= 4; g++) {
      var y = T + plotH - (plotH * g) / 4;
      chart.appendChild(svg("line", { x1: L, x2: W - 8, y1: y, y2: y, stroke: "#e2e8f0" }));
      chart.appendChild(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" },
        money((scale * g) / 4)));
    }
    var slot = plotW / days.length, barW = Math.max(2, slot * 0.72);
    days.forEach(function (day, i) {
      var x = L + i * slot + (slot - barW) / 2, base = T + plotH;
      series.forEach(function (s) {
        var cost = s.ids.reduce(function (t, id) { return t + (cell[day + "|" + id] || 0); }, 0);
        if (!cost) return;
        var h = (cost / scale) * plotH;
        base -= h;
        var rect = svg("rect", { x: x.toFixed(2), y: base.toFixed(2), width: barW.toFixed(2),
          height: Math.max(h, 0.5).toFixed(2), fill: s.color, "data-day": day,
          "data-key-id": s.ids.length === 1 ? s.ids[0] : "others", "data-cost-usd": String(cost) });
        rect.appendChild(svg("title", {}, day + " " + s.label + ": " + money(cost)));
        chart.appendChild(rect);
      });
      if (i % 5 === 0 || i === days.length - 1) {
        chart.appendChild(svg("text", { x: (L + i * slot + slot / 2).toFixed(2), y: H - 6,
          "text-anchor": "middle" }, day.slice(5)));
      }
    });
    var box = $("spend-chart");
    box.textContent = "";
    box.appendChild(chart);
    var legend = $("spend-legend");
    legend.textContent = "";
    series.forEach(function (s) {
      var item = el("span", {});
      item.appendChild(el("span", { "class": "swatch", "data-color": s.color }));
      item.lastChild.style.background = s.color;
      item.appendChild(document.createTextNode(s.label + " " + money(s.ids.reduce(function (t, id) {
        return t + perKey[id];
      }, 0))));
      legend.appendChild(item);
    });
    if (!series.length) legend.textContent = "No spend in the last 30 days.";
  }

  function r_name(usage, id) {
    for (var i = 0; i < usage.length; i++) {
      if (usage[i].key_id === id && usage[i].key_name) return usage[i].key_name;
    }
    return id;
  }

  function niceMax(v) {
    var step = Math.pow(10, Math.floor(Math.log10(v)));
    var candidates = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < candidates.length; i++) {
      if (candidates[i] * step >= v) return candidates[i] * step;
    }
    return 10 * step;
  }

  // -- models: requests, error rate, latency percentiles, cache hit rate --------------------
  function drawModels(models) {
    var body = $("models").tBodies[0];
    body.textContent = "";
    models.forEach(function (m) {
      var tr = el("tr", { "data-model": m.model });
      tr.appendChild(el("td", {}, m.model));
      tr.appendChild(el("td", { "class": "num", "data-field": "requests" }, String(m.requests)));
      var rate = el("td", { "class": "num", "data-field": "error_rate" },
        (m.error_rate * 100).toFixed(1) + "%");
      if (m.error_rate >= 0.05) rate.setAttribute("class", "num error");
      tr.appendChild(rate);
      tr.appendChild(el("td", { "class": "num", "data-field": "latency_p50_s" }, seconds(m.latency_p50_s)));
      tr.appendChild(el("td", { "class": "num", "data-field": "latency_p95_s" }, seconds(m.latency_p95_s)));
      tr.appendChild(el("td", { "class": "num", "data-field": "ttft_p50_s" }, seconds(m.ttft_p50_s)));
      tr.appendChild(el("td", { "class": "num", "data-field": "cache_hit_rate" },
        ((m.cache_hit_rate || 0) * 100).toFixed(1) + "%"));
      body.appendChild(tr);
    });
    if (!models.length) {
      var tr = el("tr");
      tr.appendChild(el("td", { colspan: "7", "class": "muted" }, "No requests in the last 30 days."));
      body.appendChild(tr);
    }
  }

  function show(data) {
    $("range").textContent = data.days[0] + " to " + data.days[data.days.length - 1] + " (UTC)";
    drawBudgets(data.keys);
    drawSpend(data.usage, data.keys, data.days);
    drawModels(data.models);
    $("login").classList.add("hidden");
    $("content").classList.remove("hidden");
    $("forget").classList.remove("hidden");
    document.body.setAttribute("data-state", "loaded");
  }

  function fail(err) {
    sessionStorage.removeItem(STORE);
    $("content").classList.add("hidden");
    $("forget").classList.add("hidden");
    $("login").classList.remove("hidden");
    var why = err.status === 401 ? "That admin key was refused." :
      err.status === 404 ? "The admin API is off: set FACADE_ADMIN_KEY on the server." :
      err.status === 429 ? "Too many failed attempts; wait a little and try again." :
      "Could not load the dashboard: " + err.message;
    $("login-error").textContent = why;
    document.body.setAttribute("data-state", "refused");
  }

  function open(key) {
    $("login-error").textContent = "";
    document.body.setAttribute("data-state", "loading");
    return load(key).then(function (data) {
      sessionStorage.setItem(STORE, key);
      show(data);
    }, fail);
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("key-input");
    var key = input.value.trim();
    input.value = "";
    if (key) open(key);
  });
  $("forget").addEventListener("click", function () {
    sessionStorage.removeItem(STORE);
    location.reload();
  });
  var saved = sessionStorage.getItem(STORE);
  if (saved) open(saved); else document.body.setAttribute("data-state", "login");
})();

/* Peerlink operations dashboard: fetches the disclosure-controlled figures, draws them as
 * inline SVG with an accessible table beside every chart, and refreshes in place on every
 * release announced by the server-sent event stream. No libraries; nothing from the internet.
 * The API publishes no personal data and this page renders only what the API publishes. */
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PERIOD_PATTERN = /^(\d{4}-(0[1-9]|1[0-2])|last-12-months)$/;
  const GROUPS = {
    org: "organisation", team: "team", borough: "borough", gender: "gender",
    age_band: "age band",
  };
  const PREVALENCE = [
    { key: "current_abuse", name: "Current abuse", cls: "s1" },
    { key: "past_abuse", name: "Past abuse", cls: "s2" },
    { key: "either_abuse", name: "Either", cls: "s3" },
  ];
  const COVERAGE = [
    { key: "screened", name: "Screened of those due", cls: "s1" },
    { key: "asked_in_private", name: "Asked in private", cls: "s2" },
  ];
  /* The study's question (a): was being asked all right, and why was an enquiry not made. */
  const ACCEPTABILITY = [
    { key: "found_acceptable", name: "All right to be asked", cls: "s1" },
    { key: "acceptable_unsure", name: "Unsure", cls: "s2" },
    { key: "not_acceptable", name: "Not all right", cls: "s3" },
  ];
  const NOT_ASKED = [
    ["not_asked_no_private_space", "No private space"], ["not_asked_not_alone", "Not alone"],
    ["not_asked_no_time", "No time"], ["not_asked_staff_not_trained", "Staff not trained"],
    ["not_asked_too_unwell", "Too unwell"], ["not_asked_other", "Other reason"],
  ];
  /* The feasibility funnel: people by the month they entered, each stage they reached. */
  const FEASIBILITY = [
    ["due", "Due an enquiry"], ["asked", "Asked"], ["disclosed", "Disclosed"],
    ["consented", "Consented to mentoring"],
    ["referred", "Referred"], ["matched", "Matched"], ["attended_session", "Attended a session"],
    ["planned_ending", "Planned ending"], ["followed_up_3_months", "Followed up at 3 months"],
    ["followed_up_6_months", "at 6 months"], ["followed_up_12_months", "at 12 months"],
  ];
  const LOST = [["not_asked", "Not asked"], ["declined", "Declined to answer"],
    ["unplanned_ending", "Unplanned ending"]];
  const OFFER_COLUMNS = [["offer_accepted", "Accepted"], ["offer_declined", "Declined"],
    ["offer_undecided", "Undecided"], ["offer_declined_has_other_support", "Declined: has other support"],
    ["offer_declined_not_wanted_now", "Declined: not wanted now"]];
  const STUDY_COLUMNS = [["components_recorded", "Components recorded"],
    ["feedback_given", "Gave feedback"], ["helped_a_lot", "Helped a lot"],
    ["made_worse", "Made worse"], ["adverse_event", "Adverse event"],
    ["serious_adverse_event", "Serious"]];
  const FEASIBILITY_GROUPS = new Set(["org", "gender", "age_band"]);
  const OFFER_GROUPS = new Set(["org", "team", "gender", "age_band"]);
  /* Engagement counts people (not sessions or events), cohorted by the month of referral, so
   * each stage is no larger than the one before it. */
  const FUNNEL = [
    { key: "referred", name: "Referred" },
    { key: "matched", name: "Matched with a mentor" },
    { key: "attended_session", name: "Attended a session" },
    { key: "planned_endings", name: "Planned endings" },
  ];
  const FUNNEL_COLUMNS = [
    ...FUNNEL.map((step) => [step.key, step.name]),
    ["unplanned_endings", "Unplanned endings"], ["active_mentees", "Active mentees"],
  ];
  const WAITING_COLUMNS = [
    ["waitlisted", "Waitlisted"], ["missed_session", "Missed a session"],
  ];
  const ENGAGEMENT_GROUPS = {
    org: { heading: "Receiving organisation", words: "by the organisation receiving the referral" },
    referred_by: { heading: "Referring organisation", words: "by the referring organisation" },
  };
  const PEOPLE_NOTE = "Counts are of people, not sessions or events, by the month they were "
    + "referred: each stage counts people who reached it, so the figures narrow from left to right.";
  const RELATIVE_TICK_MS = 30000;

  class SessionEnded extends Error {}

  const state = {
    period: "last-12-months", groupBy: "org", releasedAt: null, seq: 0,
    rendered: new Map(), marking: false,
  };

  /* ---------- small DOM helpers ---------- */

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  /* ---------- formatting: the API's words are kept as they are ---------- */

  const pct = (x) => `${(x * 100).toFixed(1)}%`;

  function countText(count) {
    if (!count) return "not published";
    return count.display;
  }

  function rateText(rate) {
    if (!rate || rate.withheld || rate.rate === null || rate.rate === undefined) {
      return "rate withheld";
    }
    const interval = rate.lower === null || rate.upper === null ? ""
      : ` (${(rate.lower * 100).toFixed(1)} to ${pct(rate.upper)})`;
    return `${pct(rate.rate)}${interval}`;
  }

  function monthLabel(month, long) {
    const [year, number] = month.split("-").map(Number);
    if (!year || !number) return month;
    const date = new Date(Date.UTC(year, number - 1, 1));
    return date.toLocaleDateString("en-GB", {
      month: long ? "long" : "short", year: long ? "numeric" : "2-digit", timeZone: "UTC",
    });
  }

  function periodLabel(period) {
    return period === "last-12-months" ? "last 12 months" : monthLabel(period, true);
  }

  function parseTime(iso) {
    if (!iso) return null;
    const withZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`;
    const date = new Date(withZone);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function timeText(iso) {
    const date = parseTime(iso);
    return date ? date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" })
      : "not yet published";
  }

  /* How long ago a row's published figures last changed, in short words ("5 min ago"); a week
   * or more back it is the date. A time ahead of this computer's clock reads "just now". */
  function relativeText(iso, now) {
    const date = parseTime(iso);
    if (!date) return "never";
    const seconds = Math.max(0, ((now || Date.now()) - date.getTime()) / 1000);
    if (seconds < 60) return "just now";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ago`;
    const days = Math.floor(hours / 24);
    if (days === 1) return "yesterday";
    if (days < 7) return `${days} days ago`;
    const sameYear = date.getFullYear() === new Date(now || Date.now()).getFullYear();
    return date.toLocaleDateString("en-GB", {
      day: "numeric", month: "short", year: sameYear ? undefined : "numeric",
    });
  }

  /* Relative times drift as the page stays open: rewrite them now and then (they are not
   * figures, so this never marks a cell as changed). */
  function refreshRelativeTimes() {
    for (const node of document.querySelectorAll("time[data-relative]")) {
      node.textContent = relativeText(node.getAttribute("datetime"));
    }
  }

  /* ---------- fetching ---------- */

  async function getJSON(path, params) {
    const response = await fetch(`${path}?${new URLSearchParams(params)}`, {
      credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
    });
    if (response.status === 401) throw new SessionEnded("signed out");
    if (response.status === 404) return { unavailable: "not available yet" };
    if (response.status === 422) return { unavailable: "not available for this view yet" };
    if (!response.ok) throw new Error(`the service answered HTTP ${response.status}`);
    return response.json();
  }

  /* ---------- tables ---------- */

  /* When the row's published figures last changed (``changed_at``; "never" while nothing in
   * it was ever published), and a "held" badge, in words (the API's ``held_reason`` is the
   * badge's title and is read out with it), never colour alone. */
  function changeCell(source) {
    const iso = source.changed_at || null;
    const when = iso
      ? el("time", { datetime: iso, "data-relative": "", title: timeText(iso) }, relativeText(iso))
      : el("span", { class: "never" }, "never");
    const td = el("td", { class: "changed-at" }, when);
    if (source.held) {
      const reason = source.held_reason;
      td.append(" ", el("span", { class: "held-badge", title: reason },
        el("span", { "aria-hidden": "true" }, "held"),
        el("span", { class: "visually-hidden" }, `held: ${reason}`)));
    }
    return td;
  }

  /* A table of figures; ``rows`` are {label, cells, source} where ``source`` is the API's row.
   * Every row ends with when it last changed and whether it is held; ``note`` (optional) is
   * said in the caption. */
  function figureTable(figure, caption, headings, rows, note) {
    const columns = [...headings, "Last changed"];
    const head = el("thead", null, el("tr", null,
      columns.map((heading) => el("th", { scope: "col" }, heading))));
    const body = el("tbody");
    if (rows.length === 0) {
      body.append(el("tr", null, el("td", { colspan: columns.length, class: "empty" },
        "No figures published for this period yet.")));
    }
    for (const row of rows) {
      const held = Boolean(row.source.held);
      const tr = el("tr", { class: held ? "held" : null });
      tr.append(el("th", { scope: "row" }, row.label));
      row.cells.forEach((cell, index) => {
        const key = `${figure}|${row.label}|${headings[index + 1]}`;
        const td = el("td", { "data-key": key },
          el("span", { class: cell.suppressed ? "count suppressed" : "count" }, cell.count),
          cell.rate ? el("span", { class: cell.withheld ? "rate withheld" : "rate" }, cell.rate)
            : null);
        tr.append(td);
      });
      tr.append(changeCell(row.source));
      body.append(tr);
    }
    const rated = rows.some((row) => row.cells.some((cell) => cell.rate));
    const notes = [note, rated
      ? "Each count is followed by its rate, with the 95% confidence interval in brackets." : null,
    rows.some((row) => row.source.held)
      ? "Rows marked held have changes not yet published." : null].filter(Boolean);
    return el("table", null, el("caption", null, caption,
      notes.map((text) => el("span", { class: "caption-note" }, text))), head, body);
  }

  function countCell(count) {
    return { count: countText(count), suppressed: Boolean(count && count.suppressed) };
  }

  function rateCell(rate, withCount) {
    const cell = withCount ? countCell(rate) : { count: "", suppressed: false };
    cell.rate = rateText(rate);
    cell.withheld = !rate || rate.withheld;
    return cell;
  }

  /* ---------- charts (inline SVG) ---------- */

  function chartFrame(title, description, width, height) {
    const titleId = nextId("chart-title");
    const descId = nextId("chart-desc");
    return svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart-svg",
      "aria-labelledby": `${titleId} ${descId}`, preserveAspectRatio: "xMinYMin meet",
    }, svg("title", { id: titleId }, title),
    svg("desc", { id: descId }, `${description} The table beside gives the same figures.`));
  }

  /* A scale from 0 with at most five round steps covering every value. */
  function niceScale(values, steps, floor) {
    const top = Math.max(floor, ...values.filter((v) => v !== null && v !== undefined));
    const step = steps.find((s) => Math.ceil(top / s - 1e-9) <= 5) || steps[steps.length - 1];
    const count = Math.max(1, Math.ceil(top / step - 1e-9));
    return { max: step * count, ticks: Array.from({ length: count + 1 }, (_, i) => i * step) };
  }

  const RATE_STEPS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25];
  const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000,
    10000, 20000, 25000, 50000, 100000];
  const rateScale = (values) => niceScale(values, RATE_STEPS, 0.05);
  const countScale = (values) => niceScale(values, COUNT_STEPS, 5);

  function legend(series) {
    return el("ul", { class: "legend", "aria-hidden": "true" }, series.map((s) =>
      el("li", null, el("span", { class: `swatch ${s.cls}` }), s.name)));
  }

  function lineChart(title, description, months, series) {
    const width = 600; const height = 280;
    const m = { left: 48, right: 30, top: 14, bottom: 34 };
    const plotW = width - m.left - m.right; const plotH = height - m.top - m.bottom;
    const values = series.flatMap((s) => s.points.flatMap((p) => [p.value, p.upper]));
    const { max, ticks } = rateScale(values);
    const x = (i) => m.left + (months.length === 1 ? plotW / 2 : (i * plotW) / (months.length - 1));
    const y = (v) => m.top + plotH - (v / max) * plotH;
    const root = chartFrame(title, description, width, height);
    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (const v of ticks) {
      grid.append(svg("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
        svg("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" },
          `${Math.round(v * 100)}%`));
    }
    months.forEach((month, i) => grid.append(svg("text", {
      x: x(i), y: height - m.bottom + 18, "text-anchor": "middle", class: "tick",
    }, monthLabel(month, false))));
    root.append(grid);
    for (const s of series) {
      const group = svg("g", { class: `series ${s.cls}` });
      let path = ""; let pen = false;
      s.points.forEach((p, i) => {
        if (p.value === null || p.value === undefined) { pen = false; return; }
        path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
        pen = true;
      });
      if (path.includes("L")) group.append(svg("path", { d: path, class: "line" }));
      s.points.forEach((p, i) => {
        if (p.value === null || p.value === undefined) return;
        if (p.lower !== null && p.upper !== null && p.lower !== undefined) {
          group.append(svg("line", {
            x1: x(i), x2: x(i), y1: y(p.lower), y2: y(p.upper), class: "whisker",
          }));
        }
        group.append(svg("circle", { cx: x(i), cy: y(p.value), r: 4, class: "point" },
          svg("title", null, `${s.name}, ${monthLabel(months[i], true)}: ${p.label}`)));
      });
      root.append(group);
    }
    root.append(svg("line", {
      x1: m.left, x2: width - m.right, y1: y(0), y2: y(0), class: "axis", "aria-hidden": "true",
    }));
    return el("div", { class: "chart" }, legend(series), root);
  }

  function truncate(label, size) {
    return label.length > size ? `${label.slice(0, size - 1)}…` : label;
  }

  /* Horizontal grouped bars: categories of {label, bars: [{name, cls, value, lower, upper,
   * text}]}; a bar whose value is null is written out in words instead of drawn. */
  function barChart(title, description, categories, options) {
    const width = 600;
    const m = { left: 150, right: 70, top: 8, bottom: 28 };
    const barH = 14; const gap = 4; const groupGap = 14;
    const perGroup = categories.length ? categories[0].bars.length : 1;
    const groupH = perGroup * (barH + gap) - gap;
    const height = m.top + m.bottom + Math.max(1, categories.length) * (groupH + groupGap);
    const plotW = width - m.left - m.right;
    const values = categories.flatMap((c) => c.bars.flatMap((b) => [b.value, b.upper]));
    const { max, ticks } = (options.scale || rateScale)(values);
    const x = (v) => m.left + (v / max) * plotW;
    const root = chartFrame(title, description, width, height);
    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (const v of ticks) {
      grid.append(svg("line", { x1: x(v), x2: x(v), y1: m.top, y2: height - m.bottom }),
        svg("text", { x: x(v), y: height - m.bottom + 16, "text-anchor": "middle", class: "tick" },
          options.tick(v)));
    }
    root.append(grid);
    categories.forEach((category, ci) => {
      const top = m.top + ci * (groupH + groupGap) + groupGap / 2;
      const group = svg("g", { class: "category" });
      const middle = top + groupH / 2 + (category.sub ? -2 : 4);
      group.append(svg("text", {
        x: m.left - 8, y: middle, "text-anchor": "end", class: "category-label",
      }, truncate(category.label, 20), svg("title", null, category.label)));
      if (category.sub) {
        group.append(svg("text", {
          x: m.left - 8, y: middle + 13, "text-anchor": "end", class: "category-sub",
        }, truncate(category.sub, 24)));
      }
      category.bars.forEach((bar, bi) => {
        const by = top + bi * (barH + gap);
        const g = svg("g", { class: `bar ${bar.cls || ""}` });
        if (bar.value === null || bar.value === undefined) {
          g.append(svg("text", { x: m.left + 4, y: by + barH - 3, class: "bar-words" },
            `${bar.name}: ${bar.text}`));
        } else {
          g.append(svg("rect", {
            x: m.left, y: by, width: Math.max(1, x(bar.value) - m.left), height: barH, rx: 2,
          }, svg("title", null, `${category.label}, ${bar.name}: ${bar.text}`)));
          if (bar.lower !== null && bar.lower !== undefined && bar.upper !== null) {
            g.append(svg("line", {
              x1: x(bar.lower), x2: x(bar.upper), y1: by + barH / 2, y2: by + barH / 2,
              class: "whisker",
            }));
          }
          g.append(svg("text", {
            x: x(Math.max(bar.value, bar.upper || 0)) + 5, y: by + barH - 3, class: "bar-value",
          }, bar.short));
        }
        group.append(g);
      });
      root.append(group);
    });
    root.append(svg("line", {
      x1: m.left, x2: m.left, y1: m.top, y2: height - m.bottom, class: "axis",
      "aria-hidden": "true",
    }));
    return el("div", { class: "chart" }, options.series ? legend(options.series) : null, root);
  }

  function rateBar(rate, spec) {
    const shown = rate && !rate.withheld && rate.rate !== null && rate.rate !== undefined;
    return {
      name: spec.name, cls: spec.cls, value: shown ? rate.rate : null,
      lower: shown ? rate.lower : null, upper: shown ? rate.upper : null,
      short: shown ? pct(rate.rate) : "",
      text: shown ? rateText(rate) : (rate && rate.suppressed ? `${rate.display}, rate withheld`
        : "rate withheld"),
    };
  }

  /* ---------- rendering a figure: chart, table and method together ---------- */

  function place(name, content) {
    const host = document.querySelector(`[data-figure="${name}"]`);
    if (!host) return 0;
    const before = new Map(
      [...host.querySelectorAll("td[data-key]")].map((td) => [td.dataset.key, td.textContent]));
    host.replaceChildren(...content);
    let changed = 0;
    for (const td of host.querySelectorAll("td[data-key]")) {
      const previous = before.get(td.dataset.key);
      if (state.marking && before.size > 0 && previous !== td.textContent) {
        td.classList.add("changed");
        changed += 1;
      }
    }
    return changed;
  }

  /* The method, and the release rule (the body's ``held_rule``) beside it; a method that
   * already ends with the rule's words is not made to say them twice. */
  function methodText(answer) {
    const rule = answer.held_rule;
    const method = answer.method.includes(rule)
      ? answer.method.replace(rule, "").trim() : answer.method;
    return [el("p", { class: "method" }, el("strong", null, "Method: "), method),
      el("p", { class: "release-rule" }, el("strong", null, "Release rule: "), rule)];
  }

  /* A chart with its table and the method beside it; ``more`` (further tables, which get
   * the method too) runs across the full width below. Without a chart, the tables take the
   * full width. */
  function showFigure(name, chart, table, answer, note, more) {
    const data = el("div", { class: "data" }, table,
      note ? el("p", { class: "note" }, note) : null, methodText(answer));
    const chartBox = chart || el("div", { class: "chart chart-empty" },
      el("p", null, "Nothing to draw yet: no figures are published for this period."));
    const below = more ? el("div", { class: "data more" }, more, methodText(answer)) : null;
    return place(name, below ? [chartBox, data, below] : [chartBox, data]);
  }

  function showTables(name, tables, answer, note) {
    return place(name, [el("div", { class: "data more" }, tables,
      note ? el("p", { class: "note" }, note) : null, methodText(answer))]);
  }

  function showMessage(name, message, kind) {
    state.rendered.delete(name);
    return place(name, [el("p", { class: kind || "unavailable" }, message)]);
  }

  function unchanged(name, answer) {
    const { released_at: _ignored, ...figures } = answer;
    const key = JSON.stringify(figures);
    if (state.rendered.get(name) === key) return true;
    state.rendered.set(name, key);
    return false;
  }

  function byMonth(rows) {
    return [...rows].sort((a, b) => String(a.month).localeCompare(String(b.month)));
  }

  function renderPrevalenceTrend(answer) {
    const name = "prevalence-trend";
    if (answer.unavailable) return showMessage(name, `Monthly trends are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = byMonth(answer.rows || []);
    const months = rows.map((r) => r.month);
    const chart = rows.length ? lineChart(
      "Prevalence among people screened, by month",
      "Line chart of the share of people screened who disclosed current, past or either abuse, by month, with 95% intervals.",
      months, PREVALENCE.map((s) => ({
        name: s.name, cls: s.cls, points: rows.map((r) => {
          const rate = r[s.key]; const shown = rate && !rate.withheld && rate.rate !== null;
          return { value: shown ? rate.rate : null, lower: shown ? rate.lower : null,
            upper: shown ? rate.upper : null, label: rateText(rate) };
        }),
      }))) : null;
    const table = figureTable(name, "Prevalence among people screened, by month (last 12 months)",
      ["Month", "Screened", ...PREVALENCE.map((s) => s.name)],
      rows.map((r) => ({
        label: monthLabel(r.month, true), source: r,
        cells: [countCell(r.screened), ...PREVALENCE.map((s) => rateCell(r[s.key], true))],
      })));
    return showFigure(name, chart, table, answer,
      rows.some((r) => PREVALENCE.some((s) => r[s.key] && r[s.key].withheld))
        ? "Months whose rates are withheld are left as gaps in the chart." : null);
  }

  function renderCoverageTrend(answer) {
    const name = "coverage-trend";
    if (answer.unavailable) return showMessage(name, `Coverage figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = byMonth(answer.rows || []);
    const chart = rows.length ? lineChart(
      "Screening coverage, by month",
      "Line chart of the share of people due an enquiry who were screened, and of those screened who were asked in private, by month.",
      rows.map((r) => r.month), COVERAGE.map((s) => ({
        name: s.name, cls: s.cls, points: rows.map((r) => {
          const rate = r[s.key]; const shown = rate && !rate.withheld && rate.rate !== null;
          return { value: shown ? rate.rate : null, lower: shown ? rate.lower : null,
            upper: shown ? rate.upper : null, label: rateText(rate) };
        }),
      }))) : null;
    return showFigure(name, chart, coverageTable(name, rows, "month",
      "Screening coverage, by month (last 12 months)", answer), answer);
  }

  function coverageTable(name, rows, key, caption, answer) {
    return figureTable(name, caption,
      [key === "month" ? "Month" : capitalise(GROUPS[key] || key), "Due", "Screened of due",
        "Declined", "Not safe to ask", "Asked in private", "MARAC referrals"],
      rows.map((r) => ({
        label: key === "month" ? monthLabel(r.month, true) : String(r[key]), source: r,
        cells: [countCell(r.due), rateCell(r.screened, true), countCell(r.declined),
          countCell(r.not_safe_to_ask), rateCell(r.asked_in_private, true),
          countCell(r.marac_referrals)],
      })));
  }

  function capitalise(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

  function renderPrevalenceBreakdown(answer, groupBy, period) {
    const name = "prevalence-breakdown";
    if (answer.unavailable) return showMessage(name, `This breakdown is ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const label = GROUPS[groupBy];
    const chart = rows.length ? barChart(
      `Prevalence among people screened by ${label}, ${periodLabel(period)}`,
      `Bar chart of the share of people screened who disclosed current, past or either abuse, for each ${label}, with 95% intervals. Withheld rates are written in words.`,
      rows.map((r) => ({
        label: String(r[groupBy]), sub: `screened: ${countText(r.screened)}`,
        bars: PREVALENCE.map((s) => rateBar(r[s.key], s)),
      })), { tick: (v) => `${Math.round(v * 100)}%`, series: PREVALENCE }) : null;
    const table = figureTable(name,
      `Prevalence among people screened by ${label}, ${periodLabel(period)}`,
      [capitalise(label), "Screened", ...PREVALENCE.map((s) => s.name)],
      rows.map((r) => ({
        label: String(r[groupBy]), source: r,
        cells: [countCell(r.screened), ...PREVALENCE.map((s) => rateCell(r[s.key], true))],
      })));
    return showFigure(name, chart, table, answer);
  }

  function renderCoverageBreakdown(answer, groupBy, period) {
    const name = "coverage-breakdown";
    if (answer.unavailable) return showMessage(name, `Coverage figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const label = GROUPS[groupBy];
    const chart = rows.length ? barChart(
      `Screening coverage by ${label}, ${periodLabel(period)}`,
      `Bar chart of the share of people due an enquiry who were screened, and of those screened who were asked in private, for each ${label}.`,
      rows.map((r) => ({ label: String(r[groupBy]), bars: COVERAGE.map((s) => rateBar(r[s.key], s)) })),
      { tick: (v) => `${Math.round(v * 100)}%`, series: COVERAGE }) : null;
    return showFigure(name, chart, coverageTable(name, rows, groupBy,
      `Screening coverage by ${label}, ${periodLabel(period)}`, answer), answer);
  }

  function renderAcceptability(answer, groupBy, period) {
    const name = "enquiry-acceptability";
    if (answer.unavailable) return showMessage(name, `These figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const label = GROUPS[groupBy];
    const title = `Was it all right to be asked? By ${label}, ${periodLabel(period)}`;
    const chart = rows.length ? barChart(title,
      `Bar chart of the share of people who answered who found being asked all right, were unsure, or did not, for each ${label}, with 95% intervals. Withheld rates are written in words.`,
      rows.map((r) => ({
        label: String(r[groupBy]), sub: `answered: ${countText(r.acceptability_answered)}`,
        bars: ACCEPTABILITY.map((s) => rateBar(r[s.key], s)),
      })), { tick: (v) => `${Math.round(v * 100)}%`, series: ACCEPTABILITY }) : null;
    const table = figureTable(name, title,
      [capitalise(label), "Answered", ...ACCEPTABILITY.map((s) => s.name),
        "Comfortable (4 or 5 of 5)"],
      rows.map((r) => ({
        label: String(r[groupBy]), source: r,
        cells: [countCell(r.acceptability_answered),
          ...ACCEPTABILITY.map((s) => rateCell(r[s.key], true)), rateCell(r.comfortable, true)],
      })));
    return showFigure(name, chart, table, answer);
  }

  function trainedCell(training) {
    if (!training) return { count: "not recorded", suppressed: false };
    const cell = rateCell(training.trained, true);
    cell.count = `${countText(training.trained)} of ${countText(training.staff)}`;
    return cell;
  }

  function renderNotAsked(answer, groupBy, period) {
    const name = "enquiry-not-asked";
    if (answer.unavailable) return showMessage(name, `These figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const label = GROUPS[groupBy];
    const byTeam = groupBy === "team";
    const table = figureTable(name,
      `Enquiries due but not made, and why, by ${label}, ${periodLabel(period)}`,
      [capitalise(label), "Not asked", ...NOT_ASKED.map(([, heading]) => heading),
        ...(byTeam ? ["Staff trained in routine enquiry"] : [])],
      rows.map((r) => ({
        label: String(r[groupBy]), source: r,
        cells: [countCell(r.not_asked), ...NOT_ASKED.map(([key]) => rateCell(r[key], true)),
          ...(byTeam ? [trainedCell(r.staff_trained)] : [])],
      })), "Each reason's share is of the people not asked.");
    return showTables(name, table, answer, byTeam ? null
      : "Break the figures down by team to read them against each team's staff training.");
  }

  function cellOf(figure) {
    return figure && figure.rate !== undefined ? rateCell(figure, true) : countCell(figure);
  }

  function renderFeasibility(answer, groupBy, period) {
    const name = "feasibility-funnel";
    if (answer.unavailable) return showMessage(name, `These figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const label = GROUPS[groupBy];
    const table = figureTable(name,
      `The feasibility funnel: people by the month they entered, by ${label}, ${periodLabel(period)}`,
      [capitalise(label), ...FEASIBILITY.map(([, heading]) => heading),
        ...LOST.map(([, heading]) => `Left: ${heading.toLowerCase()}`)],
      rows.map((r) => ({
        label: String(r[groupBy]), source: r,
        cells: [...FEASIBILITY.map(([key]) => cellOf(r[key])),
          ...LOST.map(([key]) => countCell(r.lost && r.lost[key]))],
      })), "A share is given where a stage's people are always among another's.");
    return showTables(name, table, answer);
  }

  function renderOffers(answer, groupBy, period) {
    const name = "mentoring-offers";
    if (answer.unavailable) return showMessage(name, `These figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const label = GROUPS[groupBy];
    const table = figureTable(name,
      `Offers of peer mentoring and what people said, by ${label}, ${periodLabel(period)}`,
      [capitalise(label), "Offered", ...OFFER_COLUMNS.map(([, heading]) => heading)],
      rows.map((r) => ({
        label: String(r[groupBy]), source: r,
        cells: [countCell(r.offered), ...OFFER_COLUMNS.map(([key]) => rateCell(r[key], true))],
      })), "Each offer counts once; an offer holds nothing that identifies the person.");
    return showTables(name, table, answer);
  }

  function renderComponents(answer, period) {
    const name = "engagement-components";
    if (answer.unavailable) return showMessage(name, `These figures are ${answer.unavailable}.`);
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const codes = [...new Set(rows.flatMap((r) => Object.keys(r.components || {})))].sort();
    const when = periodLabel(period);
    const components = figureTable(name,
      `What the mentoring covered: people whose sessions covered each component, by the receiving organisation, ${when}`,
      ["Receiving organisation", ...codes.map((code) => capitalise(code.replaceAll("_", " ")))],
      rows.map((r) => ({
        label: String(r.org), source: r,
        cells: codes.map((code) => rateCell((r.components || {})[code], true)),
      })), "Each is a share of the people whose sessions had components recorded.");
    const study = figureTable("engagement-study",
      `Feedback, adverse events and follow-ups, by the receiving organisation, ${when}`,
      ["Receiving organisation", ...STUDY_COLUMNS.map(([, heading]) => heading),
        "Followed up at 3 months", "at 6 months", "at 12 months"],
      rows.map((r) => ({
        label: String(r.org), source: r,
        cells: [...STUDY_COLUMNS.map(([key]) => cellOf(r[key])),
          cellOf(r.followed_up_3_months), cellOf(r.followed_up_6_months),
          cellOf(r.followed_up_12_months)],
      })));
    return showTables(name, [components, study], answer);
  }

  function funnelChart(rows, groupBy, when) {
    const words = ENGAGEMENT_GROUPS[groupBy].words;
    return rows.length ? barChart(
      `People in peer mentoring from referral to ending, ${words}, ${when}`,
      `Funnel of people referred, matched with a mentor, who attended a session and who had a planned ending, ${words}. Suppressed counts are written in words.`,
      rows.map((r) => ({
        label: String(r[groupBy]),
        bars: FUNNEL.map((step, i) => {
          const count = r[step.key];
          const shown = count && count.value !== null && count.value !== undefined;
          return { name: step.name, cls: `f${i + 1}`, value: shown ? count.value : null,
            lower: null, upper: null, short: shown ? count.display : "",
            text: countText(count) };
        }),
      })), { scale: countScale, tick: (v) => String(Math.round(v)),
        series: FUNNEL.map((s, i) => ({ name: s.name, cls: `f${i + 1}` })) }) : null;
  }

  function funnelTable(name, answer, rows, groupBy, when) {
    const group = ENGAGEMENT_GROUPS[groupBy];
    return figureTable(name, `People referred for peer mentoring, ${group.words}, ${when}`,
      [group.heading, ...FUNNEL_COLUMNS.map(([, heading]) => heading)],
      rows.map((r) => ({
        label: String(r[groupBy]), source: r,
        cells: FUNNEL_COLUMNS.map(([key]) => countCell(r[key])),
      })), PEOPLE_NOTE);
  }

  function medianCell(days) {
    const shown = days && !days.withheld && days.value !== null && days.value !== undefined;
    return { count: shown ? Number(days.value).toFixed(1) : "withheld", suppressed: !shown };
  }

  function renderEngagement(answer, period) {
    const name = "engagement-funnel";
    if (answer.unavailable) {
      return showMessage(name, `Peer mentoring figures are ${answer.unavailable}.`);
    }
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const when = periodLabel(period);
    const group = ENGAGEMENT_GROUPS.org;
    const waiting = rows.length ? figureTable("engagement-waiting",
      `Waiting and missed sessions: people, ${group.words}, ${when}`,
      [group.heading, ...WAITING_COLUMNS.map(([, heading]) => heading),
        "Median days from referral to match"],
      rows.map((r) => ({
        label: String(r.org), source: r,
        cells: [...WAITING_COLUMNS.map(([key]) => countCell(r[key])),
          medianCell(r.median_days_to_match)],
      }))) : null;
    return showFigure(name, funnelChart(rows, "org", when),
      funnelTable(name, answer, rows, "org", when), answer, null, waiting);
  }

  function renderReferrers(answer, period) {
    const name = "engagement-referrers";
    if (answer.unavailable) {
      return showMessage(name, `Figures by referring organisation are ${answer.unavailable}.`);
    }
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const when = periodLabel(period);
    return showFigure(name, funnelChart(rows, "referred_by", when),
      funnelTable(name, answer, rows, "referred_by", when), answer);
  }

  function renderWellbeing(answer, period) {
    const name = "engagement-wellbeing";
    if (answer.unavailable) {
      return showMessage(name, `Wellbeing figures are ${answer.unavailable}.`);
    }
    if (unchanged(name, answer)) return 0;
    const rows = answer.rows || [];
    const when = periodLabel(period);
    const group = ENGAGEMENT_GROUPS.org;
    const table = figureTable(name,
      `Wellbeing (SWEMWBS) change from intake to exit: people, ${group.words}, ${when}`,
      [group.heading, "People with intake and exit scores", "Mean change",
        "Improved meaningfully"],
      rows.map((r) => {
        const change = r.swemwbs_change || {};
        const mean = change.mean;
        const shown = mean !== null && mean !== undefined;
        return {
          label: String(r.org), source: r,
          cells: [countCell(change.n),
            { count: shown ? `${mean > 0 ? "+" : ""}${Number(mean).toFixed(1)} points`
              : "withheld", suppressed: !shown },
            change.meaningful_improvement ? rateCell(change.meaningful_improvement, true)
              : countCell(null)],
        };
      }), "Scores are paired within one mentoring episode: each person counts once.");
    const reasons = [...new Set(rows.map((r) => r.swemwbs_change && r.swemwbs_change.withheld_reason)
      .filter(Boolean))];
    return showTables(name, table, answer,
      reasons.length ? `Means withheld: ${reasons.join("; ")}.` : null);
  }

  /* ---------- state, controls and refreshing ---------- */

  function setRelease(iso) {
    const node = document.getElementById("released-at");
    node.textContent = timeText(iso);
    if (iso) node.setAttribute("datetime", iso); else node.removeAttribute("datetime");
  }

  function announce(text) {
    const node = document.getElementById("announcer");
    node.textContent = text;
  }

  function setConnection(kind, text) {
    const node = document.getElementById("connection");
    node.className = `badge badge-${kind}`;
    node.textContent = text;
  }

  function sessionEnded() {
    setConnection("stopped", "signed out");
    const main = document.getElementById("main");
    if (document.getElementById("session-ended")) return;
    main.prepend(el("p", { class: "alert", role: "alert", id: "session-ended" },
      "Your session has ended, so the figures are no longer updating. ",
      el("a", { href: "/login" }, "Sign in again"), "."));
  }

  function fillPeriods(anchorIso) {
    const select = document.getElementById("period");
    const anchor = parseTime(anchorIso) || new Date();
    const wanted = ["last-12-months"];
    let year = anchor.getUTCFullYear(); let month = anchor.getUTCMonth() + 1;
    for (let i = 0; i < 24; i += 1) {
      wanted.push(`${year}-${String(month).padStart(2, "0")}`);
      month -= 1; if (month === 0) { month = 12; year -= 1; }
    }
    if (!wanted.includes(state.period)) wanted.push(state.period);
    const have = [...select.options].map((o) => o.value);
    if (have.join() === wanted.join()) return;
    select.replaceChildren(...wanted.map((value) => el("option", { value },
      value === "last-12-months" ? "Last 12 months" : monthLabel(value, true))));
    select.value = state.period;
  }

  function showSelection() {
    for (const node of document.querySelectorAll(".by-label")) {
      node.textContent = `by ${GROUPS[state.groupBy]}`;
    }
  }

  async function refresh(reason) {
    const seq = ++state.seq;
    const { period, groupBy } = state;
    const trend = { group_by: "month", period: "last-12-months" };
    const chosen = { group_by: groupBy, period };
    const requests = {
      prevalenceTrend: getJSON("/v1/prevalence", trend),
      coverageTrend: getJSON("/v1/coverage", trend),
      prevalence: getJSON("/v1/prevalence", chosen),
      coverage: getJSON("/v1/coverage", chosen),
      engagement: getJSON("/v1/engagement", { group_by: "org", period }),
      referrers: getJSON("/v1/engagement", { group_by: "referred_by", period }),
      feasibility: getJSON("/v1/feasibility", {
        group_by: FEASIBILITY_GROUPS.has(groupBy) ? groupBy : "org", period }),
      offers: getJSON("/v1/mentoring-offers", {
        group_by: OFFER_GROUPS.has(groupBy) ? groupBy : "org", period }),
    };
    const answers = await Promise.allSettled(Object.values(requests));
    if (seq !== state.seq) return;
    state.marking = reason === "release";
    if (answers.some((a) => a.status === "rejected" && a.reason instanceof SessionEnded)) {
      sessionEnded();
      return;
    }
    const [pt, ct, pb, cb, en, rb, fe, mo] = answers;
    const failed = (name, answer) => {
      showMessage(name, `These figures could not be loaded (${answer.reason.message}); they will be retried at the next release.`, "error");
      return 0;
    };
    let changed = 0;
    changed += pt.status === "fulfilled" ? renderPrevalenceTrend(pt.value) : failed("prevalence-trend", pt);
    changed += ct.status === "fulfilled" ? renderCoverageTrend(ct.value) : failed("coverage-trend", ct);
    changed += pb.status === "fulfilled" ? renderPrevalenceBreakdown(pb.value, groupBy, period) : failed("prevalence-breakdown", pb);
    changed += cb.status === "fulfilled" ? renderCoverageBreakdown(cb.value, groupBy, period) : failed("coverage-breakdown", cb);
    changed += cb.status === "fulfilled" ? renderAcceptability(cb.value, groupBy, period) : failed("enquiry-acceptability", cb);
    changed += cb.status === "fulfilled" ? renderNotAsked(cb.value, groupBy, period) : failed("enquiry-not-asked", cb);
    changed += en.status === "fulfilled" ? renderEngagement(en.value, period) : failed("engagement-funnel", en);
    changed += en.status === "fulfilled" ? renderWellbeing(en.value, period) : failed("engagement-wellbeing", en);
    changed += rb.status === "fulfilled" ? renderReferrers(rb.value, period) : failed("engagement-referrers", rb);
    changed += en.status === "fulfilled" ? renderComponents(en.value, period) : failed("engagement-components", en);
    changed += fe.status === "fulfilled" ? renderFeasibility(fe.value, FEASIBILITY_GROUPS.has(groupBy) ? groupBy : "org", period) : failed("feasibility-funnel", fe);
    changed += mo.status === "fulfilled" ? renderOffers(mo.value, OFFER_GROUPS.has(groupBy) ? groupBy : "org", period) : failed("mentoring-offers", mo);
    refreshRelativeTimes();
    const released = [pb, pt, en, cb, ct, rb].find((a) => a.status === "fulfilled"
      && a.value && a.value.released_at !== undefined);
    const releasedAt = released ? released.value.released_at : null;
    const isNew = releasedAt !== state.releasedAt;
    state.releasedAt = releasedAt;
    setRelease(releasedAt);
    fillPeriods(releasedAt);
    document.body.dataset.releasedAt = releasedAt || "";
    if (reason === "release" && isNew && changed > 0) {
      announce(`New release at ${timeText(releasedAt)}: ${changed} ${changed === 1 ? "figure" : "figures"} changed; charts and tables updated.`);
    } else if (reason === "controls") {
      announce(`Showing ${periodLabel(period)}, broken down by ${GROUPS[groupBy]}.`);
    }
  }

  function readLocation() {
    const params = new URLSearchParams(window.location.search);
    const period = params.get("period");
    const groupBy = params.get("group_by");
    if (period && PERIOD_PATTERN.test(period)) state.period = period;
    if (groupBy && Object.hasOwn(GROUPS, groupBy)) state.groupBy = groupBy;
  }

  function writeLocation() {
    const params = new URLSearchParams({ period: state.period, group_by: state.groupBy });
    window.history.replaceState(null, "", `${window.location.pathname}?${params}`);
  }

  function connect() {
    if (typeof EventSource === "undefined") {
      setConnection("stopped", "live updates unsupported");
      return;
    }
    const source = new EventSource("/v1/releases/stream");
    source.addEventListener("open", () => setConnection("live", "live"));
    source.addEventListener("release", (event) => {
      setConnection("live", "live");
      let data;
      try { data = JSON.parse(event.data); } catch (error) { return; }
      if (data.released_at !== state.releasedAt) refresh("release");
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) {
        setConnection("wait", "reconnecting");
        return;
      }
      source.close();
      getJSON("/v1/prevalence", { group_by: "org", period: state.period })
        .then(() => {
          setConnection("wait", "reconnecting");
          window.setTimeout(connect, 5000);
        })
        .catch((error) => {
          if (error instanceof SessionEnded) sessionEnded();
          else { setConnection("wait", "reconnecting"); window.setTimeout(connect, 5000); }
        });
    });
  }

  async function start() {
    readLocation();
    fillPeriods(null);
    const period = document.getElementById("period");
    const groupBy = document.getElementById("group-by");
    period.value = state.period;
    groupBy.value = state.groupBy;
    showSelection();
    const changed = () => {
      state.period = period.value;
      state.groupBy = groupBy.value;
      writeLocation();
      showSelection();
      refresh("controls");
    };
    period.addEventListener("change", changed);
    groupBy.addEventListener("change", changed);
    document.getElementById("controls").addEventListener("submit", (e) => e.preventDefault());
    await refresh("load");
    connect();
    window.setInterval(refreshRelativeTimes, RELATIVE_TICK_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

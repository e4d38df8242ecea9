// The manager dashboard's charts (Chart.js, vendored: scripts/build-assets.sh). Readable in
// black and white: every series has its own hatch pattern or dash and point shape, and its
// name in the legend; the figures are also in tables and as CSV.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  Chart.defaults.color = "#222";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  // Grey fills with a pattern each: solid, diagonal, cross, dots, horizontal, vertical.
  function pattern(kind, shade) {
    const size = 8;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    const g = canvas.getContext("2d");
    g.fillStyle = shade;
    g.fillRect(0, 0, size, size);
    g.strokeStyle = "#000";
    g.fillStyle = "#000";
    g.lineWidth = 1;
    g.beginPath();
    if (kind === "diagonal" || kind === "cross") { g.moveTo(0, size); g.lineTo(size, 0); }
    if (kind === "cross") { g.moveTo(0, 0); g.lineTo(size, size); }
    if (kind === "horizontal") { g.moveTo(0, size / 2); g.lineTo(size, size / 2); }
    if (kind === "vertical") { g.moveTo(size / 2, 0); g.lineTo(size / 2, size); }
    g.stroke();
    if (kind === "dots") { g.fillRect(3, 3, 2, 2); }
    return g.createPattern(canvas, "repeat");
  }
  const FILLS = [
    pattern("solid", "#444"), pattern("diagonal", "#ddd"), pattern("cross", "#fff"),
    pattern("dots", "#bbb"), pattern("horizontal", "#eee"), pattern("vertical", "#999"),
    pattern("solid", "#fff"),
  ];
  const DASHES = [[], [6, 3], [2, 2], [10, 4, 2, 4], [1, 4], [12, 2]];
  const POINTS = ["circle", "rect", "triangle", "crossRot", "star", "rectRot"];

  function bars(label, values, n) {
    return { label: label, data: values, backgroundColor: FILLS[n % FILLS.length],
             borderColor: "#000", borderWidth: 1 };
  }
  function line(label, values, n) {
    return { label: label, data: values, borderColor: "#000", backgroundColor: "#000",
             borderDash: DASHES[n % DASHES.length], pointStyle: POINTS[n % POINTS.length],
             pointRadius: 4, borderWidth: 2, spanGaps: true };
  }
  function percent(value) { return value === null ? null : Math.round(value * 1000) / 10; }
  const charts = {};
  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas) { return; }
    if (charts[id]) { charts[id].destroy(); }
    config.options = Object.assign({ plugins: { legend: { labels: { usePointStyle: true } } } },
                                   config.options || {});
    charts[id] = new Chart(canvas, config);
    canvas.dataset.drawn = "yes";  // the browser test waits for this
  }

  const waiting = data.stages;
  draw("chart-stages", {
    type: "bar",
    data: { labels: waiting.map((s) => s.label + (s.bottleneck ? " (bottleneck)" : "")),
            datasets: [bars("jobs now", waiting.map((s) => s.jobs_now), 0),
                       bars("hours waited in the period",
                            waiting.map((s) => Math.round(s.waited_s / 360) / 10), 1)] },
  });

  const machines = data.machines.filter((m) => m.machine_id !== null);
  const losses = [["running", "run_s"], ["no work", "no_work_s"], ["down", "down_s"],
                  ["waiting for material", "material_s"], ["idle, work queued", "waiting_s"],
                  ["paused by operator", "paused_s"]];
  draw("chart-losses", {
    type: "bar",
    data: { labels: machines.map((m) => m.machine),
            datasets: losses.map(([label, key], n) =>
              bars(label, machines.map((m) => Math.round(m[key] / 360) / 10), n)
            ).concat([Object.assign(bars("of running: failed prints",
              machines.map((m) => Math.round(m.failed_s / 360) / 10), 6), { stack: "failed" })]) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "hours" } } } },
  });
  const ratios = [["availability", "availability"], ["performance", "performance"],
                  ["quality", "quality"], ["OEE", "oee"], ["utilisation", "utilisation"]];
  draw("chart-oee", {
    type: "bar",
    data: { labels: data.machines.map((m) => m.machine),
            datasets: ratios.map(([label, key], n) => bars(label, data.machines.map((m) => percent(m[key])), n)) },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } } },
  });
  draw("chart-oee-daily", {
    type: "line",
    data: { labels: data.daily.map((d) => d.day),
            datasets: ratios.slice(0, 4).map(([label, key], n) => line(label, data.daily.map((d) => percent(d[key])), n)) },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: "% (all machines)" } } } },
  });

  function scrap(by) {
    const rows = data.scrap.filter((r) => r.by === by);
    const days = Array.from(new Set(data.throughput.map((t) => t.day)));
    const totals = {};
    rows.forEach((r) => { totals[r.name] = (totals[r.name] || 0) + r.scrapped; });
    // The six names with the most scrap, each a line of its own dash and point shape.
    const names = Object.keys(totals).sort((a, b) => totals[b] - totals[a]).slice(0, 6);
    draw("chart-scrap", {
      type: "line",
      data: { labels: days,
              datasets: names.map((name, n) => line(name, days.map((day) => {
                const row = rows.find((r) => r.name === name && r.day === day);
                return row ? percent(row.rate) : null;
              }), n)) },
      options: { scales: { y: { min: 0, title: { display: true, text: "% of copies scrapped" } } } },
    });
  }
  const scrapBy = document.getElementById("scrap-by");
  scrap(scrapBy.value);
  scrapBy.addEventListener("change", () => scrap(scrapBy.value));

  draw("chart-throughput", {
    type: "bar",
    data: { labels: data.throughput.map((t) => t.day),
            datasets: [bars("jobs through QC", data.throughput.map((t) => t.jobs), 0),
                       bars("parts (copies) passed", data.throughput.map((t) => t.parts), 1)] },
  });
})();

// Watches the board's event stream: every push is a heartbeat. Without one for
// data-stale-ms the page says so across its width ("数据中断") and greys every
// cell (what they say is no longer known to be true); htmx's SSE extension
// reconnects meanwhile; without one for data-reload-ms it reloads. The clock in
// the header ticks on the PC's own clock (in the district's time zone), so a
// frozen page shows.
(function () {
  var body = document.body;
  var staleMs = Number(body.dataset.staleMs), reloadMs = Number(body.dataset.reloadMs);
  var last = Date.now();
  var banner = document.getElementById("stale");
  var clock = document.getElementById("clock");
  // The district's time zone, like every other time on the page, not the PC's.
  var time = new Intl.DateTimeFormat("zh-CN", {timeZone: body.dataset.tz || undefined,
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
  body.addEventListener("htmx:sseMessage", function () {
    last = Date.now();
    banner.hidden = true;
    body.classList.remove("data-stale");
  });
  setInterval(function () {
    var quiet = Date.now() - last;
    if (quiet > staleMs) {
      banner.hidden = false;
      body.classList.add("data-stale");
    }
    if (quiet > reloadMs) location.reload();
    if (clock) clock.textContent = time.format(new Date());
  }, 1000);
})();

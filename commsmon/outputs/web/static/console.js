// Watches the board's event stream: every push is a heartbeat. Without one for
// data-stale-ms the page says so across its width ("数据中断"); htmx's SSE
// extension reconnects meanwhile; without one for data-reload-ms it reloads.
(function () {
  var body = document.body;
  var staleMs = Number(body.dataset.staleMs), reloadMs = Number(body.dataset.reloadMs);
  var last = Date.now();
  var banner = document.getElementById("stale");
  body.addEventListener("htmx:sseMessage", function () {
    last = Date.now();
    banner.hidden = true;
  });
  setInterval(function () {
    var quiet = Date.now() - last;
    if (quiet > staleMs) banner.hidden = false;
    if (quiet > reloadMs) location.reload();
  }, 1000);
})();

// Live pages: follow /live/<context> and, when the console's read model has a change, fetch
// this page again and put its #live part in place (focus and scroll stay where they are).
(function () {
  "use strict";
  var body = document.body;
  var context = body.getAttribute("data-live");
  if (!context || !window.EventSource || !window.fetch) {
    return;
  }
  var after = body.getAttribute("data-after") || "0";
  var source = null;
  var fetching = false;
  var again = false;

  function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    // A page answering a form (a decision's result) names the page to fetch instead.
    var here = body.getAttribute("data-page") || window.location.href;
    fetch(here, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var part = fresh.getElementById("live");
        var here = document.getElementById("live");
        if (part && here) {
          here.replaceWith(part);
        }
        var marked = fresh.body.getAttribute("data-after");
        if (marked) {
          body.setAttribute("data-after", marked);
        }
        body.setAttribute("data-refreshed", String(Number(body.getAttribute("data-refreshed") || "0") + 1));
      })
      .catch(function () {})
      .then(function () {
        fetching = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function follow() {
    source = new EventSource("/live/" + context + "?after=" + encodeURIComponent(after));
    source.addEventListener("open", function () {
      body.setAttribute("data-following", "true");
    });
    source.addEventListener("changed", function (event) {
      after = event.data;
      refresh();
    });
  }

  follow();
  window.addEventListener("pagehide", function () {
    if (source) {
      source.close();
    }
  });
})();

// Wingman console: live countdowns and the live status timeline. The pages work without it.
"use strict";
document.documentElement.classList.add("js");

function span(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes >= 60) {
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }
  if (minutes >= 1) { return minutes + " min"; }
  return seconds + " s";
}

function tickCountdowns() {
  const now = Date.now();
  document.querySelectorAll("[data-expires]").forEach(function (element) {
    const at = Date.parse(element.getAttribute("data-expires"));
    if (Number.isNaN(at)) { return; }
    const seconds = Math.round((at - now) / 1000);
    element.textContent = seconds > 0 ? "in " + span(seconds) : "expired " + span(-seconds) + " ago";
  });
}

// Brings the list (an aria-live region) up to date with the server's fragment, touching only
// what changed, so a screen reader announces the new steps and nothing else: an unchanged list
// is left alone, new steps are appended, and only a list that changed otherwise is replaced.
function updateTimeline(list, html) {
  // The fragment is rendered by the server with every value escaped.
  const fresh = new DOMParser().parseFromString("<ol>" + html + "</ol>", "text/html").body.firstChild;
  const items = Array.from(fresh.children);
  const shown = Array.from(list.children);
  const grows = shown.length <= items.length && shown.every(function (item, index) {
    return item.outerHTML === items[index].outerHTML;
  });
  if (grows) {
    items.slice(shown.length).forEach(function (item) { list.appendChild(item); });
  } else {
    list.replaceChildren.apply(list, items);
  }
}

function pollTimeline() {
  const list = document.getElementById("timeline");
  if (!list || list.getAttribute("data-settled") === "1") { return; }
  fetch(list.getAttribute("data-src"), { credentials: "same-origin", cache: "no-store" })
    .then(function (response) {
      if (!response.ok) { throw new Error("timeline " + response.status); }
      const settled = response.headers.get("x-timeline-settled") === "1";
      return response.text().then(function (html) { return { html: html, settled: settled }; });
    })
    .then(function (result) {
      updateTimeline(list, result.html);
      if (result.settled) {
        list.setAttribute("data-settled", "1");
      } else {
        setTimeout(pollTimeline, 1500);
      }
    })
    .catch(function () { setTimeout(pollTimeline, 5000); });
}

document.addEventListener("DOMContentLoaded", function () {
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
  setTimeout(pollTimeline, 1000);
});

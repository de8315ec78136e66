// Runs before the page's module, in the oldest JavaScript a browser may have (a classic script,
// ES5): a browser too old for vault's pages would fail to parse app.js and leave the customer
// with a form that does nothing. Here it is told so, in the page's language (the sentence is in
// the page), and no button is left that cannot work. The oldest browsers the pages support are
// Chrome 85, Firefox 78 and Safari 13.1: String.prototype.replaceAll came in each of them, after
// everything else app.js and envelope.js use (modules, async functions, "??", TextEncoder).
(function () {
  "use strict";
  var modern = typeof String.prototype.replaceAll === "function"
    && typeof window.TextEncoder === "function"
    && typeof window.Promise === "function"
    && "noModule" in document.createElement("script");
  if (modern) return;
  var message = document.getElementById("old-browser");
  if (message) message.hidden = false;
  var buttons = document.querySelectorAll("main button");
  for (var i = 0; i < buttons.length; i += 1) buttons[i].disabled = true;
}());

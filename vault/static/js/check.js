// Runs before the page's module, in the oldest JavaScript a browser may have (a classic script,
// ES5): a browser too old for vault's pages would fail to parse app.js, or run it and fail half
// way, and leave the customer with a form that does nothing. Here it is told so, in the page's
// language (the sentence is in the page), and no button is left that cannot work. The oldest
// browsers the pages support are Chrome 87, Firefox 78 and Safari 14.1: each test below is the
// last of what the pages use to arrive in one of them (String.prototype.replaceAll: Safari 13.1;
// Element.replaceChildren: Chrome 86, Firefox 78, Safari 14; the style sheet's inset-inline:
// Chrome 87, Safari 14.1), after modules, async functions, "??" and TextEncoder.
(function () {
  "use strict";
  var modern = typeof String.prototype.replaceAll === "function"
    && typeof Element.prototype.replaceChildren === "function"
    && typeof window.TextEncoder === "function"
    && typeof window.Promise === "function"
    && "noModule" in document.createElement("script")
    && !!window.CSS && typeof CSS.supports === "function"
    && CSS.supports("inset-inline-start", "0");
  if (modern) return;
  var message = document.getElementById("old-browser");
  if (message) message.hidden = false;
  var buttons = document.querySelectorAll("main button");
  for (var i = 0; i < buttons.length; i += 1) buttons[i].disabled = true;
}());

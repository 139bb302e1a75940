// Forms that ask before they act (data-confirm): kept out of the page so the console's
// Content-Security-Policy can forbid inline scripts.
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) { event.preventDefault(); }
});

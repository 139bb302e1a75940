/* The field app's few behaviours: photo previews, and a signature drawn on a canvas and sent as a PNG file.
   No inline script (the page's CSP forbids it); everything works without this file but the signature. */
(function () {
  "use strict";

  function previews(input) {
    var box = document.querySelector('[data-previews-for="' + input.id + '"]');
    if (!box) return;
    box.innerHTML = "";
    Array.prototype.forEach.call(input.files || [], function (file) {
      var img = document.createElement("img");
      img.alt = file.name;
      img.src = URL.createObjectURL(file);
      box.appendChild(img);
    });
  }

  function signature(canvas) {
    var target = document.getElementById(canvas.getAttribute("data-signature-for"));
    var ctx = canvas.getContext("2d");
    var drawing = false, drawn = false;
    ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.strokeStyle = "#111";
    function point(e) {
      var r = canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
    }
    function save() {
      if (!drawn || !window.DataTransfer) return;
      canvas.toBlob(function (blob) {
        var list = new DataTransfer();
        list.items.add(new File([blob], "signature.png", {type: "image/png"}));
        target.files = list.files;
      }, "image/png");
    }
    canvas.addEventListener("pointerdown", function (e) {
      drawing = true; canvas.setPointerCapture(e.pointerId);
      var p = point(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]);
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!drawing) return;
      var p = point(e); ctx.lineTo(p[0], p[1]); ctx.stroke(); drawn = true;
    });
    function stop() { if (drawing) { drawing = false; save(); } }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("pointerleave", stop);
    var clear = document.querySelector('[data-clear-signature="' + target.id + '"]');
    if (clear) clear.addEventListener("click", function () {
      ctx.clearRect(0, 0, canvas.width, canvas.height); drawn = false;
      if (window.DataTransfer) target.files = new DataTransfer().files;
    });
  }

  function wire(root) {
    root.querySelectorAll("input.camera").forEach(function (input) {
      if (input.dataset.wired) return;
      input.dataset.wired = "1";
      input.addEventListener("change", function () { previews(input); });
    });
    root.querySelectorAll("canvas.signature").forEach(function (canvas) {
      if (canvas.dataset.wired) return;
      canvas.dataset.wired = "1";
      signature(canvas);
    });
  }

  // A form sent while the connection is down stays on the page, filled in, with a note: nothing is lost.
  function say(which) {
    var note = document.getElementById("offline-note");
    if (!note) return;
    note.textContent = document.getElementById("page").getAttribute(which);
    note.hidden = false;
    window.scrollTo(0, 0);
  }
  document.addEventListener("htmx:sendError", function () { say("data-lost"); });
  document.body.addEventListener("wanggeTooLarge", function () { say("data-too-large"); });
  document.addEventListener("htmx:afterRequest", function (e) {
    var note = document.getElementById("offline-note");
    if (note && e.detail.successful !== undefined && e.detail.xhr && e.detail.xhr.status) note.hidden = true;
  });

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function (e) { wire(e.target); });
})();

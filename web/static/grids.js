// The grid map: cells drawn from the boundaries the store holds, no tile server.
(function () {
  var shapes = JSON.parse(document.getElementById("shapes").textContent);
  var colours = {overdue: "#c0392b", soon: "#e67e22", open: "#2e86c1", clear: "#7f8c8d"};
  var map = L.map("map", {attributionControl: false, zoomSnap: 0.25});
  var layer = L.geoJSON({type: "FeatureCollection", features: shapes}, {
    style: function (f) { return {color: colours[f.properties.colour], weight: 2, fillOpacity: 0.25}; },
    onEachFeature: function (f, l) {
      // Always shown: the office reads the map at a glance, code and open / overdue counts.
      l.bindTooltip(f.properties.code + " " + f.properties.name + "<br>" + f.properties.open + " / " + f.properties.overdue,
                    {permanent: true, direction: "center", className: "cell-label"});
      l.on("click", function () { window.location = "/cases?grid=" + encodeURIComponent(f.properties.code); });
    }
  }).addTo(map);
  map.fitBounds(layer.getBounds(), {padding: [10, 10]});
})();

// The page `keras-cut graph -o FILE.html` writes: lays the graph out with dagre, draws it as
// SVG, pans and zooms it with svg-pan-zoom (both embedded above), finds layers, shows details.
// Everything from the model file is set as text (textContent), never parsed as HTML.
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var CLUSTER_LABEL = 18;  // px above a nested model's frame for its name
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var svg = document.getElementById("graph");
  var byId = {};
  var elements = {};
  var incoming = {};
  var outgoing = {};
  var panZoom = null;
  var matches = [];
  var current = -1;
  var selected = null;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVGNS, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(name, text, parent, cls) {
    var node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }

  var measure = document.createElement("canvas").getContext("2d");
  function textWidth(text, bold) {
    measure.font = (bold ? "600 " : "") + "11px system-ui, -apple-system, 'Segoe UI', " +
      "Helvetica, Arial, sans-serif";
    return measure.measureText(text).width;
  }

  function lines(node) {
    var out = [node.text, node.class_name, node.shape];  // names as shown: visible, bounded
    if (node.params) out.push(node.params.toLocaleString("en-US") + " params");
    return out;
  }

  function layout() {
    var g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 28 + CLUSTER_LABEL, edgesep: 8,
      marginx: 20, marginy: 20 + CLUSTER_LABEL });
    g.setDefaultEdgeLabel(function () { return {}; });
    data.clusters.forEach(function (c) {
      g.setNode(c.id, { label: c.label, clusterLabelPos: "top", paddingTop: 22 });
    });
    data.clusters.forEach(function (c) { if (c.parent) g.setParent(c.id, c.parent); });
    data.nodes.forEach(function (n) {
      var text = lines(n);
      var width = 0;
      text.forEach(function (t, i) { width = Math.max(width, textWidth(t, i === 0)); });
      g.setNode(n.id, { width: Math.ceil(width) + 20, height: 14 * text.length + 12 });
      if (n.cluster) g.setParent(n.id, n.cluster);
    });
    data.edges.forEach(function (e) { g.setEdge(e.source, e.target); });
    dagre.layout(g);
    return g;
  }

  function draw(g) {
    var graphInfo = g.graph();
    var width = Math.max(graphInfo.width || 0, 10);
    var height = Math.max(graphInfo.height || 0, 10);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var defs = el("defs", {}, svg);
    [["arrow", "#5b6b7f"], ["arrow-crossing", "#c2185b"]].forEach(function (m) {
      // sized in the drawing's units, so that a bold edge does not get a huge arrowhead
      var marker = el("marker", { id: m[0], viewBox: "0 0 10 10", refX: 9, refY: 5,
        markerUnits: "userSpaceOnUse", markerWidth: 9, markerHeight: 9,
        orient: "auto-start-reverse" }, defs);
      el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: m[1] }, marker);
    });
    var root = el("g", { "class": "viewport-content" }, svg);
    var clusterLayer = el("g", { "class": "clusters" }, root);
    var edgeLayer = el("g", { "class": "edges" }, root);
    var nodeLayer = el("g", { "class": "nodes" }, root);
    data.clusters.forEach(function (c) {
      var box = g.node(c.id);
      if (!box) return;
      var group = el("g", { "class": "cluster", "data-label": c.label }, clusterLayer);
      // dagre leaves no room for a label: the frame grows upwards by one line to hold it
      var top = box.y - box.height / 2 - CLUSTER_LABEL;
      el("rect", { x: box.x - box.width / 2, y: top, width: box.width,
        height: box.height + CLUSTER_LABEL }, group);
      var label = el("text", { x: box.x - box.width / 2 + 8, y: top + 14 }, group);
      label.textContent = c.label;
    });
    data.edges.forEach(function (e) {
      var edge = g.edge(e.source, e.target);
      if (!edge || !edge.points) return;
      var d = edge.points.map(function (p, i) {
        return (i ? "L" : "M") + p.x.toFixed(1) + " " + p.y.toFixed(1);
      }).join(" ");
      var group = el("g", { "class": "edge" + (e.crossing ? " crossing" : ""),
        "data-source": e.source, "data-target": e.target }, edgeLayer);
      el("path", { d: d, "marker-end": "url(#" + (e.crossing ? "arrow-crossing" : "arrow") +
        ")" }, group);
    });
    data.nodes.forEach(function (n) {
      var box = g.node(n.id);
      // with --locate's comparison laid over the page, a node is drawn by its verdict
      var look = n.overlay ? n.overlay.status : n.role;
      var style = data.styles[look] || {};
      var group = el("g", { "class": "node role-" + look, "data-id": n.id,
        "data-label": n.label, transform: "translate(" + (box.x - box.width / 2) + "," +
        (box.y - box.height / 2) + ")" }, nodeLayer);
      var fill = n.overlay ? n.overlay.fill : style.fill;
      var rect = el("rect", { width: box.width, height: box.height, fill: fill || "#fff",
        stroke: style.stroke || "#5b6b7f", "stroke-width": style.width || "1.2" }, group);
      if (style.dash) rect.setAttribute("stroke-dasharray", style.dash);
      var title = el("title", {}, group);
      title.textContent = n.shown + " (" + n.class_name + ")";
      lines(n).forEach(function (t, i) {
        var text = el("text", { x: 10, y: 17 + 14 * i, "class": i === 0 ? "name" : "" }, group);
        text.textContent = t;
      });
      group.addEventListener("click", function (event) {
        event.stopPropagation();
        select(n.id, false);
      });
      elements[n.id] = group;
    });
  }

  function legend() {
    var box = document.getElementById("legend");
    (data.legend || []).forEach(function (item) {
      var style = data.styles[item[0]] || {};
      var swatch = html("span", null, box, "swatch");
      swatch.style.background = style.fill || "#fff";
      swatch.style.border = "2px " + (style.dash ? "dashed " : "solid ") + (style.stroke || "#000");
      html("span", item[1], box);
    });
  }

  function centerOn(id) {
    var group = elements[id];
    if (!group || !panZoom) return;
    var box = group.getBBox();
    var matrix = group.transform.baseVal.consolidate().matrix;
    var x = matrix.e + box.x + box.width / 2;
    var y = matrix.f + box.y + box.height / 2;
    var sizes = panZoom.getSizes();
    var fitZoom = sizes.realZoom / panZoom.getZoom();
    if (sizes.realZoom < 0.9) panZoom.zoom(1 / fitZoom);  // close enough to read the labels
    sizes = panZoom.getSizes();
    panZoom.pan({ x: sizes.width / 2 - x * sizes.realZoom, y: sizes.height / 2 - y * sizes.realZoom });
  }

  // The whole graph when its labels stay readable; otherwise, at a readable size, where the
  // cut starts (a cut) or the top (the inputs): drag or scroll, or RESET for the whole graph.
  function initialView() {
    var sizes = panZoom.getSizes();
    if (data.focus) { select(data.focus, sizes.realZoom < 0.6); return; }
    if (sizes.realZoom >= 0.6) return;
    var start = data.cut ? data.nodes.filter(function (n) {
      return n.role !== "dropped" && n.role !== "input";
    })[0] : null;
    if (start) { centerOn(start.id); return; }
    panZoom.zoom(1 / (sizes.realZoom / panZoom.getZoom()));
    sizes = panZoom.getSizes();
    panZoom.pan({ x: sizes.width / 2 - sizes.viewBox.width / 2 * sizes.realZoom, y: 10 });
  }

  function copyButton(parent, text) {
    var button = html("button", "Copy", parent);
    button.type = "button";
    button.addEventListener("click", function () {
      function done() { button.textContent = "Copied"; }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, fallback);
      } else {
        fallback();
      }
      function fallback() {
        var area = html("textarea", text, document.body);
        area.select();
        try { document.execCommand("copy"); done(); } catch (err) { /* the text stays selectable */ }
        area.remove();
      }
    });
  }

  function layerLinks(parent, ids) {
    if (!ids.length) { html("span", "–", parent); return; }
    ids.forEach(function (id, i) {
      if (i) parent.appendChild(document.createTextNode(", "));
      var link = html("a", byId[id].shown, parent, "layer-link");
      link.addEventListener("click", function () { select(id, true); });
    });
  }

  function details(n) {
    var panel = document.getElementById("details");
    panel.textContent = "";
    var heading = html("h2", n.shown, panel);
    if (data.cut) html("span", n.role.replace("_", " "), heading, "badge");
    var table = html("table", null, panel);
    [["class", n.class_name], ["output shape", n.shape],
     ["params", (n.params || 0).toLocaleString("en-US")]].forEach(function (row) {
      var tr = html("tr", null, table);
      html("td", row[0], tr);
      html("td", row[1], tr);
    });
    var inputs = html("tr", null, table);
    html("td", "inputs from", inputs);
    layerLinks(html("td", null, inputs), incoming[n.id] || []);
    var outputs = html("tr", null, table);
    html("td", "outputs to", outputs);
    layerLinks(html("td", null, outputs), outgoing[n.id] || []);
    if (n.overlay) {
      html("h3", "Against the artifact", panel);
      var compared = html("table", null, panel, "overlay");
      n.overlay.rows.forEach(function (row) {
        var tr = html("tr", null, compared);
        html("td", row[0], tr);
        html("td", row[1], tr);
      });
    }
    if (n.commands.length) {
      html("h3", "Cut here", panel);
      n.commands.forEach(function (c) {
        var box = html("div", null, panel, "command");
        html("div", c.what, box);
        html("code", c.command, box);
        copyButton(box, c.command);
      });
    }
    html("h3", "Config", panel);
    html("pre", n.config, panel);
  }

  function select(id, center) {
    if (selected && elements[selected]) elements[selected].classList.remove("selected");
    selected = id;
    elements[id].classList.add("selected");
    details(byId[id]);
    if (center) centerOn(id);
  }

  function search(query, step) {
    var q = query.trim().toLowerCase();
    matches.forEach(function (id) { elements[id].classList.remove("match", "current"); });
    var status = document.getElementById("matches");
    if (!q) { matches = []; current = -1; status.textContent = ""; return; }
    var exact = data.nodes.filter(function (n) { return n.label.toLowerCase() === q; });
    var found = data.nodes.filter(function (n) {
      return n.label.toLowerCase().indexOf(q) >= 0 || n.class_name.toLowerCase().indexOf(q) >= 0;
    });
    // an exact name first, then the rest in graph order
    matches = exact.concat(found.filter(function (n) { return exact.indexOf(n) < 0; }))
      .map(function (n) { return n.id; });
    matches.forEach(function (id) { elements[id].classList.add("match"); });
    if (!matches.length) { current = -1; status.textContent = "no layer matches"; return; }
    current = step ? (current + 1) % matches.length : 0;
    elements[matches[current]].classList.add("current");
    status.textContent = (current + 1) + " of " + matches.length;
    select(matches[current], true);
  }

  function fromHash() {
    var hash;
    try {
      hash = decodeURIComponent(location.hash.replace(/^#/, ""));
    } catch (err) {  // a stray "%": take the text as it is
      hash = location.hash.replace(/^#/, "");
    }
    var m = /^(search|layer)=(.*)$/.exec(hash);
    if (!m) return;
    if (m[1] === "search") {
      document.getElementById("search").value = m[2];
      search(m[2], false);
    } else {
      var hit = data.nodes.filter(function (n) { return n.label === m[2]; })[0];
      if (hit) select(hit.id, true);
    }
  }

  data.nodes.forEach(function (n) { byId[n.id] = n; });
  data.edges.forEach(function (e) {
    (incoming[e.target] = incoming[e.target] || []).push(e.source);
    (outgoing[e.source] = outgoing[e.source] || []).push(e.target);
  });
  document.title = data.title;
  document.getElementById("title").textContent = data.title;
  document.getElementById("summary").textContent = data.summary;
  draw(layout());
  legend();
  panZoom = svgPanZoom(svg, { zoomEnabled: true, controlIconsEnabled: true, fit: true,
    center: true, minZoom: 0.02, maxZoom: 40, dblClickZoomEnabled: false,
    zoomScaleSensitivity: 0.3 });
  initialView();
  window.addEventListener("resize", function () { panZoom.resize(); });
  var input = document.getElementById("search");
  input.addEventListener("input", function () { search(input.value, false); });
  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    search(input.value, true);
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.body.setAttribute("data-ready", "true");
})();

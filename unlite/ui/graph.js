'use strict';
'require baseclass';

/*
 * unlite drawing core: an NF-FG forwarding graph drawn as SVG, with live state.
 * One file for both pages that show graphs:
 * - LuCI loads it as module "unlite.graph" (/luci-static/resources/unlite/graph.js; LuCI's
 *   loader runs this file as a function body and instantiates the class it returns);
 * - the daemon's dashboard (/ui) gets the same bytes from the daemon, wrapped the same way.
 * Plain DOM and SVG, no framework; it only draws: the pages fetch (REST or ubus) and call it.
 *
 *   render(doc, status)  → <svg>: end-points, NFs with their ports, one arrow per rule output
 *                          labelled with the rule's match and packet counter
 *   update(svg, status)  → the same drawing with new NF states and counters (no re-layout)
 *   locate(text, path)   → {start, end} of a JSON path ("$.forwarding-graph.VNFs[0].name")
 *                          in the JSON text that was sent, for error messages
 *   diagnostic(text, range, message) → <pre>: the lines around range, marked, message below
 */

var SVG = 'http://www.w3.org/2000/svg';

/* NF state → [stroke, fill, label]; the daemon's states: Idle Starting Active Stopping Failed */
var STATES = {
	active: [ '#2e7d32', '#e8f5e9', 'running' ],
	starting: [ '#c77c00', '#fff4dc', 'starting' ],
	stopping: [ '#c77c00', '#fff4dc', 'stopping' ],
	idle: [ '#607d8b', '#eceff1', 'idle' ],
	paused: [ '#607d8b', '#eceff1', 'paused' ],
	failed: [ '#c62828', '#ffebee', 'failed' ],
	unknown: [ '#8a8a8a', '#f5f5f5', 'unknown' ]
};
var FLOW = '#1565c0', IDLE = '#9e9e9e', HOT = '#ef6c00', EP_FILL = '#e3f2fd', EP_LINE = '#1565c0';
var NF_W = 136, EP_W = 100, EP_H = 46, GAP = 132, LANE = 20, MARGIN = 20, FONT = 12;

var SHORT = { ether_type: '', protocol: '', source_ip: 'src ', dest_ip: 'dst ',
	ipv4_src: 'src ', ipv4_dst: 'dst ', source_port: 'sport ', dest_port: 'dport ',
	vlan_id: 'vlan ', source_mac: 'smac ', dest_mac: 'dmac ' };
var ETHER = { '2048': 'ip', '2054': 'arp', '34525': 'ip6', '33024': 'vlan' };
var PROTO = { '1': 'icmp', '6': 'tcp', '17': 'udp', '58': 'icmp6', '132': 'sctp' };

function el(tag, attrs, kids) {
	var n = document.createElementNS(SVG, tag);
	for (var k in attrs)
		if (attrs[k] != null)
			n.setAttribute(k, attrs[k]);
	(kids || []).forEach(function(c) {
		n.appendChild(typeof c == 'string' ? document.createTextNode(c) : c);
	});
	return n;
}

function text(x, y, s, attrs) {
	var a = { x: x, y: y, 'font-size': FONT, fill: '#212121' };
	for (var k in attrs)
		a[k] = attrs[k];
	return el('text', a, [ String(s) ]);
}

function title(s) { return el('title', {}, [ s ]); }

function num(v) {
	var s = String(v == null ? '' : v).trim();
	var n = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s, 16) : /^\d+$/.test(s) ? parseInt(s, 10) : NaN;
	return isNaN(n) ? s : String(n);
}

function count(n) {
	if (n == null)
		return '–';
	if (n < 1000)
		return String(n);
	var u = [ 'k', 'M', 'G', 'T' ], i = -1;
	do { n /= 1000; i++; } while (n >= 1000 && i < u.length - 1);
	return (n < 10 ? n.toFixed(1) : Math.round(n)) + u[i];
}

function truncate(s, n) {
	s = String(s);
	return s.length > n ? s.substring(0, n - 1) + '…' : s;
}

function stateOf(v) {
	var s = String((v && v.state) || 'unknown').toLowerCase();
	return STATES[s] ? s : (s == 'running' ? 'active' : 'unknown');
}

/* "vnf:fw:inout:0" → {node: "nf:fw", port: "inout:0"}; "endpoint:lan" → {node: "ep:lan"} */
function ref(s) {
	var m = /^vnf:([^:]+):(.+)$/.exec(s || '');
	if (m)
		return { node: 'nf:' + m[1], port: m[2], key: s };
	m = /^endpoint:(.+)$/.exec(s || '');
	return m ? { node: 'ep:' + m[1], port: null, key: s } : null;
}

function matchText(match) {
	var parts = [];
	Object.keys(match || {}).forEach(function(k) {
		if (k == 'port_in')
			return;
		var v = match[k];
		if (k == 'ether_type')
			v = ETHER[num(v)] || 'eth ' + v;
		else if (k == 'protocol')
			v = PROTO[num(v)] || 'proto ' + v;
		else
			v = (k in SHORT ? SHORT[k] : k + ' ') + v;
		parts.push(v);
	});
	return parts.join(' ') || 'any';
}

function epDetail(ep) {
	var t = ep.type || '?', d = ep[t] || ep.interface || {};
	if (t == 'interface')
		return d['if-name'] || d['interface'] || 'interface';
	if (t == 'vlan')
		return 'vlan ' + d['vlan-id'] + ' @ ' + d['if-name'];
	if (t == 'internal')
		return 'group ' + (d['internal-group'] || '?');
	if (t == 'host-stack')
		return 'host ' + (d.ipv4 || d.IPv4 || d.configuration || '');
	if (t == 'gre-tunnel')
		return 'gre ' + (d['remote-ip'] || '');
	return t;
}

/* Nodes, ports and arrows of a graph document, with the status merged in. */
function model(doc, status) {
	var fg = (doc && doc['forwarding-graph']) || doc || {}, nodes = {}, order = [];
	var st = {}, counters = {};
	((status && status.VNFs) || []).forEach(function(v) { st[v.id] = v; });
	((status && status['flow-rules']) || []).forEach(function(r) { counters[r.id] = r; });

	function add(n) { if (!nodes[n.key]) { nodes[n.key] = n; order.push(n); } return nodes[n.key]; }

	(fg['end-points'] || []).forEach(function(ep) {
		add({ key: 'ep:' + ep.id, kind: 'ep', id: ep.id, name: ep.name, detail: epDetail(ep),
			ports: [], edges: [] });
	});
	(fg.VNFs || []).forEach(function(v) {
		var n = add({ key: 'nf:' + v.id, kind: 'nf', id: v.id, name: v.name, ports: [],
			edges: [], status: st[v.id] || null });
		(v.ports || []).forEach(function(p) { n.ports.push({ id: p.id, name: p.name }); });
	});

	var rules = [], warnings = [];
	(((fg['big-switch'] || {})['flow-rules']) || []).forEach(function(r) {
		var src = ref((r.match || {}).port_in), outs = [];
		(r.actions || []).forEach(function(a) {
			var d = ref(a.output_to_port);
			if (d)
				outs.push(d);
		});
		[ src ].concat(outs).forEach(function(p) {
			if (!p)
				return;
			if (!nodes[p.node]) {          /* a dangling reference: drawn, greyed */
				warnings.push('rule ' + r.id + ': unknown ' + p.key);
				add({ key: p.node, kind: p.port == null ? 'ep' : 'nf', id: p.node.substring(3),
					ports: [], edges: [], missing: true });
			}
			var n = nodes[p.node];
			if (p.port != null && !n.ports.some(function(q) { return q.id == p.port; }))
				n.ports.push({ id: p.port });
		});
		if (!src || !outs.length)
			return;
		var c = counters[r.id] || {};
		var rule = { id: r.id, priority: r.priority, match: r.match || {}, src: src, outs: outs,
			label: matchText(r.match), packets: c.packets, bytes: c.bytes };
		rules.push(rule);
		outs.forEach(function(d) {
			nodes[src.node].edges.push(d.node);
			nodes[d.node].edges.push(src.node);
		});
	});
	return { id: fg.id, name: fg.name, nodes: nodes, order: order, rules: rules,
		warnings: warnings };
}

/* Columns by breadth-first distance from the first end-point of each connected part. */
function layout(m) {
	var col = {}, parts = [], seen = {};
	var starts = m.order.filter(function(n) { return n.kind == 'ep'; }).concat(m.order);
	starts.forEach(function(s) {
		if (seen[s.key])
			return;
		var part = [], queue = [ s ];
		seen[s.key] = true;
		col[s.key] = 0;
		while (queue.length) {
			var n = queue.shift();
			part.push(n);
			n.edges.forEach(function(k) {
				if (!seen[k]) {
					seen[k] = true;
					col[k] = col[n.key] + 1;
					queue.push(m.nodes[k]);
				}
			});
		}
		parts.push(part);
	});

	/* port sides: towards the neighbours' columns (else alternate) */
	m.order.forEach(function(n) {
		n.col = col[n.key];
		n.ports.forEach(function(p, i) {
			var sum = 0, k = 0, pk = 'vnf:' + n.id + ':' + p.id;
			m.rules.forEach(function(r) {
				r.outs.forEach(function(d) {
					var other = r.src.key == pk ? d : d.key == pk ? r.src : null;
					if (other && other.node != n.key) { sum += col[other.node]; k++; }
				});
			});
			p.side = k && sum / k > n.col ? 1 : k && sum / k < n.col ? -1 : (i % 2 ? 1 : -1);
		});
	});

	var y0 = MARGIN, width = 0;
	parts.forEach(function(part) {
		var cols = [];
		part.forEach(function(n) {
			var l = n.ports.filter(function(p) { return p.side < 0; }).length;
			n.w = n.kind == 'ep' ? EP_W : NF_W;
			n.h = n.kind == 'ep' ? EP_H : Math.max(74, 50 + 24 * Math.max(l, n.ports.length - l));
			(cols[n.col] = cols[n.col] || []).push(n);
		});
		var heights = cols.map(function(c) {
			return c.reduce(function(s, n) { return s + n.h + 36; }, -36);
		});
		var tall = Math.max.apply(null, heights), x = MARGIN;
		cols.forEach(function(c, i) {
			var y = y0 + (tall - heights[i]) / 2, cw = Math.max.apply(null, c.map(function(n) { return n.w; }));
			c.forEach(function(n) {
				n.x = x + (cw - n.w) / 2;
				n.y = y;
				y += n.h + 36;
				width = Math.max(width, n.x + n.w + MARGIN);
			});
			x += cw + GAP;
		});
		y0 += tall + 56;
	});

	m.order.forEach(function(n) {
		var sides = { '-1': [], '1': [] };
		n.ports.forEach(function(p) { sides[p.side].push(p); });
		[ -1, 1 ].forEach(function(s) {
			sides[s].forEach(function(p, i) {
				p.x = s < 0 ? n.x : n.x + n.w;
				p.y = n.y + 44 + (n.h - 50) * (i + 0.5) / sides[s].length;
			});
		});
	});
	return { width: Math.max(width, 320), height: y0 - 56 + MARGIN + 40 };
}

function anchor(m, r, towards) {
	var n = m.nodes[r.node], o = m.nodes[towards.node];
	if (r.port != null) {
		var p = n.ports.filter(function(q) { return q.id == r.port; })[0];
		return { x: p.x, y: p.y, side: p.side };
	}
	var right = o.x + o.w / 2 > n.x + n.w / 2 || (o === n);
	return { x: right ? n.x + n.w : n.x, y: n.y + n.h / 2, side: right ? 1 : -1 };
}

function drawNode(n) {
	var g = el('g', { 'data-node': n.key });
	if (n.kind == 'ep') {
		g.setAttribute('data-endpoint', n.id);
		g.appendChild(el('rect', { x: n.x, y: n.y, width: n.w, height: n.h, rx: 23,
			fill: n.missing ? '#fafafa' : EP_FILL, stroke: n.missing ? IDLE : EP_LINE,
			'stroke-width': 1.5, 'stroke-dasharray': n.missing ? '4 3' : null }));
		g.appendChild(text(n.x + n.w / 2, n.y + 19, truncate(n.name || n.id, 13),
			{ 'text-anchor': 'middle', 'font-weight': 'bold' }));
		g.appendChild(text(n.x + n.w / 2, n.y + 35, truncate(n.detail || 'end-point', 15),
			{ 'text-anchor': 'middle', fill: '#455a64', 'font-size': 11 }));
		g.appendChild(title('end-point ' + n.id + (n.name ? ' (' + n.name + ')' : '') + ': ' +
			(n.detail || 'not declared')));
		return g;
	}
	g.setAttribute('data-nf', n.id);
	var box = el('rect', { 'class': 'ulg-box', x: n.x, y: n.y, width: n.w, height: n.h, rx: 6,
		'stroke-width': 2 });
	var band = el('rect', { 'class': 'ulg-band', x: n.x, y: n.y, width: n.w, height: 30, rx: 6 });
	g.appendChild(box);
	g.appendChild(band);
	g.appendChild(el('rect', { 'class': 'ulg-band', x: n.x, y: n.y + 20, width: n.w, height: 10 }));
	g.appendChild(text(n.x + 10, n.y + 20, truncate(n.id, 10), { fill: '#fff', 'font-weight': 'bold' }));
	g.appendChild(text(n.x + n.w - 10, n.y + 20, '', { 'class': 'ulg-state', fill: '#fff',
		'text-anchor': 'end', 'font-size': 11 }));
	g.appendChild(text(n.x + n.w / 2, n.y + 46, truncate(n.name || '', 19),
		{ 'class': 'ulg-name', 'text-anchor': 'middle', fill: '#37474f' }));
	g.appendChild(text(n.x + n.w / 2, n.y + n.h + 14, '', { 'class': 'ulg-fault',
		'text-anchor': 'middle', fill: STATES.failed[0], 'font-size': 11 }));
	g.appendChild(el('title', { 'class': 'ulg-title' }, [ '' ]));
	n.ports.forEach(function(p) {
		var pg = el('g', { 'data-port': p.id });
		pg.appendChild(el('rect', { x: p.x - 5, y: p.y - 5, width: 10, height: 10,
			fill: '#fff', stroke: '#37474f', 'stroke-width': 1.5 }));
		pg.appendChild(text(p.x - p.side * 9, p.y + 4, truncate(p.id, 12), { 'font-size': 10,
			fill: '#546e7a', 'text-anchor': p.side < 0 ? 'start' : 'end' }));
		pg.appendChild(title('port ' + p.id + (p.name ? ' (' + p.name + ')' : '')));
		g.appendChild(pg);
	});
	return g;
}

function paintNode(g, v) {
	var s = stateOf(v), c = STATES[s];
	g.setAttribute('data-state', s);
	g.querySelector('.ulg-box').setAttribute('stroke', c[0]);
	g.querySelector('.ulg-box').setAttribute('fill', c[1]);
	g.querySelectorAll('.ulg-band').forEach(function(b) { b.setAttribute('fill', c[0]); });
	/* the legend's word (running, not the daemon's "Active"); a state it lacks as it is */
	var word = s == 'unknown' && v && v.state ? String(v.state).toLowerCase() : c[2];
	g.querySelector('.ulg-state').textContent = word;
	g.querySelector('.ulg-fault').textContent = v && v.fault ? truncate(v.fault, 22) : '';
	var t = 'NF ' + g.getAttribute('data-nf') + ': ' + (v ? word + ' (' + v.state + ')' : 'no status');
	if (v && v.implementation)
		t += '\nimplementation ' + v.implementation;
	if (v && v.netns)
		t += '\nnamespace ' + v.netns;
	if (v && v.fault)
		t += '\nfault ' + v.fault + (v['fault-detail'] ? ': ' + [].concat(v['fault-detail']).join('\n') : '');
	g.querySelector('.ulg-title').textContent = t;
}

function curve(a, b, off) {
	var dx, c1, c2;
	if (Math.abs(a.x - b.x) < 1) {           /* same edge: a loop outwards */
		dx = 70 * (a.side || 1);
		c1 = [ a.x + dx, a.y - 30 + off ];
		c2 = [ b.x + dx, b.y + 30 + off ];
	}
	else {
		dx = Math.max(40, Math.abs(b.x - a.x) / 3);
		c1 = [ a.x + dx * (a.side || 1), a.y + off * 4 / 3 ];
		c2 = [ b.x + dx * (b.side || -1), b.y + off * 4 / 3 ];
	}
	var mid = [ (a.x + 3 * c1[0] + 3 * c2[0] + b.x) / 8, (a.y + 3 * c1[1] + 3 * c2[1] + b.y) / 8 ];
	return { d: 'M' + [ a.x, a.y, 'C', c1, c2, b.x, b.y ].join(' '), mid: mid };
}

function legend(y) {
	var g = el('g', { 'data-legend': '' }), x = MARGIN;
	[ 'active', 'starting', 'paused', 'failed' ].forEach(function(s) {
		g.appendChild(el('rect', { x: x, y: y - 10, width: 12, height: 12, rx: 2,
			fill: STATES[s][1], stroke: STATES[s][0], 'stroke-width': 2 }));
		g.appendChild(text(x + 17, y, STATES[s][2], { 'font-size': 11, fill: '#555' }));
		x += 30 + STATES[s][2].length * 6.5;
	});
	[ [ FLOW, 'rule match · packets' ], [ HOT, 'counting now' ], [ IDLE, 'no packets yet' ] ].forEach(function(a) {
		g.appendChild(el('line', { x1: x, y1: y - 4, x2: x + 22, y2: y - 4, stroke: a[0],
			'stroke-width': 2.5 }));
		g.appendChild(text(x + 27, y, a[1], { 'font-size': 11, fill: '#555' }));
		x += 40 + a[1].length * 6.2;
	});
	return g;
}

function paintRule(svg, id, r, prev) {
	var hot = r && r.packets != null && prev != null && r.packets > prev;
	var kind = hot ? 'h' : r && r.packets > 0 ? 'f' : 'i', colour = { h: HOT, f: FLOW, i: IDLE }[kind];
	var sel = '[data-rule="' + String(id).replace(/["\\]/g, '\\$&') + '"]';
	svg.querySelectorAll('path' + sel).forEach(function(p) {
		p.setAttribute('stroke', colour);
		p.setAttribute('stroke-width', hot ? 3 : 2);
		p.setAttribute('marker-end', 'url(#' + svg.ulMarker + kind + ')');
	});
	svg.querySelectorAll('g' + sel).forEach(function(g) {
		var label = g.querySelector('text'), box = g.querySelector('rect');
		g.setAttribute('data-packets', r && r.packets != null ? r.packets : '');
		g.setAttribute('data-hot', hot ? '1' : '');
		label.textContent = g.getAttribute('data-text') + ' · ' +
			(r && r.packets != null ? count(r.packets) : '–');
		label.setAttribute('fill', hot ? HOT : '#263238');
		var w = label.textContent.length * 6.2 + 12;
		box.setAttribute('width', w);
		box.setAttribute('x', +label.getAttribute('x') - w / 2);
		box.setAttribute('stroke', hot ? HOT : '#cfd8dc');
		g.querySelector('title').textContent = g.getAttribute('data-tip') + (r ? '\npackets ' +
			(r.packets == null ? '?' : r.packets) + ', bytes ' + (r.bytes == null ? '?' : r.bytes) : '');
	});
}

var markers = 0;

return baseclass.extend({
	__name__: 'unlite.graph',

	STATES: STATES,
	model: model,
	matchText: matchText,
	count: count,

	/* The SVG of graph document `doc` ({"forwarding-graph": ...}) with `status` (the
	 * daemon's GET /NF-FG/status/<id> or ubus status answer; may be null). */
	render: function(doc, status) {
		var m = model(doc, status), size = layout(m), id = 'ulg' + (++markers);
		var svg = el('svg', { xmlns: SVG, width: size.width, height: size.height,
			viewBox: '0 0 ' + size.width + ' ' + size.height, 'font-family': 'sans-serif',
			role: 'img', 'aria-label': 'forwarding graph ' + (m.id || ''), 'data-graph': m.id || '' });
		svg.style.maxWidth = '100%';
		svg.style.height = 'auto';
		svg.ulMarker = id;
		var defs = el('defs');
		[ [ 'f', FLOW ], [ 'h', HOT ], [ 'i', IDLE ] ].forEach(function(k) {
			defs.appendChild(el('marker', { id: id + k[0], viewBox: '0 0 10 10', refX: 9, refY: 5,
				markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' },
				[ el('path', { d: 'M0,0 L10,5 L0,10 z', fill: k[1] }) ]));
		});
		svg.appendChild(defs);
		svg.appendChild(el('rect', { x: 0, y: 0, width: size.width, height: size.height,
			fill: '#ffffff', rx: 4 }));

		var nodesLayer = el('g'), rulesLayer = el('g'), labels = el('g');
		m.order.forEach(function(n) { nodesLayer.appendChild(drawNode(n)); });

		/* arrows between the same two places share a fan: one lane each */
		var lanes = {}, arrows = [];
		m.rules.forEach(function(r) {
			r.outs.forEach(function(d) {
				var k = [ r.src.key, d.key ].sort().join(' ');
				var a = { rule: r, src: r.src, dst: d, key: k };
				(lanes[k] = lanes[k] || []).push(a);
				arrows.push(a);
			});
		});
		arrows.forEach(function(a) {
			var lane = lanes[a.key], off = (lane.indexOf(a) - (lane.length - 1) / 2) * LANE;
			var c = curve(anchor(m, a.src, a.dst), anchor(m, a.dst, a.src), off), r = a.rule;
			var tip = 'rule ' + r.id + ' (priority ' + (r.priority == null ? 'default' : r.priority) +
				')\n' + a.src.key + ' → ' + a.dst.key + '\nmatch ' + r.label;
			rulesLayer.appendChild(el('path', { d: c.d, fill: 'none', stroke: IDLE,
				'stroke-width': 2, 'data-rule': r.id, 'data-from': a.src.key, 'data-to': a.dst.key }));
			labels.appendChild(el('g', { 'data-rule': r.id, 'data-from': a.src.key,
				'data-to': a.dst.key, 'data-text': r.id + ' ' + truncate(r.label, 22), 'data-tip': tip }, [
				el('rect', { x: c.mid[0], y: c.mid[1] - 8, width: 0, height: 16, rx: 8,
					fill: '#fff', 'fill-opacity': 0.94, stroke: '#cfd8dc' }),
				text(c.mid[0], c.mid[1] + 4, '', { 'text-anchor': 'middle', 'font-size': 11 }),
				title(tip)
			]));
		});
		/* arrows under the boxes, their labels above everything */
		svg.appendChild(rulesLayer);
		svg.appendChild(nodesLayer);
		svg.appendChild(labels);
		svg.appendChild(legend(size.height - 16));
		if (m.warnings.length)
			svg.appendChild(title(m.warnings.join('\n')));
		svg.ulPrev = {};
		this.update(svg, status);
		return svg;
	},

	/* New NF states and counters into an SVG made by render(); rules whose counter grew since
	 * the last update are drawn hot. */
	update: function(svg, status) {
		var st = {}, rules = {}, prev = svg.ulPrev || {};
		((status && status.VNFs) || []).forEach(function(v) { st[v.id] = v; });
		((status && status['flow-rules']) || []).forEach(function(r) { rules[r.id] = r; });
		svg.querySelectorAll('[data-nf]').forEach(function(g) {
			paintNode(g, status ? st[g.getAttribute('data-nf')] || null : null);
		});
		var ids = {};
		svg.querySelectorAll('[data-rule]').forEach(function(g) { ids[g.getAttribute('data-rule')] = 1; });
		Object.keys(ids).forEach(function(id) {
			paintRule(svg, id, rules[id], prev[id]);
		});
		svg.ulPrev = {};
		Object.keys(rules).forEach(function(id) { svg.ulPrev[id] = rules[id].packets; });
		svg.setAttribute('data-status', (status && status.status) || '');
	},

	/* Where JSON path `path` ("$.a.b[2].c") is in JSON `text`: {start, end, exact}; when
	 * the last step is missing, the closest enclosing value (exact false); null: nowhere. */
	locate: function(text, path) {
		var segs = [], re = /\.([^.[\]]+)|\[(\d+)\]|\['([^']*)'\]/g, m, i = 0, best = null, open = [];
		if (typeof text != 'string' || !/^\$/.test(path || ''))
			return null;
		while ((m = re.exec(path)) != null)
			segs.push(m[2] != null ? +m[2] : m[1] != null ? m[1] : m[3]);

		function note(s, e, rem) {
			if (!best || rem < best.rem)
				best = { start: s, end: e, rem: rem };
		}
		function ws() { while (i < text.length && /\s/.test(text.charAt(i))) i++; }
		function str() {
			var s = i++;
			while (i < text.length && text.charAt(i) != '"')
				i += text.charAt(i) == '\\' ? 2 : 1;
			if (i++ >= text.length)
				throw 'eof';
			return JSON.parse(text.substring(s, i));
		}
		function expect(c) { ws(); if (text.charAt(i) != c) throw c; i++; }
		function value(want) {
			ws();
			var start = i, c = text.charAt(i), n = 0;
			if (c == '{' || c == '[') {
				if (want)
					open.push([ start, want.length ]);
				i++;
				ws();
				if (text.charAt(i) != (c == '{' ? '}' : ']')) {
					for (;; n++) {
						ws();
						var ks = i, key = n;
						if (c == '{') {
							if (text.charAt(i) != '"') throw 'key';
							key = str();
							expect(':');
						}
						var hit = want && want.length && want[0] === key;
						value(hit ? want.slice(1) : null);
						if (hit && want.length == 1)
							note(ks, i, 0);
						ws();
						if (text.charAt(i) == ',') { i++; continue; }
						break;
					}
				}
				expect(c == '{' ? '}' : ']');
				if (want)
					open.pop();
			}
			else if (c == '"')
				str();
			else {
				while (i < text.length && /[^,\]}\s]/.test(text.charAt(i))) i++;
				if (i == start) throw 'value';
			}
			if (want && want.length)
				note(start, i, want.length);
		}
		if (!segs.length)
			return { start: 0, end: text.length, exact: true };
		try {
			value(segs);
		}
		catch (e) {             /* a syntax error: the innermost value on the way, up to it */
			if (open.length)
				note(open[open.length - 1][0], i, open[open.length - 1][1]);
		}
		return best ? { start: best.start, end: best.end, exact: best.rem == 0 } : null;
	},

	/* Offset in `text` named by a JSON parser's message ("... (char 45)", "line 3 column 11",
	 * "at position 45"), or null. */
	position: function(text, message) {
		var m = /\(char (\d+)\)|at position (\d+)/.exec(message || '');
		if (m)
			return Math.min(+(m[1] || m[2]), text.length);
		m = /line (\d+) column (\d+)/.exec(message || '');
		if (!m)
			return null;
		var lines = text.split('\n').slice(0, +m[1] - 1);
		return Math.min(lines.join('\n').length + (lines.length ? 1 : 0) + +m[2] - 1, text.length);
	},

	/* The source lines around range {start, end} of `text`, the range marked and `message`
	 * under its last line: a compiler-style diagnostic (a <pre> element). */
	diagnostic: function(text, range, message) {
		var pre = document.createElement('pre'), start = range.start,
		    end = Math.max(range.end, range.start + 1);
		var first = text.substring(0, start).split('\n').length - 1,
		    last = text.substring(0, end).split('\n').length - 1, lines = text.split('\n'), off = 0;
		pre.className = 'ulg-diagnostic';
		Object.assign(pre.style, { background: '#fafafa', border: '1px solid #e0e0e0',
			padding: '6px 8px', overflow: 'auto', maxHeight: '16em', color: '#212121', whiteSpace: 'pre' });
		for (var n = 0; n < lines.length; n++) {
			var line = lines[n], ls = off;
			off += line.length + 1;
			if (n < first - 2 || n > last + 2)
				continue;
			var row = document.createElement('div');
			var no = document.createElement('span');
			no.textContent = ('    ' + (n + 1)).slice(-4) + '  ';
			no.style.color = '#9e9e9e';
			row.appendChild(no);
			var a = Math.max(0, Math.min(line.length, start - ls)), b = Math.max(0, Math.min(line.length, end - ls));
			row.appendChild(document.createTextNode(line.substring(0, a)));
			if (b > a || (n >= first && n <= last)) {
				var mark = document.createElement('mark');
				mark.className = 'ulg-mark';
				mark.textContent = line.substring(a, b) || ' ';
				Object.assign(mark.style, { background: '#ffcdd2', color: '#b71c1c' });
				row.appendChild(mark);
			}
			row.appendChild(document.createTextNode(line.substring(b)));
			pre.appendChild(row);
			if (n == last) {
				var msg = document.createElement('div');
				msg.className = 'ulg-message';
				msg.textContent = '      ' + line.substring(0, a).replace(/[^\t]/g, ' ') + '^ ' + message;
				Object.assign(msg.style, { color: '#c62828', fontWeight: 'bold', whiteSpace: 'pre-wrap' });
				pre.appendChild(msg);
			}
		}
		return pre;
	}
});

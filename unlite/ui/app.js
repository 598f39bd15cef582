/*
 * unlite dashboard (/ui): the daemon's REST API in a page. The drawing is graph.js, the same
 * module LuCI loads; the daemon wraps it as LuCI's loader would, with the small class helper
 * below standing in for LuCI's baseclass. The selected graph's status is polled every 2 s
 * (its counters); GET /events (graph and NF state changes) refreshes at once.
 */
'use strict';

window.unliteBaseclass = {
	extend: function(props) {
		var C = function() { if (this.__init__) this.__init__.apply(this, arguments); };
		C.prototype = props;
		return C;
	}
};

(function() {
var core, sel = null, docText = '', svg = null, tick = 0, ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
var token = sessionStorage.getItem('unlite-token') || '';

function $(id) { return document.getElementById(id); }

function h(tag, attrs, kids) {
	var n = document.createElement(tag);
	for (var k in attrs || {})
		if (k.slice(0, 2) == 'on')
			n.addEventListener(k.slice(2), attrs[k]);
		else if (attrs[k] != null)
			n.setAttribute(k, attrs[k]);
	[].concat(kids == null ? [] : kids).forEach(function(c) {
		n.appendChild(typeof c == 'object' ? c : document.createTextNode(String(c)));
	});
	return n;
}

function fill(n, kids) { n.textContent = ''; [].concat(kids).forEach(function(c) { n.appendChild(c); }); }

/* fetch → JSON; an error answer becomes an Error with the API's path, fault and detail; a
 * 401 (the daemon has tenants) shows the login */
function api(method, path, body) {
	var hd = body ? { 'Content-Type': 'application/json' } : {};
	if (token)
		hd['X-Auth-Token'] = token;
	return fetch(path, { method: method, body: body, cache: 'no-store', headers: hd }).then(function(r) {
		if (r.status == 401 && path != '/login')
			$('login').hidden = false;
		return r.text().then(function(t) {
			var j = null;
			var plain = (r.headers.get('Content-Type') || '').indexOf('text/plain') == 0;
			try { j = plain && r.ok ? t : t ? JSON.parse(t) : null; } catch (e) { j = { error: t }; }
			if (!r.ok) {
				var e = new Error((j && j.error) || r.status + ' ' + r.statusText);
				e.status = r.status;
				e.path = j && j.path;
				e.fault = j && j.fault;
				e.detail = j && j['fault-detail'];
				throw e;
			}
			return j;
		});
	});
}

function dot(status) {
	return h('span', { 'class': 'dot ' + (status == 'complete' ? 'complete' : status == 'failed' ? 'failed' : 'pending') });
}

function loadList() {
	return api('GET', '/NF-FG/').then(function(j) {
		var docs = (j && j['NF-FG']) || [];
		return Promise.all(docs.map(function(d) {
			var id = (d['forwarding-graph'] || {}).id;
			return api('GET', '/NF-FG/status/' + encodeURIComponent(id)).catch(function(e) {
				return { status: 'unknown', error: e.message };
			}).then(function(st) { return { id: id, doc: d, status: st }; });
		}));
	}).then(function(gs) {
		$('list-error').hidden = true;
		fill($('graph-list'), gs.length ? gs.map(function(g) {
			var fg = g.doc['forwarding-graph'] || {};
			return h('tr', { 'data-graph': g.id, 'class': g.id == sel ? 'selected' : null,
				onclick: function() { select(g.id); } }, [
				h('td', {}, g.id), h('td', {}, fg.name || '–'),
				h('td', {}, [ dot(g.status.status), g.status.status || '?' ]),
				h('td', {}, h('button', { type: 'button', 'data-delete': g.id, title: 'delete ' + g.id,
					onclick: function(ev) { ev.stopPropagation(); remove(g.id); } }, 'Delete'))
			]);
		}) : h('tr', {}, h('td', { colspan: 4 }, 'No graph is deployed.')));
		var ids = gs.map(function(g) { return g.id; });
		if (sel && ids.indexOf(sel) < 0)
			select(null);
		else if (!sel && ids.length)
			select(ids.indexOf(location.hash.slice(1)) >= 0 ? location.hash.slice(1) : ids[0]);
	}).catch(function(e) {
		$('list-error').hidden = false;
		$('list-error').textContent = 'Cannot list graphs: ' + e.message;
	});
}

function select(id) {
	sel = id;
	docText = '';
	svg = null;
	document.querySelectorAll('#graph-list tr').forEach(function(tr) {
		tr.classList.toggle('selected', tr.getAttribute('data-graph') == id);
	});
	if (id && location.hash.slice(1) != id)
		history.replaceState(null, '', '#' + id);
	$('graph-title').textContent = id ? 'Graph ' + id : 'No graph selected';
	fill($('svg'), []);
	fill($('faults'), []);
	$('graph-state').textContent = '';
	return id ? refresh() : Promise.resolve();
}

/* the selected graph: its document when it changed (re-layout), its status always */
function refresh() {
	var id = sel;
	if (!id)
		return Promise.resolve();
	var enc = encodeURIComponent(id);
	return Promise.all([ api('GET', '/NF-FG/' + enc), api('GET', '/NF-FG/status/' + enc) ]).then(function(r) {
		if (id != sel)
			return;
		var text = JSON.stringify(r[0]), st = r[1];
		if (text != docText || !svg) {
			docText = text;
			svg = core.render(r[0], st);
			fill($('svg'), svg);
		}
		else
			core.update(svg, st);
		var name = (r[0]['forwarding-graph'] || {}).name;
		$('graph-title').textContent = 'Graph ' + id + (name ? ' — ' + name : '');
		$('graph-state').textContent = (st.status || '?') + (st.backend ? ' · ' + st.backend + ' steering' : '');
		fill($('faults'), (st.VNFs || []).filter(function(v) { return v.fault; }).map(function(v) {
			return h('li', {}, v.id + ': ' + v.fault + (v['fault-detail'] ? ' — ' + [].concat(v['fault-detail']).join(' ') : ''));
		}).concat((st.warnings || []).map(function(w) { return h('li', { 'class': 'badge' }, w); })));
		$('live').textContent = 'live · ' + new Date().toLocaleTimeString();
		$('live').className = '';
	}).catch(function(e) {
		$('live').textContent = 'not updated: ' + e.message;
		$('live').className = 'stale';
		if (e.status == 404)
			return loadList();
	});
}

function caps() {
	return Promise.all([ api('GET', '/capabilities'), api('GET', '/healthz') ]).then(function(r) {
		var c = r[0], inf = c.infrastructure || {}, res = c.resources || {}, rows = [
			[ 'network functions', (c['functional-capabilities'] || []).map(function(f) {
				return f.name + (f.flavour ? ' (' + f.flavour + ')' : '');
			}).join(', ') || '–' ],
			[ 'steering', (inf['steering-backend'] || '?') ],
			[ 'end-point types', (inf['endpoint-types'] || []).join(', ') ],
			[ 'arch / kernel', inf.arch + ' / ' + inf.kernel ],
			[ 'CPUs', res.cpus ],
			[ 'memory free', res['memory-free-kb'] == null ? '?' : Math.round(res['memory-free-kb'] / 1024) + ' MiB of ' + Math.round(res['memory-total-kb'] / 1024) ],
			[ 'graphs / NFs', res.graphs + ' / ' + res.nfs ]
		];
		fill($('caps-list'), [].concat.apply([], rows.map(function(r) { return [ h('dt', {}, r[0]), h('dd', {}, r[1]) ]; })));
		$('node').textContent = 'version ' + r[1].version + ' · ' + inf['steering-backend'] + ' · ' + inf.arch;
	}).catch(function(e) { fill($('caps-list'), h('dd', { 'class': 'error' }, e.message)); });
}

function deploy(ev) {
	ev.preventDefault();
	var ta = $('deploy-text'), text = ta.value, id = $('deploy-id').value.trim(), out = $('deploy-result');
	ta.classList.remove('bad');
	fill(out, []);
	if (!id) {
		try { id = ((JSON.parse(text) || {})['forwarding-graph'] || {}).id || ''; } catch (e) { /* the daemon says where */ }
	}
	if (id && !ID.test(id))
		return fill(out, h('p', { 'class': 'error' }, 'Invalid graph id "' + id + '": 1-64 letters, digits, "_", "." or "-"'));
	$('deploy-button').disabled = true;
	return (id ? api('PUT', '/NF-FG/' + encodeURIComponent(id), text) : api('POST', '/NF-FG/', text)).then(function(j) {
		id = j['nffg-uuid'] || id;
		fill(out, h('p', { 'class': 'ok' }, 'Graph ' + id + (j.created === false ? ' updated.' : ' deployed.')));
		history.replaceState(null, '', '#' + id);
		sel = null;                 /* loadList selects it again: drawn anew */
		return loadList().then(caps);
	}, function(e) { showError(e, text); }).then(function() { $('deploy-button').disabled = false; });
}

/* the error next to its place: the message with its JSON path, the lines it names marked */
function showError(e, text) {
	var ta = $('deploy-text'), out = $('deploy-result');
	var range = e.path && e.path != '$' ? core.locate(text, e.path) : null;
	if (!range) {
		var at = core.position(text, e.message);
		range = at == null ? null : { start: at, end: at + 1 };
	}
	var msg = [ h('strong', {}, 'Not deployed' + (e.status ? ' (' + e.status + ')' : '') + ': '), e.message ];
	if (e.path)
		msg.push(' at ', h('span', { 'class': 'path' }, e.path));
	var kids = [ h('p', { 'class': 'error', id: 'deploy-error' }, msg) ];
	if (e.detail)
		kids.push(h('pre', { 'class': 'error' }, [].concat(e.detail).join('\n')));
	if (range) {
		kids.push(core.diagnostic(text, range, e.message));
		ta.classList.add('bad');
		ta.focus();
		ta.setSelectionRange(range.start, Math.max(range.end, range.start + 1));
		ta.scrollTop = (text.substring(0, range.start).split('\n').length - 4) * ta.scrollHeight / text.split('\n').length;
	}
	fill(out, kids);
}

function remove(id) {
	var d = $('confirm');
	$('confirm-text').textContent = 'Delete graph ' + id + '? Its network functions stop; their namespaces, ports and steering rules are removed.';
	d.returnValue = '';
	d.onclose = function() {
		if (d.returnValue != 'ok')
			return;
		api('DELETE', '/NF-FG/' + encodeURIComponent(id)).then(function() {
			fill($('deploy-result'), h('p', { 'class': 'ok' }, 'Graph ' + id + ' deleted.'));
		}, function(e) {
			fill($('deploy-result'), h('p', { 'class': 'error' }, 'Cannot delete ' + id + ': ' + e.message));
		}).then(loadList).then(caps);
	};
	d.showModal();
}

function login(ev) {
	ev.preventDefault();
	api('POST', '/login', JSON.stringify({ username: $('login-user').value, password: $('login-pass').value })).then(function(j) {
		token = typeof j == 'string' ? j : String(j);   /* the bare token (text/plain) */
		sessionStorage.setItem('unlite-token', token);
		$('login').hidden = true;
		$('login-pass').value = '';
		caps();
		loadList();
	}, function(e) { $('login-pass').value = ''; $('login-pass').placeholder = e.message; });
}

document.addEventListener('DOMContentLoaded', function() {
	core = window.unliteGraph;
	$('login').addEventListener('submit', login);
	$('deploy-form').addEventListener('submit', deploy);
	$('deploy-file').addEventListener('change', function() {
		var f = this.files[0], r = new FileReader();
		if (!f)
			return;
		r.onload = function() { $('deploy-text').value = r.result; };
		r.readAsText(f);
	});
	window.addEventListener('hashchange', function() {
		var id = location.hash.slice(1);
		if (id && id != sel)
			select(id);
	});
	caps();
	loadList();
	if (window.EventSource) {        /* state changes at once; counters by polling */
		var es = new EventSource('/events');
		/* a change's start (deploying, updating, deleting) changes no list yet: its end does */
		var progress = { deploying: 1, updating: 1, deleting: 1 };
		es.addEventListener('graph', function(ev) {
			try { if (progress[JSON.parse(ev.data).event]) return; } catch (e) { /* reload */ }
			loadList();
			caps();
		});
		es.addEventListener('nf', function(ev) {
			try { if (JSON.parse(ev.data).graph == sel) refresh(); } catch (e) { /* ignore */ }
		});
	}
	setInterval(function() {
		if (document.hidden)
			return;
		tick++;
		refresh();
		if (tick % 5 == 0)
			loadList();
		if (tick % 15 == 0)
			caps();
	}, 2000);
});
})();

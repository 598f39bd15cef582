'use strict';
'require view';
'require rpc';
'require ui';
'require dom';
'require poll';

/*
 * unlite: forwarding graphs of native network functions.
 * Everything goes through ubus object "unlite" (ACL group luci-app-unlite): list/get/status/
 * capabilities need read access, put/delete write access. A login with read access only
 * (LuCI marks the menu node "readonly": L.hasViewPermission() is false) gets a read-only page:
 * no deploy form, no delete buttons.
 * The object answers {"error": ..., "path": ...} when a call fails; unwrap() turns that into
 * an exception, and errorText() is what every caller shows of any error (LuCI's own errors
 * carry the JavaScript stack in their message: it is cut off).
 * A change that takes longer than 5 s is answered {"pending": true, "change": {...}} and goes
 * on: follow() reads `status` until the change is over and shows its real outcome (LuCI's XHR
 * gives up after 20 s, which said nothing about the deploy).
 * uhttpd's /ubus refuses a request body over 65,536 bytes: a deploy is checked before it is
 * sent and a larger graph is refused here with the way around.
 * The selected graph is drawn by the drawing core the daemon's /ui dashboard uses too
 * (/luci-static/resources/unlite/graph.js, loaded with L.require): its status is read every
 * 2 s, the list every 5 s, the capabilities every 30 s and after each change. Without that
 * file the page works as before, without the drawing.
 */

var callList = rpc.declare({ object: 'unlite', method: 'list', reject: true });
var callCapabilities = rpc.declare({ object: 'unlite', method: 'capabilities', reject: true });
var callStatus = rpc.declare({ object: 'unlite', method: 'status', params: [ 'id' ], reject: true });
var callGet = rpc.declare({ object: 'unlite', method: 'get', params: [ 'id' ], reject: true });
/* alone in its request (never batched with other calls): its size is checked before */
var callPut = rpc.declare({ object: 'unlite', method: 'put', params: [ 'id', 'graph' ], reject: true,
	nobatch: true });
var callDelete = rpc.declare({ object: 'unlite', method: 'delete', params: [ 'id' ], reject: true });

var ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
var POST_LIMIT = 65536;      /* uhttpd's UH_UBUS_MAX_POST_SIZE: a larger body is a bare "Parse error" */
var FOLLOW_EVERY = 1000;     /* ms between status reads while a change goes on */
var CAPS_EVERY = 30;         /* s between capability refreshes (they change when graphs do) */

function unwrap(res) {
	if (L.isObject(res) && res.error) {
		var err = new Error(res.error);
		err.path = res.path;
		err.status = res.status;
		err.detail = res['fault-detail'];
		throw err;
	}
	return res;
}

/* 65536 -> "65,536" */
function bytes(n) {
	return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/* The message of an error as a user reads it: without the stack LuCI's L.raise() appends
 * ("\n  at ClassConstructor.handleCallReply (...)"), LuCI's rpc failures in words. */
function errorMessage(err) {
	var s = String((err && (err.message || err.error)) || err || '?').split('\n').filter(function(line) {
		return !/^\s*at\s/.test(line);
	}).join('\n').trim();
	var m = /^RPC call to (\S+) failed with error (-?\d+): ([^\n]*)/.exec(s);
	if (m) {
		if (m[2] == '-32002')
			return _('Access denied: this login may not call %s (its ACL groups do not grant it)').format(m[1]);
		if (m[2] == '-32000')
			return _('The ubus object %s is not there: is the unlite daemon running? (/etc/init.d/unlite start)').format(m[1].split('/')[0]);
		if (m[2] == '-32700')
			return _('uhttpd refused the request to %s (over %s bytes, or not JSON)').format(m[1], bytes(POST_LIMIT));
		return _('%s (%s, error %s)').format(m[3], m[1], m[2]);
	}
	m = /^RPC call to (\S+) failed with (?:ubus code \d+|HTTP error \d+): ([^\n]*)/.exec(s);
	if (m)
		return _('%s (%s)').format(m[2], m[1]);
	if (/^XHR request timed out/.test(s))
		return _('No answer within %d s (LuCI\'s request timeout)').format((L.env && L.env.rpctimeout) || 20);
	return s;
}

function errorText(err) {
	var s = errorMessage(err);
	if (err && err.path)
		s += ' ' + _('(at %s)').format(err.path);
	if (err && err.detail)
		s += '\n' + (Array.isArray(err.detail) ? err.detail.join('\n') : err.detail);
	return s;
}

function settle(p) {
	return p.then(unwrap).then(function(v) { return { value: v }; },
		function(e) { return { error: e }; });
}

/* The bytes of the JSON-RPC request LuCI's rpc.js would send for put(id, graph): the body
 * uhttpd counts (its request id is taken as 10 digits: the largest it becomes). */
function putRequestSize(id, graph) {
	var sid = (L.env && L.env.sessionid) || '00000000000000000000000000000000';
	var body = JSON.stringify({ jsonrpc: '2.0', id: 1000000000, method: 'call',
		params: [ sid, 'unlite', 'put', { id: id, graph: graph } ] });
	return new Blob([ body ]).size;
}

function faultText(f) {
	return (f.vnf == null ? _('graph') : f.vnf) + ': ' + f.fault;
}

/* "firewall (nftables, preferred)": a function, its flavour, its other names */
function functionText(f, several) {
	var about = [];
	if (f.flavour)
		about.push(f.flavour);
	if (several && f.preferred)
		about.push(_('preferred'));
	if (f.aliases && f.aliases.length)
		about.push(_('also %s').format(f.aliases.join(', ')));
	return f.name + (about.length ? ' (' + about.join('; ') + ')' : '');
}

return view.extend({
	load: function() {
		return Promise.all([ settle(callList()), settle(callCapabilities()),
			L.require('unlite.graph').catch(function(e) { return null; }) ]);
	},

	renderGraphs: function(res) {
		if (res.error)
			return E('p', { 'class': 'alert-message warning' }, errorText(res.error));

		var graphs = res.value.graphs || [];
		this.graphs = {};
		graphs.forEach(L.bind(function(g) { this.graphs[g.id] = g; }, this));
		if (!graphs.length)
			return E('p', { 'class': 'cbi-section-descr' }, _('No graph is deployed.'));

		var rows = [ E('tr', { 'class': 'tr table-titles' }, [
			E('th', { 'class': 'th' }, _('Graph')),
			E('th', { 'class': 'th' }, _('Name')),
			E('th', { 'class': 'th' }, _('Status')),
			E('th', { 'class': 'th' }, _('NFs')),
			E('th', { 'class': 'th' }, _('Flow rules')),
			E('th', { 'class': 'th' }, _('Faults')),
			E('th', { 'class': 'th cbi-section-actions' }, '')
		]) ];

		if (!this.selected || !this.graphs[this.selected])
			this.select(graphs[0].id);

		graphs.forEach(L.bind(function(g) {
			var actions = [
				E('button', {
					'class': 'cbi-button cbi-button-action',
					'click': ui.createHandlerFn(this, 'handleShow', g.id)
				}, _('Show')),
				' ',
				E('button', {
					'class': 'cbi-button',
					'click': ui.createHandlerFn(this, 'handleStatus', g.id)
				}, _('Status'))
			];
			if (this.writable)
				actions.push(' ', E('button', {
					'class': 'cbi-button cbi-button-remove',
					'data-delete': g.id,
					'click': ui.createHandlerFn(this, 'handleDelete', g.id)
				}, _('Delete')));
			rows.push(E('tr', { 'class': 'tr', 'data-graph': g.id,
				'style': g.id == this.selected ? 'font-weight:bold' : '' }, [
				E('td', { 'class': 'td' }, g.id),
				E('td', { 'class': 'td' }, g.name || '-'),
				E('td', { 'class': 'td', 'data-status': g.status || '' }, g.status || '?'),
				E('td', { 'class': 'td' }, String(g.vnfs)),
				E('td', { 'class': 'td' }, String(g['flow-rules'])),
				E('td', { 'class': 'td unlite-faults' }, (g.faults || []).map(faultText).join(', ') || '-'),
				E('td', { 'class': 'td cbi-section-actions' }, actions)
			]));
		}, this));

		return E('table', { 'class': 'table' }, rows);
	},

	renderCapabilities: function(res) {
		if (res.error)
			return E('p', { 'class': 'alert-message warning' }, errorText(res.error));

		var caps = res.value, infra = caps.infrastructure || {}, rsc = caps.resources || {};
		var list = caps['functional-capabilities'] || [], names = {};
		list.forEach(function(f) { names[f.name] = (names[f.name] || 0) + 1; });
		var funcs = list.map(function(f) { return functionText(f, names[f.name] > 1); });
		var kv = [
			[ _('Network functions'), funcs.join(', ') || '-', 'functions' ],
			[ _('Steering backend'), infra['steering-backend'] || '-' ],
			[ _('End-point types'), (infra['endpoint-types'] || []).join(', ') || '-' ],
			[ _('Architecture / kernel'), (infra.arch || '?') + ' / ' + (infra.kernel || '?') ],
			[ _('Graphs / NFs running'), (rsc.graphs || 0) + ' / ' + (rsc.nfs || 0), 'running' ],
			[ _('Free memory'), rsc['memory-free-kb'] != null ? '%1024.2mB'.format(rsc['memory-free-kb'] * 1024) : '?' ]
		];

		return E('table', { 'class': 'table' }, kv.map(function(r) {
			return E('tr', { 'class': 'tr', 'data-cap': r[2] || null }, [
				E('td', { 'class': 'td left', 'width': '33%' }, r[0]),
				E('td', { 'class': 'td left' }, r[1])
			]);
		}));
	},

	refresh: function() {
		return settle(callList()).then(L.bind(function(res) {
			if (res.error || !(res.value.graphs || []).length)
				this.select(null);
			var box = document.getElementById('unlite-graphs');
			if (box)
				dom.content(box, this.renderGraphs(res));
		}, this));
	},

	refreshCapabilities: function() {
		return settle(callCapabilities()).then(L.bind(function(res) {
			var box = document.getElementById('unlite-caps');
			if (box)
				dom.content(box, this.renderCapabilities(res));
		}, this));
	},

	/* after a change: the list, the drawing and the capabilities (graphs / NFs running) */
	refreshAll: function() {
		return Promise.all([ this.refresh(), this.refreshCapabilities() ]);
	},

	/* the drawing: graph `id` laid out anew when its document changed, else new states and
	 * counters only; null: no drawing (the graph is gone) */
	select: function(id) {
		if (id == this.selected && (id == null || this.svg))
			return;
		this.selected = id;
		this.docText = null;
		this.svg = null;
		var box = document.getElementById('unlite-drawing'),
		    title = document.getElementById('unlite-drawing-title');
		if (title)
			title.textContent = id ? _('Graph %s').format(id) : _('Graph');
		if (box)
			dom.content(box, id ? E('em', {}, _('Loading graph %s…').format(id)) : E('em', {}, _('No graph selected.')));
		if (id)
			this.refreshDrawing();
	},

	refreshDrawing: function() {
		var id = this.selected, box = document.getElementById('unlite-drawing');
		if (!id || !box)
			return Promise.resolve();
		return Promise.all([ settle(callGet(id)), settle(callStatus(id)) ]).then(L.bind(function(r) {
			if (id != this.selected)
				return;
			var title = document.getElementById('unlite-drawing-title');
			var st = r[1].value, err = r[0].error || r[1].error;
			if (st && st.status == 'deploying' && err) {       /* a first deploy under way */
				title.textContent = _('Graph %s').format(id) + ' — deploying…';
				return dom.content(box, E('em', {}, _('Graph %s is being deployed…').format(id)));
			}
			if (err) {
				title.textContent = _('Graph %s').format(id);
				if (err.status == 404) {         /* gone since the list was read */
					dom.content(box, E('em', {}, _('Graph %s is not there any more.').format(id)));
					return this.refresh();
				}
				return dom.content(box, E('p', { 'class': 'alert-message warning' }, errorText(err)));
			}
			title.textContent = _('Graph %s').format(id) + ' — ' + (st.status || '?');
			if (!this.core)
				return dom.content(box, E('pre', {}, JSON.stringify(st, null, 2)));
			var text = JSON.stringify(r[0].value);
			if (text != this.docText || !this.svg) {
				this.docText = text;
				this.svg = this.core.render(r[0].value, st);
				dom.content(box, this.svg);
			}
			else
				this.core.update(this.svg, st);
		}, this));
	},

	handleShow: function(id) {
		this.select(id);
		return this.refresh();
	},

	handleStatus: function(id) {
		return settle(callStatus(id)).then(function(res) {
			ui.showModal(_('Graph %s').format(id), [
				res.error ? E('p', { 'class': 'alert-message warning' }, errorText(res.error))
					: E('pre', {}, JSON.stringify(res.value, null, 2)),
				E('div', { 'class': 'right' }, E('button', {
					'class': 'cbi-button', 'click': ui.hideModal }, _('Close')))
			]);
		});
	},

	handleDelete: function(id) {
		if (!this.writable)
			return;
		if (!confirm(_('Delete graph %s? Its network functions stop and their namespaces, ports and steering rules are removed.').format(id)))
			return;
		var prior = this.priorChange(id);
		return settle(callDelete(id)).then(L.bind(function(res) {
			if (res.error && /timed out/.test(res.error.message || ''))
				return this.follow(id, 'delete', null, prior, null);
			if (res.error)
				ui.addNotification(_('Cannot delete %s').format(id), E('pre', {}, errorText(res.error)), 'error');
			else if (res.value.pending)
				return this.follow(id, 'delete', res.value.change, prior, null);
			else
				ui.addNotification(null, E('p', _('Graph %s deleted.').format(id)), 'info');
			return this.refreshAll();
		}, this));
	},

	/* `started` of the graph's last change as the list showed it (0: none) */
	priorChange: function(id) {
		var g = (this.graphs || {})[id];
		return (g && g.change && g.change.started) || 0;
	},

	handleDeploy: function() {
		var text = document.getElementById('unlite-nffg').value,
		    idField = document.getElementById('unlite-id'),
		    out = document.getElementById('unlite-deploy-result'),
		    graph, id, size;

		if (!this.writable)
			return;
		dom.content(out, '');
		try {
			graph = JSON.parse(text);
		}
		catch (e) {
			dom.content(out, E('pre', { 'class': 'alert-message error' }, _('Not JSON: %s').format(e.message)));
			this.markError(text, e, out);
			return;
		}
		id = idField.value.trim() ||
			(L.isObject(graph) && L.isObject(graph['forwarding-graph']) ? graph['forwarding-graph'].id : '');
		if (!ID_RE.test(id || '')) {
			dom.content(out, E('pre', { 'class': 'alert-message error' },
				_('Give a graph id (1-64 letters, digits, "_", "." or "-"), here or as forwarding-graph.id')));
			return;
		}
		size = putRequestSize(id, graph);
		if (size > POST_LIMIT) {
			dom.content(out, E('pre', { 'class': 'alert-message error', 'id': 'unlite-too-big' },
				_('Not sent: this graph makes a request of %s bytes, and uhttpd\'s /ubus (which LuCI goes through) refuses any request over %s bytes.\nDeploy it another way: on the router, save it to a file and run "unlite graph apply FILE"; or PUT it to /NF-FG/%s on unlite\'s REST API.')
					.format(bytes(size), bytes(POST_LIMIT), id)));
			return;
		}

		var prior = this.priorChange(id), update = !!(this.graphs || {})[id];
		dom.content(out, E('p', { 'class': 'alert-message notice' }, _('Sending graph %s…').format(id)));
		return settle(callPut(id, graph)).then(L.bind(function(res) {
			if (res.error && /timed out/.test(res.error.message || ''))   /* it may go on */
				return this.follow(id, 'put', null, prior, { text: text, out: out, update: update });
			if (res.error)
				return this.showDeployError(text, out, res.error, update);
			if (res.value.pending)
				return this.follow(id, 'put', res.value.change, prior,
					{ text: text, out: out, update: res.value.status == 'updating' });
			return this.showDeployed(id, out, !res.value.created);
		}, this));
	},

	showDeployed: function(id, out, updated) {
		this.select(id);
		dom.content(out, E('p', { 'class': 'alert-message notice', 'data-outcome': 'done' },
			(updated ? _('Graph %s updated.') : _('Graph %s deployed.')).format(id)));
		return this.refreshAll();
	},

	showDeployError: function(text, out, err, update) {
		dom.content(out, E('pre', { 'class': 'alert-message error', 'data-outcome': 'failed' },
			(update ? _('Not updated: %s') : _('Not deployed: %s')).format(errorText(err))));
		this.markError(text, err, out);
		return this.refreshAll();
	},

	/* A change of graph `id` that goes on after its call was answered (`change`: the
	 * answer's record) or was not answered at all (null: the first change that started after
	 * `prior` is taken): its progress, then its outcome, from `status` read every second
	 * for as long as it takes (a deploy may take minutes: its NFs' own timeouts bound it).
	 * `deploy`: {text, out, update} of a put. */
	follow: function(id, op, change, prior, deploy) {
		/* one follower per graph: a newer change of the same graph takes over */
		this.following = this.following || {};
		var token = this.following[id] = {}, t0 = Date.now(), started = change && change.started;
		var say = L.bind(function(msg) {
			if (deploy)
				dom.content(deploy.out, E('p', { 'class': 'alert-message notice', 'data-outcome': 'pending' }, msg));
		}, this);
		var going = op == 'delete' ? _('Graph %s deleting…') : deploy.update ? _('Graph %s updating…') : _('Graph %s deploying…');
		var note = change ? _('the router goes on after its first answer; following its status')
			: _('no answer in time, but it may go on; following its status');

		var finish = L.bind(function(st, c) {
			var failed = c.state == 'failed';
			var err = failed ? { message: c.error || _('failed'), path: c.path } : null;
			if (op == 'delete') {
				if (failed)
					ui.addNotification(_('Cannot delete %s').format(id), E('pre', {}, errorText(err)), 'error');
				else
					ui.addNotification(null, E('p', _('Graph %s deleted.').format(id)), 'info');
				return this.refreshAll();
			}
			return failed ? this.showDeployError(deploy.text, deploy.out, err, deploy.update)
				: this.showDeployed(id, deploy.out, deploy.update);
		}, this);

		var step = L.bind(function() {
			if (this.following[id] !== token)
				return;
			callStatus(id).then(L.bind(function(st) {
				if (this.following[id] !== token)
					return;
				var c = (L.isObject(st) && st.change) || {};
				var ours = c.op == op && (started ? c.started == started : (c.started || 0) > prior);
				if (ours && (c.state == 'done' || c.state == 'failed'))
					return finish(st, c);
				if (started && c.started > started) {
					say(_('Another change of graph %s started meanwhile: see the list.').format(id));
					return this.refreshAll();
				}
				if (!c.op && L.isObject(st) && st.error) {     /* no record of any change */
					if (deploy)
						return this.showDeployError(deploy.text, deploy.out,
							{ message: st.error, path: st.path }, deploy.update);
					return this.refreshAll();
				}
				say(going.format(id) + ' ' + _('(%d s; %s)').format(Math.round((Date.now() - t0) / 1000), note));
				window.setTimeout(step, FOLLOW_EVERY);
			}, this), L.bind(function(e) {          /* no answer now: ask again */
				say(going.format(id) + ' ' + _('(status not read: %s; asking again)').format(errorMessage(e)));
				window.setTimeout(step, 2 * FOLLOW_EVERY);
			}, this));
		}, this);

		say(going.format(id) + ' (' + note + ')');
		if (op == 'delete')
			ui.addNotification(null, E('p', going.format(id) + ' (' + note + ')'), 'info');
		this.refresh();
		step();
	},

	/* the place of a deploy error in the pasted text: marked below it and selected in it
	 * (the graph went to ubus as an object: its paths start at "$" of that text too) */
	markError: function(text, err, out) {
		if (!this.core)
			return;
		var path = String(err.path || '').replace(/^graph(?=[.[]|$)/, '$');
		var range = /^\$./.test(path) ? this.core.locate(text, path) : null;
		if (!range) {
			var at = this.core.position(text, err.message);
			range = at == null ? null : { start: at, end: at + 1 };
		}
		if (!range)
			return;
		out.appendChild(this.core.diagnostic(text, range, errorMessage(err)));
		var ta = document.getElementById('unlite-nffg');
		ta.focus();
		ta.setSelectionRange(range.start, Math.max(range.end, range.start + 1));
		ta.scrollTop = (text.substring(0, range.start).split('\n').length - 4) * ta.scrollHeight / text.split('\n').length;
	},

	renderDeploy: function() {
		if (!this.writable)
			return E('div', { 'class': 'cbi-section', 'id': 'unlite-deploy' }, [
				E('h3', {}, _('Deploy a graph')),
				E('p', { 'class': 'alert-message notice', 'id': 'unlite-readonly' },
					_('Read-only access: this login may look at the graphs but not deploy or delete them (that needs write access to the ACL group luci-app-unlite).'))
			]);
		return E('div', { 'class': 'cbi-section', 'id': 'unlite-deploy' }, [
			E('h3', {}, _('Deploy a graph')),
			E('div', { 'class': 'cbi-section-descr' },
				_('Paste an NF-FG document. Deploying to an existing id updates that graph; only what changed is touched. Up to %s bytes (uhttpd\'s limit); larger graphs: "unlite graph apply FILE" on the router.').format(bytes(POST_LIMIT))),
			E('div', { 'class': 'cbi-value' }, [
				E('label', { 'class': 'cbi-value-title', 'for': 'unlite-id' }, _('Graph id')),
				E('div', { 'class': 'cbi-value-field' },
					E('input', { 'id': 'unlite-id', 'type': 'text', 'class': 'cbi-input-text',
						'placeholder': _('default: forwarding-graph.id') }))
			]),
			E('textarea', { 'id': 'unlite-nffg', 'rows': 16, 'style': 'width:100%; font-family:monospace',
				'placeholder': '{"forwarding-graph": {"id": "home", "VNFs": [...], "end-points": [...], "big-switch": {"flow-rules": [...]}}}' }),
			E('div', { 'class': 'right' },
				E('button', { 'class': 'cbi-button cbi-button-apply', 'id': 'unlite-deploy-button',
					'click': ui.createHandlerFn(this, 'handleDeploy') }, _('Deploy'))),
			E('div', { 'id': 'unlite-deploy-result' })
		]);
	},

	render: function(data) {
		this.core = data[2];
		/* LuCI: true with write access to the menu node's ACL groups, false read-only */
		this.writable = !!L.hasViewPermission();
		var view = E('div', { 'class': 'cbi-map', 'data-writable': this.writable ? '1' : '0' }, [
			E('h2', {}, _('Network functions')),
			E('div', { 'class': 'cbi-map-descr' },
				_('Forwarding graphs (NF-FG) of native network functions run by the unlite daemon.')),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, _('Graphs')),
				E('div', { 'id': 'unlite-graphs' }, this.renderGraphs(data[0]))
			]),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', { 'id': 'unlite-drawing-title' }, this.selected ? _('Graph %s').format(this.selected) : _('Graph')),
				E('div', { 'id': 'unlite-drawing', 'style': 'overflow:auto' },
					E('em', {}, this.selected ? _('Loading graph %s…').format(this.selected) : _('No graph selected.')))
			]),

			this.renderDeploy(),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, _('Capabilities')),
				E('div', { 'id': 'unlite-caps' }, this.renderCapabilities(data[1]))
			])
		]);

		poll.add(L.bind(this.refresh, this), 5);
		poll.add(L.bind(this.refreshDrawing, this), 2);
		poll.add(L.bind(this.refreshCapabilities, this), CAPS_EVERY);
		if (this.selected)
			window.setTimeout(L.bind(this.refreshDrawing, this), 0);
		return view;
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

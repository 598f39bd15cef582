'use strict';
'require view';
'require rpc';
'require ui';
'require dom';
'require poll';

/*
 * unlite: forwarding graphs of native network functions.
 * Everything goes through ubus object "unlite" (rpcd plugin /usr/libexec/rpcd/unlite, ACL
 * luci-app-unlite): list/status/capabilities need read access, put/delete write access.
 * The plugin answers {"error": ..., "path": ...} when a call fails; unwrap() turns that into an
 * exception so every caller shows it the same way.
 * The selected graph is drawn by the drawing core the daemon's /ui dashboard uses too
 * (/luci-static/resources/unlite/graph.js, loaded with L.require): its status is read every
 * 2 s. Without that file the page works as before, without the drawing.
 */

var callList = rpc.declare({ object: 'unlite', method: 'list', reject: true });
var callCapabilities = rpc.declare({ object: 'unlite', method: 'capabilities', reject: true });
var callStatus = rpc.declare({ object: 'unlite', method: 'status', params: [ 'id' ], reject: true });
var callGet = rpc.declare({ object: 'unlite', method: 'get', params: [ 'id' ], reject: true });
var callPut = rpc.declare({ object: 'unlite', method: 'put', params: [ 'id', 'graph' ], reject: true });
var callDelete = rpc.declare({ object: 'unlite', method: 'delete', params: [ 'id' ], reject: true });

var ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function unwrap(res) {
	if (L.isObject(res) && res.error) {
		var err = new Error(res.error);
		err.path = res.path;
		err.detail = res['fault-detail'];
		throw err;
	}
	return res;
}

function errorText(err) {
	var s = err.message || String(err);
	if (err.path)
		s += ' ' + _('(at %s)').format(err.path);
	if (err.detail)
		s += '\n' + (Array.isArray(err.detail) ? err.detail.join('\n') : err.detail);
	return s;
}

function settle(p) {
	return p.then(unwrap).then(function(v) { return { value: v }; },
		function(e) { return { error: e }; });
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

		if (!this.selected || !graphs.some(L.bind(function(g) { return g.id == this.selected; }, this)))
			this.select(graphs[0].id);

		graphs.forEach(L.bind(function(g) {
			rows.push(E('tr', { 'class': 'tr', 'data-graph': g.id,
				'style': g.id == this.selected ? 'font-weight:bold' : '' }, [
				E('td', { 'class': 'td' }, g.id),
				E('td', { 'class': 'td' }, g.name || '-'),
				E('td', { 'class': 'td' }, g.status || '?'),
				E('td', { 'class': 'td' }, String(g.vnfs)),
				E('td', { 'class': 'td' }, String(g['flow-rules'])),
				E('td', { 'class': 'td' }, (g.faults || []).map(function(f) {
					return f.vnf + ': ' + f.fault;
				}).join(', ') || '-'),
				E('td', { 'class': 'td cbi-section-actions' }, [
					E('button', {
						'class': 'cbi-button cbi-button-action',
						'click': ui.createHandlerFn(this, 'handleShow', g.id)
					}, _('Show')),
					' ',
					E('button', {
						'class': 'cbi-button',
						'click': ui.createHandlerFn(this, 'handleStatus', g.id)
					}, _('Status')),
					' ',
					E('button', {
						'class': 'cbi-button cbi-button-remove',
						'click': ui.createHandlerFn(this, 'handleDelete', g.id)
					}, _('Delete'))
				])
			]));
		}, this));

		return E('table', { 'class': 'table' }, rows);
	},

	renderCapabilities: function(res) {
		if (res.error)
			return E('p', { 'class': 'alert-message warning' }, errorText(res.error));

		var caps = res.value, infra = caps.infrastructure || {}, rsc = caps.resources || {};
		var funcs = (caps['functional-capabilities'] || []).map(function(f) {
			return f.name + (f.aliases && f.aliases.length ? ' (' + f.aliases.join(', ') + ')' : '');
		});
		var kv = [
			[ _('Network functions'), funcs.join(', ') || '-' ],
			[ _('Steering backend'), infra['steering-backend'] || '-' ],
			[ _('End-point types'), (infra['endpoint-types'] || []).join(', ') || '-' ],
			[ _('Architecture / kernel'), (infra.arch || '?') + ' / ' + (infra.kernel || '?') ],
			[ _('Graphs / NFs running'), (rsc.graphs || 0) + ' / ' + (rsc.nfs || 0) ],
			[ _('Free memory'), rsc['memory-free-kb'] != null ? '%1024.2mB'.format(rsc['memory-free-kb'] * 1024) : '?' ]
		];

		return E('table', { 'class': 'table' }, kv.map(function(r) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td left', 'width': '33%' }, r[0]),
				E('td', { 'class': 'td left' }, r[1])
			]);
		}));
	},

	refresh: function() {
		return settle(callList()).then(L.bind(function(res) {
			if (res.error || !(res.value.graphs || []).length)
				this.select(null);
			dom.content(document.getElementById('unlite-graphs'), this.renderGraphs(res));
		}, this));
	},

	/* the drawing: graph `id` laid out anew when its document changed, else new states and
	 * counters only */
	select: function(id) {
		this.selected = id;
		this.docText = null;
		this.svg = null;
		var box = document.getElementById('unlite-drawing');
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
			var err = r[0].error || r[1].error;
			if (err)
				return dom.content(box, E('p', { 'class': 'alert-message warning' }, errorText(err)));
			document.getElementById('unlite-drawing-title').textContent =
				_('Graph %s').format(id) + ' — ' + (r[1].value.status || '?');
			if (!this.core)
				return dom.content(box, E('pre', {}, JSON.stringify(r[1].value, null, 2)));
			var text = JSON.stringify(r[0].value);
			if (text != this.docText || !this.svg) {
				this.docText = text;
				this.svg = this.core.render(r[0].value, r[1].value);
				dom.content(box, this.svg);
			}
			else
				this.core.update(this.svg, r[1].value);
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
		if (!confirm(_('Delete graph %s? Its network functions stop and their namespaces, ports and steering rules are removed.').format(id)))
			return;
		return settle(callDelete(id)).then(L.bind(function(res) {
			if (res.error)
				ui.addNotification(_('Cannot delete %s').format(id), E('pre', {}, errorText(res.error)), 'error');
			else
				ui.addNotification(null, E('p', _('Graph %s deleted.').format(id)), 'info');
			return this.refresh();
		}, this));
	},

	handleDeploy: function() {
		var text = document.getElementById('unlite-nffg').value,
		    idField = document.getElementById('unlite-id'),
		    out = document.getElementById('unlite-deploy-result'),
		    graph, id;

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

		return settle(callPut(id, graph)).then(L.bind(function(res) {
			if (res.error) {
				dom.content(out, E('pre', { 'class': 'alert-message error' },
					_('Not deployed: %s').format(errorText(res.error))));
				this.markError(text, res.error, out);
				return;
			}
			this.select(id);
			dom.content(out, E('p', { 'class': 'alert-message notice' },
				(res.value.created ? _('Graph %s deployed.') : _('Graph %s updated.')).format(id)));
			return this.refresh();
		}, this));
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
		out.appendChild(this.core.diagnostic(text, range, err.message));
		var ta = document.getElementById('unlite-nffg');
		ta.focus();
		ta.setSelectionRange(range.start, Math.max(range.end, range.start + 1));
		ta.scrollTop = (text.substring(0, range.start).split('\n').length - 4) * ta.scrollHeight / text.split('\n').length;
	},

	render: function(data) {
		this.core = data[2];
		var view = E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, _('Network functions')),
			E('div', { 'class': 'cbi-map-descr' },
				_('Forwarding graphs (NF-FG) of native network functions run by the unlite daemon.')),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, _('Graphs')),
				E('div', { 'id': 'unlite-graphs' }, this.renderGraphs(data[0]))
			]),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', { 'id': 'unlite-drawing-title' }, _('Graph')),
				E('div', { 'id': 'unlite-drawing', 'style': 'overflow:auto' },
					E('em', {}, this.selected ? _('Loading graph %s…').format(this.selected) : _('No graph selected.')))
			]),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, _('Deploy a graph')),
				E('div', { 'class': 'cbi-section-descr' },
					_('Paste an NF-FG document. Deploying to an existing id updates that graph; only what changed is touched.')),
				E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title', 'for': 'unlite-id' }, _('Graph id')),
					E('div', { 'class': 'cbi-value-field' },
						E('input', { 'id': 'unlite-id', 'type': 'text', 'class': 'cbi-input-text',
							'placeholder': _('default: forwarding-graph.id') }))
				]),
				E('textarea', { 'id': 'unlite-nffg', 'rows': 16, 'style': 'width:100%; font-family:monospace',
					'placeholder': '{"forwarding-graph": {"id": "home", "VNFs": [...], "end-points": [...], "big-switch": {"flow-rules": [...]}}}' }),
				E('div', { 'class': 'right' },
					E('button', { 'class': 'cbi-button cbi-button-apply',
						'click': ui.createHandlerFn(this, 'handleDeploy') }, _('Deploy'))),
				E('div', { 'id': 'unlite-deploy-result' })
			]),

			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, _('Capabilities')),
				this.renderCapabilities(data[1])
			])
		]);

		poll.add(L.bind(this.refresh, this), 5);
		poll.add(L.bind(this.refreshDrawing, this), 2);
		if (this.selected)
			window.setTimeout(L.bind(this.refreshDrawing, this), 0);
		return view;
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

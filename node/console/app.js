// The gongjian web console: one page over the node's HTTP API (/v1). No
// build step and no third-party code: served from the binary as is.
// Every text from the API goes into the page as text (never as HTML).
'use strict';
(() => {
  const I18N = {
    zh: {
      title: '共建 · 控制台', overview: '总览', units: '单位与同步', lists: '清单', grids: '网格',
      agreements: '共建协议', report: '月报', write: '登记', audit: '审计日志', users: '用户', account: '我的账户',
      login: '登录', logout: '退出', name: '用户名', password: '密码', lang: 'English',
      district: '区', street: '街道', community: '社区', resident: '驻区单位', self: '本节点',
      administrator: '管理员', operator: '操作员', viewer: '查看者',
      units_total: '单位总数', in_sync: '已同步', behind: '待同步', unknown: '未知',
      open_needs: '待认领需求', problems_found: '发现问题', problems_resolved: '解决问题',
      unclaimed_projects: '未认领项目', urgent_unclaimed: '急办未认领', expiring: '30天内到期协议',
      peers_connected: '已连接节点', chart_title: '各{0}问题发现与解决', found: '发现', resolved: '解决',
      urgent_list: '急办项目（未认领）', expiring_list: '即将到期的共建协议', none: '暂无',
      unit: '单位', kind: '类型', street_col: '所属街道', last_heard: '最近联系', documents: '文档',
      changes_held: '已收变更', lacking: '待取', sync: '同步状态', link: '连接', pending: '待同步文档',
      direct: '直连', relayed: '中继', disconnected: '未连接', all: '全部', search: '搜索',
      unknown_note: '“未知”表示尚未收到该单位的状态通告，不代表已同步。',
      list_need: '需求清单', list_resource: '资源清单', list_service: '服务清单', list_project: '项目清单',
      list_responsibility: '责任清单', list_problem: '问题清单', list_wish: '微心愿', list_whistle: '吹哨',
      status: '状态', category: '类别', area: '片区', title_col: '标题', by: '登记人', created: '登记时间',
      acts: '认领/响应', provenance: '来源', actions: '操作', urgent: '急办', claimed: '已认领', unclaimed: '未认领',
      st_open: '待认领', st_in_progress: '办理中', st_resolved: '已解决', st_closed: '已关闭',
      matches: '匹配资源', more: '加载更多', export_csv: '导出 CSV', export_xlsx: '导出 Excel',
      claim: '认领', respond: '报到', set_status: '改状态', sign: '签署', note_prompt: '备注（可空）',
      signed_by: '签名节点', change: '变更', conflict: '并发修改',
      parties: '参与方', services: '服务', term: '期限', days_left: '剩余天数', contact: '联系人',
      ag_draft: '草拟', ag_signed: '已签订', ag_active: '履行中', ag_expired: '已到期', ag_terminated: '已终止',
      changed_after: '签署后已改动', households: '户数', members: '党员', posts: '岗位', compounds: '小区', resident_units: '驻区单位',
      month: '月份', print: '打印', report_title: '{0} {1} 共建工作月报', by_level: '问题发现与解决（按层级）',
      by_area: '问题发现与解决（按区域）', level: '层级', lists_fig: '清单情况', new: '新增', claims: '认领',
      open_at_end: '月末未办结', ag_fig: '共建协议', signatures: '本月签署', expiring_30: '30天内到期',
      generated: '生成于 {0}，{1}（{2}）', acting_as: '您正以 {0}（{1}）的身份登记：记录由本节点的密钥签名，并记下登记人 {2}。',
      add_record: '登记一条记录', list: '清单', description: '说明', submit: '提交', added: '已登记：{0}',
      time: '时间', person: '人员', role: '角色', action: '操作', detail: '详情',
      add_user: '添加用户', display_name: '显示名', disable: '停用', enable: '启用', remove: '删除',
      disabled: '已停用', saved: '已保存', confirm_remove: '删除用户 {0}？', old_password: '原密码', new_password: '新密码',
      change_password: '修改密码', session_ended: '会话已结束，请重新登录', bad_login: '用户名或密码错误',
      lv_grid: '网格', lv_zone: '片区', lv_community: '社区', lv_street: '街道', lv_district: '区',
      gl_zone: '片区', gl_residential: '居民网格', gl_micro: '微网格', gl_building: '楼栋',
      locked: '该用户名连续输错密码，已暂时锁定，请稍后再试', busy: '该用户名正在验证，请稍后重试',
      read_only: '当前角色只能查看。', total: '合计', items_count: '共 {0} 条', loading: '加载中…', scope: '范围',
    },
    en: {
      title: 'gongjian · console', overview: 'Overview', units: 'Units & sync', lists: 'Lists', grids: 'Grids',
      agreements: 'Agreements', report: 'Monthly report', write: 'Add', audit: 'Audit log', users: 'Users', account: 'My account',
      login: 'Log in', logout: 'Log out', name: 'User name', password: 'Password', lang: '中文',
      district: 'District', street: 'Street', community: 'Community', resident: 'Resident unit', self: 'this node',
      administrator: 'administrator', operator: 'operator', viewer: 'viewer',
      units_total: 'Units', in_sync: 'In sync', behind: 'Behind', unknown: 'Unknown',
      open_needs: 'Open needs', problems_found: 'Problems found', problems_resolved: 'Problems resolved',
      unclaimed_projects: 'Unclaimed projects', urgent_unclaimed: 'Urgent, unclaimed', expiring: 'Agreements ending in 30 days',
      peers_connected: 'Peers connected', chart_title: 'Problems found and resolved per {0}', found: 'found', resolved: 'resolved',
      urgent_list: 'Urgent projects (unclaimed)', expiring_list: 'Agreements ending soon', none: 'None',
      unit: 'Unit', kind: 'Kind', street_col: 'Street', last_heard: 'Last heard', documents: 'Documents',
      changes_held: 'Changes held', lacking: 'Missing', sync: 'Sync', link: 'Link', pending: 'Pending docs',
      direct: 'direct', relayed: 'relayed', disconnected: 'not connected', all: 'All', search: 'Search',
      unknown_note: '"Unknown": no state announcement heard from the unit yet; it does not mean in sync.',
      list_need: 'Needs', list_resource: 'Resources', list_service: 'Services', list_project: 'Projects',
      list_responsibility: 'Responsibilities', list_problem: 'Problems', list_wish: 'Micro-wishes', list_whistle: 'Whistles',
      status: 'Status', category: 'Category', area: 'Area', title_col: 'Title', by: 'Recorded by', created: 'Recorded',
      acts: 'Claims / responses', provenance: 'Provenance', actions: 'Actions', urgent: 'urgent', claimed: 'claimed', unclaimed: 'unclaimed',
      st_open: 'open', st_in_progress: 'in progress', st_resolved: 'resolved', st_closed: 'closed',
      matches: 'Matching resources', more: 'Load more', export_csv: 'Export CSV', export_xlsx: 'Export Excel',
      claim: 'Claim', respond: 'Respond', set_status: 'Set status', sign: 'Sign', note_prompt: 'Note (optional)',
      signed_by: 'signed by node of', change: 'change', conflict: 'concurrent edit',
      parties: 'Parties', services: 'Services', term: 'Term', days_left: 'Days left', contact: 'Contact',
      ag_draft: 'draft', ag_signed: 'signed', ag_active: 'active', ag_expired: 'expired', ag_terminated: 'terminated',
      changed_after: 'changed after signing', households: 'households', members: 'members', posts: 'posts', compounds: 'compounds', resident_units: 'resident units',
      month: 'Month', print: 'Print', report_title: '{0}: co-building report, {1}', by_level: 'Problems found and resolved, per level',
      by_area: 'Problems found and resolved, per area', level: 'Level', lists_fig: 'Lists', new: 'new', claims: 'claimed',
      open_at_end: 'open at month end', ag_fig: 'Agreements', signatures: 'signatures this month', expiring_30: 'ending within 30 days',
      generated: 'Generated {0} by {1} ({2})', acting_as: 'You record as {0} ({1}): this node\'s key signs the record, and it names you, {2}.',
      add_record: 'Add a record', list: 'List', description: 'Description', submit: 'Submit', added: 'Recorded: {0}',
      time: 'Time', person: 'Person', role: 'Role', action: 'Action', detail: 'Detail',
      add_user: 'Add a user', display_name: 'Display name', disable: 'Disable', enable: 'Enable', remove: 'Remove',
      disabled: 'disabled', saved: 'Saved', confirm_remove: 'Remove user {0}?', old_password: 'Current password', new_password: 'New password',
      change_password: 'Change password', session_ended: 'The session has ended: log in again', bad_login: 'Wrong name or password',
      lv_grid: 'grid', lv_zone: 'zone', lv_community: 'community', lv_street: 'street', lv_district: 'district',
      gl_zone: 'zone', gl_residential: 'residential grid', gl_micro: 'micro-grid', gl_building: 'building',
      locked: 'Too many wrong passwords for this name: try again later', busy: 'This name is being checked: try again',
      read_only: 'Your role can only read.', total: 'Total', items_count: '{0} records', loading: 'Loading…', scope: 'Scope',
    },
  };
  const LISTS = ['need', 'resource', 'service', 'project', 'responsibility', 'problem', 'wish', 'whistle'];
  const STATUSES = ['open', 'in_progress', 'resolved', 'closed'];
  const ROLES = ['administrator', 'operator', 'viewer'];
  const ROLE_RANK = { viewer: 0, operator: 1, administrator: 2 };

  let lang = localStorage.getItem('gongjian.lang') === 'en' ? 'en' : 'zh';
  const locale = () => (lang === 'zh' ? 'zh-CN' : 'en-GB');
  const t = (k, ...args) => {
    let s = I18N[lang][k] ?? I18N.zh[k] ?? k;
    args.forEach((a, i) => { s = s.replace(`{${i}}`, a); });
    return s;
  };
  const num = (n) => new Intl.NumberFormat(locale()).format(n ?? 0);
  const day = (s) => (s ? new Intl.DateTimeFormat(locale(), { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(s * 1000)) : '—');
  const when = (s) => (s ? new Intl.DateTimeFormat(locale(), { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(new Date(s * 1000)) : '—');
  const collator = new Intl.Collator('zh-CN-u-co-pinyin');

  // h('tag.class', {attr, onclick}, ...children): children are nodes,
  // strings (text), arrays, or null.
  function h(spec, attrs, ...kids) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag);
    if (classes.length) el.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className += ' ' + v;
      else if (k === 'value') el.value = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
    const add = (c) => {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) c.forEach(add);
      else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    };
    kids.forEach(add);
    return el;
  }

  const state = { me: null, units: new Map(), peers: new Map() };

  function toast(msg, err) {
    const el = document.getElementById('toast');
    el.textContent = msg;
    el.className = err ? 'err' : '';
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, err ? 8000 : 3500);
  }

  async function api(method, path, body) {
    const opts = { method, headers: { 'X-Gongjian-Console': '1' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    const v = (r.headers.get('content-type') || '').includes('json') ? await r.json() : null;
    if (r.status === 401 && path !== '/v1/login' && path !== '/v1/session') {
      // The session ended mid-use: back to the login form.
      state.me = null;
      if (location.hash !== '#/login') location.hash = '#/login';
      throw new Error(t('session_ended'));
    }
    if (!r.ok) {
      const code = v && v.error && v.error.code;
      // The node's own words in English; the person's in their language
      // where the code is known.
      const known = { bad_login: 'bad_login', locked: 'locked', busy: 'busy', forbidden: null };
      const e = new Error(known[code] ? t(known[code]) : (v && v.error && v.error.message) || r.statusText);
      e.code = code;
      throw e;
    }
    return v;
  }

  // Hash routes: #/page?key=value
  function route() {
    const [path, qs] = (location.hash.slice(1) || '/overview').split('?');
    return { page: path.replace(/^\//, '') || 'overview', params: new URLSearchParams(qs || '') };
  }
  const go = (page, params) => {
    const qs = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== null && v !== undefined)).toString() : '';
    location.hash = `#/${page}${qs ? '?' + qs : ''}`;
  };
  const can = (role) => state.me && ROLE_RANK[state.me.role] >= ROLE_RANK[role];
  const unitName = (u) => (u === state.me?.unit ? state.me.unit_name : state.units.get(u)?.name) || u || '—';
  const kindName = (k) => t(k);
  const statusName = (s) => t('st_' + s);

  const PAGES = {
    overview: { render: overview },
    units: { render: units },
    lists: { render: lists },
    grids: { render: grids },
    agreements: { render: agreements },
    report: { render: report },
    write: { render: write, role: 'operator' },
    audit: { render: audit, role: 'administrator' },
    users: { render: users, role: 'administrator' },
    account: { render: account, hidden: true },
  };

  function chrome() {
    const top = document.getElementById('top');
    top.hidden = !state.me;
    document.title = t('title');
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    if (!state.me) return;
    document.getElementById('unit-name').textContent = state.me.unit_name;
    document.getElementById('unit-kind').textContent = kindName(state.me.unit_kind);
    const who = document.getElementById('who');
    who.replaceChildren(h('a', { href: '#/account', id: 'me' }, state.me.shown || state.me.person), ' · ', t(state.me.role));
    document.getElementById('lang').textContent = t('lang');
    document.getElementById('logout').textContent = t('logout');
    const { page } = route();
    const nav = document.getElementById('nav');
    nav.replaceChildren(...Object.entries(PAGES)
      .filter(([, p]) => !p.hidden && (!p.role || can(p.role)))
      .map(([k]) => h('a', { href: `#/${k}`, class: k === page ? 'on' : null, 'data-page': k }, t(k))));
  }

  let generation = 0;
  async function render() {
    const mine = ++generation;
    const main = document.getElementById('main');
    main.removeAttribute('data-ready');
    if (!state.me) {
      try {
        state.me = await api('GET', '/v1/session');
        await loadUnits();
      } catch (_) {
        state.me = null;
      }
    }
    chrome();
    if (!state.me) {
      main.replaceChildren(loginForm());
      return;
    }
    let { page, params } = route();
    if (page === 'login') { go('overview'); return; }
    const p = PAGES[page] || PAGES.overview;
    if (p.role && !can(p.role)) { main.replaceChildren(h('p.muted', {}, t('read_only'))); return; }
    main.replaceChildren(h('p.muted', {}, t('loading')));
    try {
      const view = await p.render(params);
      // A later navigation started meanwhile: its page wins.
      if (mine !== generation) return;
      main.replaceChildren(view);
      main.setAttribute('data-ready', page);
    } catch (e) {
      if (mine !== generation) return;
      main.replaceChildren(h('p.tag.bad', { id: 'page-error' }, e.message));
      main.setAttribute('data-ready', 'error');
    }
  }

  async function loadUnits() {
    const [u, node] = await Promise.all([api('GET', '/v1/view/units'), api('GET', '/v1/node')]);
    state.units = new Map(u.units.map((x) => [x.unit, x]));
    state.unitRows = u.units;
    state.peers = new Map((node.peers || []).filter((p) => p.unit).map((p) => [p.unit, p]));
  }

  function loginForm() {
    const name = h('input', { name: 'name', autocomplete: 'username', required: true, id: 'login-name' });
    const pw = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, id: 'login-password' });
    const err = h('p.tag.bad', { hidden: true, id: 'login-error' });
    const form = h('form.stack', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await api('POST', '/v1/login', { name: name.value.trim(), password: pw.value });
          state.me = null;
          // One render: by the hash change, or here when the hash stays.
          if (route().page === 'login') location.hash = '#/overview';
          else await render();
        } catch (e) {
          err.textContent = e.message;
          err.hidden = false;
        }
      },
    }, h('label', {}, t('name'), name), h('label', {}, t('password'), pw), err, h('button', { type: 'submit', id: 'login-submit' }, t('login')));
    return h('div.login', {}, h('h1', {}, t('title')), form,
      h('p', {}, h('button.link', { type: 'button', onclick: () => { switchLang(); } }, t('lang'))));
  }

  function switchLang() {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('gongjian.lang', lang);
    render();
  }

  // ---- Overview ----
  // In sync only when known: a session with the unit's own node finished
  // with nothing pending, or its signed heads announcement was heard and
  // every head it named is held. Otherwise unknown, never a false 100%.
  function syncState(u) {
    if (u.unit === state.me.unit) return 'self';
    const p = state.peers.get(u.unit);
    const synced = p && p.last_synced !== null && p.last_synced !== undefined;
    const heard = u.last_heard !== null && u.last_heard !== undefined;
    if (!synced && !heard) return 'unknown';
    if ((synced && p.pending_docs > 0) || (heard && u.heads_lacking > 0)) return 'behind';
    return 'in_sync';
  }
  const lastHeard = (u) => {
    const p = state.peers.get(u.unit);
    return Math.max(u.last_heard || 0, (p && p.last_seen) || 0) || null;
  };
  const SYNC_TAG = { self: 'blue', in_sync: 'ok', behind: 'warn', unknown: '' };

  async function overview() {
    const by = state.me.unit_kind === 'district' ? 'street' : 'community';
    await loadUnits();
    const [stats, urgent, unclaimed, expiring] = await Promise.all([
      api('GET', `/v1/view/stats?by=${by}`),
      api('GET', '/v1/view/items?list=project&urgent=true&claimed=false&limit=1000'),
      api('GET', '/v1/view/items?list=project&claimed=false&status=open&limit=1000'),
      api('GET', '/v1/view/agreements?expiring_within_days=30'),
    ]);
    const rows = stats.stats;
    const sum = (f) => rows.filter(f).reduce((a, r) => a + r.count, 0);
    const kinds = {};
    const sync = { in_sync: 0, behind: 0, unknown: 0 };
    for (const u of state.unitRows) {
      kinds[u.kind] = (kinds[u.kind] || 0) + 1;
      const s = syncState(u);
      if (s in sync) sync[s] += 1;
    }
    const connected = [...state.peers.values()].filter((p) => p.connected).length;
    const card = (n, label, id) => h('div.card', { 'data-figure': id }, h('div.n', {}, num(n)), h('div.l', {}, label));
    const found = sum((r) => r.list === 'problem');
    const solved = sum((r) => r.list === 'problem' && (r.status === 'resolved' || r.status === 'closed'));
    const areas = new Map();
    for (const r of rows.filter((r) => r.list === 'problem')) {
      const a = areas.get(r.area) || { name: r.area_name || r.area || '—', found: 0, resolved: 0 };
      a.found += r.count;
      if (r.status === 'resolved' || r.status === 'closed') a.resolved += r.count;
      areas.set(r.area, a);
    }
    const chartRows = [...areas.values()].sort((a, b) => collator.compare(a.name, b.name));
    return h('div', {},
      h('h1', {}, t('overview')),
      h('div.cards', {},
        card(state.unitRows.length, t('units_total'), 'units'),
        ['street', 'community', 'resident'].filter((k) => kinds[k]).map((k) => card(kinds[k], kindName(k), 'kind-' + k)),
        card(sync.in_sync, t('in_sync'), 'in_sync'), card(sync.behind, t('behind'), 'behind'), card(sync.unknown, t('unknown'), 'unknown'),
        card(connected, t('peers_connected'), 'connected'),
        card(sum((r) => r.list === 'need' && r.status === 'open'), t('open_needs'), 'open_needs'),
        card(found, t('problems_found'), 'problems_found'), card(solved, t('problems_resolved'), 'problems_resolved'),
        card(unclaimed.items.length, t('unclaimed_projects'), 'unclaimed_projects'),
        card(urgent.items.length, t('urgent_unclaimed'), 'urgent_unclaimed'),
        card(expiring.agreements.length, t('expiring'), 'expiring')),
      h('p.muted', {}, t('unknown_note')),
      h('div.grid2', {},
        h('div.panel', {}, h('h2', {}, t('chart_title', t(by))), barChart(chartRows)),
        h('div', {},
          h('div.panel', {}, h('h2', {}, t('urgent_list')), itemMiniTable(urgent.items.slice(0, 8))),
          h('div.panel', {}, h('h2', {}, t('expiring_list')), agreementMiniTable(expiring.agreements.slice(0, 8))))));
  }

  // Horizontal grouped bars, drawn as SVG (found and resolved per area).
  function barChart(rows) {
    if (!rows.length) return h('p.muted', {}, t('none'));
    const ns = 'http://www.w3.org/2000/svg';
    const s = (tag, attrs, text) => {
      const el = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      if (text !== undefined) el.textContent = text;
      return el;
    };
    const max = Math.max(1, ...rows.map((r) => r.found));
    const W = 560; const L = 110; const rowH = 26;
    const svg = s('svg', { viewBox: `0 0 ${W} ${rows.length * rowH + 10}`, class: 'bars', role: 'img', 'data-chart': 'problems' });
    rows.forEach((r, i) => {
      const y = i * rowH + 4;
      const scale = (n) => ((W - L - 50) * n) / max;
      svg.append(s('text', { x: L - 6, y: y + 14, 'text-anchor': 'end' }, r.name));
      const g = s('g', { 'data-area': r.name, 'data-found': r.found, 'data-resolved': r.resolved });
      g.append(s('rect', { x: L, y, width: Math.max(1, scale(r.found)), height: 10, fill: '#c8102e' }, undefined));
      g.append(s('rect', { x: L, y: y + 11, width: Math.max(1, scale(r.resolved)), height: 10, fill: '#2e7d32' }, undefined));
      g.append(s('text', { x: L + scale(r.found) + 4, y: y + 9 }, `${r.found}`));
      g.append(s('text', { x: L + scale(r.resolved) + 4, y: y + 20 }, `${r.resolved}`));
      svg.append(g);
    });
    return h('div', {}, svg, h('div.legend', {},
      h('span', {}, h('i', { style: null, class: 'found' }), t('found')),
      h('span', {}, h('i', { class: 'resolved' }), t('resolved'))));
  }

  function itemMiniTable(items) {
    if (!items.length) return h('p.muted', {}, t('none'));
    return h('table', {}, h('tbody', {}, items.map((it) => h('tr', {},
      h('td', {}, it.title), h('td', {}, it.unit_name || unitName(it.unit)), h('td', {}, day(it.created_at))))));
  }

  function agreementMiniTable(list) {
    if (!list.length) return h('p.muted', {}, t('none'));
    return h('table', {}, h('tbody', {}, list.map((a) => h('tr', {},
      h('td', {}, a.title || '—'), h('td.num', {}, a.ends_in_days ?? '—'), h('td', {}, day(a.terms && a.terms.end))))));
  }

  // ---- Units and sync ----
  async function units(params) {
    await loadUnits();
    const kind = params.get('kind') || '';
    const q = (params.get('q') || '').toLowerCase();
    const st = params.get('state') || '';
    const rows = state.unitRows.filter((u) => (!kind || u.kind === kind)
      && (!q || u.name.toLowerCase().includes(q) || u.unit.toLowerCase().includes(q))
      && (!st || syncState(u) === st));
    const filters = h('form.filters', {
      onsubmit: (ev) => {
        ev.preventDefault();
        const f = new FormData(ev.target);
        go('units', Object.fromEntries(f.entries()));
      },
    },
    h('label', {}, t('kind'), h('select', { name: 'kind' }, h('option', { value: '' }, t('all')),
      ['street', 'community', 'resident'].map((k) => h('option', { value: k, selected: k === kind }, kindName(k))))),
    h('label', {}, t('sync'), h('select', { name: 'state' }, h('option', { value: '' }, t('all')),
      ['in_sync', 'behind', 'unknown'].map((k) => h('option', { value: k, selected: k === st }, t(k))))),
    h('label', {}, t('search'), h('input', { name: 'q', value: params.get('q') || '', type: 'search' })),
    h('button', { type: 'submit' }, t('search')),
    h('a', { href: '/v1/view/units?format=csv', class: 'no-print' }, t('export_csv')), ' ',
    h('a', { href: '/v1/view/units?format=xlsx', class: 'no-print' }, t('export_xlsx')));
    const street = (u) => (u.street && u.street !== u.unit ? unitName(u.street) : '—');
    const link = (u) => {
      const p = state.peers.get(u.unit);
      if (!p) return h('span.muted', {}, '—');
      if (!p.connected) return h('span.tag', {}, t('disconnected'));
      return h('span.tag.' + (p.relayed ? 'warn' : 'ok'), {}, p.relayed ? t('relayed') : t('direct'));
    };
    return h('div', {}, h('h1', {}, t('units')), filters,
      h('p.muted', {}, t('items_count', num(rows.length)), ' · ', t('unknown_note')),
      h('div.scroll', {}, h('table', { id: 'units-table' },
        h('thead', {}, h('tr', {}, [t('unit'), t('kind'), t('street_col'), t('last_heard'), t('documents'), t('changes_held'), t('lacking'), t('sync'), t('link'), t('pending')].map((c) => h('th', {}, c)))),
        h('tbody', {}, rows.map((u) => {
          const s = syncState(u);
          const p = state.peers.get(u.unit);
          return h('tr', { 'data-unit': u.unit },
            h('td', {}, u.name, h('div.prov', {}, u.unit)), h('td', {}, kindName(u.kind)), h('td', {}, street(u)),
            h('td', {}, when(lastHeard(u))), h('td.num', {}, num(u.documents)), h('td.num', {}, num(u.changes_held)),
            h('td.num', {}, s === 'unknown' ? '?' : num(u.heads_lacking)),
            h('td', {}, h('span.tag.' + (SYNC_TAG[s] || 'x'), { 'data-sync': s }, t(s))), h('td', {}, link(u)),
            h('td.num', {}, p && p.pending_docs !== null && p.pending_docs !== undefined ? num(p.pending_docs) : '—'));
        })))));
  }

  // ---- Lists ----
  async function lists(params) {
    const list = LISTS.includes(params.get('list')) ? params.get('list') : 'need';
    const keys = ['status', 'category', 'street', 'q', 'urgent', 'claimed', 'scope'];
    const query = new URLSearchParams({ list, limit: '50' });
    for (const k of keys) if (params.get(k)) query.set(k, params.get(k));
    // Whistles are blown above and call this unit: by default they are
    // listed from the top of the tree this node knows.
    const ancestors = state.me.ancestors || [];
    if (!params.get('scope') && list === 'whistle' && ancestors.length) query.set('scope', ancestors[ancestors.length - 1].unit);
    const scopes = [{ unit: state.me.unit, name: state.me.unit_name }, ...ancestors];
    const [page, matches] = await Promise.all([
      api('GET', `/v1/view/items?${query}`),
      list === 'need' ? api('GET', `/v1/view/matches${query.get('scope') ? '?scope=' + encodeURIComponent(query.get('scope')) : ''}`) : Promise.resolve(null),
    ]);
    const matchOf = new Map((matches ? matches.matches : []).map((m) => [m.need.id, m.resources]));
    const tabs = h('div.tabs', {}, LISTS.map((l) => h('a', { href: `#/lists?list=${l}`, class: l === list ? 'on' : null, 'data-list': l }, t('list_' + l))));
    const streets = state.unitRows.filter((u) => u.kind === 'street').sort((a, b) => collator.compare(a.name, b.name));
    const filters = h('form.filters', {
      id: 'list-filters',
      onsubmit: (ev) => {
        ev.preventDefault();
        const f = Object.fromEntries(new FormData(ev.target).entries());
        go('lists', { list, ...f });
      },
    },
    ancestors.length ? h('label', {}, t('scope'), h('select', { name: 'scope', id: 'list-scope' },
      scopes.map((u) => h('option', { value: u.unit === state.me.unit ? '' : u.unit, selected: (query.get('scope') || '') === (u.unit === state.me.unit ? '' : u.unit) }, u.name)))) : null,
    h('label', {}, t('status'), h('select', { name: 'status' }, h('option', { value: '' }, t('all')),
      STATUSES.map((s) => h('option', { value: s, selected: s === params.get('status') }, statusName(s))))),
    streets.length ? h('label', {}, t('street_col'), h('select', { name: 'street' }, h('option', { value: '' }, t('all')),
      streets.map((s) => h('option', { value: s.unit, selected: s.unit === params.get('street') }, s.name)))) : null,
    h('label', {}, t('category'), h('input', { name: 'category', value: params.get('category') || '', size: 8 })),
    ['project', 'wish', 'whistle'].includes(list) ? h('label', {}, t('claimed'), h('select', { name: 'claimed' },
      h('option', { value: '' }, t('all')), h('option', { value: 'true', selected: params.get('claimed') === 'true' }, t('claimed')),
      h('option', { value: 'false', selected: params.get('claimed') === 'false' }, t('unclaimed')))) : null,
    list === 'project' ? h('label', {}, t('urgent'), h('select', { name: 'urgent' }, h('option', { value: '' }, t('all')),
      h('option', { value: 'true', selected: params.get('urgent') === 'true' }, t('urgent')))) : null,
    h('label', {}, t('search'), h('input', { name: 'q', type: 'search', value: params.get('q') || '', id: 'list-q' })),
    h('button', { type: 'submit', id: 'list-search' }, t('search')));
    const exportQ = new URLSearchParams(query);
    exportQ.delete('limit');
    const exports = h('p.no-print', {}, h('a', { href: `/v1/view/items?${exportQ}&format=csv` }, t('export_csv')), ' · ',
      h('a', { href: `/v1/view/items?${exportQ}&format=xlsx` }, t('export_xlsx')));
    const tbody = h('tbody', {});
    const count = h('span', { id: 'list-count' });
    let shown = 0;
    const addRows = (items) => {
      for (const it of items) tbody.append(itemRow(it, matchOf.get(it.id)));
      shown += items.length;
      count.textContent = t('items_count', num(shown));
    };
    addRows(page.items);
    const more = h('button.secondary.more', { type: 'button', hidden: !page.next_cursor });
    more.textContent = t('more');
    let cursor = page.next_cursor;
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        const q2 = new URLSearchParams(query);
        q2.set('cursor', cursor);
        const next = await api('GET', `/v1/view/items?${q2}`);
        addRows(next.items);
        cursor = next.next_cursor;
        more.hidden = !cursor;
      } catch (e) {
        toast(e.message, true);
      } finally {
        more.disabled = false;
      }
    });
    return h('div', {}, h('h1', {}, t('lists')), tabs, filters, exports, h('p.muted', {}, count),
      h('div.scroll', {}, h('table', { id: 'items-table', 'data-list': list },
        h('thead', {}, h('tr', {}, [t('title_col'), t('unit'), t('category'), t('area'), t('status'), t('by'), t('created'), t('acts'), t('provenance'), t('actions')].map((c) => h('th', {}, c)))),
        tbody)), more);
  }

  function provenance(p, unit) {
    if (!p) return '—';
    return h('div.prov', { title: `${p.author || ''}\n${p.change || ''}` },
      `${t('signed_by')} ${unitName(p.unit || unit)}`, h('br', {}), `${t('change')} ${(p.change || '').slice(0, 12)}`,
      p.minted_by_other ? h('span.tag.warn', {}, '!') : null);
  }

  function itemRow(it, resources) {
    const own = it.unit === state.me.unit;
    const actions = [];
    if (can('operator')) {
      if (own) {
        const sel = h('select', { 'aria-label': t('set_status'), 'data-action': 'status' },
          STATUSES.map((s) => h('option', { value: s, selected: s === it.owner_status }, statusName(s))));
        sel.addEventListener('change', () => act(`/v1/items/${encodeURIComponent(it.id)}/status`, { status: sel.value }));
        actions.push(sel);
      } else if (['project', 'wish'].includes(it.list)) {
        actions.push(h('button.secondary', { type: 'button', 'data-action': 'claim', onclick: () => withNote(`/v1/items/${encodeURIComponent(it.id)}/claim`) }, t('claim')));
      } else if (it.list === 'whistle') {
        actions.push(h('button.secondary', { type: 'button', 'data-action': 'respond', onclick: () => withNote(`/v1/whistles/${encodeURIComponent(it.id)}/respond`) }, t('respond')));
      }
    }
    const conflicts = Object.keys(it.conflicts || {});
    return h('tr', { 'data-id': it.id },
      h('td', {}, it.title, it.urgent ? [' ', h('span.tag.bad', {}, t('urgent'))] : null,
        conflicts.length ? [' ', h('span.tag.warn', { title: JSON.stringify(it.conflicts) }, `${t('conflict')}: ${conflicts.join(', ')}`)] : null,
        it.description ? h('div.muted', {}, it.description) : null,
        resources && resources.length ? h('ul.matches', { 'aria-label': t('matches') }, resources.slice(0, 5).map((r) => h('li', {}, `${t('matches')}: ${r.title}（${r.unit_name || unitName(r.unit)}）`))) : null),
      h('td', {}, it.unit_name || unitName(it.unit)), h('td', {}, it.category || '—'), h('td', {}, it.area || '—'),
      h('td', {}, h('span.tag', { 'data-status': it.status }, statusName(it.status)), it.level ? h('div.muted', {}, t('lv_' + it.level)) : null),
      h('td', {}, it.by || '—'), h('td', {}, day(it.created_at)),
      h('td', {}, it.acts && it.acts.length ? h('ul.acts', {}, it.acts.map((a) => h('li', {},
        `${unitName(a.unit)} · ${lang === 'zh' ? a.kind_zh : a.kind}${a.by ? ' · ' + a.by : ''} · ${day(a.created_at)}`))) : '—'),
      h('td', {}, provenance(it.provenance, it.unit)),
      h('td', {}, h('div.row-actions', {}, actions)));
  }

  // A note asked of the person; Cancel means do nothing.
  const withNote = (path) => {
    const note = prompt(t('note_prompt'));
    if (note !== null) act(path, { note });
  };

  async function act(path, body) {
    try {
      await api('POST', path, body);
      toast(t('saved'));
      render();
    } catch (e) {
      toast(e.message, true);
    }
  }

  // ---- Grids ----
  async function grids() {
    const g = await api('GET', '/v1/view/grids');
    const keys = ['households', 'members', 'posts', 'compounds', 'resident_units'];
    const total = {};
    for (const n of g.grids) for (const k of keys) total[k] = (total[k] || 0) + (n.totals[k] || 0);
    const counts = (c) => h('span.counts', {}, keys.map((k) => `${t(k)} ${num(c[k] || 0)}`).join(' · '));
    const node = (n) => h('li', { 'data-grid': `${n.grid.unit}/${n.grid.id}` }, n.children.length
      ? h('details', { open: n.level !== 'residential' && n.children.length < 12 }, h('summary', {}, h('b', {}, n.name), ' ', h('span.tag', {}, t('gl_' + n.level)), counts(n.totals)), h('ul', {}, n.children.map(node)))
      : [n.name, ' ', h('span.tag', {}, t('gl_' + n.level)), counts(n.totals)]);
    // Roots grouped by the unit that holds them.
    const byUnit = new Map();
    for (const n of g.grids) {
      const list = byUnit.get(n.grid.unit) || [];
      list.push(n);
      byUnit.set(n.grid.unit, list);
    }
    const groups = [...byUnit.entries()].sort((a, b) => collator.compare(unitName(a[0]), unitName(b[0])));
    const sumOf = (roots) => {
      const sum = {};
      for (const n of roots) for (const k of keys) sum[k] = (sum[k] || 0) + (n.totals[k] || 0);
      return sum;
    };
    const unitGroup = ([u, roots]) => h('li', { 'data-unit': u }, h('details', {}, h('summary', {}, h('b', {}, unitName(u)), counts(sumOf(roots))), h('ul', {}, roots.map(node))));
    // Below a district: each street with its communities' sums.
    const streetOf = (u) => (state.units.get(u) || {}).street;
    const streets = new Map();
    for (const g of groups) {
      const st = streetOf(g[0]) || g[0];
      const list = streets.get(st) || [];
      list.push(g);
      streets.set(st, list);
    }
    const byStreet = state.me.unit_kind === 'district' && streets.size > 1;
    const tree = byStreet
      ? [...streets.entries()].sort((a, b) => collator.compare(unitName(a[0]), unitName(b[0]))).map(([st, gs]) => h('li', { 'data-street': st },
        h('details', {}, h('summary', {}, h('b', {}, unitName(st)), ' ', h('span.tag', {}, t('street')), counts(sumOf(gs.flatMap((g) => g[1])))),
          h('ul', {}, gs.map(unitGroup)))))
      : groups.map(unitGroup);
    return h('div', {}, h('h1', {}, t('grids')),
      h('p.no-print', {}, h('a', { href: '/v1/view/grids?format=csv' }, t('export_csv')), ' · ',
        h('a', { href: '/v1/view/grids?format=xlsx' }, t('export_xlsx'))),
      h('p', { id: 'grid-total' }, h('b', {}, t('total')), ' ', counts(total)),
      h('div.tree.panel', {}, h('ul', {}, tree)));
  }

  // ---- Agreements ----
  async function agreements(params) {
    const status = params.get('status') || '';
    const sq = status ? `status=${encodeURIComponent(status)}&` : '';
    const list = await api('GET', `/v1/view/agreements?${sq}`);
    const filters = h('form.filters', { onsubmit: (ev) => { ev.preventDefault(); go('agreements', Object.fromEntries(new FormData(ev.target).entries())); } },
      h('label', {}, t('status'), h('select', { name: 'status' }, h('option', { value: '' }, t('all')),
        ['draft', 'signed', 'active', 'expired', 'terminated'].map((s) => h('option', { value: s, selected: s === status }, t('ag_' + s))))),
      h('button', { type: 'submit' }, t('search')),
      h('a', { href: `/v1/view/agreements?${sq}format=csv` }, t('export_csv')), ' ',
      h('a', { href: `/v1/view/agreements?${sq}format=xlsx` }, t('export_xlsx')));
    const tag = { draft: '', signed: 'blue', active: 'ok', expired: 'warn', terminated: 'bad' };
    return h('div', {}, h('h1', {}, t('agreements')), filters, h('p.muted', {}, t('items_count', num(list.agreements.length))),
      h('div.scroll', {}, h('table', { id: 'agreements-table' },
        h('thead', {}, h('tr', {}, [t('title_col'), t('parties'), t('services'), t('term'), t('status'), t('days_left'), t('provenance'), t('actions')].map((c) => h('th', {}, c)))),
        h('tbody', {}, list.agreements.map((a) => {
          const mine = a.party_signatures.find((p) => p.unit === state.me.unit);
          return h('tr', { 'data-id': a.id },
            h('td', {}, a.title || '—', a.terms && a.terms.contact ? h('div.muted', {}, `${t('contact')}: ${a.terms.contact}`) : null,
              a.by ? h('div.muted', {}, `${t('by')}: ${a.by}`) : null),
            h('td', {}, h('ul.acts', {}, a.party_signatures.map((p) => h('li', {}, `${p.signed ? '✓' : '○'} ${p.name || p.unit}`)))),
            h('td', {}, a.terms ? [...new Set(a.terms.services)].join('、') : '—'),
            h('td', {}, a.terms ? `${day(a.terms.start)} – ${day(a.terms.end)}` : '—'),
            h('td', {}, h('span.tag.' + (tag[a.status] || 'x'), {}, t('ag_' + a.status)), a.changed_after_signing ? h('div.tag.warn', {}, t('changed_after')) : null),
            h('td.num', {}, a.ends_in_days ?? '—'),
            h('td', {}, provenance(a.provenance, a.owner)),
            h('td', {}, mine && !mine.signed && can('operator')
              ? h('button.secondary', { type: 'button', 'data-action': 'sign', onclick: () => withNote(`/v1/agreements/${encodeURIComponent(a.id)}/sign`) }, t('sign')) : null));
        })))));
  }

  // ---- Monthly report ----
  function thisMonth() {
    const d = new Date(Date.now() + 8 * 3600 * 1000);
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  }
  async function report(params) {
    const month = /^\d{4}-\d{2}$/.test(params.get('month') || '') ? params.get('month') : thisMonth();
    const r = await api('GET', `/v1/view/report?month=${month}`);
    const [y, m] = month.split('-');
    const monthText = lang === 'zh' ? `${y}年${Number(m)}月` : month;
    const table = (heads, rows) => h('table', {}, h('thead', {}, h('tr', {}, heads.map((c, i) => h(i ? 'th.num' : 'th', {}, c)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, row.map((c, i) => h(i ? 'td.num' : 'td', {}, i ? num(c) : c))))));
    const pf = r.problems;
    const ag = r.agreements;
    return h('div', { id: 'report' },
      h('form.filters.no-print', { onsubmit: (ev) => { ev.preventDefault(); go('report', { month: new FormData(ev.target).get('month') }); } },
        h('label', {}, t('month'), h('input', { type: 'month', name: 'month', value: month, id: 'report-month' })),
        h('button', { type: 'submit' }, t('search')),
        h('button.secondary', { type: 'button', onclick: () => window.print() }, t('print')),
        h('a', { href: `/v1/view/report?month=${month}&format=csv` }, t('export_csv')), ' ',
        h('a', { href: `/v1/view/report?month=${month}&format=xlsx` }, t('export_xlsx'))),
      h('div.report-head', {}, h('h1', {}, t('report_title', r.scope_name || r.scope, monthText))),
      h('h2', {}, t('by_level')),
      table([t('level'), t('found'), t('resolved')], [...pf.map((l) => [lang === 'zh' ? l.level_zh : l.level, l.found, l.resolved]),
        [t('total'), pf.reduce((a, l) => a + l.found, 0), pf.reduce((a, l) => a + l.resolved, 0)]]),
      h('h2', {}, t('by_area')),
      table([t('area'), t('found'), t('resolved')], r.problems_by_area.map((a) => [a.area_name || '—', a.found, a.resolved])),
      h('h2', {}, t('lists_fig')),
      table([t('list'), t('new'), t('resolved'), t('claims'), t('open_at_end')], r.lists.map((l) => [t('list_' + l.list), l.created, l.resolved, l.claimed, l.open_at_end])),
      h('h2', {}, t('ag_fig')),
      table([t('status'), ''], [[t('ag_active'), ag.active], [t('ag_signed'), ag.signed], [t('ag_draft'), ag.draft], [t('ag_expired'), ag.expired],
        [t('ag_terminated'), ag.terminated], [t('signatures'), ag.signatures], [t('expiring_30'), ag.expiring_30_days]]),
      h('p.muted', {}, t('generated', when(Math.floor(Date.now() / 1000)), state.me.shown || state.me.person, state.me.unit_name)));
  }

  // ---- Writes for the local unit ----
  async function write() {
    const banner = h('div.acting', { id: 'acting-as' }, t('acting_as', state.me.unit_name, kindName(state.me.unit_kind), state.me.shown || state.me.person));
    const listSel = h('select', { name: 'list', id: 'write-list' }, LISTS.filter((l) => l !== 'whistle').map((l) => h('option', { value: l }, t('list_' + l))));
    const urgent = h('input', { type: 'checkbox', name: 'urgent' });
    const form = h('form.stack', {
      id: 'write-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = new FormData(form);
        const body = { list: f.get('list'), title: f.get('title').trim() };
        for (const k of ['category', 'area', 'description']) if (f.get(k).trim()) body[k] = f.get(k).trim();
        if (body.list === 'project') body.urgent = urgent.checked;
        try {
          const it = await api('POST', '/v1/items', body);
          toast(t('added', it.title));
          form.reset();
          go('lists', { list: it.list, q: it.title });
        } catch (e) {
          toast(e.message, true);
        }
      },
    },
    h('label', {}, t('list'), listSel),
    h('label', {}, t('title_col'), h('input', { name: 'title', required: true, maxlength: 200, id: 'write-title' })),
    h('label', {}, t('category'), h('input', { name: 'category', maxlength: 200, id: 'write-category' })),
    h('label', {}, t('area'), h('input', { name: 'area', maxlength: 200 })),
    h('label', {}, t('description'), h('textarea', { name: 'description', maxlength: 4000 })),
    h('label', {}, h('span', {}, urgent, ' ', t('urgent'))),
    h('button', { type: 'submit', id: 'write-submit' }, t('submit')));
    return h('div', {}, h('h1', {}, t('add_record')), banner, form);
  }

  // ---- Audit ----
  async function audit(params) {
    const before = params.get('before');
    const page = await api('GET', `/v1/audit?limit=100${before ? '&before=' + encodeURIComponent(before) : ''}`);
    return h('div', {}, h('h1', {}, t('audit')),
      h('div.scroll', {}, h('table', { id: 'audit-table' },
        h('thead', {}, h('tr', {}, [t('time'), t('person'), t('role'), t('action'), t('status'), t('detail')].map((c) => h('th', {}, c)))),
        h('tbody', {}, page.entries.map((e) => h('tr', {}, h('td', {}, when(e.at)), h('td', {}, e.person), h('td', {}, e.role ? t(e.role) : '—'),
          h('td', {}, e.action), h('td.num', {}, e.status || ''), h('td.prov', {}, e.detail)))))),
      page.next_before ? h('p', {}, h('a', { href: `#/audit?before=${page.next_before}` }, t('more'))) : null);
  }

  // ---- Users ----
  async function users() {
    const list = await api('GET', '/v1/users');
    const roleSel = (name, value) => h('select', { name }, ROLES.map((r) => h('option', { value: r, selected: r === value }, t(r))));
    const patch = async (name, body) => {
      try {
        await api('PATCH', `/v1/users/${encodeURIComponent(name)}`, body);
        toast(t('saved'));
      } catch (e) {
        toast(e.message, true);
      }
      render();
    };
    const form = h('form.filters', {
      id: 'user-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = Object.fromEntries(new FormData(form).entries());
        try {
          await api('POST', '/v1/users', f);
          toast(t('saved'));
          render();
        } catch (e) {
          toast(e.message, true);
        }
      },
    },
    h('label', {}, t('name'), h('input', { name: 'name', required: true, pattern: '[a-z0-9._-]{1,32}' })),
    h('label', {}, t('display_name'), h('input', { name: 'display_name', maxlength: 64 })),
    h('label', {}, t('role'), roleSel('role', 'viewer')),
    h('label', {}, t('password'), h('input', { name: 'password', type: 'password', minlength: 10, required: true, autocomplete: 'new-password' })),
    h('button', { type: 'submit' }, t('add_user')));
    return h('div', {}, h('h1', {}, t('users')),
      h('table', { id: 'users-table' }, h('thead', {}, h('tr', {}, [t('name'), t('display_name'), t('role'), t('status'), t('actions')].map((c) => h('th', {}, c)))),
        h('tbody', {}, list.users.map((u) => {
          const sel = roleSel('role', u.role);
          sel.addEventListener('change', () => patch(u.name, { role: sel.value }));
          return h('tr', { 'data-user': u.name }, h('td', {}, u.name), h('td', {}, u.display_name || '—'), h('td', {}, sel),
            h('td', {}, u.disabled ? h('span.tag.bad', {}, t('disabled')) : h('span.tag.ok', {}, '✓')),
            h('td', {}, h('div.row-actions', {},
              h('button.secondary', { type: 'button', onclick: () => patch(u.name, { disabled: !u.disabled }) }, u.disabled ? t('enable') : t('disable')),
              h('button.secondary', {
                type: 'button',
                onclick: async () => {
                  if (!confirm(t('confirm_remove', u.name))) return;
                  try { await api('DELETE', `/v1/users/${encodeURIComponent(u.name)}`); } catch (e) { toast(e.message, true); }
                  render();
                },
              }, t('remove')))));
        }))),
      h('h2', {}, t('add_user')), form);
  }

  async function account() {
    const form = h('form.stack', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = new FormData(form);
        try {
          await api('POST', '/v1/password', { old: f.get('old'), new: f.get('new') });
          state.me = null;
          toast(t('saved'));
          render();
        } catch (e) {
          toast(e.message, true);
        }
      },
    },
    h('label', {}, t('old_password'), h('input', { type: 'password', name: 'old', required: true, autocomplete: 'current-password' })),
    h('label', {}, t('new_password'), h('input', { type: 'password', name: 'new', required: true, minlength: 10, autocomplete: 'new-password' })),
    h('button', { type: 'submit' }, t('change_password')));
    return h('div', {}, h('h1', {}, t('account')),
      h('p', {}, `${state.me.shown || state.me.person} (${state.me.person}) · ${t(state.me.role)} · ${state.me.unit_name}`),
      h('h2', {}, t('change_password')), form);
  }

  document.addEventListener('DOMContentLoaded', () => {
    document.getElementById('lang').addEventListener('click', switchLang);
    document.getElementById('logout').addEventListener('click', async () => {
      try { await api('POST', '/v1/logout'); } catch (_) { /* ended already */ }
      state.me = null;
      if (location.hash === '#/login') render();
      else location.hash = '#/login';
    });
    window.addEventListener('hashchange', render);
    render();
  });
})();

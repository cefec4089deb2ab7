// render.js owns turning store data into DOM nodes. User content only ever goes in through textContent.

import { t, formatTime, formatFull, formatDay } from './i18n.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000; // consecutive messages from one person within this read as one block

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  lock: 'M7 11V8a5 5 0 0110 0v3M5.5 11h13v9.5h-13z',
  hash: 'M9 4L7 20M17 4l-2 16M4.5 9h16M3.5 15h16',
  at: 'M16 12a4 4 0 11-8 0 4 4 0 018 0zm0 0v1.5a2.5 2.5 0 005 0V12a9 9 0 10-3.5 7.1',
  chat: 'M4 5h16v11H9l-5 4z',
  people: 'M9 11.5a3.5 3.5 0 100-7 3.5 3.5 0 000 7zM2.5 20a6.5 6.5 0 0113 0M16 4.5a3.5 3.5 0 010 7M18 14a6 6 0 013.5 6',
};

export function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export function icon(name, className = 'ico') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', className);
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

// A stable colour per name, as a class (c0..c7): the CSP forbids inline style attributes, and classes theme better.
export function colorClass(name) {
  let hash = 0;
  for (const ch of String(name).toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `c${hash % 8}`;
}

const segmenter = typeof Intl.Segmenter === 'function' ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;
function graphemes(s) {
  return segmenter ? [...segmenter.segment(s)].map((x) => x.segment) : Array.from(s);
}

export function avatar(name, extra = '') {
  const first = graphemes(String(name).trim())[0] || '?';
  const el = h('span', `avatar ${colorClass(name)} ${extra}`.trim(), first.toLocaleUpperCase());
  el.setAttribute('aria-hidden', 'true');
  return el;
}

// Links: only http(s), opened in a new tab with no opener and no referrer; everything else stays text.
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?'"»”’]+$/;

function trimUrl(raw) {
  let url = raw.replace(TRAILING, '');
  // A closing parenthesis belongs to the text around the link unless the link opened one.
  while (url.endsWith(')') && (url.match(/\(/g) || []).length < (url.match(/\)/g) || []).length) {
    url = url.slice(0, -1).replace(TRAILING, '');
  }
  return url;
}

export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const url = trimUrl(match[0]);
    let parsed = null;
    try { parsed = new URL(url); } catch { parsed = null; }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) continue;
    if (match.index > last) frag.append(document.createTextNode(text.slice(last, match.index)));
    const a = h('a', 'link', url);
    a.href = parsed.href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    frag.append(a);
    last = match.index + url.length;
  }
  if (last < text.length) frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

const EMOJI_ONLY = /^(?:\p{Extended_Pictographic}|\p{Emoji_Component}|\p{Regional_Indicator}|\u200d|\ufe0f|\s)+$/u;
function isJumbo(text) {
  if (!EMOJI_ONLY.test(text) || /^[\d#*\s]+$/.test(text)) return false;
  return graphemes(text.replace(/\s/g, '')).length <= 3;
}

function timeEl(ts) {
  const el = h('time', 'time', formatTime(ts));
  el.dateTime = new Date(ts).toISOString();
  el.title = formatFull(ts);
  return el;
}

function sameDay(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

function daySeparator(ts) {
  const li = h('li', 'day-sep');
  li.setAttribute('role', 'separator');
  li.append(h('span', '', formatDay(ts)));
  return li;
}

function messageEl(item, prev, me) {
  const own = item.from.toLowerCase() === me.toLowerCase();
  const cont = prev && prev.kind === 'msg' && prev.from === item.from && item.ts - prev.ts < GROUP_WINDOW_MS;
  const li = h('li', `msg${own ? ' own' : ''}${cont ? ' cont' : ''}`);
  li.dataset.id = String(item.id);
  li.dataset.from = item.from;
  if (!own) li.append(cont ? h('span', 'avatar-gap') : avatar(item.from));
  const body = h('div', 'bubble');
  if (!cont && !own) {
    const meta = h('div', 'meta');
    meta.append(h('span', `from ${colorClass(item.from)}`, item.from));
    body.append(meta);
  }
  const text = h('div', `text${isJumbo(item.text) ? ' jumbo' : ''}`);
  text.append(linkify(item.text));
  body.append(text, timeEl(item.ts));
  li.append(body);
  return li;
}

function systemEl(item) {
  const li = h('li', `sys sys-${item.key}`);
  li.append(h('span', 'sys-text', t(item.key, item.params)), timeEl(item.ts));
  return li;
}

// The nodes for items[i], given the item before it (for day separators and grouping).
export function itemNodes(items, i, me) {
  const item = items[i];
  const prev = items[i - 1];
  const nodes = [];
  if (!prev || !sameDay(prev.ts, item.ts)) nodes.push(daySeparator(item.ts));
  const groupPrev = prev && sameDay(prev.ts, item.ts) ? prev : null;
  nodes.push(item.kind === 'msg' ? messageEl(item, groupPrev, me) : systemEl(item));
  return nodes;
}

export function renderAll(listEl, conv, me) {
  const frag = document.createDocumentFragment();
  for (let i = 0; i < conv.items.length; i++) frag.append(...itemNodes(conv.items, i, me));
  listEl.replaceChildren(frag);
}

function badge(n, label) {
  const b = h('span', 'badge', n > 99 ? '99+' : String(n));
  b.setAttribute('aria-label', label);
  return b;
}

// Updates a list in place, keyed: rows whose data changed are updated, not swapped for new nodes,
// so a row under the pointer between mousedown and mouseup still gets its click.
// update(li, item) returns false when the row must be rebuilt.
export function reconcile(ul, items, keyOf, build, update) {
  const old = new Map([...ul.children].map((li) => [li.dataset.key, li]));
  const rows = items.map((item) => {
    const key = keyOf(item);
    let li = old.get(key);
    if (!li || !update(li, item)) {
      li = build(item);
      li.dataset.key = key;
    }
    return li;
  });
  const current = [...ul.children];
  if (rows.length !== current.length || rows.some((li, i) => li !== current[i])) ul.replaceChildren(...rows);
}

function convRow({ conv, active }) {
  const li = h('li');
  const btn = h('button', 'conv-item');
  btn.type = 'button';
  btn.dataset.conv = conv.id;
  li.dataset.protected = String(conv.protected);
  if (conv.kind === 'room') btn.append(icon(conv.protected ? 'lock' : 'hash', 'ico conv-ico'));
  else btn.append(avatar(conv.name, 'avatar-sm'));
  btn.append(h('span', 'conv-name', conv.name));
  li.append(btn);
  updateConvRow(li, { conv, active });
  return li;
}

function updateConvRow(li, { conv, active }) {
  if (li.dataset.protected !== String(conv.protected)) return false;
  const btn = li.firstElementChild;
  btn.className = `conv-item${active ? ' active' : ''}${conv.unread ? ' has-unread' : ''}`;
  if (active) btn.setAttribute('aria-current', 'page');
  else btn.removeAttribute('aria-current');
  btn.querySelector('.conv-name').textContent = conv.name;
  btn.querySelector('.badge')?.remove();
  if (conv.unread) btn.append(badge(conv.unread, t('unread', { n: conv.unread })));
  return true;
}

export function renderConvList(ul, convs, activeId) {
  const items = convs.map((conv) => ({ conv, active: conv.id === activeId }));
  reconcile(ul, items, (it) => it.conv.id, convRow, updateConvRow);
}

function directoryRow(room) {
  const li = h('li');
  li.dataset.protected = String(!!room.protected);
  const btn = h('button', 'room-row');
  btn.type = 'button';
  btn.append(icon(room.protected ? 'lock' : 'hash', `ico room-ico${room.protected ? ' locked' : ''}`));
  const info = h('span', 'room-info');
  info.append(h('span', 'room-name'));
  if (room.protected) info.append(h('span', 'sr-only room-lock-text'));
  const count = h('span', 'room-count');
  count.append(icon('people', 'ico ico-xs'), h('span', 'room-count-text'));
  info.append(count);
  btn.append(info, h('span', 'chip'));
  li.append(btn);
  updateDirectoryRow(li, room);
  return li;
}

function updateDirectoryRow(li, room) {
  if (li.dataset.protected !== String(!!room.protected)) return false;
  const btn = li.firstElementChild;
  btn.dataset.room = room.room;
  btn.className = `room-row${room.joined ? ' is-joined' : ''}`;
  btn.title = room.protected ? t('protectedRoom') : '';
  btn.querySelector('.room-name').textContent = room.room;
  const lock = btn.querySelector('.room-lock-text');
  if (lock) lock.textContent = `, ${t('protectedRoom')}`;
  btn.querySelector('.room-count-text').textContent = t('memberCount', { n: room.member_count ?? 0 });
  const chip = btn.querySelector('.chip');
  chip.className = `chip${room.joined ? ' chip-on' : ''}`;
  chip.textContent = room.joined ? t('joined') : t('join');
  return true;
}

// rooms: RoomSummary plus `joined`.
export function renderDirectory(ul, rooms) {
  reconcile(ul, rooms, (r) => r.room.toLowerCase(), directoryRow, updateDirectoryRow);
}

function memberRow({ name, isMe }) {
  const li = h('li', 'member');
  li.dataset.sig = memberSig(name, isMe);
  li.append(avatar(name, 'avatar-sm'));
  const label = h('span', 'member-name', name);
  if (isMe) label.append(h('span', 'muted', ` (${t('you')})`));
  li.append(label);
  if (!isMe) {
    const dm = h('button', 'icon-btn icon-btn-sm member-dm');
    dm.type = 'button';
    dm.dataset.dm = name;
    dm.setAttribute('aria-label', t('sendDm', { name }));
    dm.title = t('sendDm', { name });
    dm.append(icon('chat'));
    li.append(dm);
  }
  return li;
}

const memberSig = (name, isMe) => `${name}|${isMe}|${t('you')}`;

export function renderMemberList(ul, members) {
  reconcile(ul, members, (m) => m.name.toLowerCase(), memberRow, (li, m) => li.dataset.sig === memberSig(m.name, m.isMe));
}

export function typingText(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return t('typingOne', { a: names[0] });
  if (names.length === 2) return t('typingTwo', { a: names[0], b: names[1] });
  return t('typingMany');
}

// render.js owns turning store data into DOM nodes. User content only ever goes in through textContent.

import { t, formatTime, formatFull, formatDay } from './i18n.js';
import { attachmentsEl } from './attachments.js';

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

// A stable colour per name, as a class (c0..c15): the CSP forbids inline style attributes, and classes theme
// better. FNV-1a spreads short, similar names (Ana, Bia, Caio) over the palette; a plain *31 hash taken
// modulo a power of two depends mostly on the last letter, so common names shared colours.
const COLORS = 16;
export function colorClass(name) {
  let hash = 0x811c9dc5;
  for (const ch of String(name).toLowerCase()) hash = Math.imul(hash ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return `c${hash % COLORS}`;
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
  // A message of files only has no text line.
  if (item.text) {
    const text = h('div', `text${isJumbo(item.text) ? ' jumbo' : ''}`);
    text.append(linkify(item.text));
    body.append(text);
  }
  if (item.files?.length) body.append(attachmentsEl(item.files));
  body.append(timeEl(item.ts));
  li.append(body);
  messageExtras?.(li, item, own);
  return li;
}

// moderation.js adds to each message drawn (its menu, the "edited" mark, the editor) and to each member row (a
// moderator's menu); kept as hooks so this file stays about drawing.
let messageExtras = null;
export function setMessageExtras(fn) { messageExtras = fn; }
let memberExtras = null; // { build(li, name, isMe), sig(): what, when it changes, means rows must be rebuilt }
export function setMemberExtras(extras) { memberExtras = extras; }

function newDivider() {
  const li = h('li', 'new-sep');
  li.setAttribute('role', 'separator');
  li.append(h('span', '', t('newMessages')));
  return li;
}

function systemEl(item) {
  const li = h('li', `sys sys-${item.key}`);
  li.append(h('span', 'sys-text', t(item.key, item.params)), timeEl(item.ts));
  return li;
}

// The nodes for conv.items[i], given the item before it (for day separators, grouping and the unread divider).
export function itemNodes(conv, i, me) {
  const item = conv.items[i];
  const prev = conv.items[i - 1];
  const nodes = [];
  if (!prev || !sameDay(prev.ts, item.ts)) nodes.push(daySeparator(item.ts));
  const divider = conv.isDividerAt(item);
  if (divider) nodes.push(newDivider());
  // After the divider a message starts a new block, with its sender's name.
  const groupPrev = prev && sameDay(prev.ts, item.ts) && !divider ? prev : null;
  nodes.push(item.kind === 'msg' ? messageEl(item, groupPrev, me) : systemEl(item));
  return nodes;
}

export function renderAll(listEl, conv, me) {
  const frag = document.createDocumentFragment();
  for (let i = 0; i < conv.items.length; i++) frag.append(...itemNodes(conv, i, me));
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

function convRow({ conv, active, presence }) {
  const li = h('li');
  const btn = h('button', 'conv-item');
  btn.type = 'button';
  btn.dataset.conv = conv.id;
  li.dataset.protected = String(conv.protected);
  if (conv.kind === 'room') btn.append(icon(conv.protected ? 'lock' : 'hash', 'ico conv-ico'));
  else btn.append(h('span', 'avatar-wrap'), h('span', 'sr-only conv-presence'));
  btn.append(h('span', 'conv-name', conv.name));
  li.append(btn);
  updateConvRow(li, { conv, active, presence });
  return li;
}

function updateConvRow(li, { conv, active, presence }) {
  if (li.dataset.protected !== String(conv.protected)) return false;
  // Presence in a busy room redraws the list often: only what changed is written, so a cheap phone does
  // no layout work for rows that stay the same.
  const btn = li.firstElementChild;
  const cls = `conv-item${active ? ' active' : ''}${conv.unread ? ' has-unread' : ''}`;
  if (btn.className !== cls) btn.className = cls;
  if (active) btn.setAttribute('aria-current', 'page');
  else btn.removeAttribute('aria-current');
  const name = btn.querySelector('.conv-name');
  if (name.textContent !== conv.name) name.textContent = conv.name;
  name.title = conv.name; // a long name is cut with "…"
  if (conv.kind === 'dm') {
    // The avatar carries a dot when the person is online; screen readers hear it as words.
    const wrap = btn.querySelector('.avatar-wrap');
    if (wrap.dataset.name !== conv.name) {
      wrap.replaceChildren(avatar(conv.name, 'avatar-sm'));
      wrap.dataset.name = conv.name;
    }
    wrap.classList.toggle('is-online', presence === 'online');
    const said = presence === 'online' ? `, ${t('dmOnline')}` : '';
    const spoken = btn.querySelector('.conv-presence');
    if (spoken.textContent !== said) spoken.textContent = said;
  }
  const old = btn.querySelector('.badge');
  const count = conv.unread > 99 ? '99+' : String(conv.unread);
  if (!conv.unread) old?.remove();
  else if (!old || old.textContent !== count || old.getAttribute('aria-label') !== t('unread', { n: conv.unread })) {
    old?.remove();
    btn.append(badge(conv.unread, t('unread', { n: conv.unread })));
  }
  return true;
}

// presenceOf(name) is 'online' | 'offline' | 'unknown' (DM rows show a dot for online).
export function renderConvList(ul, convs, activeId, presenceOf) {
  const items = convs.map((conv) => ({
    conv, active: conv.id === activeId, presence: conv.kind === 'dm' ? presenceOf(conv.name) : '',
  }));
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
  const name = btn.querySelector('.room-name');
  name.textContent = room.room;
  name.title = room.room;
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
  label.title = name;
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
  memberExtras?.build(li, name, isMe);
  return li;
}

const memberSig = (name, isMe) => `${name}|${isMe}|${t('you')}|${memberExtras?.sig() ?? ''}`;

export function renderMemberList(ul, members) {
  reconcile(ul, members, (m) => m.name.toLowerCase(), memberRow, (li, m) => li.dataset.sig === memberSig(m.name, m.isMe));
}

export function typingText(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return t('typingOne', { a: names[0] });
  if (names.length === 2) return t('typingTwo', { a: names[0], b: names[1] });
  return t('typingMany');
}

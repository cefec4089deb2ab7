// moderation.js owns what PROTOCOL 1.1 "Moderation" puts on the page: each message's menu (edit in place, delete,
// copy), the members' menu for a room's moderators (kick, timed and open bans, lifting them), deleting a room, the
// live `edited`/`deleted` events, and the notices when I am the one kicked or banned.

import { t, lang, formatFull, onLangChange, safeGet, safeSet, translateDom } from './i18n.js';
import { h, setMessageExtras, setMemberExtras } from './render.js';
import { nameKey } from './store.js';
import * as view from './view.js';
import { openMenu, closeMenu, confirm } from './menu.js';

const { els } = view;
const LONG_PRESS_MS = 550; // a finger held this long on a message opens its menu, as on every phone
const BANS = [
  { key: 'ban10m', minutes: 10 },
  { key: 'ban1h', minutes: 60 },
  { key: 'ban1d', minutes: 24 * 60 },
  { key: 'banForever', minutes: null }, // PROTOCOL: `kick` with `"ban": true` and no minutes, until `unban`
];
const SVG_NS = 'http://www.w3.org/2000/svg';

let ctx = null; // app.js's pieces: conn, store, openConversation, errorText, roomRemoved, addSystem
let editing = null; // { convId, id, draft, error, busy }: the message being edited in place
const bans = new Map(); // room nameKey -> Map(user nameKey -> { name, until }): bans made from this page, to lift

// ---------------------------------------------------------------- who moderates

// Rooms this account created, remembered in this browser: the server tells who owns a room only where it says
// `owner` (on `joined` or a membership); without it, having made the room here is how the page knows.
const ownedKey = () => `papo.owned.${nameKey(ctx.store.me)}`;
function ownedHere() {
  try { return new Set(JSON.parse(safeGet(ownedKey()) || '[]')); } catch { return new Set(); }
}

export function noteCreated(room) {
  if (!ctx.store.account) return; // a guest's room has no owner: only the admin moderates it
  const owned = ownedHere();
  owned.add(nameKey(room));
  safeSet(ownedKey(), JSON.stringify([...owned].slice(-500)));
  const conv = ctx.store.get('room', room);
  if (conv && conv.owner === undefined) conv.owner = ctx.store.me;
}

// The room's owner or the admin (PROTOCOL "Moderation": "moderator").
export function moderates(conv) {
  const { store } = ctx;
  if (!conv || conv.kind !== 'room') return false;
  if (store.admin) return true;
  if (!store.account) return false;
  if (typeof conv.owner === 'string') return store.isMe(conv.owner);
  if (conv.owner === null) return false;
  return ownedHere().has(nameKey(conv.name));
}

// ---------------------------------------------------------------- small pieces

function svg(paths, className = 'ico') {
  const el = document.createElementNS(SVG_NS, 'svg');
  el.setAttribute('viewBox', '0 0 24 24');
  el.setAttribute('aria-hidden', 'true');
  el.setAttribute('class', className);
  for (const d of paths) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    el.append(p);
  }
  return el;
}
const DOTS = ['M5 12h.01M12 12h.01M19 12h.01'];
const SHIELD = ['M12 3l7 3v5c0 4.5-3 8.3-7 10-4-1.7-7-5.5-7-10V6z'];

// "30/11/2026 14:30" or "Nov 30, 2026, 2:30 PM": when a ban or suspension ends.
export function formatUntil(ms) {
  const today = new Date().toDateString() === new Date(ms).toDateString();
  const style = today ? { timeStyle: 'short' } : { dateStyle: 'medium', timeStyle: 'short' };
  return new Intl.DateTimeFormat(lang(), style).format(new Date(ms));
}

function notice(text, code) {
  view.showMainError(text, 0, code);
  view.announce(text());
}

function fail(err) {
  if (err.code !== 'offline') view.showMainError(() => ctx.errorText(err), 8000, err.code);
}

// The message with this id in the conversation the event names, else anywhere (ids are unique per server).
function findMessage(ev) {
  const { store } = ctx;
  const named = ev.room !== undefined ? store.get('room', ev.room) : ev.with !== undefined ? store.get('dm', ev.with) : null;
  const convs = [named, ...store.convs.values()].filter(Boolean);
  for (const conv of convs) {
    if (ev.room !== undefined && conv.kind !== 'room') continue;
    if (ev.with !== undefined && conv.kind !== 'dm') continue;
    const index = conv.items.findIndex((it) => it.kind === 'msg' && it.id === ev.id);
    if (index >= 0) return { conv, index, item: conv.items[index] };
  }
  return null;
}

function redraw(conv) {
  if (conv === ctx.store.active) view.renderConversation(ctx.store);
}

// ---------------------------------------------------------------- edited and deleted, live

function applyEdited(ev) {
  const found = findMessage(ev);
  if (!found) return;
  found.item.text = ev.text;
  found.item.edited_ts = ev.edited_ts;
  redraw(found.conv);
}

function applyDeleted(ev) {
  const found = findMessage(ev);
  if (!found) return;
  found.conv.items.splice(found.index, 1);
  if (editing && editing.convId === found.conv.id && editing.id === ev.id) editing = null;
  redraw(found.conv);
}

// ---------------------------------------------------------------- each message: its menu and the editor

// Called by render.js for every message drawn: the "(edited)" mark, the menu button, or the editor in its place.
function decorateMessage(li, item, own) {
  const conv = ctx.store.active;
  const bubble = li.querySelector('.bubble');
  if (item.edited_ts) {
    const mark = h('span', 'edited-mark', t('edited'));
    mark.title = t('editedAt', { when: formatFull(item.edited_ts) });
    bubble.querySelector('.time')?.prepend(mark, ' ');
  }
  if (editing && conv && editing.convId === conv.id && editing.id === item.id) {
    li.classList.add('is-editing');
    const text = bubble.querySelector('.text');
    // A message of files only has no text line: the editor goes above its time.
    if (text) text.replaceWith(editorFor(item));
    else bubble.querySelector('.time')?.before(editorFor(item));
  }
  const btn = h('button', 'icon-btn icon-btn-sm msg-menu-btn');
  btn.type = 'button';
  btn.dataset.msgMenu = String(item.id);
  btn.setAttribute('aria-haspopup', 'menu');
  btn.setAttribute('aria-expanded', 'false');
  btn.setAttribute('aria-label', t('msgActions'));
  btn.title = t('msgActions');
  btn.append(svg(DOTS));
  li.append(btn);
  if (own) li.dataset.own = '';
}

function editorFor(item) {
  const form = h('form', 'edit-form');
  form.noValidate = true;
  const label = h('label', 'sr-only', t('editLabel'));
  const input = h('textarea', 'edit-input');
  input.id = `edit-${item.id}`;
  label.htmlFor = input.id;
  input.maxLength = 4000;
  input.value = editing.draft;
  input.rows = Math.min(8, Math.max(1, editing.draft.split('\n').length));
  input.enterKeyHint = view.enterSends() ? 'done' : 'enter';
  const error = h('p', 'form-error edit-error', editing.error ? editing.error() : '');
  error.setAttribute('role', 'alert');
  error.hidden = !editing.error;
  input.setAttribute('aria-describedby', `edit-hint-${item.id}`);
  const row = h('div', 'edit-row');
  const hint = h('span', 'edit-hint', view.enterSends() ? t('editHint') : t('editHintTouch'));
  hint.id = `edit-hint-${item.id}`;
  const cancel = h('button', 'btn btn-ghost btn-small', t('cancel'));
  cancel.type = 'button';
  cancel.addEventListener('click', () => stopEditing(true));
  const save = h('button', 'btn btn-primary btn-small', t('save'));
  save.type = 'submit';
  save.disabled = editing.busy;
  row.append(hint, cancel, save);
  form.append(label, input, error, row);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveEdit();
  });
  input.addEventListener('input', () => {
    editing.draft = input.value;
    input.rows = Math.min(8, Math.max(1, input.value.split('\n').length));
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      stopEditing(true);
    } else if (ev.key === 'Enter' && !ev.isComposing && (ev.ctrlKey || ev.metaKey || (!ev.shiftKey && view.enterSends()))) {
      ev.preventDefault();
      saveEdit();
    }
  });
  // A redraw (a message arriving) replaces the editor: the caret comes back to it.
  queueMicrotask(() => {
    if (editing?.id === item.id && (!document.activeElement || document.activeElement === document.body || editing.focusNow)) {
      editing.focusNow = false;
      input.focus({ preventScroll: true });
      const end = input.value.length;
      input.setSelectionRange(end, end);
    }
  });
  return form;
}

function startEditing(conv, item) {
  editing = { convId: conv.id, id: item.id, draft: item.text, error: null, busy: false, focusNow: true };
  view.renderConversation(ctx.store);
  els.messages.querySelector(`.msg[data-id="${item.id}"]`)?.scrollIntoView({ block: 'nearest' });
}

function stopEditing(refocus) {
  const id = editing?.id;
  editing = null;
  view.renderConversation(ctx.store);
  if (refocus) (els.messages.querySelector(`.msg[data-id="${id}"] .msg-menu-btn`) || els.input).focus({ preventScroll: true });
}

async function saveEdit() {
  const { conn, store } = ctx;
  const conv = store.active;
  if (!editing || editing.busy || !conv || conv.id !== editing.convId) return;
  const item = conv.items.find((it) => it.kind === 'msg' && it.id === editing.id);
  if (!item) return stopEditing(true);
  const text = editing.draft;
  if (text.trim() === item.text.trim()) return stopEditing(true);
  editing.busy = true;
  editing.error = null;
  try {
    const reply = await conn.request({ type: 'edit', id: item.id, text });
    editing = null;
    applyEdited({ ...reply, id: item.id });
    els.messages.querySelector(`.msg[data-id="${item.id}"] .msg-menu-btn`)?.focus({ preventScroll: true });
  } catch (err) {
    if (!editing) return undefined;
    editing.busy = false;
    editing.error = () => ctx.errorText(err);
    editing.focusNow = true;
    view.renderConversation(store);
  }
  return undefined;
}

async function deleteMessage(conv, item, anchor) {
  const own = ctx.store.isMe(item.from);
  const yes = await confirm({
    title: t('deleteMsgTitle'),
    text: own ? t('deleteMsgText') : t('deleteOtherText', { name: item.from }),
    yes: t('msgDelete'),
    returnTo: anchor,
  });
  if (!yes) return;
  try {
    const reply = await ctx.conn.request({ type: 'delete', id: item.id });
    applyDeleted({ ...reply, id: item.id });
    view.announce(t('msgDeleted'));
    view.focusWork(ctx.store.active); // its menu button is gone: the message box (a phone: the title, no keyboard)
  } catch (err) {
    fail(err);
  }
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API outside a secure context (a server reached over plain http by its LAN address).
    const area = h('textarea', 'sr-only');
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    if (!ok) return view.showMainError(() => t('copyFailed'), 6000);
  }
  view.announce(t('copied'));
  return undefined;
}

function messageMenu(li, anchor, at = null) {
  const conv = ctx.store.active;
  if (!conv) return;
  const id = Number(li.dataset.id);
  const item = conv.items.find((it) => it.kind === 'msg' && it.id === id);
  if (!item) return;
  const own = ctx.store.isMe(item.from);
  const items = [];
  if (own) items.push({ key: 'edit', label: t('msgEdit'), run: () => startEditing(conv, item), keepsFocus: true });
  if (item.text) items.push({ key: 'copy', label: t('msgCopy'), run: () => copyText(item.text) });
  if (own || moderates(conv)) {
    items.push({ key: 'delete', label: t('msgDelete'), danger: true, run: () => deleteMessage(conv, item, anchor), keepsFocus: true });
  }
  li.classList.add('menu-open');
  openMenu(anchor, items, { label: t('msgActions'), at, onClose: () => li.classList.remove('menu-open') });
}

function wireMessages() {
  els.messages.addEventListener('click', (ev) => {
    const btn = ev.target.closest('[data-msg-menu]');
    if (btn) messageMenu(btn.closest('.msg'), btn);
  });
  // A right click, or a long press on Android (which the browser reports as a context menu).
  els.messages.addEventListener('contextmenu', (ev) => {
    const li = ev.target.closest('.msg');
    if (!li || ev.target.closest('a, .edit-form') || li.classList.contains('is-editing')) return;
    ev.preventDefault();
    messageMenu(li, li.querySelector('.msg-menu-btn'), { x: ev.clientX, y: ev.clientY });
  });
  // A long press where the browser sends no context menu (iOS).
  let press = null;
  els.messages.addEventListener('touchstart', (ev) => {
    const li = ev.target.closest('.msg');
    if (!li || ev.touches.length !== 1 || ev.target.closest('a, .edit-form, button')) return;
    const touch = ev.touches[0];
    clearTimeout(press);
    press = setTimeout(() => {
      if (!li.classList.contains('menu-open')) messageMenu(li, li.querySelector('.msg-menu-btn'), { x: touch.clientX, y: touch.clientY });
    }, LONG_PRESS_MS);
  }, { passive: true });
  for (const type of ['touchend', 'touchmove', 'touchcancel']) {
    els.messages.addEventListener(type, () => clearTimeout(press), { passive: true });
  }
  // Up arrow in an empty message box edits my last message, as in most chat apps.
  els.input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowUp' || ev.altKey || ev.shiftKey || ev.ctrlKey || ev.metaKey || els.input.value) return;
    const conv = ctx.store.active;
    const mine = conv && [...conv.items].reverse().find((it) => it.kind === 'msg' && ctx.store.isMe(it.from));
    if (!mine) return;
    ev.preventDefault();
    startEditing(conv, mine);
  });
}

// ---------------------------------------------------------------- members: kick, ban, lift

function bansOf(room) {
  const k = nameKey(room);
  if (!bans.has(k)) bans.set(k, new Map());
  return bans.get(k);
}

async function kick(conv, user, minutes) {
  const command = { type: 'kick', room: conv.name, user };
  if (minutes) command.minutes = minutes;
  else if (minutes === null) command.ban = true;
  try {
    const reply = await ctx.conn.request(command);
    const name = reply.user || user;
    const banned = reply.ban === true || reply.until !== undefined || minutes !== undefined;
    if (banned) bansOf(conv.name).set(nameKey(name), { name, until: reply.until ?? null });
    const key = !banned ? 'sysYouKicked' : reply.until ? 'sysYouBanned' : 'sysYouBannedForever';
    ctx.addSystem(conv, key, { name, until: reply.until ? formatUntil(reply.until) : '' });
    renderModPanel();
  } catch (err) {
    fail(err);
  }
}

async function unban(conv, user, from = null) {
  try {
    const reply = await ctx.conn.request({ type: 'unban', room: conv.name, user });
    bansOf(conv.name).delete(nameKey(reply.user || user));
    setModStatus(() => t('unbanned', { name: reply.user || user, room: conv.name }));
    renderModPanel();
    return true;
  } catch (err) {
    setModStatus(() => ctx.errorText(err, { name: user }), true);
    from?.focus();
    return false;
  }
}

function memberMenu(btn) {
  const conv = ctx.store.active;
  const name = btn.dataset.modMember;
  if (!conv || !name) return;
  const items = [{ key: 'kick', label: t('kick'), run: () => kick(conv, name, undefined) }];
  for (const ban of BANS) items.push({ key: ban.key, label: t(ban.key), danger: true, run: () => kick(conv, name, ban.minutes) });
  openMenu(btn, items, { label: t('memberActions', { name }) });
}

// render.js asks for each member row: a moderator gets a menu button on everyone but themselves.
const memberExtras = {
  sig() {
    const conv = ctx?.store.active;
    return `${conv && moderates(conv) ? 'mod' : ''}|${lang()}`;
  },
  build(li, name, isMe) {
    const conv = ctx?.store.active;
    if (isMe || !conv || !moderates(conv)) return;
    const b = h('button', 'icon-btn icon-btn-sm member-mod');
    b.type = 'button';
    b.dataset.modMember = name;
    b.setAttribute('aria-haspopup', 'menu');
    b.setAttribute('aria-expanded', 'false');
    b.setAttribute('aria-label', t('memberActions', { name }));
    b.title = t('memberActions', { name });
    b.append(svg(SHIELD));
    li.append(b);
  },
};

// The members panel's foot for a moderator: the bans made here (each with a way to lift it), lifting one by name,
// and deleting the room.
let modPanel = null;
let modStatus = null; // { text: () => string, error }

function buildModPanel() {
  modPanel = h('section', 'mod-panel');
  modPanel.id = 'mod-panel';
  modPanel.setAttribute('aria-labelledby', 'mod-heading');
  modPanel.hidden = true;
  const heading = h('h3', 'mod-heading');
  heading.id = 'mod-heading';
  heading.dataset.i18n = 'moderation';
  const who = h('p', 'muted small mod-who');
  const bansHeading = h('h4', 'mod-subheading');
  bansHeading.dataset.i18n = 'bansHeading';
  const list = h('ul', 'ban-list');
  list.id = 'ban-list';
  const form = h('form', 'unban-form');
  form.id = 'unban-form';
  form.noValidate = true;
  const label = h('label', 'small');
  label.htmlFor = 'unban-name';
  label.dataset.i18n = 'unbanName';
  const row = h('div', 'unban-row');
  const input = h('input');
  input.id = 'unban-name';
  input.maxLength = 32;
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.dataset.i18nPlaceholder = 'unbanPlaceholder';
  const submit = h('button', 'btn btn-small');
  submit.type = 'submit';
  submit.dataset.i18n = 'unban';
  row.append(input, submit);
  const status = h('p', 'small mod-status');
  status.id = 'mod-status';
  status.setAttribute('role', 'status');
  status.hidden = true;
  const del = h('button', 'btn btn-small btn-danger-ghost delete-room');
  del.type = 'button';
  del.id = 'delete-room';
  del.dataset.i18n = 'deleteRoom';
  form.append(label, row);
  modPanel.append(heading, who, bansHeading, list, form, status, del);
  els.membersPanel.append(modPanel);
  translateDom(modPanel);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const conv = ctx.store.active;
    const name = input.value.trim();
    if (!conv || !name) return input.focus();
    if (await unban(conv, name, input)) input.value = '';
    return undefined;
  });
  list.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-unban]');
    const conv = ctx.store.active;
    if (b && conv) unban(conv, b.dataset.unban, b);
  });
  del.addEventListener('click', () => deleteRoom(del));
}

function setModStatus(text, error = false) {
  modStatus = text ? { text, error } : null;
  renderModPanel();
}

export function renderModPanel() {
  if (!modPanel) return;
  const conv = ctx.store.active;
  const show = !!conv && moderates(conv);
  modPanel.hidden = !show;
  if (!show) return;
  if (modPanel.dataset.room !== conv.id) {
    modPanel.dataset.room = conv.id;
    modStatus = null;
  }
  modPanel.querySelector('.mod-who').textContent = t(ctx.store.admin && !ownsIt(conv) ? 'youModerateAdmin' : 'youModerate');
  const now = Date.now();
  const list = modPanel.querySelector('#ban-list');
  const rows = [];
  for (const [k, ban] of bansOf(conv.name)) {
    if (ban.until && ban.until <= now) {
      bansOf(conv.name).delete(k);
      continue;
    }
    const li = h('li', 'ban');
    const info = h('span', 'ban-info');
    info.append(h('span', 'ban-name', ban.name), h('span', 'muted small', ban.until ? t('bannedUntil', { until: formatUntil(ban.until) }) : t('bannedForever')));
    const b = h('button', 'btn btn-ghost btn-small', t('unban'));
    b.type = 'button';
    b.dataset.unban = ban.name;
    b.setAttribute('aria-label', t('unbanLabel', { name: ban.name }));
    li.append(info, b);
    rows.push(li);
  }
  list.replaceChildren(...rows);
  modPanel.querySelector('.mod-subheading').hidden = rows.length === 0;
  const status = modPanel.querySelector('#mod-status');
  status.textContent = modStatus ? modStatus.text() : '';
  status.hidden = !modStatus;
  status.classList.toggle('form-error', !!modStatus?.error);
}

function ownsIt(conv) {
  return typeof conv.owner === 'string' ? ctx.store.isMe(conv.owner) : ctx.store.account && ownedHere().has(nameKey(conv.name));
}

async function deleteRoom(btn) {
  const conv = ctx.store.active;
  if (!conv || conv.kind !== 'room') return;
  const room = conv.name;
  const yes = await confirm({
    title: t('deleteRoomTitle', { room }),
    text: t('deleteRoomText'),
    yes: t('deleteRoom'),
    returnTo: btn,
  });
  if (!yes) return;
  try {
    const reply = await ctx.conn.request({ type: 'delete_room', room });
    bans.delete(nameKey(room));
    ctx.roomRemoved(reply.room || room);
  } catch (err) {
    setModStatus(() => ctx.errorText(err), true);
  }
}

// ---------------------------------------------------------------- events from the server

// I was taken out of a room (by a moderator, on any of my connections): out of my list, with a notice saying so.
function kicked(ev) {
  const { store } = ctx;
  if (!store.isMe(ev.user)) {
    // Another connection of mine (the moderator's other tab) did it: its ban is one I can lift here too.
    if (ev.ban || ev.until) bansOf(ev.room).set(nameKey(ev.user), { name: ev.user, until: ev.until ?? null });
    renderModPanel();
    return;
  }
  const conv = store.get('room', ev.room);
  const room = conv?.name ?? ev.room;
  if (conv) {
    const wasActive = conv === store.active;
    store.remove(conv.id);
    if (wasActive) ctx.openConversation(null);
    else view.renderSidebar(store);
  }
  const until = ev.until;
  const text = !ev.ban && !until ? () => t('kickedNotice', { room })
    : until ? () => t('bannedNotice', { room, until: formatUntil(until) })
      : () => t('bannedForeverNotice', { room });
  notice(text, 'kicked');
}

export const handlers = {
  edited: applyEdited,
  deleted: applyDeleted,
  kicked,
  unbanned(ev) {
    bansOf(ev.room).delete(nameKey(ev.user));
    renderModPanel();
  },
};

// ---------------------------------------------------------------- setup

export function setupModeration(pieces) {
  ctx = pieces;
  setMessageExtras(decorateMessage);
  setMemberExtras(memberExtras);
  view.onMembersRendered(renderModPanel);
  wireMessages();
  buildModPanel();
  els.memberList.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-mod-member]');
    if (b) memberMenu(b);
  });
  onLangChange(() => {
    closeMenu(false);
    renderModPanel();
  });
  // A ban that ran out leaves the list on its own.
  setInterval(() => { if (modPanel && !modPanel.hidden) renderModPanel(); }, 30000);
  return { handlers, noteCreated, moderates };
}

// search.js owns message search (PROTOCOL 1.1 "Search"): the search box (a header button, Ctrl+K or "/"), results
// newest first with the matched words marked, and the jump to a result in its conversation, loading the history
// back to it when it is not on the page yet, where it is highlighted for a moment.

import './i18n-moderation.js';
import { t, formatFull, formatTime, formatDay, onLangChange, translateDom } from './i18n.js';
import { h, avatar, colorClass } from './render.js';
import { convId } from './store.js';
import * as view from './view.js';

const { els } = view;
const DELAY_MS = 300; // asked once typing pauses, not at every key
const LIMIT = 50; // the most the server gives (PROTOCOL: `limit` at most 50)
const PAGE = 100; // history pages while walking back to a result (`history` gives at most 100)
const MAX_PAGES = 40; // 4,000 messages back at most: further than that the jump gives up and says so
const FLASH_MS = 2500;
const SVG_NS = 'http://www.w3.org/2000/svg';

let ctx = null; // conn, store, openConversation, errorText
let dialog = null;
let input = null;
let scope = null; // the "only in #room" checkbox
let status = null;
let results = null;
let timer = null;
let seq = 0; // answers to an older question are dropped
let last = null; // { q, room, messages, error }: what the list shows, redrawn on a language switch
let returnFocus = null;

// ---------------------------------------------------------------- matching words, for highlighting

// The server ignores accents and case ("acao" finds "Ação"): the page marks words the same way.
export const fold = (s) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
const WORD = /[\p{L}\p{N}\p{M}_]+/gu;

export function queryWords(q) {
  return (fold(q).match(WORD) || []).filter(Boolean);
}

// The text as DOM nodes, each word that starts with one of the query's words in a <mark>. Text only ever goes in as
// text nodes: a message can hold anything.
export function highlighted(text, words) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(WORD)) {
    const folded = fold(m[0]);
    if (!words.some((w) => folded.startsWith(w))) continue;
    if (m.index > at) frag.append(document.createTextNode(text.slice(at, m.index)));
    frag.append(h('mark', 'hit-mark', m[0]));
    at = m.index + m[0].length;
  }
  if (at < text.length) frag.append(document.createTextNode(text.slice(at)));
  return frag;
}

// ---------------------------------------------------------------- the box

function svg(d) {
  const el = document.createElementNS(SVG_NS, 'svg');
  el.setAttribute('viewBox', '0 0 24 24');
  el.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(SVG_NS, 'path');
  p.setAttribute('d', d);
  el.append(p);
  return el;
}
const LENS = 'M11 5a6 6 0 100 12 6 6 0 000-12zM20 20l-4.5-4.5';
const CLOSE = 'M6 6l12 12M18 6L6 18';

function build() {
  // The header button: on every pane, phone included.
  const open = h('button', 'icon-btn search-btn');
  open.type = 'button';
  open.id = 'search-open';
  open.setAttribute('aria-haspopup', 'dialog');
  open.dataset.i18nAriaLabel = 'searchShortcut';
  open.dataset.i18nTitle = 'searchShortcut';
  open.append(svg(LENS));
  document.querySelector('.main-head .head-actions').prepend(open);
  open.addEventListener('click', () => openSearch());

  dialog = h('dialog', 'dialog search-dialog');
  dialog.id = 'search-dialog';
  dialog.setAttribute('aria-labelledby', 'search-title');
  const head = h('div', 'dialog-head');
  const title = h('h2');
  title.id = 'search-title';
  title.dataset.i18n = 'search';
  const close = h('button', 'icon-btn icon-btn-sm');
  close.type = 'button';
  close.id = 'search-close';
  close.dataset.i18nAriaLabel = 'close';
  close.append(svg(CLOSE));
  head.append(title, close);
  const form = h('form', 'search-form');
  form.setAttribute('role', 'search');
  form.noValidate = true;
  const label = h('label', 'sr-only');
  label.htmlFor = 'search-input';
  label.dataset.i18n = 'search';
  input = h('input', 'search-input');
  input.id = 'search-input';
  input.type = 'search';
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.maxLength = 200;
  input.enterKeyHint = 'search';
  input.dataset.i18nPlaceholder = 'searchPlaceholder';
  input.setAttribute('aria-describedby', 'search-hint');
  const scopeLabel = h('label', 'search-scope');
  scope = h('input');
  scope.type = 'checkbox';
  scope.id = 'search-scope';
  const scopeText = h('span');
  scopeLabel.append(scope, scopeText);
  form.append(label, input, scopeLabel);
  const hint = h('p', 'hint');
  hint.id = 'search-hint';
  hint.dataset.i18n = 'searchHint';
  status = h('p', 'muted small search-status');
  status.id = 'search-status';
  status.setAttribute('role', 'status');
  results = h('ul', 'search-results');
  results.id = 'search-results';
  results.setAttribute('aria-labelledby', 'search-title');
  dialog.append(head, form, hint, status, results);
  document.body.append(dialog);
  translateDom(dialog);
  translateDom(open.parentElement);

  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    clearTimeout(timer);
    if (returnFocus?.isConnected) returnFocus.focus({ preventScroll: true });
    returnFocus = null;
  });
  // A click on the backdrop (outside the box) closes it, as Esc does.
  dialog.addEventListener('click', (ev) => { if (ev.target === dialog) dialog.close(); });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    runSearch();
  });
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(runSearch, DELAY_MS);
  });
  scope.addEventListener('change', runSearch);
  results.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-hit]');
    if (b) jumpTo(last.messages[Number(b.dataset.hit)]);
  });
  // Down from the box goes into the results; up and down move between them.
  dialog.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
    const hits = [...results.querySelectorAll('.search-hit')];
    if (!hits.length) return;
    const at = hits.indexOf(document.activeElement);
    if (at < 0 && document.activeElement !== input) return;
    ev.preventDefault();
    if (ev.key === 'ArrowDown') hits[Math.min(hits.length - 1, at + 1)].focus();
    else if (at <= 0) input.focus();
    else hits[at - 1].focus();
  });
}

export function openSearch() {
  if (document.body.dataset.view !== 'app' || dialog.open) return;
  returnFocus = document.activeElement;
  const conv = ctx.store.active;
  const inRoom = conv?.kind === 'room';
  scope.parentElement.hidden = !inRoom;
  scope.dataset.room = inRoom ? conv.name : '';
  if (!inRoom) scope.checked = false;
  scope.nextElementSibling.textContent = inRoom ? t('searchThisRoom', { room: conv.name }) : '';
  if (view.isNarrow()) view.setDrawer(false);
  dialog.showModal();
  input.focus();
  input.select();
}

async function runSearch() {
  const q = input.value.trim();
  const room = scope.checked && scope.dataset.room ? scope.dataset.room : null;
  const mine = ++seq;
  if (!q) {
    last = null;
    render();
    return;
  }
  status.textContent = t('searching');
  status.hidden = false;
  try {
    const reply = await ctx.conn.request({ type: 'search', q, limit: LIMIT, ...(room ? { room } : {}) });
    if (mine !== seq) return;
    last = { q, room, messages: reply.messages || [], error: null };
  } catch (err) {
    if (mine !== seq) return;
    last = { q, room, messages: [], error: err };
  }
  render();
}

function whereOf(m) {
  if (m.type === 'dm' || m.room === undefined) {
    const other = ctx.store.isMe(m.from) ? m.to : m.from;
    return { kind: 'dm', name: other, label: t('searchDm', { name: other }) };
  }
  return { kind: 'room', name: m.room, label: `#${m.room}` };
}

function hitRow(m, i, words) {
  const li = h('li');
  const b = h('button', 'search-hit');
  b.type = 'button';
  b.dataset.hit = String(i);
  b.dataset.id = String(m.id);
  const where = whereOf(m);
  const top = h('span', 'hit-head');
  const time = h('time', 'hit-time', `${formatDay(m.ts)} ${formatTime(m.ts)}`);
  time.dateTime = new Date(m.ts).toISOString();
  time.title = formatFull(m.ts);
  top.append(h('span', `hit-from from ${colorClass(m.from)}`, m.from), h('span', 'hit-where', where.label), time);
  const text = h('span', 'hit-text');
  text.append(highlighted(m.text, words));
  b.append(avatar(m.from, 'avatar-sm'), h('span', 'hit-body'));
  b.lastElementChild.append(top, text);
  li.append(b);
  return li;
}

function render() {
  if (!last) {
    status.textContent = '';
    status.hidden = true;
    results.replaceChildren();
    return;
  }
  const { q, messages, error } = last;
  status.classList.toggle('form-error', !!error);
  if (error) status.textContent = ctx.errorText(error);
  else if (!messages.length) status.textContent = t('searchNone', { q });
  else status.textContent = t('searchFound', { n: messages.length });
  status.hidden = false;
  const words = queryWords(q);
  results.replaceChildren(...messages.map((m, i) => hitRow(m, i, words)));
}

// ---------------------------------------------------------------- the jump

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });
const hasMsg = (conv, id) => conv.items.some((it) => it.kind === 'msg' && it.id === id);

// Older pages until the message is loaded (the page's history is always one unbroken stretch up to the newest, so
// the walk back is how a message far up gets its neighbours too), then one more page for what led up to it.
async function loadBackTo(conv, id) {
  const { conn, store } = ctx;
  for (let round = 0; round < MAX_PAGES; round++) {
    // A kept DM opening fetches its newest page on its own: wait for that instead of racing it.
    for (let waited = 0; conv.loadingOlder && waited < 100; waited++) await sleep(50);
    if (conv.kind === 'dm' && store.account && !conv.historyLoaded) {
      await sleep(50);
      continue;
    }
    const index = conv.items.findIndex((it) => it.kind === 'msg' && it.id === id);
    if (index >= 0 && (index > 10 || conv.historyDone)) return 'found';
    if (conv.historyDone) return 'gone';
    const before = conv.oldestMsgId();
    if (index < 0 && before !== undefined && before < id) return 'gone'; // loaded past it: deleted since
    conv.loadingOlder = true;
    try {
      const reply = await conn.request(conv.kind === 'room'
        ? { type: 'history', room: conv.name, limit: PAGE, ...(before !== undefined ? { before } : {}) }
        : { type: 'dm_history', with: conv.name, limit: PAGE, ...(before !== undefined ? { before } : {}) });
      const messages = reply.messages || [];
      if (before === undefined) for (const m of messages) conv.addMessage(m);
      else conv.prependHistory(messages);
      if (messages.length < PAGE) conv.historyDone = true;
    } finally {
      conv.loadingOlder = false;
    }
    if (index >= 0) return 'found'; // the page of context above it is in
  }
  return hasMsg(conv, id) ? 'found' : 'far';
}

async function jumpTo(m) {
  if (!m) return;
  const { store } = ctx;
  const where = whereOf(m);
  let conv = store.get(where.kind, where.name);
  if (!conv && where.kind === 'dm' && store.account) conv = store.ensure('dm', where.name);
  if (!conv) {
    status.textContent = t('searchGone');
    return;
  }
  returnFocus = null;
  dialog.close();
  if (store.active !== conv) ctx.openConversation(convId(conv.kind, conv.name));
  let outcome = hasMsg(conv, m.id) ? 'found' : null;
  if (!outcome) {
    view.announce(t('searchOpening'));
    try {
      outcome = await loadBackTo(conv, m.id);
    } catch (err) {
      if (err.code !== 'offline') view.showMainError(() => ctx.errorText(err), 8000, err.code);
      return;
    }
  }
  if (store.active !== conv) return; // the person went elsewhere meanwhile
  view.renderConversation(store);
  const li = els.messages.querySelector(`.msg[data-id="${m.id}"]`);
  if (!li || outcome !== 'found') {
    view.showMainError(() => t(outcome === 'far' ? 'searchTooOld' : 'searchNotFound'), 8000);
    return;
  }
  li.scrollIntoView({ block: 'center' });
  li.classList.remove('flash');
  void li.offsetWidth; // restart the animation when the same message is jumped to twice
  li.classList.add('flash');
  setTimeout(() => li.classList.remove('flash'), FLASH_MS);
  // Keyboard users land on the message's menu button: in the list, where the message is.
  li.querySelector('.msg-menu-btn')?.focus({ preventScroll: true });
}

// ---------------------------------------------------------------- setup

function onKey(ev) {
  if (document.body.dataset.view !== 'app') return;
  const typing = ev.target.closest?.('input, textarea, select, [contenteditable="true"]');
  const ctrlK = (ev.ctrlKey || ev.metaKey) && !ev.altKey && !ev.shiftKey && ev.key.toLowerCase() === 'k';
  const slash = ev.key === '/' && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey;
  if (!ctrlK && !slash) return;
  if (document.querySelector('dialog[open]:not(#search-dialog)')) return;
  ev.preventDefault();
  if (dialog.open) input.select();
  else openSearch();
}

export function setupSearch(pieces) {
  ctx = pieces;
  build();
  document.addEventListener('keydown', onKey);
  onLangChange(() => {
    if (dialog.open) render();
    if (scope.dataset.room) scope.nextElementSibling.textContent = t('searchThisRoom', { room: scope.dataset.room });
  });
}

// upload.js owns the files attached in the message box (PROTOCOL 1.1 "Attachments"): picked with the paperclip,
// pasted (a screenshot from the clipboard) or dropped on the conversation; each uploaded at once with its own
// progress bar and cancel, and handed to the message as ids when every upload of the box has finished.
// Uploads belong to the conversation they were attached in, as its draft does.

import { t } from './i18n.js';
import { humanSize, isPicture, thumbUrl, fileIcon, svgIcon } from './attachments.js';

const MAX_FILES = 10; // PROTOCOL: a message carries 1 to 10 files
const PAPERCLIP = 'M20.5 11.5l-8.4 8.4a5.2 5.2 0 01-7.4-7.4l8.4-8.4a3.5 3.5 0 015 5l-8.4 8.4a1.7 1.7 0 01-2.5-2.5l7.8-7.8';
const CROSS = 'M6 6l12 12M18 6L6 18';
const RETRY = 'M4 12a8 8 0 0113.7-5.6L20 8.7M20 4v4.7h-4.7M20 12a8 8 0 01-13.7 5.6L4 15.3M4 20v-4.7h4.7';

let nextKey = 1;
const boxes = new Map(); // conversation id -> Box: what is attached there
let ui = null; // the elements this module made or uses (set up once)
let hooks = null; // what it asks of the app: whether signed in, which conversation is open, where errors go

// What one conversation's message box has attached.
class Box {
  constructor() {
    this.items = []; // Upload, in the order attached
    this.waiter = null; // the send pressed while uploads were running: resolved when they all end
    this.sending = false; // a message with these files is on its way: a second press sends nothing
  }

  running() { return this.items.some((u) => u.status === 'uploading'); }

  failed() { return this.items.some((u) => u.status === 'failed'); }

  ids() { return this.items.filter((u) => u.status === 'done').map((u) => u.result.id); }
}

// One file on its way to the server, or there (its id in `result`), or refused (why in `error`).
class Upload {
  constructor(file) {
    this.key = nextKey++; // tells items apart in the tray (two files may share a name)
    this.file = file; // kept for a retry after a failure
    this.name = file.name || 'file'; // a pasted picture may come without a name
    this.size = file.size;
    this.loaded = 0; // bytes sent so far, for the progress bar
    this.status = 'uploading'; // 'uploading' | 'done' | 'failed'
    this.result = null; // the server's {id, name, type, size, width?, height?}
    this.error = null; // {code, retryAfter?, limit?, quota?}: what the item says instead of its progress
    this.xhr = null; // the request in flight, so cancel can abort it
    this.node = null; // its row in the tray, updated in place (a button under the pointer keeps its click)
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function boxOf(convId) {
  let box = boxes.get(convId);
  if (!box) {
    box = new Box();
    boxes.set(convId, box);
  }
  return box;
}

const activeBox = () => {
  const conv = hooks.activeConv();
  return conv ? boxOf(conv.id) : null;
};

// ---------------------------------------------------------------- uploading

function start(box, upload) {
  upload.status = 'uploading';
  upload.loaded = 0;
  upload.error = null;
  const xhr = new XMLHttpRequest();
  upload.xhr = xhr;
  xhr.open('POST', `/api/files?name=${encodeURIComponent(upload.name)}`);
  xhr.upload.addEventListener('progress', (ev) => {
    upload.loaded = ev.loaded;
    renderItem(upload);
  });
  xhr.addEventListener('load', () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { body = null; }
    if (xhr.status === 201 && body && typeof body.id === 'string') finish(box, upload, body, null);
    else finish(box, upload, null, errorOf(xhr, body));
  });
  // No answer at all: the network, or a server that closed on a body it would not take.
  xhr.addEventListener('error', () => finish(box, upload, null, { code: 'network' }));
  xhr.addEventListener('timeout', () => finish(box, upload, null, { code: 'network' }));
  xhr.send(upload.file);
  renderItem(upload);
}

function errorOf(xhr, body) {
  const code = body?.code || { 401: 'not_signed_in', 413: 'too_large', 429: 'rate_limited' }[xhr.status] || `http_${xhr.status}`;
  const retryAfter = body?.retry_after ?? (Number(xhr.getResponseHeader('Retry-After')) || undefined);
  return { code, retryAfter, limit: limitOf(body), quota: /quota/i.test(body?.message || ''), message: body?.message };
}

// The server's size limit in bytes, when its answer says it: a number field, or its words ("larger than 10 MiB").
function limitOf(body) {
  if (typeof body?.max_bytes === 'number' && body.max_bytes > 0) return body.max_bytes;
  const mib = /(\d+(?:\.\d+)?)\s*MiB/.exec(body?.message || '');
  return mib ? Number(mib[1]) * 1024 * 1024 : undefined;
}

function finish(box, upload, result, error) {
  if (!box.items.includes(upload)) return; // cancelled meanwhile
  upload.xhr = null;
  upload.result = result;
  upload.error = error;
  upload.status = result ? 'done' : 'failed';
  if (result) upload.loaded = upload.size;
  renderItem(upload);
  say(result ? t('uploadDone', { name: upload.name }) : `${upload.name}: ${errorWords(upload)}`);
  settle(box);
}

// The send waiting for this box goes once nothing is uploading: with the ids, or not at all if a file failed.
function settle(box) {
  if (box.running() || !box.waiter) return;
  const resolve = box.waiter;
  box.waiter = null;
  renderWaiting();
  if (box.failed()) {
    showBoxError(() => t('uploadFixFirst'));
    resolve(null);
    return;
  }
  box.sending = box.items.length > 0;
  resolve(box.ids());
}

function remove(box, upload) {
  upload.xhr?.abort();
  upload.xhr = null;
  box.items = box.items.filter((u) => u !== upload);
  upload.node?.remove();
  renderTray();
  settle(box);
  clearBoxError(box);
}

let boxErrorShown = false; // the error above the message box is about this box's files: it goes once they are fixed

function showBoxError(text) {
  hooks.showError(text, 'upload');
  boxErrorShown = true;
}

function clearBoxError(box) {
  if (!boxErrorShown || box.failed()) return;
  boxErrorShown = false;
  hooks.showError('', '');
}

// Adds files to the open conversation's box and starts their uploads; a guest is told why it cannot.
export function addFiles(list) {
  const files = [...list].filter((f) => f instanceof File);
  if (!files.length) return;
  const box = activeBox();
  if (!box) return;
  if (!hooks.signedIn()) {
    hooks.showError(() => t('attachGuest'), 'not_signed_in');
    return;
  }
  if (box.sending) return;
  clearBoxError(box);
  const room = MAX_FILES - box.items.length;
  if (files.length > room) hooks.showError(() => t('tooManyFiles', { n: MAX_FILES }), 'too_many_files');
  for (const file of files.slice(0, Math.max(0, room))) {
    const upload = new Upload(file);
    box.items.push(upload);
    start(box, upload);
  }
  renderTray();
}

// ---------------------------------------------------------------- sending

export function hasAttachments(conv) {
  return !!conv && (boxes.get(conv.id)?.items.length ?? 0) > 0;
}

// The ids to send with the message now, waiting for uploads still running. Null: send nothing now (a file
// failed, a send is already waiting or on its way). After a non-empty answer, `afterSend` must follow.
export function takeForSend(conv) {
  const box = boxes.get(conv.id);
  if (!box || !box.items.length) return Promise.resolve([]);
  if (box.sending || box.waiter) return Promise.resolve(null);
  if (box.running()) {
    const waiting = new Promise((resolve) => { box.waiter = resolve; });
    renderWaiting();
    return waiting;
  }
  if (box.failed()) {
    showBoxError(() => t('uploadFixFirst'));
    return Promise.resolve(null);
  }
  box.sending = true;
  return Promise.resolve(box.ids());
}

// The message went (its files leave the box) or did not (they stay, to send again).
export function afterSend(conv, sentIds) {
  const box = boxes.get(conv.id);
  if (!box) return;
  box.sending = false;
  if (!sentIds) return;
  for (const upload of box.items.filter((u) => u.result && sentIds.includes(u.result.id))) remove(box, upload);
}

// Signing out ends every upload: the files were the account's.
export function reset() {
  for (const box of boxes.values()) for (const u of box.items) u.xhr?.abort();
  boxes.clear();
  if (ui) renderTray();
}

// ---------------------------------------------------------------- the tray above the message box

// "40 s", "5 min", "23 h": how long until the server takes files again.
function waitWords(seconds) {
  if (seconds < 90) return t('inSeconds', { n: seconds });
  if (seconds < 90 * 60) return t('inMinutes', { n: Math.ceil(seconds / 60) });
  return t('inHours', { n: Math.ceil(seconds / 3600) });
}

function errorWords(upload) {
  const { code, retryAfter, limit, quota, message } = upload.error || {};
  if (code === 'too_large') return limit ? t('uploadTooLargeLimit', { limit: humanSize(limit) }) : t('uploadTooLarge');
  if (code === 'rate_limited') {
    const key = quota ? 'uploadQuota' : 'uploadRate';
    return retryAfter ? t(`${key}Wait`, { when: waitWords(retryAfter) }) : t(key);
  }
  if (code === 'network') return t('uploadNetwork');
  // Any other code the protocol names has words already (unavailable, forbidden_origin…).
  const known = t(`err_${code}`);
  return known === `err_${code}` ? t('err_unknown', { message: message || code }) : known;
}

// Trying the same file again can help after a network failure or a busy server, never when it is too large or
// the day's quota is spent.
function retryable(error) {
  return !!error && error.code !== 'too_large' && error.code !== 'not_signed_in' && !error.quota;
}

function buildItem(box, upload) {
  const li = el('li', 'upload');
  const thumb = el('span', 'upload-thumb');
  thumb.append(fileIcon('ico'));
  const body = el('span', 'upload-body');
  const name = el('span', 'upload-name', upload.name);
  name.title = upload.name;
  const state = el('span', 'upload-state');
  const bar = el('progress', 'upload-bar');
  bar.max = 100;
  body.append(name, state, bar);
  const retry = el('button', 'icon-btn icon-btn-sm upload-retry');
  retry.type = 'button';
  retry.append(svgIcon(RETRY, 'ico'));
  retry.addEventListener('click', () => {
    if (upload.status !== 'failed') return;
    start(box, upload);
    clearBoxError(box);
  });
  const cancel = el('button', 'icon-btn icon-btn-sm upload-cancel');
  cancel.type = 'button';
  cancel.append(svgIcon(CROSS, 'ico'));
  cancel.addEventListener('click', () => {
    const next = cancel.closest('li')?.nextElementSibling || cancel.closest('li')?.previousElementSibling;
    remove(box, upload);
    // Focus stays in the tray (on the next file's button) or goes back to the message box.
    (next?.querySelector('.upload-cancel') || ui.textarea).focus();
  });
  li.append(thumb, body, retry, cancel);
  upload.node = li;
  return li;
}

function renderItem(upload) {
  const li = upload.node;
  if (!li) return;
  li.className = `upload is-${upload.status}`;
  const pct = upload.size ? Math.min(100, Math.round((upload.loaded / upload.size) * 100)) : 0;
  const bar = li.querySelector('.upload-bar');
  bar.hidden = upload.status !== 'uploading';
  bar.value = pct;
  bar.setAttribute('aria-label', t('uploadingFile', { name: upload.name }));
  const state = li.querySelector('.upload-state');
  state.textContent = upload.status === 'failed' ? errorWords(upload)
    : upload.status === 'uploading' ? t('uploadProgress', { pct, size: humanSize(upload.size) })
      : humanSize(upload.size);
  const thumb = li.querySelector('.upload-thumb');
  if (upload.status === 'done' && isPicture(upload.result) && !thumb.querySelector('img')) {
    const img = el('img');
    img.alt = '';
    img.width = 44;
    img.height = 44;
    img.src = thumbUrl(upload.result.id);
    thumb.replaceChildren(img);
  }
  const retry = li.querySelector('.upload-retry');
  retry.hidden = upload.status !== 'failed' || !retryable(upload.error);
  retry.setAttribute('aria-label', t('uploadRetry', { name: upload.name }));
  retry.title = t('uploadRetry', { name: upload.name });
  const cancel = li.querySelector('.upload-cancel');
  const cancelWords = upload.status === 'uploading' ? t('uploadCancel', { name: upload.name }) : t('uploadRemove', { name: upload.name });
  cancel.setAttribute('aria-label', cancelWords);
  cancel.title = cancelWords;
}

// The open conversation's box: its files, and the line saying the message waits for them.
function renderTray() {
  const box = activeBox();
  const items = box ? box.items : [];
  const rows = items.map((u) => u.node || buildItem(box, u));
  const current = [...ui.list.children];
  if (rows.length !== current.length || rows.some((li, i) => li !== current[i])) ui.list.replaceChildren(...rows);
  for (const u of items) renderItem(u);
  ui.tray.hidden = items.length === 0;
  renderWaiting();
}

function renderWaiting() {
  const box = activeBox();
  ui.waiting.hidden = !box?.waiter;
  ui.waiting.textContent = t('uploadWaiting');
}

function renderButton() {
  const guest = !hooks.signedIn();
  // A guest sees the paperclip, and why it does not open: the words are its tooltip and its description.
  ui.button.setAttribute('aria-disabled', String(guest));
  const words = guest ? t('attachGuest') : t('attach');
  ui.button.title = words;
  ui.button.setAttribute('aria-label', guest ? `${t('attach')}. ${t('attachGuest')}` : t('attach'));
  ui.conversation.dataset.dropText = t('dropHere');
}

// Screen readers hear an upload end, once; the progress itself is the bar's.
function say(text) { ui.status.textContent = text; }

// The open conversation changed (or signing in did): its box on screen.
export function showFor() {
  if (!ui) return;
  renderButton();
  renderTray();
}

export const retranslateUploads = showFor;

// ---------------------------------------------------------------- the ways in: button, paste, drop

const carriesFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');

function setupDrop(zone) {
  let depth = 0; // dragenter/leave fire for every child crossed: the highlight goes when the pointer leaves it all
  const clear = () => {
    depth = 0;
    zone.classList.remove('drop-target');
  };
  zone.addEventListener('dragenter', (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    depth += 1;
    zone.classList.add('drop-target');
  });
  zone.addEventListener('dragover', (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) clear();
  });
  zone.addEventListener('drop', (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    clear();
    addFiles(ev.dataTransfer.files);
  });
  // A file dropped beside the conversation must not replace the page with itself.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (ev) => { if (carriesFiles(ev)) ev.preventDefault(); });
  }
}

function onPaste(ev) {
  const files = [...(ev.clipboardData?.files || [])];
  if (!files.length) return; // text pastes as text
  ev.preventDefault();
  addFiles(files);
}

// Builds the paperclip, the hidden file input and the tray into the message box, and listens for paste and drop.
// app: {signedIn(), activeConv(), showError(textFn, code)}.
export function setupUploads(els, app) {
  hooks = app;
  const button = el('button', 'icon-btn attach-btn');
  button.type = 'button';
  button.id = 'attach';
  button.append(svgIcon(PAPERCLIP, 'ico'));
  const input = el('input');
  input.type = 'file';
  input.multiple = true;
  input.id = 'attach-input';
  input.hidden = true;
  input.tabIndex = -1;
  const tray = el('div', 'upload-tray');
  tray.id = 'upload-tray';
  tray.hidden = true;
  const list = el('ul', 'upload-list');
  const waiting = el('p', 'upload-waiting');
  waiting.hidden = true;
  tray.append(list, waiting);
  const status = el('p', 'sr-only');
  status.setAttribute('role', 'status');
  els.input.before(button);
  els.composer.prepend(tray, input, status);
  ui = { button, input, tray, list, waiting, status, textarea: els.input, conversation: els.conversation };

  button.addEventListener('click', () => {
    if (!hooks.signedIn()) {
      hooks.showError(() => t('attachGuest'), 'not_signed_in');
      return;
    }
    input.click();
  });
  input.addEventListener('change', () => {
    addFiles(input.files);
    input.value = ''; // the same file can be picked again
  });
  // Anywhere in the conversation: the message box, or the list after clicking a message.
  els.conversation.addEventListener('paste', onPaste);
  setupDrop(els.conversation);
  showFor();
}

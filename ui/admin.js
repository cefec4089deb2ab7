// admin.js owns the admin's panel (PROTOCOL 1.1 "Moderation": `suspend`, `unsuspend`): a button only the server's
// admin sees, and a dialog to suspend an account by name for a while or until lifted, or to lift it, with the
// server's answer shown under the form.

import './i18n-moderation.js';
import { t, onLangChange, translateDom } from './i18n.js';
import { h } from './render.js';
import { formatUntil } from './moderation.js';
import { els } from './view.js';

const DURATIONS = [
  { key: 'dur1h', minutes: 60 },
  { key: 'dur1d', minutes: 24 * 60 },
  { key: 'dur7d', minutes: 7 * 24 * 60 },
  { key: 'dur30d', minutes: 30 * 24 * 60 },
  { key: 'durForever', minutes: 0 }, // no `minutes`: until `unsuspend`
];
const SVG_NS = 'http://www.w3.org/2000/svg';

let ctx = null; // conn, errorText
let button = null;
let dialog = null;
let form = null;
let nameInput = null;
let duration = null;
let result = null;
let error = null;
const words = new Map(); // element -> () => string: what it says, in the language of the moment

// A line under the form; `text` is a function of the language, or '' to hide the line.
function showError(el, text) {
  if (text) words.set(el, text);
  else words.delete(el);
  el.textContent = text ? text() : '';
  el.hidden = !text;
}

function shield() {
  const el = document.createElementNS(SVG_NS, 'svg');
  el.setAttribute('viewBox', '0 0 24 24');
  el.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(SVG_NS, 'path');
  p.setAttribute('d', 'M12 3l7 3v5c0 4.5-3 8.3-7 10-4-1.7-7-5.5-7-10V6zM9 12l2 2 4-4');
  el.append(p);
  return el;
}

function field(labelKey, control) {
  const label = h('label');
  label.htmlFor = control.id;
  label.dataset.i18n = labelKey;
  return [label, control];
}

function build() {
  // Under "browse rooms" in the sidebar: the foot has no room left beside the account's name.
  button = h('button', 'nav-item admin-btn');
  button.type = 'button';
  button.id = 'admin-open';
  button.hidden = true;
  button.setAttribute('aria-haspopup', 'dialog');
  const label = h('span');
  label.dataset.i18n = 'admin';
  button.append(shield(), label);
  els.navLobby.after(button);

  dialog = h('dialog', 'dialog dialog-wide admin-dialog');
  dialog.id = 'admin-dialog';
  dialog.setAttribute('aria-labelledby', 'admin-title');
  const wrap = h('div', 'stack');
  const head = h('div', 'dialog-head');
  const title = h('h2');
  title.id = 'admin-title';
  title.dataset.i18n = 'adminTitle';
  const close = h('button', 'icon-btn icon-btn-sm');
  close.type = 'button';
  close.id = 'admin-close';
  close.dataset.i18nAriaLabel = 'close';
  const x = document.createElementNS(SVG_NS, 'svg');
  x.setAttribute('viewBox', '0 0 24 24');
  x.setAttribute('aria-hidden', 'true');
  const xp = document.createElementNS(SVG_NS, 'path');
  xp.setAttribute('d', 'M6 6l12 12M18 6L6 18');
  x.append(xp);
  close.append(x);
  head.append(title, close);
  const lead = h('p', 'muted');
  lead.dataset.i18n = 'adminLead';

  form = h('form', 'stack');
  form.id = 'admin-form';
  form.noValidate = true;
  nameInput = h('input');
  nameInput.id = 'admin-user';
  nameInput.maxLength = 32;
  nameInput.autocomplete = 'off';
  nameInput.spellcheck = false;
  nameInput.autocapitalize = 'none';
  nameInput.setAttribute('aria-describedby', 'admin-error admin-result');
  duration = h('select');
  duration.id = 'admin-duration';
  for (const d of DURATIONS) {
    const o = h('option');
    o.value = String(d.minutes);
    o.dataset.i18n = d.key;
    duration.append(o);
  }
  duration.value = String(24 * 60);
  error = h('p', 'form-error');
  error.id = 'admin-error';
  error.setAttribute('role', 'alert');
  error.hidden = true;
  result = h('p', 'form-ok');
  result.id = 'admin-result';
  result.setAttribute('role', 'status');
  result.hidden = true;
  const actions = h('div', 'dialog-actions');
  const lift = h('button', 'btn btn-ghost');
  lift.type = 'button';
  lift.id = 'admin-unsuspend';
  lift.dataset.i18n = 'unsuspend';
  const go = h('button', 'btn btn-danger');
  go.type = 'submit';
  go.id = 'admin-suspend';
  go.dataset.i18n = 'suspend';
  actions.append(lift, go);
  form.append(...field('adminUser', nameInput), ...field('adminDuration', duration), error, result, actions);
  wrap.append(head, lead, form);
  dialog.append(wrap);
  document.body.append(dialog);
  translateDom(dialog);
  translateDom(button.parentElement);

  button.addEventListener('click', () => {
    showError(error, '');
    showError(result, '');
    dialog.showModal();
    nameInput.focus();
  });
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => { if (!button.hidden) button.focus({ preventScroll: true }); });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act('suspend');
  });
  lift.addEventListener('click', () => act('unsuspend'));
}

// The server's answer, in words, under the form (kept as a function: a language switch rewrites it).
async function act(type) {
  const user = nameInput.value.trim();
  showError(result, '');
  if (!user) {
    showError(error, () => t('err_name_required'));
    nameInput.focus();
    return;
  }
  showError(error, '');
  const minutes = Number(duration.value);
  const command = { type, user, ...(type === 'suspend' && minutes ? { minutes } : {}) };
  for (const b of form.querySelectorAll('button')) b.disabled = true;
  try {
    const reply = await ctx.conn.request(command);
    const name = reply.user || user;
    if (reply.type === 'unsuspended') showError(result, () => t('unsuspendedDone', { name }));
    else if (reply.until) showError(result, () => t('suspendedDone', { name, until: formatUntil(reply.until) }));
    else showError(result, () => t('suspendedForever', { name }));
  } catch (err) {
    showError(error, () => (err.code === 'no_such_user' ? t('adminNoUser') : ctx.errorText(err, { name: user })));
    nameInput.focus();
  } finally {
    for (const b of form.querySelectorAll('button')) b.disabled = false;
  }
}

// Shown only to the server's admin (welcome.admin); gone again when someone else signs in on this page.
export function setAdmin(admin) {
  button.hidden = !admin;
  if (!admin && dialog.open) dialog.close();
}

export function setupAdmin(pieces) {
  ctx = pieces;
  build();
  onLangChange(() => {
    for (const [el, text] of words) el.textContent = text();
  });
}

// settings.js owns the account's settings dialog: where it is signed in (each session with a way to end it, and
// "sign out everywhere else"), changing the password, and whether desktop notifications are on.

import { t, formatFull } from './i18n.js';
import * as account from './account.js';
import * as notify from './notify.js';
import { els, showError, renderNotifyButton } from './view.js';
import { h } from './render.js';

const MINUTE = 60000;

let me = { name: '', admin: false };
let errorText = (err) => err.code; // the page's wording for an error code, given by app.js

export function setupSettings({ describeError }) {
  errorText = describeError;
  els.settingsClose.addEventListener('click', () => els.settingsDialog.close());
  els.settingsDialog.addEventListener('close', () => els.settingsBtn.focus());
  els.revokeOthers.addEventListener('click', revokeOthers);
  els.sessionList.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-revoke]');
    if (b) revoke(b.dataset.revoke, b);
  });
  els.pwcForm.addEventListener('submit', changePassword);
  els.notifyEnable.addEventListener('click', askNotifications);
  els.notifyBtn.addEventListener('click', askNotifications);
  renderNotify();
}

export function openSettings(who) {
  me = who;
  showError(els.sessionsError, '');
  showError(els.pwcError, '');
  showError(els.pwcDone, '');
  els.pwcForm.reset();
  els.pwcUser.value = who.name; // password managers file the new password under this account
  renderWho();
  renderNotify();
  els.settingsDialog.showModal();
  loadSessions();
}

// Re-words what is on screen after a language switch.
export function retranslateSettings() {
  if (!els.settingsDialog.open) return;
  renderWho();
  renderNotify();
  loadSessions();
}

function renderWho() {
  els.settingsWho.textContent = t(me.admin ? 'signedInAsAdmin' : 'signedInAs', { name: me.name });
}

// "agora", "há 5 min" would need plural rules per unit: Intl.RelativeTimeFormat has them.
function when(ms) {
  const ago = Date.now() - ms;
  if (ago < MINUTE) return t('justNow');
  const rtf = new Intl.RelativeTimeFormat(document.documentElement.lang, { numeric: 'auto' });
  if (ago < 60 * MINUTE) return rtf.format(-Math.round(ago / MINUTE), 'minute');
  if (ago < 24 * 60 * MINUTE) return rtf.format(-Math.round(ago / (60 * MINUTE)), 'hour');
  if (ago < 7 * 24 * 60 * MINUTE) return rtf.format(-Math.round(ago / (24 * 60 * MINUTE)), 'day');
  return formatFull(ms);
}

async function loadSessions() {
  let view;
  try {
    view = await account.currentSession();
  } catch (err) {
    showError(els.sessionsError, () => errorText(err), err.code);
    return;
  }
  if (!view) {
    showError(els.sessionsError, () => t('err_not_signed_in'), 'not_signed_in');
    return;
  }
  me = { name: view.name, admin: view.admin };
  renderWho();
  // This device first, then the most recently active.
  const sessions = [...view.sessions].sort((a, b) => (b.current - a.current) || (b.last_seen - a.last_seen));
  els.sessionList.replaceChildren(...sessions.map(sessionRow));
  els.revokeOthers.hidden = sessions.length < 2;
}

function sessionRow(s) {
  const li = h('li', 'session');
  li.dataset.session = String(s.id);
  const device = account.describeAgent(s.agent) || t('unknownDevice');
  const info = h('div', 'session-info');
  const name = h('span', 'session-device', device);
  name.title = s.agent || '';
  const seen = h('span', 'session-seen', s.current
    ? t('signedInSince', { when: when(s.created) })
    : t('lastSeen', { when: when(s.last_seen) }));
  info.append(name, seen);
  li.append(info);
  if (s.current) {
    li.append(h('span', 'session-here', t('thisDevice')));
  } else {
    const b = h('button', 'btn btn-ghost btn-small', t('revokeSession'));
    b.type = 'button';
    b.dataset.revoke = String(s.id);
    b.setAttribute('aria-label', t('revokeSessionLabel', { device }));
    li.append(b);
  }
  return li;
}

async function revoke(id, button) {
  button.disabled = true;
  showError(els.sessionsError, '');
  try {
    await account.revokeSession(Number.isNaN(Number(id)) ? id : Number(id));
  } catch (err) {
    if (err.code !== 'no_such_session') showError(els.sessionsError, () => errorText(err), err.code);
  }
  await loadSessions();
  els.revokeOthers.hidden ? els.settingsClose.focus() : els.revokeOthers.focus();
}

async function revokeOthers() {
  els.revokeOthers.disabled = true;
  showError(els.sessionsError, '');
  try {
    await account.revokeOtherSessions();
    await loadSessions();
    showError(els.pwcDone, '');
    els.settingsClose.focus();
  } catch (err) {
    showError(els.sessionsError, () => errorText(err), err.code);
  } finally {
    els.revokeOthers.disabled = false;
  }
}

async function changePassword(ev) {
  ev.preventDefault();
  showError(els.pwcError, '');
  showError(els.pwcDone, '');
  const current = els.pwcCurrent.value;
  const next = els.pwcNew.value;
  if (!current) {
    showError(els.pwcError, () => t('err_password_required'));
    return els.pwcCurrent.focus();
  }
  if ([...next].length < 8 || [...next].length > 128) {
    showError(els.pwcError, () => t('err_weak_password'), 'weak_password');
    return els.pwcNew.focus();
  }
  const submit = els.pwcForm.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    await account.changePassword(current, next);
    els.pwcForm.reset();
    els.pwcUser.value = me.name;
    showError(els.pwcDone, () => t('passwordChanged'));
    loadSessions();
  } catch (err) {
    showError(els.pwcError, () => (err.code === 'bad_credentials' ? t('err_wrong_password') : errorText(err)), err.code);
    (err.code === 'weak_password' ? els.pwcNew : els.pwcCurrent).focus();
  } finally {
    submit.disabled = false;
  }
}

async function askNotifications() {
  await notify.ask();
  renderNotify();
}

function renderNotify() {
  const state = notify.permission();
  renderNotifyButton(state);
  els.notifyState.textContent = t({ default: 'notifyDefault', granted: 'notifyGranted', denied: 'notifyDenied' }[state]
    ?? 'notifyUnsupported');
  els.notifyEnable.hidden = state !== 'default';
}

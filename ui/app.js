// app.js owns the session: login, the server's events, rejoining after a reconnect, and wiring user actions to commands.

import { t, lang, setLang, onLangChange, translateDom, safeGet, safeSet, LANGS } from './i18n.js';
import { Connection, socketUrl } from './connection.js';
import { Store, RoomPages, nameKey, convId } from './store.js';
import { setupEmojiPicker } from './emoji.js';
import * as account from './account.js';
import * as notify from './notify.js';
import { setupSettings, openSettings, retranslateSettings } from './settings.js';
import './i18n-moderation.js';
import { setupModeration, noteCreated, formatUntil } from './moderation.js';
import { setupSearch } from './search.js';
import { setupAdmin, setAdmin } from './admin.js';
import * as view from './view.js';
import * as uploads from './upload.js';
import { setupAttachments, filesSummary, retranslateAttachments } from './attachments.js';

const { els } = view;
const NAME_KEY = 'papo.name';
const MODE_KEY = 'papo.mode'; // 'account' once this browser signed in: the start screen opens at "sign in" next time
const READ_DELAY_MS = 400; // read marks wait for a burst of messages to end: one `read`, not one per message
const DM_HISTORIES_AT_START = 20;
const BOOT_TIMEOUT_MS = 5000; // the page shows nothing while it asks whether it is signed in: not for long // kept DM conversations whose history loads with the welcome (the rest on opening)
const HISTORY_PAGE = 50;
const TYPING_EVERY_MS = 2000;
const NAME_TAKEN_RETRIES = 10; // after a reconnect our old connection may still hold the name for a moment
const DIRECTORY_REFRESH_MS = 15000;
const ROOMS_PAGE = 200; // the server's default page (PROTOCOL 1.1 `list`)
const ROOMS_REFRESH_MAX = 500; // the most one `list` returns: a refresh renews at most this many loaded rooms
const SEARCH_DELAY_MS = 300; // the filter asks the server once typing pauses, not at every key
// After a reconnect, people who were in a room before the drop come back one by one: for this long their
// return is not announced as "joined", since to everyone they never left.
const RETURN_QUIET_MS = 60000;

const store = new Store();
const session = {
  name: '', // what the user asked for
  signedIn: false, // this browser holds an account's session cookie: hello carries no name
  accountsAvailable: true, // the server has accounts (PROTOCOL 1.1); a version 1 server answers /api/session 404
  noGuests: false, // the server said sign_in_required to a guest: only accounts from now on
  everOnline: false, // hello succeeded at least once: drops are reconnects, not failed logins
  outage: false, // a "connection lost" line was written for the current drop
  outageConv: null, // the conversation on screen when it dropped: its lines say when it dropped and came back
  returnTimer: null, // ends the quiet window for people coming back after a reconnect
  nameTakenTries: 0,
  waitingForName: false, // the banner says why we wait, not just that we do
  lastTypingSent: new Map(),
  countdown: null,
};

const conn = new Connection(socketUrl(), { onOpen, onEvent, onDown, onClosed });

// ---------------------------------------------------------------- the start screen: guest, sign in, sign up

function startGuest(ev) {
  ev.preventDefault();
  const name = els.loginName.value.trim();
  els.loginToSignin.hidden = true;
  if (!name) return view.showError(els.loginError, () => t('err_name_required'));
  if ([...name].length > 32) return view.showError(els.loginError, () => t('err_invalid_name'));
  view.showError(els.loginError, '');
  view.setLoginNotice('');
  session.name = name;
  session.signedIn = false;
  session.everOnline = false;
  setLoginBusy(true);
  conn.start();
}

async function startSignIn(ev) {
  ev.preventDefault();
  const name = els.signinName.value.trim();
  const password = els.signinPassword.value;
  if (!name) return fieldError(els.signinError, 'err_name_required', els.signinName);
  if (!password) return fieldError(els.signinError, 'err_password_required', els.signinPassword);
  view.showError(els.signinError, '');
  setLoginBusy(true);
  try {
    const who = await account.login(name, password);
    els.signinPassword.value = '';
    signedIn(who);
  } catch (err) {
    setLoginBusy(false);
    view.showError(els.signinError, () => apiErrorText(err, { signIn: true }), err.code);
    (err.code === 'bad_credentials' ? els.signinPassword : els.signinName).focus();
  }
}

async function startSignUp(ev) {
  ev.preventDefault();
  const name = els.signupName.value.trim();
  const password = els.signupPassword.value;
  const invite = els.signupInvite.value.trim();
  if (!name) return fieldError(els.signupError, 'err_name_required', els.signupName);
  if ([...name].length > 32) return fieldError(els.signupError, 'err_invalid_name', els.signupName);
  if ([...password].length < 8 || [...password].length > 128) return fieldError(els.signupError, 'err_weak_password', els.signupPassword);
  view.showError(els.signupError, '');
  setLoginBusy(true);
  try {
    const who = await account.register(name, password, invite);
    els.signupForm.reset();
    signedIn(who);
  } catch (err) {
    setLoginBusy(false);
    view.showError(els.signupError, () => apiErrorText(err, { register: true }), err.code);
    if (err.code === 'bad_invite') {
      // This server wants an invite: the field for it appears, with the reason above it.
      els.signupInviteWrap.hidden = false;
      els.signupInvite.focus();
    } else {
      (err.code === 'weak_password' ? els.signupPassword : els.signupName).focus();
    }
  }
}

function fieldError(el, key, field) {
  view.showError(el, () => t(key));
  field.focus();
}

// The session cookie is set: connect as the account (its hello carries no name).
function signedIn(who) {
  session.signedIn = true;
  session.name = who.name;
  session.everOnline = false;
  safeSet(MODE_KEY, 'account');
  safeSet(NAME_KEY, who.name);
  view.setLoginNotice('');
  conn.start();
}

const BUSY_WORDS = { guest: ['connect', 'connecting'], signin: ['signIn', 'signingIn'], signup: ['signUp', 'signingUp'] };

function setLoginBusy(busy) {
  for (const [mode, form] of Object.entries(view.authForms())) {
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = busy;
    const [idle, working] = BUSY_WORDS[mode];
    btn.textContent = t(busy && mode === view.authModeNow() ? working : idle);
  }
}

// The start screen, in one of its modes, with a line saying why it is back when there is a reason.
function showStart(mode = defaultMode(), noticeKey = null) {
  setLoginBusy(false);
  view.showLogin();
  view.setAuthChoices(session.accountsAvailable, !session.noGuests);
  view.setLoginNotice(noticeKey ? () => t(noticeKey) : '');
  const saved = safeGet(NAME_KEY) || '';
  els.loginName.value = els.loginName.value || saved;
  els.signinName.value = els.signinName.value || saved;
  selectMode(mode);
}

function defaultMode() {
  if (!session.accountsAvailable) return 'guest';
  if (session.noGuests || safeGet(MODE_KEY) === 'account') return 'signin';
  return 'guest';
}

function selectMode(mode, focus = true) {
  view.setAuthMode(mode);
  els.loginToSignin.hidden = true;
  if (!focus) return;
  const field = {
    guest: els.loginName,
    signin: els.signinName.value ? els.signinPassword : els.signinName,
    signup: els.signupName,
  }[mode];
  field.focus();
  if (mode === 'guest') field.select();
}

// Arrow keys move between the tabs, as in every tab list.
function onAuthTabsKey(ev) {
  const tabs = [...els.authTabs.querySelectorAll('[role=tab]')].filter((tab) => !tab.hidden);
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  let next = null;
  if (ev.key === 'ArrowRight') next = tabs[(at + 1) % tabs.length];
  else if (ev.key === 'ArrowLeft') next = tabs[(at + tabs.length - 1) % tabs.length];
  else if (ev.key === 'Home') next = tabs[0];
  else if (ev.key === 'End') next = tabs[tabs.length - 1];
  if (!next) return;
  ev.preventDefault();
  selectMode(next.dataset.mode, false);
  next.focus();
}

// Whether this browser is signed in (the cookie is HttpOnly: only the server can say), then the right screen.
async function resumeSession() {
  view.showBoot();
  let who = null;
  try {
    who = await account.currentSession(BOOT_TIMEOUT_MS);
  } catch (err) {
    // A version 1 server has no accounts; no answer at all leaves the choice to the person.
    if (err.code === 'no_accounts') session.accountsAvailable = false;
  }
  if (who) return signedIn(who);
  showStart();
  return undefined;
}

// ---------------------------------------------------------------- the connection

async function onOpen() {
  let welcome;
  try {
    welcome = await conn.request(session.signedIn ? { type: 'hello' } : { type: 'hello', name: session.name });
  } catch (err) {
    return helloFailed(err);
  }
  session.nameTakenTries = 0;
  session.waitingForName = false;
  store.me = welcome.name;
  store.account = welcome.account === true; // PROTOCOL 1.1; absent (a guest) in version 1
  store.admin = welcome.admin === true;
  setAdmin(store.admin);
  view.setSignedIn(store.account);
  uploads.showFor();
  safeSet(NAME_KEY, welcome.name);
  applyWelcomeRooms(welcome);
  if (store.account) applyAccountWelcome(welcome);
  conn.markHealthy();
  stopCountdown();
  if (session.everOnline) {
    view.setConnection('online', () => t('connBack'));
    view.clearConnectionErrors();
    store.unreachable.clear(); // after a drop, who is online is learnt again
    await rejoinAll();
  } else {
    session.everOnline = true;
    setLoginBusy(false);
    view.showApp(store.me);
    view.setConnection('online');
    openConversation(null);
    // An account's rooms come back on any device: in again, with what it has not read counted.
    if (store.account) await rejoinAll();
  }
  if (store.account) loadDmHistories();
  session.outage = false;
  refreshAll();
}

// The server closed the socket for good: the session was ended (signed out elsewhere, the password changed, a
// revoke) or the account suspended. Back to the start screen, saying so.
function onClosed(code) {
  if (code !== 4001 && code !== 4003) return false;
  endSession(code === 4003 ? 'noticeSuspended' : 'noticeSessionEnded');
  return true;
}

function endSession(noticeKey, mode = 'signin') {
  conn.stop();
  stopCountdown();
  store.reset();
  uploads.reset();
  session.everOnline = false;
  session.signedIn = false;
  view.setSignedIn(false);
  view.setConnection('idle');
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  showStart(mode, noticeKey);
}

function helloFailed(err) {
  if (err.code === 'offline') return; // the socket closed under us; onDown has it
  if (session.signedIn && (err.code === 'bad_request' || err.code === 'bad_credentials')) {
    // The cookie no longer signs this connection in (the session ended meanwhile): a hello without a name.
    endSession('noticeSessionEnded');
    return;
  }
  if (!session.signedIn && err.code === 'sign_in_required') {
    session.noGuests = true;
    conn.stop();
    endSession('noticeNoGuests');
    return;
  }
  if (session.everOnline && err.code === 'name_taken' && session.nameTakenTries < NAME_TAKEN_RETRIES) {
    // Our previous connection has not been noticed as gone yet: wait and say hello again.
    session.nameTakenTries += 1;
    session.waitingForName = true;
    conn.restart(600 + 400 * session.nameTakenTries);
    return;
  }
  if (session.everOnline && err.code === 'rate_limited') {
    conn.restart(2000);
    return;
  }
  conn.stop();
  const mode = session.signedIn ? 'signin' : view.authModeNow();
  // Back to the start screen: from the app after a drop, or from nothing (a session resumed at load).
  if (session.everOnline || document.body.dataset.view === 'boot') endSession(null, mode);
  setLoginBusy(false);
  const where = view.authError(mode);
  view.showError(where, () => errorText(err, { name: session.name }), err.code);
  if (err.code === 'name_registered') {
    // The name is an account's: offer to sign in to it (it may be theirs).
    els.loginToSignin.textContent = t('loginAsAccount', { name: session.name });
    els.loginToSignin.dataset.name = session.name;
    els.loginToSignin.hidden = false;
  }
  if (view.authModeNow() === 'guest') {
    els.loginName.focus();
    els.loginName.select();
  }
}

function onDown({ retryInMs }) {
  if (!session.everOnline) {
    // The first connection failed: that is a login error, not a reconnect.
    conn.stop();
    if (document.body.dataset.view === 'boot') endSession(null, 'signin');
    setLoginBusy(false);
    view.showError(view.authError(), () => t('err_connect'));
    return;
  }
  if (!session.outage) {
    session.outage = true;
    clearTimeout(session.returnTimer);
    // One line where the reader is, not one in every conversation.
    session.outageConv = store.active;
    if (store.active) addSystem(store.active, 'sysDisconnected');
    for (const conv of store.rooms()) conv.outageMembers = new Set(conv.members.keys());
  }
  for (const conv of store.convs.values()) conv.typing.clear();
  view.renderTyping(store.active);
  startCountdown(retryInMs);
}

// The banner counts down to the next attempt, so a long back-off does not look like a hang.
function startCountdown(ms) {
  stopCountdown();
  const until = Date.now() + ms;
  const tick = () => {
    const s = Math.ceil((until - Date.now()) / 1000);
    if (session.waitingForName) view.setConnection('connecting', () => t('connNameWait'));
    else view.setConnection('offline', () => (s > 0 ? t('connLost', { s }) : t('connRetrying')), { retry: true });
  };
  tick();
  session.countdown = setInterval(tick, 1000);
}

function stopCountdown() {
  clearInterval(session.countdown);
  session.countdown = null;
}

// The banner's "retry now": skip the rest of the wait.
function retryNow() {
  stopCountdown();
  view.setConnection('offline', () => t('connRetrying'), { retry: true });
  conn.retryNow();
}

function askLogout() {
  els.logoutDialog.returnValue = '';
  els.logoutDialog.showModal();
}

function onLogoutDialogClose() {
  if (els.logoutDialog.returnValue === 'logout') logout();
  else els.logout.focus(); // cancelled (a button or Esc): back where the person was
}

// A guest's name is freed; an account's session ends (its rooms and DMs stay on the server).
async function logout() {
  const wasAccount = session.signedIn;
  conn.stop();
  stopCountdown();
  store.reset();
  uploads.reset();
  session.everOnline = false;
  session.signedIn = false;
  view.setSignedIn(false);
  view.setConnection('idle');
  if (wasAccount) {
    try {
      await account.logout();
    } catch { /* ended already (revoked elsewhere): signed out all the same */ }
    showStart('signin', 'noticeSignedOut');
    return;
  }
  els.loginName.value = safeGet(NAME_KEY) || '';
  showStart('guest');
}

// ---------------------------------------------------------------- an account: rooms, DMs and read marks everywhere

// welcome for an account carries its rooms and DM conversations with what is unread (read on any device).
function applyAccountWelcome(welcome) {
  const memberships = welcome.memberships || [];
  const kept = new Set(memberships.map((m) => convId('room', m.room)));
  const activeBefore = store.activeId;
  // Rooms left on another device while this one was away.
  for (const conv of store.rooms()) if (!kept.has(conv.id)) store.remove(conv.id);
  for (const m of memberships) {
    const conv = store.ensure('room', m.room);
    conv.name = m.room;
    conv.protected = !!m.protected;
    if (m.owner !== undefined) conv.owner = m.owner; // who moderates it (moderation.js), where the server says
    if (typeof m.member_count === 'number') conv.memberCount = m.member_count;
    if (conv === store.active) conv.readId = Math.max(conv.readId, m.read_id || 0);
    else conv.setServerUnread(m.unread, m.read_id, m.last_id);
  }
  for (const d of welcome.dms || []) {
    const conv = store.ensure('dm', d.with);
    conv.name = d.with;
    conv.sortById = true;
    if (conv === store.active) conv.readId = Math.max(conv.readId, d.read_id || 0);
    else conv.setServerUnread(d.unread, d.read_id, d.last_id);
  }
  if (activeBefore && !store.active) openConversation(null);
}

// Kept DMs: the newest conversations' history with the welcome (their order and dividers are right at once).
function loadDmHistories() {
  const dms = store.dms().filter((c) => !c.historyLoaded).slice(0, DM_HISTORIES_AT_START);
  for (const conv of dms) loadDmHistory(conv);
}

async function loadDmHistory(conv) {
  if (!store.account || conv.kind !== 'dm' || conv.historyLoaded || conv.loadingOlder) return;
  conv.loadingOlder = true;
  try {
    const reply = await conn.request({ type: 'dm_history', with: conv.name, limit: HISTORY_PAGE });
    const messages = reply.messages || [];
    conv.sortById = true;
    for (const m of messages) conv.addMessage(m);
    conv.historyLoaded = true;
    conv.historyDone = messages.length < HISTORY_PAGE;
  } catch (err) {
    // A guest on the other side has no kept history (no_such_user): the conversation is live only.
    conv.historyLoaded = err.code === 'no_such_user';
    conv.historyDone = conv.historyLoaded;
    if (err.code !== 'offline' && err.code !== 'no_such_user') view.showMainError(() => errorText(err), 8000, err.code);
  } finally {
    conv.loadingOlder = false;
  }
  view.renderSidebar(store);
  if (store.active === conv) {
    conv.placePendingDivider();
    view.showHistory(store);
    markRead(conv);
  }
}

const readTimers = new Map(); // conv id -> pending `read`

// The open conversation, read to its newest message with the tab in view: tell the server, which tells every
// device of the account. Marks never move back; a burst of messages sends one.
function markRead(conv) {
  if (!store.account || !conv || conv !== store.active || document.visibilityState !== 'visible' || !view.atLatest()) return;
  const id = conv.newestId();
  if (!id || id <= Math.max(conv.readId, conv.readSent || 0)) return;
  conv.readSent = id;
  clearTimeout(readTimers.get(conv.id));
  readTimers.set(conv.id, setTimeout(async () => {
    readTimers.delete(conv.id);
    const target = conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
    try {
      const reply = await conn.request({ type: 'read', ...target, id: conv.readSent });
      conv.applyReadMark(reply.id, store.me);
    } catch {
      conv.readSent = conv.readId; // not sent (offline; a guest on the other side of a DM): tried again later
    }
  }, READ_DELAY_MS));
}

// Back to the tab: what is on screen is read now.
function onVisibility() {
  const conv = store.active;
  if (document.visibilityState !== 'visible' || !conv) return;
  if (conv.unread && view.atLatest()) {
    conv.unread = 0;
    conv.unreadFrom = null;
    view.renderSidebar(store);
  }
  markRead(conv);
}

function openSettingsDialog() {
  openSettings({ name: store.me, admin: store.admin });
}

// ---------------------------------------------------------------- rooms: join, rejoin, leave, create

async function joinRoom(room, password = '') {
  const existing = store.get('room', room);
  const reply = await conn.request({ type: 'join', room, ...(password ? { password } : {}) });
  const conv = existing || store.ensure('room', reply.room);
  conv.password = password;
  view.showMainError(''); // a stale "room gone" notice no longer applies once you are in
  applyJoined(conv, reply, { first: !existing });
  openConversation(conv.id);
  return conv;
}

function applyJoined(conv, reply, { first }) {
  conv.name = reply.room;
  conv.protected = !!reply.protected;
  if (reply.owner !== undefined) conv.owner = reply.owner;
  conv.setMembers(reply.members || [], reply.member_count ?? 0);
  for (const name of reply.members || []) store.markSeen(name);
  const history = reply.history || [];
  for (const m of history) conv.addMessage(m);
  if (first) {
    conv.historyDone = history.length < HISTORY_PAGE;
    addSystem(conv, 'sysYouJoined', {}, false);
  }
  store.addRoom({ room: reply.room, protected: !!reply.protected, member_count: reply.member_count });
}

// After a reconnect: hello again is done; now each room, with what we missed (deduplicated by id).
async function rejoinAll() {
  const rooms = store.rooms();
  const outcomes = await Promise.all(rooms.map((conv) => rejoin(conv)));
  const gone = rooms.filter((_, i) => outcomes[i] === 'no_such_room');
  const locked = rooms.filter((_, i) => outcomes[i] === 'wrong_password');
  if (gone.length || locked.length) dropRooms(gone, locked);
  const where = session.outageConv;
  if (session.outage && where && store.convs.get(where.id) === where) addSystem(where, 'sysReconnected', {}, false);
  session.outageConv = null;
  session.returnTimer = setTimeout(() => { for (const conv of store.rooms()) conv.outageMembers = null; }, RETURN_QUIET_MS);
  refreshAll();
  if (store.active) view.renderConversation(store);
  markRead(store.active); // what came while away is on screen now
}

// Rejoins one room; returns 'ok' or the error code that stopped it.
async function rejoin(conv) {
  const lastBefore = conv.lastMsgId();
  // An account's room coming back on a new page: nothing of it here yet, so its history starts with this join.
  const fresh = !conv.items.some((it) => it.kind === 'msg');
  try {
    const reply = await conn.request({ type: 'join', room: conv.name, ...(conv.password ? { password: conv.password } : {}) });
    const unseenAll = (reply.history || []).length >= HISTORY_PAGE && reply.history.every((m) => !conv.has(m));
    applyJoined(conv, reply, { first: false });
    if (fresh) conv.historyDone = (reply.history || []).length < HISTORY_PAGE;
    if (fresh && store.account && conv !== store.active) conv.countSinceWelcome(store.me);
    if (unseenAll && lastBefore) await fillGap(conv, lastBefore);
    return 'ok';
  } catch (err) {
    if (err.code !== 'offline' && err.code !== 'no_such_room' && err.code !== 'wrong_password') {
      view.showMainError(() => errorText(err), 8000, err.code);
    }
    return err.code;
  }
}

// More than a page was missed: walk back until we meet a message we already have.
async function fillGap(conv, lastBefore) {
  for (let round = 0; round < 5; round++) {
    const oldestNew = conv.items.find((it) => it.kind === 'msg' && it.id > lastBefore);
    if (!oldestNew) return;
    const reply = await conn.request({ type: 'history', room: conv.name, before: oldestNew.id, limit: 100 });
    let reachedKnown = false;
    for (const m of reply.messages) {
      if (m.id <= lastBefore || conv.has(m)) reachedKnown = true;
      else conv.addMessage(m);
    }
    if (reachedKnown || reply.messages.length < 100) return;
  }
}

// Rooms we could not get back into: one notice for all of them, and out of the sidebar.
function dropRooms(gone, locked) {
  const wasActive = [...gone, ...locked].some((c) => c.id === store.activeId);
  for (const conv of [...gone, ...locked]) {
    store.remove(conv.id);
    if (gone.includes(conv)) store.removeRoom(conv.name);
  }
  const list = (convs) => new Intl.ListFormat(lang(), { type: 'conjunction' }).format(convs.map((c) => c.name));
  const text = () => {
    const parts = [];
    if (gone.length === 1) parts.push(t('roomGone', { room: gone[0].name }));
    if (gone.length > 1) parts.push(t('roomsGone', { rooms: list(gone) }));
    if (locked.length) parts.push(t('roomLocked', { rooms: list(locked) }));
    return parts.join(' ');
  };
  view.showMainError(text, 0);
  view.announce(text());
  if (wasActive) openConversation(null);
}

async function leaveRoom() {
  const conv = store.active;
  if (!conv || conv.kind !== 'room') return;
  try {
    await conn.request({ type: 'leave', room: conv.name });
  } catch (err) {
    if (err.code !== 'not_in_room' && err.code !== 'no_such_room') return view.showMainError(() => errorText(err), 8000, err.code);
  }
  store.remove(conv.id);
  openConversation(null);
  refreshDirectory();
}

async function createRoom(ev) {
  ev.preventDefault();
  const room = els.createName.value.trim();
  const password = els.createPassword.value;
  if (!room) return view.showError(els.createError, () => t('err_room_required'));
  view.showError(els.createError, '');
  const submit = els.createForm.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    const created = await conn.request({ type: 'create', room, ...(password ? { password } : {}) });
    store.addRoom({ room: created.room, protected: created.protected, member_count: 0 });
    noteCreated(created.room);
    await joinRoom(created.room, password);
    els.createForm.reset();
  } catch (err) {
    view.showError(els.createError, () => errorText(err, { password: true, create: true }), err.code);
    (err.code === 'invalid_text' ? els.createPassword : els.createName).focus();
  } finally {
    submit.disabled = false;
  }
}

// Clicking a room in the directory: open it if joined, ask for the password only when it is protected.
async function pickRoom(roomName) {
  const joined = store.get('room', roomName);
  if (joined) return openConversation(joined.id);
  const summary = store.findRoom(roomName);
  if (summary?.protected) return askPassword(summary.room);
  try {
    await joinRoom(roomName);
  } catch (err) {
    if (err.code === 'wrong_password') return askPassword(roomName); // it became protected meanwhile
    if (err.code === 'no_such_room') {
      // Gone since the list was drawn: it leaves the list too.
      store.removeRoom(roomName);
      view.renderLobby(store);
    }
    view.showMainError(() => errorText(err), 8000, err.code);
  }
}

function askPassword(room) {
  els.pwDialog.dataset.room = room;
  document.getElementById('pw-room').value = room;
  els.pwTitle.textContent = t('passwordTitle', { room });
  els.pwInput.value = '';
  view.showError(els.pwError, '');
  els.pwDialog.showModal();
  els.pwInput.focus();
}

async function submitPassword(ev) {
  ev.preventDefault();
  const room = els.pwDialog.dataset.room;
  const submit = els.pwForm.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    await joinRoom(room, els.pwInput.value);
    // Closing gives focus back to the room's row in the lobby, which is gone now: take it to the room.
    els.pwDialog.close();
    view.focusWork(store.active);
  } catch (err) {
    view.showError(els.pwError, () => errorText(err, { password: true }), err.code);
    els.pwInput.focus();
    els.pwInput.select();
  } finally {
    submit.disabled = false;
  }
}

// welcome carries the first page of rooms and, from a 1.1 server, how many there are in all.
function applyWelcomeRooms(welcome) {
  const rooms = welcome.rooms || [];
  const total = typeof welcome.rooms_total === 'number' ? welcome.rooms_total : rooms.length;
  store.directory.applyPage(rooms, { total, more: total > rooms.length });
}

// Renews the rooms on screen (their counts; rooms gone): the loaded ones from the start, up to one request's worth.
async function refreshDirectory() {
  const limit = Math.min(ROOMS_REFRESH_MAX, Math.max(ROOMS_PAGE, store.directory.size));
  try {
    const reply = await conn.request({ type: 'list', limit });
    store.directory.applyPage(reply.rooms || [], { total: reply.total, more: reply.more === true });
    for (const conv of store.rooms()) {
      if (conv.memberCount) store.updateRoom({ room: conv.name, member_count: conv.memberCount });
    }
    if (!store.active) view.renderLobby(store);
  } catch { /* offline or slow: the next refresh will do */ }
}

// The list the lobby shows: the server's answer to the filter while not every room is loaded, else the directory.
function shownPages() {
  const filter = els.roomFilter.value.trim();
  return filter && !store.directory.complete && store.search?.q === filter ? store.search : store.directory;
}

// The next page of the list on screen ("more rooms", or scrolling to its end). Keeps going while the end of the
// list is still in view, so a tall screen fills up.
async function loadMoreRooms() {
  for (let round = 0; round < 10; round++) {
    const pages = shownPages();
    if (pages.loading || !pages.more) return;
    pages.loading = true;
    view.renderLobby(store);
    try {
      const after = pages.cursor;
      const reply = await conn.request({ type: 'list', after, limit: ROOMS_PAGE, ...(pages.q ? { q: pages.q } : {}) });
      pages.applyPage(reply.rooms || [], { after, total: reply.total, more: reply.more === true });
    } catch (err) {
      if (err.code !== 'offline') view.showMainError(() => errorText(err), 8000, err.code);
      return;
    } finally {
      pages.loading = false;
      if (!store.active) view.renderLobby(store);
    }
    if (store.active || !view.roomListEndInView()) return;
  }
}

let searchTimer = null;
let searchSeq = 0; // answers to an older filter are dropped

// The filter: rooms already loaded match at once; when the server has more, it is asked once typing pauses.
function onFilterInput() {
  clearTimeout(searchTimer);
  const q = els.roomFilter.value.trim();
  if (!q || store.directory.complete) store.search = null;
  else if (store.search?.q !== q) {
    searchTimer = setTimeout(() => searchRooms(q), SEARCH_DELAY_MS);
  }
  view.renderLobby(store);
}

async function searchRooms(q) {
  const seq = ++searchSeq;
  view.setRoomSearchPending(true);
  view.renderLobby(store);
  try {
    const reply = await conn.request({ type: 'list', q, limit: ROOMS_PAGE });
    if (seq !== searchSeq || els.roomFilter.value.trim() !== q) return;
    const pages = new RoomPages(q);
    pages.applyPage(reply.rooms || [], { total: reply.total, more: reply.more === true });
    store.search = pages;
  } catch (err) {
    if (seq === searchSeq && err.code !== 'offline') view.showMainError(() => errorText(err), 8000, err.code);
  } finally {
    if (seq === searchSeq) view.setRoomSearchPending(false);
    if (!store.active) view.renderLobby(store);
  }
}

// ---------------------------------------------------------------- conversations

function openConversation(id) {
  const prev = store.active;
  if (prev) {
    prev.draft = els.input.value;
    prev.close();
  }
  store.activeId = id && store.convs.has(id) ? id : null;
  const conv = store.active;
  if (conv) conv.open();
  if (view.isNarrow()) view.setDrawer(false);
  view.showPane(store);
  uploads.showFor();
  view.renderSidebar(store);
  // Keyboard users land where the work is (a modal dialog open on top keeps it until it closes).
  if (!document.querySelector('dialog[open]')) view.focusWork(conv);
  if (!conv) refreshDirectory();
  else if (conv.kind === 'dm' && store.account && !conv.historyLoaded) loadDmHistory(conv);
  else markRead(conv);
}

function openDm(name) {
  const trimmed = String(name).trim();
  if (!trimmed) return;
  if (store.isMe(trimmed)) return view.showMainError(() => t('err_invalid_name'));
  const conv = store.ensure('dm', trimmed);
  openConversation(conv.id);
}

function addSystem(conv, key, params = {}, show = true) {
  const index = conv.addSystem(key, params);
  if (show && conv === store.active) view.showNewItem(store, index);
}

// Sorted insert; shows it, or counts it unread when the conversation is not on screen.
function receiveMessage(conv, msg) {
  const index = conv.addMessage(msg);
  if (index < 0) return; // already have it (history and live overlap, or a reconnect)
  const mine = store.isMe(msg.from);
  if (conv.stopTyping(msg.from) && conv === store.active) view.renderTyping(conv);
  if (!mine && (conv.kind === 'dm' || notify.mentions(msg.text, store.me))) {
    notify.show({
      title: conv.kind === 'dm' ? t('notifyDm', { name: msg.from }) : t('notifyRoom', { name: msg.from, room: conv.name }),
      body: msg.text || filesSummary(msg.files),
      tag: conv.id,
      onClick: () => openConversation(conv.id),
    });
  }
  if (conv === store.active) {
    view.showNewItem(store, index);
    if (!mine) view.announce(`${msg.from}: ${[msg.text, filesSummary(msg.files)].filter(Boolean).join(' ')}`);
    // On screen but the tab is away: the title counts it until the tab is back.
    if (!mine && document.visibilityState !== 'visible') {
      conv.markUnread(msg);
      view.renderSidebar(store);
    }
    markRead(conv);
  } else if (!mine) {
    conv.markUnread(msg);
    view.renderSidebar(store);
    view.announce(t('newFrom', { name: msg.from, conv: conv.kind === 'room' ? `#${conv.name}` : t('directMessages') }));
  }
  if (conv.kind === 'dm') {
    view.renderSidebar(store);
    if (conv === store.active) view.renderDmStatus(store);
  }
}

async function sendMessage(ev) {
  ev?.preventDefault();
  const conv = store.active;
  if (!conv || (!els.input.value.trim() && !uploads.hasAttachments(conv))) return;
  // Attached files go with the message once they are all uploaded (it waits for them).
  const files = await uploads.takeForSend(conv);
  if (!files) return;
  const text = els.input.value.trim() ? els.input.value : '';
  if (store.active !== conv || (!text && !files.length)) {
    uploads.afterSend(conv, null); // another conversation is on screen now: its box is not this message's
    return;
  }
  const withFiles = files.length ? { files } : {};
  els.input.value = '';
  conv.draft = '';
  view.autoGrow();
  view.showError(els.composerError, '');
  try {
    if (conv.kind === 'room') {
      session.lastTypingSent.delete(conv.id);
      await conn.request({ type: 'text', room: conv.name, text, ...withFiles });
    } else {
      await conn.request({ type: 'dm', to: conv.name, text, ...withFiles });
    }
    uploads.afterSend(conv, files);
  } catch (err) {
    uploads.afterSend(conv, null); // the files stay attached, to send again
    // Give the words back so nothing typed is lost.
    if (!els.input.value && store.active === conv) {
      els.input.value = text;
      view.autoGrow();
    }
    if (err.code === 'no_such_user' && conv.kind === 'dm') {
      // The line above the box says it and stays while it is true; said aloud at every failed try.
      store.markUnreachable(conv.name);
      view.renderSidebar(store);
      if (store.active === conv) view.renderDmStatus(store);
      view.announce(t('err_no_such_user', { name: conv.name }));
      return;
    }
    view.showError(els.composerError, () => errorText(err, { name: conv.name }), err.code);
  }
}

// Enter sends at a keyboard; on a touch screen it makes a new line (the button sends). Ctrl/Cmd+Enter sends on both.
function onComposerKey(ev) {
  if (ev.key !== 'Enter' || ev.isComposing) return;
  if (ev.ctrlKey || ev.metaKey || (!ev.shiftKey && view.enterSends())) {
    ev.preventDefault();
    sendMessage();
  }
}

function onComposerInput() {
  view.autoGrow();
  if (!els.composerError.hidden) view.showError(els.composerError, '');
  const conv = store.active;
  if (!conv || conv.kind !== 'room' || !els.input.value.trim()) return;
  const now = Date.now();
  if (now - (session.lastTypingSent.get(conv.id) || 0) < TYPING_EVERY_MS) return;
  session.lastTypingSent.set(conv.id, now);
  conn.request({ type: 'typing', room: conv.name }).catch(() => { /* typing is best effort */ });
}

async function loadOlder() {
  const conv = store.active;
  const kept = conv?.kind === 'dm' && store.account && conv.historyLoaded;
  if (!conv || (conv.kind !== 'room' && !kept) || conv.historyDone || conv.loadingOlder) return;
  const before = conv.oldestMsgId();
  if (before === undefined) {
    conv.historyDone = true;
    return view.renderHistoryTop(conv);
  }
  conv.loadingOlder = true;
  view.renderHistoryTop(conv);
  try {
    const reply = await conn.request(conv.kind === 'room'
      ? { type: 'history', room: conv.name, before, limit: HISTORY_PAGE }
      : { type: 'dm_history', with: conv.name, before, limit: HISTORY_PAGE });
    conv.prependHistory(reply.messages || []);
    if ((reply.messages || []).length < HISTORY_PAGE) conv.historyDone = true;
  } catch (err) {
    if (err.code !== 'offline') view.showMainError(() => errorText(err), 8000, err.code);
  } finally {
    conv.loadingOlder = false;
  }
  if (store.active === conv) view.renderConversation(store);
}

// ---------------------------------------------------------------- server events

const handlers = {
  message(ev) {
    const conv = store.get('room', ev.room);
    if (conv) receiveMessage(conv, ev);
  },
  dm(ev) {
    const other = store.isMe(ev.from) ? ev.to : ev.from;
    const conv = store.ensure('dm', other);
    if (store.account) conv.sortById = true; // kept DMs: live ones meet their history in id order
    conv.name = other; // the server's spelling, whatever was typed to open the conversation
    store.markSeen(other); // a DM reaches only someone online
    receiveMessage(conv, ev);
  },
  presence(ev) {
    const conv = store.get('room', ev.room);
    if (!conv) return;
    const { added, removed } = conv.applyPresence(ev.joined, ev.left, ev.member_count);
    for (const name of added) {
      store.markSeen(name);
      // Back after the server restarted: to everyone they never left.
      const returning = conv.outageMembers?.delete(nameKey(name));
      if (!store.isMe(name) && !returning) addSystem(conv, 'sysJoined', { name });
    }
    for (const name of removed) addSystem(conv, 'sysLeft', { name });
    store.updateRoom({ room: conv.name, member_count: ev.member_count });
    if (conv === store.active) {
      view.renderMembers(store);
      view.renderTyping(conv);
    }
    // DMs show who is online, which presence in our rooms tells.
    if (store.dms().length) view.renderSidebar(store);
    if (store.active?.kind === 'dm') view.renderDmStatus(store);
  },
  typing(ev) {
    const conv = store.get('room', ev.room);
    if (!conv || store.isMe(ev.user)) return;
    conv.setTyping(ev.user);
    if (conv === store.active) view.renderTyping(conv);
  },
  room_added(ev) {
    store.addRoom({ room: ev.room, protected: ev.protected, member_count: 0 });
    if (!store.active) view.renderLobby(store);
  },
  room_removed(ev) {
    roomRemoved(ev.room);
  },
  // An account's read mark moved, on this device or another: the counts follow everywhere.
  read(ev) {
    const conv = ev.room !== undefined ? store.get('room', ev.room) : store.get('dm', ev.with);
    if (!conv) return;
    conv.applyReadMark(ev.id, store.me);
    view.renderSidebar(store);
  },
  // An account left a room on another device: the membership is over here too.
  left(ev) {
    const conv = store.get('room', ev.room);
    if (!conv) return;
    const wasActive = conv === store.active;
    store.remove(conv.id);
    if (wasActive) openConversation(null);
    else view.renderSidebar(store);
  },
  error(ev) {
    // Errors without a ref: nothing is waiting for them, so show them where everyone looks.
    view.showMainError(() => errorText(ev), 8000, ev.code);
  },
};

function onEvent(frame) {
  handlers[frame.type]?.(frame);
}

// PROTOCOL 1.1: the server removed a room (empty for long, or a moderator deleted it). It leaves every list; if
// it was one of mine, I am told, and if it was on screen I am back in the lobby.
function roomRemoved(room) {
  store.removeRoom(room);
  const conv = store.get('room', room);
  const asked = els.pwDialog.open && nameKey(els.pwDialog.dataset.room) === nameKey(room);
  if (asked) els.pwDialog.close();
  if (conv || asked) {
    const wasActive = conv && conv === store.active;
    if (conv) store.remove(conv.id);
    const text = () => t(wasActive ? 'roomRemovedOpen' : 'roomRemoved', { room });
    view.showMainError(text, 0, 'room_removed');
    view.announce(text());
    if (wasActive || asked) openConversation(null);
    else view.renderSidebar(store);
  }
  if (!store.active) view.renderLobby(store);
}

// Errors of the HTTP API (sign in, sign up, settings): limits say when to try again.
function apiErrorText(err, ctx = {}) {
  if (err.code === 'rate_limited' && err.retryAfter) {
    return err.retryAfter >= 90 ? t('err_wait_minutes', { m: Math.ceil(err.retryAfter / 60) }) : t('err_wait_seconds', { s: err.retryAfter });
  }
  if (err.code === 'name_taken' && ctx.register) return t('err_register_name_taken');
  // The right password of a suspended account (moderation): said as such, with its end when the server gives it.
  if (err.code === 'forbidden' && ctx.signIn) return err.until ? t('noticeSuspendedUntil', { until: formatUntil(err.until) }) : t('err_suspended');
  if (err.code === 'offline') return t('err_connect');
  return errorText(err);
}

function errorText(err, ctx = {}) {
  if (err.code === 'invalid_text' && ctx.password) return t('err_invalid_password');
  // On create, rate_limited is the server's allowance of new rooms (PROTOCOL 1.1), not typing too fast.
  if (err.code === 'rate_limited' && ctx.create) return t('err_create_rate_limited');
  const key = `err_${err.code}`;
  const text = t(key, { name: ctx.name ?? '' });
  return text === key ? t('err_unknown', { message: err.message || err.code }) : text;
}

// ---------------------------------------------------------------- rendering glue

function refreshAll() {
  view.renderSidebar(store);
  if (store.active) {
    view.renderHeader(store);
    view.renderMembers(store);
    view.renderDmStatus(store);
  } else {
    view.renderLobby(store);
  }
}

// Typing indicators expire on their own; one slow timer keeps them honest.
setInterval(() => { if (store.active) view.renderTyping(store.active); }, 1000);

// The directory has no "room changed" event, so refresh its counts now and then while it is on screen.
setInterval(() => { if (!store.active && conn.isOpen && session.everOnline) refreshDirectory(); }, DIRECTORY_REFRESH_MS);

function applyLanguage() {
  translateDom();
  for (const sel of document.querySelectorAll('.lang-select')) sel.value = lang();
  view.retranslate(store);
  if (document.body.dataset.view !== 'app') setLoginBusy(els.loginForm.querySelector('button[type=submit]').disabled);
  if (!els.loginToSignin.hidden) els.loginToSignin.textContent = t('loginAsAccount', { name: els.loginToSignin.dataset.name });
  retranslateSettings();
  uploads.retranslateUploads();
  retranslateAttachments();
}

// ---------------------------------------------------------------- wiring

function wire() {
  els.loginForm.addEventListener('submit', startGuest);
  els.signinForm.addEventListener('submit', startSignIn);
  els.signupForm.addEventListener('submit', startSignUp);
  els.authTabs.addEventListener('click', (ev) => {
    const tab = ev.target.closest('[role=tab]');
    if (tab) selectMode(tab.dataset.mode);
  });
  els.authTabs.addEventListener('keydown', onAuthTabsKey);
  els.loginToSignin.addEventListener('click', () => {
    els.signinName.value = els.loginToSignin.dataset.name || '';
    els.signinPassword.value = '';
    view.showError(els.loginError, '');
    selectMode('signin');
  });
  els.settingsBtn.addEventListener('click', openSettingsDialog);
  setupSettings({ describeError: (err) => apiErrorText(err) });
  view.onReachLatest(() => markRead(store.active));
  document.addEventListener('visibilitychange', onVisibility);
  els.createForm.addEventListener('submit', createRoom);
  els.pwForm.addEventListener('submit', submitPassword);
  els.pwCancel.addEventListener('click', () => els.pwDialog.close());
  els.composer.addEventListener('submit', sendMessage);
  els.input.addEventListener('keydown', onComposerKey);
  els.input.addEventListener('input', onComposerInput);
  els.leaveRoom.addEventListener('click', leaveRoom);
  els.closeDm.addEventListener('click', () => {
    if (store.active) store.remove(store.active.id);
    openConversation(null);
  });
  els.logout.addEventListener('click', askLogout);
  els.logoutDialog.addEventListener('close', onLogoutDialogClose);
  els.retry.addEventListener('click', retryNow);
  els.mainErrorClose.addEventListener('click', () => view.showMainError(''));
  els.navLobby.addEventListener('click', () => openConversation(null));
  els.refreshRooms.addEventListener('click', refreshDirectory);
  els.roomFilter.addEventListener('input', onFilterInput);
  els.moreRooms.addEventListener('click', loadMoreRooms);
  view.onRoomListEnd(loadMoreRooms);
  els.roomDir.addEventListener('click', (ev) => {
    const row = ev.target.closest('[data-room]');
    if (row) pickRoom(row.dataset.room);
  });
  for (const list of [els.roomConvs, els.dmConvs]) {
    list.addEventListener('click', (ev) => {
      const item = ev.target.closest('[data-conv]');
      if (item) openConversation(item.dataset.conv);
    });
  }
  els.memberList.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-dm]');
    if (b) openDm(b.dataset.dm);
  });
  els.newDm.addEventListener('click', () => setDmForm(els.dmForm.hidden));
  els.dmForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!els.dmName.value.trim()) return;
    const name = els.dmName.value;
    setDmForm(false, false);
    openDm(name);
  });
  // Esc closes the form and gives focus back to its button.
  els.dmForm.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    ev.stopPropagation();
    setDmForm(false);
  });
  els.loadOlder.addEventListener('click', loadOlder);
  els.scroller.addEventListener('scroll', () => { if (view.isNearTop()) loadOlder(); }, { passive: true });
  els.toggleMembers.addEventListener('click', () => {
    const open = els.membersPanel.hidden;
    view.setMembersOpen(open);
    // As an overlay the panel covers the chat (which goes inert): focus goes into it, not to nowhere.
    if (open && view.membersOverlay()) els.membersClose.focus();
  });
  els.membersClose.addEventListener('click', () => {
    view.setMembersOpen(false);
    els.toggleMembers.focus();
  });
  els.sidebarOpen.addEventListener('click', () => view.setDrawer(true));
  els.sidebarClose.addEventListener('click', () => {
    view.setDrawer(false);
    els.sidebarOpen.focus();
  });
  els.scrim.addEventListener('click', () => {
    if (document.body.classList.contains('drawer-open')) {
      view.setDrawer(false);
      els.sidebarOpen.focus({ preventScroll: true });
    }
    if (view.membersOverlay()) {
      view.setMembersOpen(false);
      els.toggleMembers.focus({ preventScroll: true });
    }
  });
  for (const sel of document.querySelectorAll('.lang-select')) {
    sel.addEventListener('change', () => setLang(sel.value));
  }
  document.addEventListener('keydown', onGlobalKey);
  window.addEventListener('online', () => conn.retryNow());
  setupEmojiPicker({ toggle: els.emojiToggle, panel: els.emojiPanel, input: els.input });
  uploads.setupUploads(els, {
    signedIn: () => store.account,
    activeConv: () => store.active,
    showError: (text, code) => view.showError(els.composerError, text, code),
  });
  setupAttachments(els.messages);
  onLangChange(applyLanguage);
  const moderation = setupModeration({ conn, store, openConversation, errorText, roomRemoved, addSystem });
  Object.assign(handlers, moderation.handlers);
  setupSearch({ conn, store, openConversation, errorText });
  setupAdmin({ conn, errorText });
}

function setDmForm(show, refocus = true) {
  els.dmForm.hidden = !show;
  els.newDm.setAttribute('aria-expanded', String(show));
  if (show) {
    view.renderDmSuggestions(store);
    els.dmName.focus();
  } else {
    els.dmName.value = '';
    if (refocus) els.newDm.focus();
  }
}

// Escape closes what is on top; Alt+↑/↓ moves between conversations.
function onGlobalKey(ev) {
  if (ev.key === 'Escape') {
    if (document.body.classList.contains('drawer-open')) {
      view.setDrawer(false);
      els.sidebarOpen.focus();
    } else if (view.membersOverlay()) {
      view.setMembersOpen(false);
      els.toggleMembers.focus();
    }
    return;
  }
  if (ev.altKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') && document.body.dataset.view === 'app') {
    ev.preventDefault();
    const ids = [null, ...store.rooms().map((c) => c.id), ...store.dms().map((c) => c.id)];
    const at = ids.indexOf(store.activeId);
    const next = ids[(at + (ev.key === 'ArrowDown' ? 1 : ids.length - 1)) % ids.length];
    openConversation(next);
  }
}

function boot() {
  if (!LANGS.includes(lang())) setLang('en');
  applyLanguage();
  wire();
  resumeSession();
}

boot();

// Exposed for debugging from the console only; nothing in the page depends on it.
export { store, convId };

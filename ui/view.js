// view.js owns the app shell on screen: which pane shows, sidebar, lobby, conversation, members, drawers, banners.

import { t } from './i18n.js';
import {
  renderAll, itemNodes, renderConvList, renderDirectory, renderMemberList, typingText, avatar, h,
} from './render.js';
import * as scroll from './scroll.js';

const $ = (id) => document.getElementById(id);
const WIDE = window.matchMedia('(min-width: 1100px)');
const NARROW = window.matchMedia('(max-width: 759px)');
// A touch screen's keyboard has no Shift+Enter: there Enter makes a new line and the button sends.
const TOUCH = window.matchMedia('(pointer: coarse)');

export const els = {
  login: $('login'), loginForm: $('login-form'), loginName: $('login-name'), loginError: $('login-error'),
  loginNotice: $('login-notice'), authTabs: $('auth-tabs'), loginToSignin: $('login-to-signin'), guestHint: $('guest-hint'),
  signinForm: $('signin-form'), signinName: $('signin-name'), signinPassword: $('signin-password'),
  signinError: $('signin-error'), signupForm: $('signup-form'), signupName: $('signup-name'),
  signupPassword: $('signup-password'), signupInviteWrap: $('signup-invite-wrap'), signupInvite: $('signup-invite'),
  signupError: $('signup-error'), notifyBtn: $('notify-btn'), settingsBtn: $('settings-btn'),
  settingsDialog: $('settings-dialog'), settingsWho: $('settings-who'), sessionList: $('session-list'),
  sessionsError: $('sessions-error'), revokeOthers: $('revoke-others'), pwcForm: $('pwc-form'), pwcUser: $('pwc-user'),
  pwcCurrent: $('pwc-current'), pwcNew: $('pwc-new'), pwcError: $('pwc-error'), pwcDone: $('pwc-done'),
  notifyState: $('notify-state'), notifyEnable: $('notify-enable'), settingsClose: $('settings-close'),
  logoutTitle: $('logout-title'), logoutText: $('logout-text'), logoutConfirm: $('logout-confirm'),
  app: $('app'), banner: $('conn-banner'), bannerText: $('conn-banner-text'), retry: $('conn-retry'),
  sidebar: $('sidebar'), scrim: $('scrim'),
  sidebarOpen: $('sidebar-open'), sidebarClose: $('sidebar-close'), menuBadge: $('menu-badge'),
  navLobby: $('nav-lobby'), roomConvs: $('room-convs'), noRooms: $('no-rooms'), dmConvs: $('dm-convs'),
  newDm: $('new-dm'), dmForm: $('dm-form'), dmName: $('dm-name'), dmSuggest: $('dm-suggest'),
  meAvatar: $('me-avatar'), meName: $('me-name'), connStatus: $('conn-status'), logout: $('logout'),
  logoutDialog: $('logout-dialog'),
  main: $('main'), title: $('conv-title'), sub: $('conv-sub'), mainError: $('main-error'),
  mainErrorText: $('main-error-text'), mainErrorClose: $('main-error-close'),
  toggleMembers: $('toggle-members'), leaveRoom: $('leave-room'), closeDm: $('close-dm'),
  lobby: $('lobby'), roomDir: $('room-dir'), roomDirEmpty: $('room-dir-empty'), roomFilter: $('room-filter'),
  roomDirStatus: $('room-dir-status'), roomDirScroll: $('room-dir-scroll'), moreRooms: $('more-rooms'),
  refreshRooms: $('refresh-rooms'), createForm: $('create-form'), createName: $('create-name'),
  createPassword: $('create-password'), createError: $('create-error'),
  conversation: $('conversation'), scroller: $('scroller'), messages: $('messages'), loadOlder: $('load-older'),
  historyStart: $('history-start'), jumpLatest: $('jump-latest'), jumpLatestText: $('jump-latest-text'),
  typing: $('typing'), dmNotice: $('dm-notice'),
  composer: $('composer'), input: $('composer-input'), composerError: $('composer-error'),
  composerHelp: $('composer-help'), emojiToggle: $('emoji-toggle'), emojiPanel: $('emoji-panel'),
  membersPanel: $('members-panel'), membersClose: $('members-close'), memberList: $('member-list'),
  memberCount: $('member-count'), memberMore: $('member-more'),
  pwDialog: $('password-dialog'), pwForm: $('password-form'), pwTitle: $('pw-title'), pwInput: $('pw-input'),
  pwError: $('pw-error'), pwCancel: $('pw-cancel'), announcer: $('announcer'),
};

scroll.setupScroll(els);

export const isNarrow = () => NARROW.matches;
export const isWide = () => WIDE.matches;
export const enterSends = () => !TOUCH.matches;

// ---- errors and notices: kept as functions of the language, so switching it rewrites them too ----

const messageOf = new WeakMap(); // element -> {text: () => string, code}

// message: a string, or a function giving it in the current language; code: what caused it (the protocol's
// error code), so a reconnect can clear the errors that being offline caused.
export function showError(el, message, code = '') {
  const text = typeof message === 'function' ? message : () => message || '';
  messageOf.set(el, { text, code });
  el.textContent = text();
  el.hidden = !el.textContent;
}

let mainErrorTimer = null;
// A dismissable notice at the top of the chat for errors that belong to no form (room gone, rate limited…);
// ms = 0 keeps it until dismissed.
export function showMainError(message, ms = 8000, code = '') {
  showError(els.mainErrorText, message, code);
  els.mainError.hidden = els.mainErrorText.hidden;
  clearTimeout(mainErrorTimer);
  if (!els.mainError.hidden && ms) mainErrorTimer = setTimeout(() => showMainError(''), ms);
}

// After a reconnect, errors that said "no connection" are no longer true.
export function clearConnectionErrors() {
  const stale = (el) => ['offline', 'timeout'].includes(messageOf.get(el)?.code);
  if (stale(els.composerError)) showError(els.composerError, '');
  if (stale(els.mainErrorText)) showMainError('');
}

function retranslateErrors() {
  for (const el of [els.loginError, els.createError, els.pwError, els.composerError, els.mainErrorText, els.loginNotice,
    els.signinError, els.signupError, els.sessionsError, els.pwcError, els.pwcDone]) {
    const msg = messageOf.get(el);
    if (msg && !el.hidden) el.textContent = msg.text();
  }
}

// ---- the start screen: guest, sign in, sign up ----

const AUTH_FORMS = { guest: () => els.loginForm, signin: () => els.signinForm, signup: () => els.signupForm };
const AUTH_ERRORS = { guest: () => els.loginError, signin: () => els.signinError, signup: () => els.signupError };
let authMode = 'guest';

export const authModeNow = () => authMode;
export const authForms = () => Object.fromEntries(Object.entries(AUTH_FORMS).map(([m, f]) => [m, f()]));
export const authError = (mode = authMode) => AUTH_ERRORS[mode]();

// Which ways in the server offers: accounts (a 1.1 server), guests (unless it said sign_in_required).
export function setAuthChoices(accounts, guests) {
  els.authTabs.hidden = !accounts;
  els.guestHint.hidden = !accounts;
  const guestTab = $('tab-guest');
  guestTab.hidden = !guests;
  if (guests) delete els.authTabs.dataset.noGuest;
  else els.authTabs.dataset.noGuest = '';
}

// Shows one of the three forms; the tabs follow (roving tabindex: arrows move between them).
export function setAuthMode(mode) {
  authMode = mode;
  for (const [m, form] of Object.entries(authForms())) form.hidden = m !== mode;
  for (const tab of els.authTabs.querySelectorAll('[role=tab]')) {
    const on = tab.dataset.mode === mode;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
  }
}

export function setLoginNotice(message) { showError(els.loginNotice, message); }

export function showBoot() {
  document.body.dataset.view = 'boot';
  els.app.hidden = true;
  els.login.hidden = false;
}

export function showLogin() {
  document.body.dataset.view = 'login';
  delete document.body.dataset.pane;
  els.app.hidden = true;
  els.login.hidden = false;
}

export function showApp(me) {
  document.body.dataset.view = 'app';
  els.login.hidden = true;
  els.app.hidden = false;
  els.meName.textContent = me;
  els.meName.title = me;
  els.meAvatar.replaceWith(Object.assign(avatar(me), { id: 'me-avatar' }));
  els.meAvatar = $('me-avatar');
}

// Where focus goes when the pane changes: the message box (or the room filter) at a keyboard; on a phone
// the pane's title, which screen readers announce and which pops no keyboard up.
export function focusWork(conv) {
  if (isNarrow() || !enterSends()) els.title.focus({ preventScroll: true });
  else (conv ? els.input : els.roomFilter).focus();
}

// ---- connection state ----

const connection = { state: 'idle', text: null, retry: false }; // text: () => string, kept for a language switch
let bannerTimer = null;

// state: 'online' | 'offline' | 'connecting' | 'idle'; text: a function giving the banner's words, or null.
export function setConnection(state, text = null, { retry = false } = {}) {
  const hadFocus = els.banner.contains(document.activeElement);
  const announce = state !== connection.state && (state === 'offline' || (state === 'online' && text));
  Object.assign(connection, { state, text, retry });
  document.body.dataset.conn = state;
  renderConnection();
  clearTimeout(bannerTimer);
  if (state === 'online' && text) {
    bannerTimer = setTimeout(() => {
      connection.text = null; // gone for good: a language switch must not bring it back
      renderConnection();
    }, 3000);
  }
  // Said once per change, not at every tick of the countdown.
  if (announce) announceNow(state === 'online' ? t('connBack') : t('connDown'));
  if (hadFocus && (els.banner.hidden || els.retry.hidden)) focusWork(document.body.dataset.pane !== 'lobby');
}

function renderConnection() {
  const { state, text, retry } = connection;
  els.connStatus.textContent = state === 'online' ? t('online') : t('offline');
  els.bannerText.textContent = text ? text() : '';
  els.banner.hidden = !text;
  els.banner.dataset.state = state;
  els.retry.hidden = !retry;
}

// ---- sidebar ----

export function renderSidebar(store) {
  const rooms = store.rooms();
  const presence = (name) => store.peerState(name);
  renderConvList(els.roomConvs, rooms, store.activeId, presence);
  els.noRooms.hidden = rooms.length > 0;
  renderConvList(els.dmConvs, store.dms(), store.activeId, presence);
  const lobbyActive = store.activeId === null;
  els.navLobby.classList.toggle('active', lobbyActive);
  els.navLobby.setAttribute('aria-current', lobbyActive ? 'page' : 'false');
  const unread = store.totalUnread();
  els.menuBadge.hidden = unread === 0;
  document.title = `${unread ? `(${unread}) ` : ''}${store.active ? `${store.active.kind === 'room' ? '#' : '@'}${store.active.name} · ` : ''}papo`;
}

// The names offered when starting a DM: people online in our rooms.
export function renderDmSuggestions(store) {
  els.dmSuggest.replaceChildren(...store.onlineNames().map((name) => Object.assign(h('option'), { value: name })));
}

// ---- lobby ----

let roomSearchPending = false;
// The filter's question is with the server: the list says so instead of "no room by that name".
export function setRoomSearchPending(pending) { roomSearchPending = pending; }

// The directory, or what the server found for the filter. A server with every room loaded (all servers of up
// to 200 rooms) filters here, as one types; a bigger one is asked, and its answer pages like the directory.
export function renderLobby(store) {
  const filter = els.roomFilter.value.trim();
  const dir = store.directory;
  const askServer = !!filter && !dir.complete;
  const answer = askServer && store.search?.q === filter ? store.search : null;
  const pages = answer || dir;
  const rooms = answer ? answer.sorted() : dir.sorted(filter);
  renderDirectory(els.roomDir, rooms.map((r) => ({ ...r, joined: !!store.get('room', r.room) })));
  const waiting = askServer && (!answer || roomSearchPending);
  let status = '';
  if (waiting) status = t('roomsSearching', { q: filter });
  else if (answer && answer.more) status = t('roomsFoundSome', { shown: answer.size, total: answer.total, q: filter });
  else if (answer) status = t('roomsFound', { n: answer.total, q: filter });
  else if (!dir.complete) status = t('roomsShown', { shown: dir.size, total: dir.total });
  if (els.roomDirStatus.textContent !== status) els.roomDirStatus.textContent = status;
  els.roomDirStatus.hidden = !status;
  els.moreRooms.hidden = !pages.more || (askServer && !answer);
  els.moreRooms.disabled = pages.loading;
  els.moreRooms.textContent = pages.loading ? t('loadingRooms') : t('moreRooms');
  els.roomDirEmpty.hidden = rooms.length > 0 || waiting;
  els.roomDirEmpty.textContent = dir.total || dir.size ? t('noRoomsMatch') : t('noRooms');
}

// Scrolling the room list to its end loads the next page, as the "more rooms" button there does.
export function onRoomListEnd(load) {
  const seen = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !els.moreRooms.disabled) load();
  });
  seen.observe(els.moreRooms);
}

// Whether the end of the room list is on screen (after a page arrived: a tall screen may want the next one).
export function roomListEndInView() {
  if (els.moreRooms.hidden || els.lobby.hidden) return false;
  const end = els.moreRooms.getBoundingClientRect();
  const box = els.roomDirScroll.getBoundingClientRect();
  return end.top < Math.min(box.bottom, window.innerHeight) && end.bottom > Math.max(box.top, 0);
}

// ---- the main pane ----

export function showPane(store) {
  const conv = store.active;
  els.lobby.hidden = !!conv;
  els.conversation.hidden = !conv;
  els.leaveRoom.hidden = !conv || conv.kind !== 'room';
  els.closeDm.hidden = !conv || conv.kind !== 'dm';
  els.toggleMembers.hidden = !conv || conv.kind !== 'room';
  document.body.dataset.pane = conv ? conv.kind : 'lobby';
  renderHeader(store);
  if (!conv) {
    renderLobby(store);
    setMembersOpen(false, false);
    return;
  }
  // The members column first: it narrows the list, and the list must find its place at its final width.
  setMembersOpen(conv.kind === 'room' && membersWanted, false);
  els.input.value = conv.draft;
  autoGrow();
  showError(els.composerError, '');
  renderPaneText(store);
  renderAll(els.messages, conv, store.me);
  renderHistoryTop(conv);
  scroll.openAt(els.messages.querySelector('.new-sep'));
}

// The open pane's words and state, redrawn without moving the reader or touching what they typed.
function renderPaneText(store) {
  const conv = store.active;
  renderHeader(store);
  if (!conv) return renderLobby(store);
  els.input.placeholder = conv.kind === 'dm' ? t('messageTo', { name: conv.name }) : t('message');
  renderComposerHelp();
  renderMembers(store);
  renderTyping(conv);
  renderDmStatus(store);
  return undefined;
}

export function renderHeader(store) {
  const conv = store.active;
  els.title.replaceChildren();
  els.sub.className = 'conv-sub';
  if (!conv) {
    els.title.textContent = t('lobbyTitle');
    els.title.removeAttribute('title');
    els.sub.textContent = t('lobbySub');
    return;
  }
  els.title.append(h('span', 'title-prefix', conv.kind === 'room' ? '#' : '@'), h('span', '', conv.name));
  els.title.title = conv.name; // cut with "…" when long, on a desktop
  if (conv.kind === 'room') {
    els.sub.textContent = t('memberCount', { n: conv.memberCount });
    return;
  }
  const state = store.peerState(conv.name);
  els.sub.classList.add(`presence-${state}`);
  els.sub.textContent = { online: t('dmOnline'), offline: t('dmOffline'), unknown: t('dmSub') }[state];
}

// A DM's header says whether the person is online; the line above the box warns before writing to someone
// a DM may not reach (v1 cannot ask the server, so "not in any of our rooms" is said as such).
export function renderDmStatus(store) {
  const conv = store.active;
  if (!conv || conv.kind !== 'dm') {
    els.dmNotice.hidden = true;
    return;
  }
  renderHeader(store);
  const state = store.peerState(conv.name);
  const said = conv.items.some((it) => it.kind === 'msg');
  let text = '';
  if (state === 'offline') text = t('dmWarnOffline', { name: conv.name });
  else if (state === 'unknown' && !said) text = t(signedIn ? 'dmWarnUnknownAccount' : 'dmWarnUnknown', { name: conv.name });
  if (els.dmNotice.textContent !== text) els.dmNotice.textContent = text;
  els.dmNotice.hidden = !text;
  els.dmNotice.classList.toggle('is-warning', state === 'offline');
}

// Full redraw of the open conversation; keeps the reader where they were (at the bottom if they were there).
export function renderConversation(store) {
  const conv = store.active;
  if (!conv) return;
  scroll.keepPlace(() => renderAll(els.messages, conv, store.me));
  renderHistoryTop(conv);
}

// The open conversation's history arrived after it opened (a kept DM): drawn and placed as at opening, at its
// "new messages" divider or its newest message; what is being typed stays as it is.
export function showHistory(store) {
  const conv = store.active;
  if (!conv) return;
  renderAll(els.messages, conv, store.me);
  renderHistoryTop(conv);
  renderDmStatus(store);
  scroll.openAt(els.messages.querySelector('.new-sep'));
}

export function renderHistoryTop(conv) {
  const canLoad = (conv.kind === 'room' || (signedIn && conv.historyLoaded)) && !conv.historyDone;
  els.loadOlder.hidden = !canLoad;
  els.loadOlder.disabled = conv.loadingOlder;
  els.historyStart.hidden = canLoad;
  els.historyStart.textContent = conv.kind === 'room'
    ? t('historyStart', { room: conv.name })
    : t(signedIn ? 'dmStartAccount' : 'dmStartGuest', { name: conv.name });
}

let signedIn = false;
// Whether we are signed in: the server keeps DMs only between accounts, and the DM screen says which applies;
// an account has settings, and signing out of it keeps its rooms.
export function setSignedIn(account) {
  signedIn = account;
  els.settingsBtn.hidden = !account;
  if (account) document.body.dataset.account = '';
  else delete document.body.dataset.account;
  renderLogoutWords();
  renderNotifyButton(lastNotifyState);
}

function renderLogoutWords() {
  els.logoutTitle.textContent = t(signedIn ? 'logoutTitleAccount' : 'logoutTitle');
  els.logoutText.textContent = t(signedIn ? 'logoutTextAccount' : 'logoutText');
  els.logoutConfirm.textContent = t(signedIn ? 'logoutAccount' : 'logout');
  els.logout.setAttribute('aria-label', t(signedIn ? 'logoutAccount' : 'logout'));
  els.logout.title = t(signedIn ? 'logoutAccount' : 'logout');
}

// The bell shows while the browser has not been asked; asking happens only when it is pressed.
export function renderNotifyButton(state) {
  lastNotifyState = state;
  // An account has the switch in its settings; a guest, who has none, gets it in the sidebar.
  els.notifyBtn.hidden = state !== 'default' || signedIn;
}
let lastNotifyState = 'unsupported';

// A new item in the open conversation: appended in place when it is last, else a redraw.
export function showNewItem(store, index) {
  const conv = store.active;
  if (index !== conv.items.length - 1) {
    renderConversation(store);
    return;
  }
  const wasPinned = scroll.isPinned();
  els.messages.append(...itemNodes(conv, index, store.me));
  const item = conv.items[index];
  if (wasPinned || (item.kind === 'msg' && store.isMe(item.from))) scroll.pinToBottom();
  else scroll.noteNewBelow();
}

export const { isNearTop, onReachLatest } = scroll;
export const atLatest = () => scroll.isPinned();

// ---- members ----

let membersWanted = WIDE.matches;

export function setMembersOpen(open, remember = true) {
  if (remember) membersWanted = open;
  els.membersPanel.hidden = !open;
  els.toggleMembers.setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('members-open', open);
  syncInert();
}

export function membersOverlay() { return !WIDE.matches && !els.membersPanel.hidden; }

export function renderMembers(store) {
  const conv = store.active;
  if (!conv || conv.kind !== 'room') return;
  const names = [...conv.members.values()];
  renderMemberList(els.memberList, names.map((name) => ({ name, isMe: store.isMe(name) })));
  els.memberCount.textContent = String(conv.memberCount);
  const hiddenCount = conv.memberCount - names.length;
  els.memberMore.hidden = hiddenCount <= 0;
  els.memberMore.textContent = t('moreMembers', { n: hiddenCount });
  renderHeader(store);
  membersRendered?.(store);
}
let membersRendered = null; // moderation.js: the panel's moderation part follows the room on screen
export function onMembersRendered(fn) { membersRendered = fn; }

export function renderTyping(conv) {
  const text = conv ? typingText(conv.typers()) : '';
  if (els.typing.textContent !== text) els.typing.textContent = text;
}

// ---- drawers (phone) ----

export function setDrawer(open) {
  document.body.classList.toggle('drawer-open', open);
  els.sidebarOpen.setAttribute('aria-expanded', String(open));
  syncInert();
  if (open) (els.sidebar.querySelector('.conv-item.active') || els.navLobby).focus();
}

// An open drawer (phone) or the members overlay (below the wide layout) covers the chat: what is behind it
// is unreachable by keyboard and screen readers, and a tap on the scrim closes it.
export function syncInert() {
  const drawer = NARROW.matches && document.body.classList.contains('drawer-open');
  const members = membersOverlay();
  els.main.inert = drawer || members;
  els.sidebar.inert = (NARROW.matches && !drawer) || members;
  els.scrim.hidden = !(drawer || members);
}
NARROW.addEventListener('change', syncInert);
// Crossing the wide breakpoint resets the members panel to that width's default (column when wide, closed otherwise).
WIDE.addEventListener('change', () => {
  membersWanted = WIDE.matches;
  setMembersOpen(membersWanted && document.body.dataset.pane === 'room', false);
});

// ---- composer ----

// The message box grows with its text up to 8 lines; rows (not an inline style) keeps the CSP simple.
const LINE_PX = 22; // style.css: .composer textarea line-height
const PAD_PX = 18; // and its vertical padding
export function autoGrow() {
  const el = els.input;
  el.rows = 1;
  el.rows = Math.min(8, Math.max(1, Math.round((el.scrollHeight - PAD_PX) / LINE_PX)));
}

function renderComposerHelp() {
  els.composerHelp.textContent = enterSends() ? t('composerHelp') : t('composerHelpTouch');
  els.input.enterKeyHint = enterSends() ? 'send' : 'enter';
}
TOUCH.addEventListener('change', renderComposerHelp);

// ---- screen readers ----

function announceNow(text) {
  const p = document.createElement('p');
  p.textContent = text;
  els.announcer.append(p);
  // Keep the live region short; old lines are already read.
  while (els.announcer.childElementCount > 5) els.announcer.firstElementChild.remove();
}
export const announce = announceNow;

// ---- language ----

// Everything drawn from words the page keeps as data (state, errors), in the language just chosen.
export function retranslate(store) {
  renderConnection();
  retranslateErrors();
  renderComposerHelp();
  renderLogoutWords();
  scroll.renderJump();
  if (document.body.dataset.view !== 'app') return;
  renderPaneText(store);
  renderConversation(store);
  renderSidebar(store);
}

// view.js owns the app shell on screen: which pane shows, sidebar, lobby, conversation, members, drawers, banners.

import { t } from './i18n.js';
import {
  renderAll, itemNodes, renderConvList, renderDirectory, renderMemberList, typingText, avatar, h,
} from './render.js';

const $ = (id) => document.getElementById(id);
const NEAR_BOTTOM_PX = 80;
const WIDE = window.matchMedia('(min-width: 1100px)');
const NARROW = window.matchMedia('(max-width: 759px)');

export const els = {
  login: $('login'), loginForm: $('login-form'), loginName: $('login-name'), loginError: $('login-error'),
  app: $('app'), banner: $('conn-banner'), sidebar: $('sidebar'), scrim: $('scrim'),
  sidebarOpen: $('sidebar-open'), sidebarClose: $('sidebar-close'), menuBadge: $('menu-badge'),
  navLobby: $('nav-lobby'), roomConvs: $('room-convs'), noRooms: $('no-rooms'), dmConvs: $('dm-convs'),
  newDm: $('new-dm'), dmForm: $('dm-form'), dmName: $('dm-name'),
  meAvatar: $('me-avatar'), meName: $('me-name'), connStatus: $('conn-status'), logout: $('logout'),
  main: $('main'), title: $('conv-title'), sub: $('conv-sub'), mainError: $('main-error'),
  mainErrorText: $('main-error-text'), mainErrorClose: $('main-error-close'),
  toggleMembers: $('toggle-members'), leaveRoom: $('leave-room'), closeDm: $('close-dm'),
  lobby: $('lobby'), roomDir: $('room-dir'), roomDirEmpty: $('room-dir-empty'), roomFilter: $('room-filter'),
  refreshRooms: $('refresh-rooms'), createForm: $('create-form'), createName: $('create-name'),
  createPassword: $('create-password'), createError: $('create-error'),
  conversation: $('conversation'), scroller: $('scroller'), messages: $('messages'), loadOlder: $('load-older'),
  historyStart: $('history-start'), jumpLatest: $('jump-latest'), typing: $('typing'),
  composer: $('composer'), input: $('composer-input'), composerError: $('composer-error'),
  emojiToggle: $('emoji-toggle'), emojiPanel: $('emoji-panel'),
  membersPanel: $('members-panel'), membersClose: $('members-close'), memberList: $('member-list'),
  memberCount: $('member-count'), memberMore: $('member-more'),
  pwDialog: $('password-dialog'), pwForm: $('password-form'), pwTitle: $('pw-title'), pwInput: $('pw-input'),
  pwError: $('pw-error'), pwCancel: $('pw-cancel'), announcer: $('announcer'),
};

export const isNarrow = () => NARROW.matches;

export function showError(el, message) {
  el.textContent = message || '';
  el.hidden = !message;
}

let mainErrorTimer = null;
// A dismissable notice at the top of the chat for errors that belong to no form (room gone, rate limited…);
// ms = 0 keeps it until dismissed.
export function showMainError(message, ms = 8000) {
  els.mainErrorText.textContent = message || '';
  els.mainError.hidden = !message;
  clearTimeout(mainErrorTimer);
  if (message && ms) mainErrorTimer = setTimeout(() => showMainError(''), ms);
}

export function showLogin() {
  document.body.dataset.view = 'login';
  els.app.hidden = true;
  els.login.hidden = false;
}

export function showApp(me) {
  document.body.dataset.view = 'app';
  els.login.hidden = true;
  els.app.hidden = false;
  els.meName.textContent = me;
  els.meAvatar.replaceWith(Object.assign(avatar(me), { id: 'me-avatar' }));
  els.meAvatar = $('me-avatar');
}

// ---- connection state ----

let bannerTimer = null;
export function setConnection(state, text) {
  document.body.dataset.conn = state; // 'online' | 'offline' | 'connecting'
  els.connStatus.textContent = state === 'online' ? t('online') : t('offline');
  clearTimeout(bannerTimer);
  els.banner.textContent = text || '';
  els.banner.hidden = !text;
  els.banner.dataset.state = state;
  if (state === 'online' && text) bannerTimer = setTimeout(() => { els.banner.hidden = true; }, 3000);
}

// ---- sidebar ----

export function renderSidebar(store) {
  const rooms = store.rooms();
  renderConvList(els.roomConvs, rooms, store.activeId);
  els.noRooms.hidden = rooms.length > 0;
  renderConvList(els.dmConvs, store.dms(), store.activeId);
  const lobbyActive = store.activeId === null;
  els.navLobby.classList.toggle('active', lobbyActive);
  els.navLobby.setAttribute('aria-current', lobbyActive ? 'page' : 'false');
  const unread = store.totalUnread();
  els.menuBadge.hidden = unread === 0;
  document.title = `${unread ? `(${unread}) ` : ''}${store.active ? `${store.active.kind === 'room' ? '#' : '@'}${store.active.name} · ` : ''}papo`;
}

// ---- lobby ----

export function renderLobby(store) {
  const filter = els.roomFilter.value.trim().toLowerCase();
  const rooms = [...store.directory.values()]
    .filter((r) => !filter || r.room.toLowerCase().includes(filter))
    .sort((a, b) => (b.member_count ?? 0) - (a.member_count ?? 0) || a.room.localeCompare(b.room));
  renderDirectory(els.roomDir, rooms.map((r) => ({ ...r, joined: !!store.get('room', r.room) })));
  els.roomDirEmpty.hidden = rooms.length > 0;
  els.roomDirEmpty.textContent = store.directory.size ? t('noRoomsMatch') : t('noRooms');
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
  els.input.placeholder = conv.kind === 'dm' ? t('messageTo', { name: conv.name }) : t('message');
  els.input.value = conv.draft;
  autoGrow();
  showError(els.composerError, '');
  renderConversation(store, true);
  renderMembers(store);
  renderTyping(conv);
  if (conv.kind === 'room') setMembersOpen(membersWanted, false);
  else setMembersOpen(false, false);
}

export function renderHeader(store) {
  const conv = store.active;
  els.title.replaceChildren();
  if (!conv) {
    els.title.textContent = t('lobbyTitle');
    els.sub.textContent = t('lobbySub');
    return;
  }
  els.title.append(h('span', 'title-prefix', conv.kind === 'room' ? '#' : '@'), h('span', '', conv.name));
  els.sub.textContent = conv.kind === 'room' ? t('memberCount', { n: conv.memberCount }) : t('dmSub');
}

function nearBottom() {
  const s = els.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  els.scroller.scrollTop = els.scroller.scrollHeight;
  els.jumpLatest.hidden = true;
}

// Full redraw of the open conversation; keeps the reader where they were unless they were at the bottom.
export function renderConversation(store, toBottom = false) {
  const conv = store.active;
  if (!conv) return;
  const stick = toBottom || nearBottom();
  const fromBottom = els.scroller.scrollHeight - els.scroller.scrollTop;
  renderAll(els.messages, conv, store.me);
  renderHistoryTop(conv);
  if (stick) scrollToBottom();
  else els.scroller.scrollTop = els.scroller.scrollHeight - fromBottom;
}

export function renderHistoryTop(conv) {
  const canLoad = conv.kind === 'room' && !conv.historyDone;
  els.loadOlder.hidden = !canLoad;
  els.loadOlder.disabled = conv.loadingOlder;
  els.historyStart.hidden = canLoad;
  els.historyStart.textContent = conv.kind === 'room'
    ? t('historyStart', { room: conv.name })
    : t('dmStart', { name: conv.name });
}

// A new item in the open conversation: appended in place when it is last, else a redraw.
export function showNewItem(store, index) {
  const conv = store.active;
  if (index !== conv.items.length - 1) {
    renderConversation(store);
    return;
  }
  const stick = nearBottom();
  els.messages.append(...itemNodes(conv.items, index, store.me));
  const item = conv.items[index];
  if (stick || (item.kind === 'msg' && store.isMe(item.from))) scrollToBottom();
  else els.jumpLatest.hidden = false;
}

export function onScrolledToBottom() {
  if (nearBottom()) els.jumpLatest.hidden = true;
}

export function isNearTop() { return els.scroller.scrollTop < 150; }

// ---- members ----

let membersWanted = WIDE.matches;

export function setMembersOpen(open, remember = true) {
  if (remember) membersWanted = open;
  els.membersPanel.hidden = !open;
  els.toggleMembers.setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('members-open', open);
  syncInert();
}

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
}

export function renderTyping(conv) {
  const text = conv ? typingText(conv.typers()) : '';
  if (els.typing.textContent !== text) els.typing.textContent = text;
}

// ---- drawers (phone) ----

export function setDrawer(open) {
  document.body.classList.toggle('drawer-open', open);
  els.sidebarOpen.setAttribute('aria-expanded', String(open));
  els.scrim.hidden = !open;
  syncInert();
  if (open) (els.sidebar.querySelector('.conv-item.active') || els.navLobby).focus();
}

// On a phone an open drawer covers the chat: make what is behind it unreachable by keyboard and screen readers.
export function syncInert() {
  const drawer = NARROW.matches && document.body.classList.contains('drawer-open');
  const membersOverlay = !WIDE.matches && !els.membersPanel.hidden;
  els.main.inert = drawer || membersOverlay;
  els.sidebar.inert = NARROW.matches && !drawer;
  els.scrim.hidden = !(drawer || (membersOverlay && NARROW.matches));
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

// ---- screen readers ----

export function announce(text) {
  const p = document.createElement('p');
  p.textContent = text;
  els.announcer.append(p);
  // Keep the live region short; old lines are already read.
  while (els.announcer.childElementCount > 5) els.announcer.firstElementChild.remove();
}

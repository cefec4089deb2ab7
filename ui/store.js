// store.js owns what the page knows: the room directory and each conversation's messages, members, unread count and typing.

// The server compares names case-insensitively; so do we, keeping the server's spelling for display.
export const nameKey = (name) => String(name).toLowerCase();

export const convId = (kind, name) => `${kind}:${nameKey(name)}`;

// A message is identified by its id and server time together: ids are unique per server, and an
// in-memory server that restarts counts from 1 again, so a DM after a restart must not be taken for
// an old one.
const msgKey = (m) => `${m.id}:${m.ts}`;

const TYPING_TTL_MS = 3500;

// The order the server lists rooms in (PROTOCOL 1.1 `list`): by case-folded name (NFKC, then full case folding),
// code point by code point as Rust compares strings (JS's own < compares UTF-16 units, which puts emoji before
// some letters). JS has no full case folding: lower case plus the two foldings it misses in Latin and Greek
// (ß → ss, final ς → σ) comes close; the server's own cursor (`after`) keeps paging exact either way.
export const orderKey = (name) => String(name).normalize('NFKC').toLowerCase().replace(/ß/g, 'ss').replace(/ς/g, 'σ');
export function compareRooms(a, b) {
  const x = orderKey(a);
  const y = orderKey(b);
  if (x === y) return 0;
  const xs = x[Symbol.iterator]();
  const ys = y[Symbol.iterator]();
  for (;;) {
    const p = xs.next();
    const q = ys.next();
    if (p.done || q.done) return p.done ? (q.done ? 0 : -1) : 1;
    const d = p.value.codePointAt(0) - q.value.codePointAt(0);
    if (d) return d;
  }
}

// Rooms of the server's directory as far as the page has loaded them: the first pages, in the server's order.
// A big server lists 200 rooms at a time; `more` says there are rooms after `cursor` not loaded yet. The same
// shape holds the answer to a search (`q`), which the server filters.
export class RoomPages {
  constructor(q = '') {
    this.q = q; // the filter the server applied ('' = every room)
    this.rooms = new Map(); // nameKey -> RoomSummary
    this.total = 0; // rooms matching on the server, loaded or not
    this.more = false; // the server has rooms after `cursor` that are not loaded
    this.cursor = null; // the name of the last room loaded: `after` for the next page
    this.loading = false; // a page is on its way (no second request for the same one)
    this.paged = false; // the rooms came in more than one page: they stay in the server's order, even once all are here
  }

  get complete() { return !this.more; }

  get size() { return this.rooms.size; }

  get(name) { return this.rooms.get(nameKey(name)); }

  values() { return this.rooms.values(); }

  matches(name) { return !this.q || orderKey(name).includes(orderKey(this.q)); }

  // Whether a room of this name falls within what is loaded (a room past it comes with its page).
  inLoadedRange(name) { return !this.more || this.cursor === null || compareRooms(name, this.cursor) <= 0; }

  // A page the server sent for `after` (null: from the start). Between `after` and the page's last room the page
  // is the truth: rooms we had there and it lacks are gone. Rooms loaded past it stay (a refresh of the first page).
  applyPage(rooms, { after = null, total, more = false }) {
    const last = rooms.length ? rooms[rooms.length - 1].room : null;
    for (const [k, r] of this.rooms) {
      const pastStart = after === null || compareRooms(r.room, after) > 0;
      const beforeEnd = !more || (last !== null && compareRooms(r.room, last) <= 0);
      if (pastStart && beforeEnd) this.rooms.delete(k);
    }
    for (const r of rooms) this.rooms.set(nameKey(r.room), { ...r });
    if (more) this.paged = true;
    this.total = typeof total === 'number' ? total : this.rooms.size;
    // A refresh of the first rooms leaves what was loaded past them, and where the next page starts, as they were.
    const loadedBeyond = more && this.cursor !== null && last !== null && compareRooms(this.cursor, last) > 0;
    if (!loadedBeyond) {
      this.more = more;
      this.cursor = last ?? after;
    }
  }

  // room_added, created, joined: a room we may not have. Counted always; shown when it falls where we have loaded.
  add(summary) {
    if (!this.matches(summary.room)) return;
    const k = nameKey(summary.room);
    const prev = this.rooms.get(k);
    if (prev) {
      this.rooms.set(k, { ...prev, ...summary });
      return;
    }
    this.total += 1;
    if (this.inLoadedRange(summary.room)) this.rooms.set(k, { member_count: 0, ...summary });
  }

  // New counts for a room we list (presence, a join); never adds one.
  update(summary) {
    const k = nameKey(summary.room);
    const prev = this.rooms.get(k);
    if (prev) this.rooms.set(k, { ...prev, ...summary });
  }

  // room_removed, or a join that found it gone.
  remove(name) {
    if (!this.matches(name)) return;
    const had = this.rooms.delete(nameKey(name));
    // A room past what is loaded was counted too; one we listed surely was.
    if ((had || !this.inLoadedRange(name)) && this.total > 0) this.total -= 1;
  }

  // For display: the most people first when every room came at once; else the server's order, so the next page goes
  // below and the rows one scrolled through do not move once the last page is in.
  sorted(filter = '') {
    const f = orderKey(filter);
    const rooms = [...this.rooms.values()].filter((r) => !f || orderKey(r.room).includes(f));
    if (!this.paged) return rooms.sort((a, b) => (b.member_count ?? 0) - (a.member_count ?? 0) || a.room.localeCompare(b.room));
    return rooms.sort((a, b) => compareRooms(a.room, b.room));
  }
} // the server forwards typing at most every 2 s per user and room

export class Conversation {
  constructor(kind, name) {
    this.kind = kind; // 'room' | 'dm'
    this.name = name;
    this.id = convId(kind, name);
    this.items = []; // {kind:'msg', id, from, text, ts, files?} | {kind:'sys', key, params, ts}
    this.seen = new Set();
    this.members = new Map(); // nameKey -> display name, in join order
    this.memberCount = 0;
    this.unread = 0;
    this.unreadFrom = null; // the key of the first message that arrived unread: the "new messages" divider goes there
    this.dividerAt = null; // while the conversation is open, the message the divider sits above
    this.typing = new Map(); // nameKey -> {name, until}
    this.protected = false;
    this.password = ''; // kept in memory only, to rejoin after a reconnect
    this.historyDone = false; // no older messages left on the server
    this.loadingOlder = false;
    this.draft = '';
    this.lastActivity = Date.now();
    this.outageMembers = null; // members before our connection dropped: their coming back is not news
    this.readId = 0; // an account's read mark (PROTOCOL 1.1 `read`): messages above it are unread, on every device
    this.lastId = 0; // the newest message id the server told of (welcome), before any history is here
    this.historyLoaded = false; // a DM's kept history was asked for (accounts)
    this.readSent = 0; // the read mark last sent, not yet confirmed: no second `read` for it
    this.sortById = false; // a DM kept by the server (accounts): history and live messages meet in id order
    this.owner = undefined; // a room's owner where the server names it (null: none); moderation.js decides who moderates
  }

  // The newest message id known, loaded or told of.
  newestId() {
    let max = this.lastId;
    for (const it of this.items) if (it.kind === 'msg' && it.id > max) max = it.id;
    return max;
  }

  // An account's counts from the server (welcome): unread since its read mark, on whatever device it was read.
  setServerUnread(unread, readId, lastId) {
    this.readId = Math.max(this.readId, readId || 0);
    this.lastId = Math.max(this.lastId, lastId || 0);
    this.unread = unread || 0;
    this.unreadFrom = null;
  }

  // The read mark moved (this device or another): what is still unread is what came after it from others.
  applyReadMark(id, me) {
    this.readId = Math.max(this.readId, id);
    if (this.readId >= this.newestId()) {
      this.unread = 0;
      this.unreadFrom = null;
      return;
    }
    const after = this.items.filter((it) => it.kind === 'msg' && it.id > this.readId && it.from.toLowerCase() !== me.toLowerCase());
    // Counted here when the loaded history reaches back to the mark; else the server's count stands.
    const oldest = this.oldestMsgId();
    if (this.historyDone || (oldest !== undefined && oldest <= this.readId)) this.unread = after.length;
    this.unreadFrom = this.unread && after.length ? msgKey(after[0]) : null;
  }

  // An account's room joined after the welcome counted what was unread: what came in
  // between arrives in the join's history, not live, and is unread too.
  countSinceWelcome(me) {
    const oldest = this.oldestMsgId();
    if (oldest !== undefined && oldest <= this.readId) {
      this.applyReadMark(this.readId, me); // the history reaches the mark: count exactly
      return;
    }
    const since = this.items.filter((it) => it.kind === 'msg' && it.id > this.lastId && it.from.toLowerCase() !== me.toLowerCase());
    if (!since.length) return;
    if (!this.unread) this.unreadFrom = msgKey(since[0]);
    this.unread += since.length;
  }

  // A message arrived while another conversation was on screen.
  markUnread(m) {
    if (!this.unread) this.unreadFrom = msgKey(m);
    this.unread += 1;
  }

  // On screen now: the divider marks where the unread part starts, and the count is read. An account's unread
  // counted by the server starts after its read mark.
  open() {
    const fromMark = this.unread && !this.unreadFrom
      ? this.items.find((it) => it.kind === 'msg' && it.id > this.readId) : null;
    this.dividerAt = this.unread ? (this.unreadFrom ?? (fromMark ? msgKey(fromMark) : null)) : null;
    // Opened before its history came (a kept DM): the divider goes in when it does.
    this.dividerPending = !!this.unread && !this.dividerAt;
    this.unread = 0;
    this.unreadFrom = null;
  }

  // Off screen: next time it opens, only what arrives meanwhile is new.
  close() {
    this.dividerAt = null;
    this.dividerPending = false;
  }

  // History arrived for a conversation opened with unread messages: the divider above the first after the mark.
  placePendingDivider() {
    if (!this.dividerPending) return;
    this.dividerPending = false;
    const first = this.items.find((it) => it.kind === 'msg' && it.id > this.readId);
    this.dividerAt = first ? msgKey(first) : null;
  }

  isDividerAt(item) { return item.kind === 'msg' && this.dividerAt !== null && msgKey(item) === this.dividerAt; }

  has(m) { return this.seen.has(msgKey(m)); }

  lastMsgId() {
    for (let i = this.items.length - 1; i >= 0; i--) if (this.items[i].kind === 'msg') return this.items[i].id;
    return 0;
  }

  oldestMsgId() {
    for (const it of this.items) if (it.kind === 'msg') return it.id;
    return undefined;
  }

  // Adds a message where its id puts it; returns its index, or -1 for a duplicate.
  addMessage(m) {
    if (this.has(m)) return -1;
    this.seen.add(msgKey(m));
    const item = { kind: 'msg', id: m.id, from: m.from, to: m.to, text: m.text, ts: m.ts };
    if (m.files?.length) item.files = m.files; // PROTOCOL 1.1 attachments: absent when there are none
    this.lastActivity = Math.max(this.lastActivity, m.ts || 0);
    if (m.edited_ts) item.edited_ts = m.edited_ts; // PROTOCOL 1.1 moderation: when it was last edited
    // A guest's DMs keep arrival order (ids may restart with an in-memory server); rooms and kept DMs follow id order.
    let at = this.items.length;
    if (this.kind === 'room' || this.sortById) {
      while (at > 0) {
        const prev = this.items[at - 1];
        if (prev.kind === 'msg' && prev.id < m.id) break;
        if (prev.kind === 'sys' && this.precedingMsgId(at - 1) < m.id) break;
        at -= 1;
      }
    }
    this.items.splice(at, 0, item);
    return at;
  }

  // The id of the last message before items[i] (0 if none): system lines sit after it.
  precedingMsgId(i) {
    for (let j = i - 1; j >= 0; j--) if (this.items[j].kind === 'msg') return this.items[j].id;
    return 0;
  }

  // Older history (scrolling up): everything goes before what we have. Returns how many were new.
  prependHistory(messages) {
    const fresh = messages.filter((m) => !this.has(m));
    for (const m of fresh) this.seen.add(msgKey(m));
    const items = fresh.map((m) => ({ kind: 'msg', id: m.id, from: m.from, text: m.text, ts: m.ts, ...(m.files?.length ? { files: m.files } : {}) }));
    this.items.unshift(...items);
    fresh.forEach((m, i) => { if (m.edited_ts) items[i].edited_ts = m.edited_ts; });
    return fresh.length;
  }

  addSystem(key, params = {}) {
    const item = { kind: 'sys', key, params, ts: Date.now() };
    this.items.push(item);
    return this.items.length - 1;
  }

  setMembers(names, count) {
    this.members = new Map(names.map((n) => [nameKey(n), n]));
    this.memberCount = count;
  }

  // presence is a set operation: add if absent, remove if present. Returns what actually changed.
  applyPresence(joined = [], left = [], count) {
    const added = [];
    const removed = [];
    for (const n of joined) {
      if (!this.members.has(nameKey(n))) {
        this.members.set(nameKey(n), n);
        added.push(n);
      }
    }
    for (const n of left) {
      if (this.members.delete(nameKey(n))) removed.push(n);
      this.typing.delete(nameKey(n));
    }
    if (typeof count === 'number') this.memberCount = count;
    return { added, removed };
  }

  setTyping(user) {
    this.typing.set(nameKey(user), { name: user, until: Date.now() + TYPING_TTL_MS });
  }

  stopTyping(user) { return this.typing.delete(nameKey(user)); }

  // Names still typing now; drops expired ones.
  typers(now = Date.now()) {
    const names = [];
    for (const [k, v] of this.typing) {
      if (v.until <= now) this.typing.delete(k);
      else names.push(v.name);
    }
    return names;
  }
}

export class Store {
  constructor() {
    this.me = '';
    this.directory = new RoomPages(); // the server's rooms, as far as loaded
    this.search = null; // RoomPages for the room filter, answered by the server while not every room is loaded
    this.convs = new Map(); // convId -> Conversation
    this.activeId = null; // null = the lobby
    this.account = false; // signed in (PROTOCOL 1.1 welcome.account): only then are DMs kept by the server
    this.admin = false; // the server's admin (welcome.admin)
    this.unreachable = new Set(); // nameKeys a DM could not reach (no_such_user), until they are seen again
  }

  reset() {
    this.directory = new RoomPages();
    this.search = null;
    this.convs.clear();
    this.activeId = null;
    this.account = false;
    this.admin = false;
    this.unreachable.clear();
  }

  // Whether a DM would reach this person. Version 1 cannot be asked, so the page knows only what it sees:
  // someone in one of our rooms is online (presence is live); someone a DM just failed to reach is not.
  peerState(name) {
    const k = nameKey(name);
    for (const c of this.rooms()) if (c.members.has(k)) return 'online';
    return this.unreachable.has(k) ? 'offline' : 'unknown';
  }

  markUnreachable(name) { this.unreachable.add(nameKey(name)); }

  markSeen(name) { this.unreachable.delete(nameKey(name)); }

  // Everyone online in our rooms but us, by display name: the people a new DM surely reaches.
  onlineNames() {
    const names = new Map();
    for (const c of this.rooms()) for (const [k, n] of c.members) if (!this.isMe(n)) names.set(k, n);
    return [...names.values()].sort((a, b) => a.localeCompare(b));
  }

  isMe(name) { return nameKey(name) === nameKey(this.me); }

  // A room the page learnt of (created, joined, room_added), in every list it belongs to.
  addRoom(summary) {
    this.directory.add(summary);
    this.search?.add(summary);
  }

  // New counts for a room (presence): only where it is listed already.
  updateRoom(summary) {
    this.directory.update(summary);
    this.search?.update(summary);
  }

  removeRoom(name) {
    this.directory.remove(name);
    this.search?.remove(name);
  }

  // What the lobby knows of a room: from the directory or from a search's answer.
  findRoom(name) { return this.directory.get(name) || this.search?.get(name); }

  get(kind, name) { return this.convs.get(convId(kind, name)); }

  ensure(kind, name) {
    const id = convId(kind, name);
    let conv = this.convs.get(id);
    if (!conv) {
      conv = new Conversation(kind, name);
      this.convs.set(id, conv);
    }
    return conv;
  }

  remove(id) {
    this.convs.delete(id);
    if (this.activeId === id) this.activeId = null;
  }

  get active() { return this.activeId ? this.convs.get(this.activeId) : null; }

  rooms() { return [...this.convs.values()].filter((c) => c.kind === 'room'); }

  // Newest first: by message id for an account (kept DMs, ids known before their history is loaded), by arrival for
  // a guest (an in-memory server counts ids from 1 again after a restart).
  dms() {
    const newest = this.account ? (c) => c.newestId() : (c) => c.lastActivity;
    return [...this.convs.values()].filter((c) => c.kind === 'dm').sort((a, b) => newest(b) - newest(a));
  }

  totalUnread() {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }
}

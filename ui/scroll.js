// scroll.js owns where the message list is scrolled: pinned to the newest message while the reader is
// there, through anything that resizes the list (a column opening, a drawer, the phone keyboard, fonts
// arriving late), and a "jump to latest" button whenever they are not.

import { t } from './i18n.js';

const NEAR_BOTTOM_PX = 80;
const DIVIDER_MARGIN_PX = 24; // room above the "new messages" divider when the list opens at it

let scroller = null;
let jump = null;
let jumpText = null;
let pinned = true; // the reader is at the newest message: keep them there whatever resizes
let newBelow = false; // something arrived below while they read older messages
let onLatest = () => {}; // told when the reader reaches the newest message (an account marks it read)

export function onReachLatest(fn) { onLatest = fn; }

export function setupScroll(els) {
  scroller = els.scroller;
  jump = els.jumpLatest;
  jumpText = els.jumpLatestText;
  scroller.addEventListener('scroll', () => {
    const was = pinned;
    pinned = distanceFromBottom() < NEAR_BOTTOM_PX;
    if (pinned) newBelow = false;
    renderJump();
    if (pinned && !was) onLatest();
  }, { passive: true });
  jump.addEventListener('click', () => pinToBottom());
  // Size changes do not fire scroll events: a list that narrows (the members column opening) grows taller
  // and would leave the newest message below the edge. Watching both the box and its content catches them all.
  const keepPinned = () => { if (pinned) scroller.scrollTop = scroller.scrollHeight; };
  const observer = new ResizeObserver(keepPinned);
  observer.observe(scroller);
  observer.observe(els.messages);
}

function distanceFromBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
}

export function isPinned() { return pinned; }

export function isNearTop() { return scroller.scrollTop < 150; }

export function pinToBottom() {
  const was = pinned;
  pinned = true;
  newBelow = false;
  scroller.scrollTop = scroller.scrollHeight;
  renderJump();
  if (!was) onLatest();
}

// Something new below the reader's place: the button says so.
export function noteNewBelow() {
  newBelow = true;
  renderJump();
}

// Re-renders the list with `draw` while keeping the reader's place: at the bottom if they were there,
// else the same distance from the bottom (older history added above does not move what they read).
export function keepPlace(draw) {
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  draw();
  if (pinned) scroller.scrollTop = scroller.scrollHeight;
  else scroller.scrollTop = scroller.scrollHeight - fromBottom;
}

// Opens the list at the "new messages" divider when the unread part is taller than the screen, so the
// first unread message is read first; else at the bottom, where everything unread is in view.
export function openAt(divider) {
  if (!divider) return pinToBottom();
  const top = divider.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop;
  const target = Math.max(0, top - DIVIDER_MARGIN_PX);
  if (target >= scroller.scrollHeight - scroller.clientHeight - NEAR_BOTTOM_PX) return pinToBottom();
  scroller.scrollTop = target;
  pinned = false;
  newBelow = true;
  renderJump();
}

// The button shows whenever the newest message is out of view; its words say whether anything new is there.
export function renderJump() {
  const show = !pinned && scroller.scrollHeight > scroller.clientHeight;
  jump.hidden = !show;
  const text = newBelow ? t('newMessages') : t('jumpLatest');
  if (jumpText.textContent !== text) jumpText.textContent = text;
}

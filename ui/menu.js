// menu.js owns the page's small pop-up menus (a message's actions, a member's) and its yes/no questions: one menu
// open at a time, reachable by keyboard (arrows, Home/End, Esc), closed by a click elsewhere, focus given back.

import { t } from './i18n.js';
import { h } from './render.js';

const MARGIN_PX = 8; // a menu keeps this far from the window's edges

let open = null; // { el, anchor, onClose }

// items: [{ label, run, danger? }]; anchor: the element that opened it (focus goes back there); at: {x, y} to open
// at a point (a long press, a right click) instead of under the anchor. Returns the menu element.
export function openMenu(anchor, items, { label = '', at = null, onClose = null } = {}) {
  closeMenu(false);
  const el = h('div', 'popup-menu');
  el.setAttribute('role', 'menu');
  if (label) el.setAttribute('aria-label', label);
  for (const item of items) {
    const b = h('button', `menu-item${item.danger ? ' danger' : ''}`, item.label);
    b.type = 'button';
    b.setAttribute('role', 'menuitem');
    b.tabIndex = -1;
    if (item.key) b.dataset.key = item.key;
    b.addEventListener('click', () => {
      closeMenu(!item.keepsFocus);
      item.run();
    });
    el.append(b);
  }
  el.addEventListener('keydown', onMenuKey);
  document.body.append(el);
  place(el, anchor, at);
  anchor?.setAttribute('aria-expanded', 'true');
  open = { el, anchor, onClose };
  el.querySelector('.menu-item')?.focus();
  return el;
}

export function menuOpen() { return !!open; }

// Closes the open menu; focus goes back to what opened it unless told otherwise.
export function closeMenu(refocus = true) {
  if (!open) return;
  const { el, anchor, onClose } = open;
  open = null;
  el.remove();
  anchor?.setAttribute('aria-expanded', 'false');
  if (refocus && anchor?.isConnected) anchor.focus({ preventScroll: true });
  onClose?.();
}

// Below the anchor, its right edge lined up with the anchor's; above it when there is no room below. Fixed to the
// window, so a scrolling list under it does not carry it away (the list closes it instead).
function place(el, anchor, at) {
  const box = el.getBoundingClientRect();
  const r = at ? { left: at.x, right: at.x, top: at.y, bottom: at.y } : anchor.getBoundingClientRect();
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  let x = at ? at.x : r.right - box.width;
  let y = r.bottom + 4;
  if (y + box.height > vh - MARGIN_PX) y = Math.max(MARGIN_PX, r.top - box.height - 4);
  x = Math.min(Math.max(MARGIN_PX, x), vw - box.width - MARGIN_PX);
  el.style.left = `${Math.round(x)}px`;
  el.style.top = `${Math.round(y)}px`;
}

function onMenuKey(ev) {
  const items = [...ev.currentTarget.querySelectorAll('.menu-item')];
  const at = items.indexOf(document.activeElement);
  let next = null;
  if (ev.key === 'ArrowDown') next = items[(at + 1) % items.length];
  else if (ev.key === 'ArrowUp') next = items[(at + items.length - 1) % items.length];
  else if (ev.key === 'Home') next = items[0];
  else if (ev.key === 'End') next = items[items.length - 1];
  else if (ev.key === 'Tab') {
    closeMenu(false);
    return;
  }
  if (next) {
    ev.preventDefault();
    next.focus();
  }
}

document.addEventListener('pointerdown', (ev) => {
  if (open && !open.el.contains(ev.target) && !open.anchor?.contains(ev.target)) closeMenu(false);
}, true);
// Esc closes the menu wherever focus is (a long press leaves it on the list, not in the menu), before anything
// else hears it (the drawer, the members overlay).
document.addEventListener('keydown', (ev) => {
  if (!open || ev.key !== 'Escape') return;
  ev.preventDefault();
  ev.stopPropagation();
  closeMenu();
}, true);
window.addEventListener('resize', () => closeMenu(false));
document.addEventListener('scroll', () => closeMenu(false), true);

// ---- a yes/no question in a modal dialog ----

let confirmEl = null;

function confirmDialog() {
  if (confirmEl) return confirmEl;
  confirmEl = h('dialog', 'dialog');
  confirmEl.id = 'confirm-dialog';
  confirmEl.setAttribute('aria-labelledby', 'confirm-title');
  confirmEl.setAttribute('aria-describedby', 'confirm-text');
  const form = h('form', 'stack');
  form.method = 'dialog';
  const title = h('h2');
  title.id = 'confirm-title';
  const text = h('p', 'muted');
  text.id = 'confirm-text';
  const actions = h('div', 'dialog-actions');
  const no = h('button', 'btn btn-ghost');
  no.value = 'no';
  no.id = 'confirm-no';
  const yes = h('button', 'btn btn-danger');
  yes.value = 'yes';
  yes.id = 'confirm-yes';
  actions.append(no, yes);
  form.append(title, text, actions);
  confirmEl.append(form);
  document.body.append(confirmEl);
  return confirmEl;
}

// Resolves true when the person confirms; Esc, Cancel or a click elsewhere are a no. Focus goes back to `returnTo`.
export function confirm({ title, text, yes, returnTo = null }) {
  const dialog = confirmDialog();
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-text').textContent = text;
  dialog.querySelector('#confirm-yes').textContent = yes;
  dialog.querySelector('#confirm-no').textContent = t('cancel');
  dialog.returnValue = '';
  dialog.showModal();
  dialog.querySelector('#confirm-no').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (returnTo?.isConnected) returnTo.focus({ preventScroll: true });
      resolve(dialog.returnValue === 'yes');
    }, { once: true });
  });
}

// attachments.js owns how a message's files look in the conversation (PROTOCOL 1.1 "Attachments"): pictures as
// previews that open full size in an overlay, every other file as a download chip. Names go in through
// textContent only; ids are the server's and go into URLs encoded.

import { t, lang } from './i18n.js';

// The types the server serves inline as pictures; anything else it serves as a download, so it is shown as one.
const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
// The preview box in the conversation: the thumbnail (at most 480×480) is drawn no bigger than this, and never
// bigger than the picture itself. CSS narrows it further on a phone, keeping its shape.
const PREVIEW_MAX = 320;

const SVG_NS = 'http://www.w3.org/2000/svg';
const FILE_ICON = 'M14 3H7a2 2 0 00-2 2v14a2 2 0 002 2h10a2 2 0 002-2V8zM14 3v5h5M9 13h6M9 17h6';
const DOWNLOAD_ICON = 'M12 4v11M7 10l5 5 5-5M5 20h14';

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function svgIcon(d, className = 'ico') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', className);
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', d);
  svg.append(path);
  return svg;
}
export const fileIcon = (className) => svgIcon(FILE_ICON, className);

export const fileUrl = (id) => `/files/${encodeURIComponent(id)}`;
export const thumbUrl = (id) => `${fileUrl(id)}/thumb`;

// A picture the page can preview: an inline type with its size known (the server gives both for images).
export function isPicture(file) {
  return INLINE_TYPES.has(file.type) && file.width > 0 && file.height > 0;
}

// "2,4 MB" in Portuguese, "2.4 MB" in English; powers of 1024, as file managers count.
export function humanSize(bytes) {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'];
  let value = Math.max(0, Number(bytes) || 0);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return new Intl.NumberFormat(lang(), {
    style: 'unit', unit: units[unit], unitDisplay: 'short', maximumFractionDigits: digits,
  }).format(value);
}

// The preview's size on screen: the picture's shape, fitted in the box, never enlarged. Given to the <img> as
// width and height so the space is kept before the preview loads (nothing below it jumps).
export function previewSize(width, height, max = PREVIEW_MAX) {
  const scale = Math.min(1, max / width, max / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function pictureEl(file) {
  const a = el('a', 'att-picture');
  a.href = fileUrl(file.id);
  a.target = '_blank'; // without the overlay (a middle click, no script) it opens in a tab of its own
  a.rel = 'noopener';
  a.dataset.fileId = file.id;
  a.dataset.width = String(file.width);
  a.dataset.height = String(file.height);
  a.setAttribute('aria-label', t('openPicture', { name: file.name }));
  const img = el('img', 'att-thumb');
  const size = previewSize(file.width, file.height);
  img.width = size.width;
  img.height = size.height;
  img.loading = 'lazy';
  img.decoding = 'async';
  img.alt = file.name;
  img.src = thumbUrl(file.id);
  // Gone from the server (its message deleted meanwhile): the kept space says which file it was, no broken icon.
  img.addEventListener('error', () => {
    a.classList.add('is-broken');
    a.dataset.name = file.name;
  }, { once: true });
  a.append(img);
  return a;
}

function chipEl(file) {
  const a = el('a', 'att-file');
  a.href = fileUrl(file.id);
  a.download = file.name; // same origin: the browser saves it under its name
  a.title = file.name;
  const size = humanSize(file.size);
  a.setAttribute('aria-label', t('downloadFile', { name: file.name, size }));
  const text = el('span', 'att-file-text');
  text.append(el('span', 'att-file-name', file.name), el('span', 'att-file-size', size));
  a.append(fileIcon('ico att-file-ico'), text, svgIcon(DOWNLOAD_ICON, 'ico att-file-get'));
  return a;
}

// The files of one message: pictures first, together, then the chips.
export function attachmentsEl(files) {
  const box = el('div', 'attachments');
  const pictures = files.filter(isPicture);
  const others = files.filter((f) => !isPicture(f));
  if (pictures.length) {
    const grid = el('div', `att-pictures${pictures.length > 1 ? ' att-many' : ''}`);
    grid.append(...pictures.map(pictureEl));
    box.append(grid);
  }
  for (const f of others) box.append(chipEl(f));
  return box;
}

// What a notification or a screen reader says for a message that is only files: their names.
export function filesSummary(files = []) {
  return files.length ? `📎 ${files.map((f) => f.name).join(', ')}` : '';
}

// ---- the overlay: a picture full size, closed by Esc, a click anywhere, or its button ----

let lightbox = null;

function buildLightbox() {
  const dialog = el('dialog', 'lightbox');
  dialog.id = 'lightbox';
  const img = el('img', 'lightbox-img');
  img.alt = '';
  const bar = el('div', 'lightbox-bar');
  const name = el('span', 'lightbox-name');
  const open = el('a', 'lightbox-open');
  open.target = '_blank';
  open.rel = 'noopener';
  open.append(svgIcon('M14 4h6v6M20 4l-9 9M18 14v5a1 1 0 01-1 1H5a1 1 0 01-1-1V7a1 1 0 011-1h5', 'ico'));
  const close = el('button', 'icon-btn lightbox-close');
  close.type = 'button';
  close.append(svgIcon('M6 6l12 12M18 6L6 18', 'ico'));
  bar.append(name, open, close);
  const stage = el('div', 'lightbox-stage');
  stage.append(img);
  dialog.append(bar, stage);
  document.body.append(dialog);
  // A click anywhere but the link to the original closes it, the picture included: the way out a phone expects.
  dialog.addEventListener('click', (ev) => {
    if (!ev.target.closest('.lightbox-open')) dialog.close();
  });
  dialog.addEventListener('close', () => {
    img.removeAttribute('src'); // a big picture is not kept decoded behind a closed overlay
    lightbox.opener?.focus({ preventScroll: true });
  });
  lightbox = { dialog, img, name, open, close, opener: null };
  translateLightbox();
  return lightbox;
}

function translateLightbox() {
  if (!lightbox) return;
  lightbox.close.setAttribute('aria-label', t('closePicture'));
  lightbox.close.title = t('closePicture');
  lightbox.open.setAttribute('aria-label', t('openOriginal'));
  lightbox.open.title = t('openOriginal');
}

export function openPicture(link) {
  const box = lightbox || buildLightbox();
  const id = link.dataset.fileId;
  const name = link.querySelector('img')?.alt || '';
  box.opener = link;
  box.name.textContent = name;
  box.dialog.setAttribute('aria-label', name);
  box.open.href = fileUrl(id);
  box.img.alt = name;
  box.img.width = Number(link.dataset.width) || 0;
  box.img.height = Number(link.dataset.height) || 0;
  box.img.src = fileUrl(id);
  box.dialog.showModal();
  box.close.focus();
}

// Pictures in the list open in the overlay on a plain click; a click with a modifier keeps the browser's meaning
// (a new tab, a download).
export function setupAttachments(listEl) {
  listEl.addEventListener('click', (ev) => {
    const link = ev.target.closest('a.att-picture');
    if (!link || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    openPicture(link);
  });
}

export const retranslateAttachments = translateLightbox;

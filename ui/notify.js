// notify.js owns desktop notifications: whether they can be asked for, asking (only from a button the person
// pressed, never on load), and showing one for a DM or a mention while the tab is hidden.

const supported = () => typeof window.Notification === 'function';

// 'unsupported' | 'default' (not asked yet) | 'granted' | 'denied'
export function permission() {
  return supported() ? Notification.permission : 'unsupported';
}

// Asks the browser; resolves with the new permission. Must run inside a click handler.
export async function ask() {
  if (!supported()) return 'unsupported';
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission;
  }
}

// Whether `text` names `me` as a word (with or without @), ignoring case: "oi @ana", "Ana, vem?" but not "banana".
export function mentions(text, me) {
  if (!me) return false;
  const escaped = me.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_])@?${escaped}(?=$|[^\\p{L}\\p{N}_])`, 'iu').test(text);
}

const BODY_CHARS = 140;

// Shows one notification when the page is hidden and the person allowed them. One per conversation at a time
// (the tag replaces the older one); a click brings the tab forward and opens the conversation.
export function show({ title, body, tag, onClick }) {
  if (permission() !== 'granted' || document.visibilityState === 'visible') return null;
  const text = [...String(body)].length > BODY_CHARS ? `${[...String(body)].slice(0, BODY_CHARS - 1).join('')}…` : String(body);
  let n;
  try {
    n = new Notification(title, { body: text, tag, icon: '/icon-192.png' });
  } catch {
    return null; // Chrome on Android allows them only from a service worker: nothing to do there
  }
  n.onclick = () => {
    window.focus();
    onClick?.();
    n.close();
  };
  return n;
}

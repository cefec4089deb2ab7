// emoji.js owns the small emoji picker beside the message box: a grid of buttons, arrow keys to move, Escape to close.

const EMOJI = [
  '😀', '😂', '🥹', '😊', '😍', '😘', '😎', '🤔',
  '😅', '😭', '😡', '😴', '🤯', '🥳', '😬', '🙃',
  '👍', '👎', '👏', '🙏', '💪', '👋', '🤝', '✌️',
  '❤️', '🔥', '✨', '🎉', '💯', '✅', '❌', '⚽',
  '🎮', '🍕', '☕', '🍺', '🌞', '🌧️', '🚀', '🇧🇷',
];
const COLS = 8;

export function setupEmojiPicker({ toggle, panel, input, onPick }) {
  const buttons = EMOJI.map((e) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'emoji-btn';
    b.textContent = e;
    b.setAttribute('aria-label', e);
    b.tabIndex = -1;
    return b;
  });
  panel.replaceChildren(...buttons);

  const isOpen = () => !panel.hidden;
  const open = () => {
    panel.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    buttons[0].tabIndex = 0;
    buttons[0].focus();
  };
  const close = (refocus) => {
    if (!isOpen()) return;
    panel.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    if (refocus) input.focus();
  };

  toggle.addEventListener('click', () => (isOpen() ? close(true) : open()));

  panel.addEventListener('click', (ev) => {
    const b = ev.target.closest('.emoji-btn');
    if (!b) return;
    insertAtCursor(input, b.textContent);
    onPick?.();
    close(true);
  });

  // Roving focus: arrows move inside the grid, Escape returns to the message box.
  panel.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement);
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLS, ArrowUp: -COLS };
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close(true);
    } else if (ev.key in moves && i >= 0) {
      ev.preventDefault();
      const next = buttons[Math.min(buttons.length - 1, Math.max(0, i + moves[ev.key]))];
      buttons[i].tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    } else if (ev.key === 'Tab') {
      close(false);
    }
  });

  document.addEventListener('pointerdown', (ev) => {
    if (isOpen() && !panel.contains(ev.target) && !toggle.contains(ev.target)) close(false);
  });

  return { close };
}

function insertAtCursor(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, 'end');
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

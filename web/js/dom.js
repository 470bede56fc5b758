// dom.js: building elements without HTML strings. Every piece of text from the API goes
// through text nodes (textContent), never innerHTML, so a message such as
// <img src=x onerror=alert(1)> stays text.

// h(tag, attrs, ...children): an element. attrs: class, dataset (object), on<Event>
// (listeners), boolean true/false attributes, anything else as an attribute. Children are
// nodes, strings (text nodes), arrays, or null/undefined/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') el[k] = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

// Customer or agent text, isolated so right-to-left scripts (Urdu, Arabic) never reorder the
// line around them.
export function bidi(text, cls) {
  return h('bdi', { class: cls, dir: 'auto' }, text == null ? '' : String(text));
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A labelled form field. opts: {label, name, type, value, required, options:[[value,label]],
// rows (textarea), help, autocomplete, min, max, placeholder}
let fieldSeq = 0;
export function field(opts) {
  const id = `f${++fieldSeq}`;
  let input;
  const common = { id, name: opts.name, required: opts.required, autocomplete: opts.autocomplete,
    placeholder: opts.placeholder, dir: opts.dir };
  if (opts.options) {
    input = h('select', common, opts.options.map(([v, l]) =>
      h('option', { value: v, selected: String(opts.value ?? '') === String(v) }, l)));
  } else if (opts.rows) {
    input = h('textarea', { ...common, rows: opts.rows, maxlength: opts.maxlength }, opts.value || '');
  } else {
    input = h('input', { ...common, type: opts.type || 'text', value: opts.value ?? '',
      min: opts.min, max: opts.max, step: opts.step, inputmode: opts.inputmode,
      maxlength: opts.maxlength, spellcheck: opts.spellcheck });
  }
  const helpId = opts.help ? `${id}-help` : null;
  if (helpId) input.setAttribute('aria-describedby', helpId);
  const wrap = h('div', { class: 'field' + (opts.wide ? ' wide' : '') },
    h('label', { for: id }, opts.label),
    input,
    opts.help ? h('span', { class: 'help', id: helpId }, opts.help) : null);
  wrap.input = input;
  return wrap;
}

// A toast in the top-right: role=alert for errors so screen readers announce them at once.
export function toast(message, kind = 'info', ms = 5000) {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', null, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss',
      onclick: () => t.remove() }, '×'));
  box.appendChild(t);
  if (ms > 0) setTimeout(() => t.remove(), ms);
  return t;
}

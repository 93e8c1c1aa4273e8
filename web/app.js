// The RUDOLPH page: plain browser JavaScript in two modes. Server mode talks to the HTTP API
// (POST /v1/jobs + Server-Sent Events for progress); local mode runs the library itself in a Web
// Worker (dist/local-worker.js, built by `npm run build:web`) on onnxruntime-web, with the model
// fetched from the hub and cached by the browser. This file is served as-is.

const STRINGS = {
  ru: {
    tagline: 'Текст ↔ изображение ↔ текст',
    connecting: 'Подключение…',
    ready: 'Готово',
    offline: 'Сервер недоступен',
    queue: 'в очереди',
    dreamTitle: 'Текст → изображения',
    promptLabel: 'Что нарисовать',
    promptPlaceholder: 'например: красная машина на снегу',
    seedPlaceholder: 'случайный',
    options: 'Параметры',
    generate: 'Сгенерировать',
    cancel: 'Отменить',
    imageTitle: 'Изображение → подписи и классы',
    uploadHint: 'Выберите или перетащите изображение (PNG, JPEG, WebP)',
    captionsTitle: 'Подписи',
    classesTitle: 'Классы',
    classesLabel: 'Список классов, через запятую или с новой строки',
    classify: 'Классифицировать',
    textTitle: 'Продолжение текста',
    templateLabel: 'Начало текста',
    templatePlaceholder: 'например: зимой в лесу',
    continue: 'Продолжить',
    apiLink: 'API (OpenAPI)',
    download: 'Скачать',
    score: 'оценка',
    ppl: 'перплексия',
    seedUsed: 'сид',
    prediction: 'Скорее всего:',
    lowerBetter: 'Полоса длиннее — класс вероятнее (меньше перплексия).',
    noCaptions: 'Подписей не получилось.',
    noTexts: 'Продолжений не получилось.',
    needClasses: 'Введите хотя бы один класс.',
    cancelled: 'Отменено.',
    queueFull: 'Очередь заполнена, повторите через {s} с.',
    waiting: 'в очереди: {n}',
    'stage:image tokens': 'рисование',
    'stage:sampling': 'генерация',
    'stage:scoring': 'оценка',
    'stage:patches': 'увеличение',
    times: '×{n}',
    upscale: 'Увеличить ×{n}',
    upscaling: 'Увеличение…',
    modeLocal: 'Локально',
    modeServer: 'Сервер',
    localModel: 'Модель',
    localEndpoint: 'Хаб',
    localDevice: 'Устройство',
    localPrecision: 'Точность',
    localLoad: 'Загрузить',
    localNotLoaded: 'Локально: модель не загружена',
    localLoading: 'Локально: загрузка…',
    localReady: 'Готово · локально',
    needModel: 'Сначала загрузите модель.',
    deviceLine: 'Устройство: {device} · {precision} · потоков: {threads} · onnxruntime-web {ort}',
    'stage:download': 'загрузка',
    'stage:convert': 'сборка',
    'stage:load': 'запуск',
    // server errors by their stable `code` (src/server/errors.ts ERROR_CODES)
    'err:VALIDATION': 'Запрос не прошёл проверку{field}.',
    'err:INPUT': 'Неверные входные данные{field}.',
    'err:IMAGE': 'Не удалось прочитать изображение: нужен файл PNG, JPEG или WebP.',
    'err:CONFIG': 'Ошибка в настройках модели на сервере.',
    'err:TOKENIZER': 'Ошибка токенизатора на сервере.',
    'err:BAD_REQUEST': 'Сервер не понял запрос.',
    'err:HOST_NOT_ALLOWED': 'Сервер не отвечает на этот адрес (защита от DNS rebinding).',
    'err:CROSS_ORIGIN': 'Запрос с другого сайта отклонён.',
    'err:NOT_FOUND': 'Не найдено.',
    'err:ABORTED': 'Отменено.',
    'err:LIMIT': 'Изображения слишком большие: превышен лимит пикселей на запрос.',
    'err:BODY_TOO_LARGE': 'Запрос слишком большой для сервера.',
    'err:UNSUPPORTED_MEDIA_TYPE': 'Сервер не принимает такой формат запроса.',
    'err:IDEMPOTENCY_CONFLICT': 'Повтор запроса с другими данными.',
    'err:QUEUE_FULL': 'Очередь заполнена, повторите через {s} с.',
    'err:RATE_LIMITED': 'Слишком много запросов, повторите через {s} с.',
    'err:SHUTTING_DOWN': 'Сервер останавливается.',
    'err:REDIS_UNAVAILABLE': 'Хранилище задач недоступно, повторите позже.',
    'err:NO_WORKERS': 'Модель ещё не готова, повторите позже.',
    'err:NO_MODEL': 'Модель ещё не загружена, повторите позже.',
    'err:INTERNAL': 'Ошибка сервера.',
    'err:RUNTIME': 'Ошибка при работе модели на сервере.',
    'err:CHECKPOINT': 'Ошибка чтения весов модели на сервере.',
    'err:WEIGHTS': 'Ошибка в весах модели на сервере.',
    'err:DOWNLOAD': 'Сервер не смог скачать файлы модели.',
    'err:OFFLINE': 'Сервер работает без сети, а нужных файлов нет.',
    'err:INTEGRITY': 'Файлы модели на сервере повреждены.',
    'err:TRAINING': 'Ошибка дообучения на сервере.',
    'err:WORKER_LOST': 'Обработчик задачи перестал отвечать.',
    'err:other': 'Ошибка сервера ({code}).',
  },
  en: {
    tagline: 'Text ↔ image ↔ text',
    connecting: 'Connecting…',
    ready: 'Ready',
    offline: 'Server unreachable',
    queue: 'queued',
    dreamTitle: 'Text → images',
    promptLabel: 'What to draw (the model understands Russian best)',
    promptPlaceholder: 'e.g. красная машина на снегу',
    seedPlaceholder: 'random',
    options: 'Options',
    generate: 'Generate',
    cancel: 'Cancel',
    imageTitle: 'Image → captions and classes',
    uploadHint: 'Choose or drop an image (PNG, JPEG, WebP)',
    captionsTitle: 'Captions',
    classesTitle: 'Classes',
    classesLabel: 'Class list, separated by commas or new lines',
    classify: 'Classify',
    textTitle: 'Text continuation',
    templateLabel: 'Start of the text',
    templatePlaceholder: 'e.g. зимой в лесу',
    continue: 'Continue',
    apiLink: 'API (OpenAPI)',
    download: 'Download',
    score: 'score',
    ppl: 'perplexity',
    seedUsed: 'seed',
    prediction: 'Most likely:',
    lowerBetter: 'Longer bar = more likely class (lower perplexity).',
    noCaptions: 'No captions came out.',
    noTexts: 'No continuations came out.',
    needClasses: 'Enter at least one class.',
    cancelled: 'Cancelled.',
    queueFull: 'The queue is full, retry in {s} s.',
    waiting: 'queued: {n}',
    'stage:image tokens': 'drawing',
    'stage:sampling': 'sampling',
    'stage:scoring': 'scoring',
    'stage:patches': 'upscaling',
    times: '×{n}',
    upscale: 'Upscale ×{n}',
    upscaling: 'Upscaling…',
    modeLocal: 'Local',
    modeServer: 'Server',
    localModel: 'Model',
    localEndpoint: 'Hub',
    localDevice: 'Device',
    localPrecision: 'Precision',
    localLoad: 'Load',
    localNotLoaded: 'Local: no model loaded',
    localLoading: 'Local: loading…',
    localReady: 'Ready · local',
    needModel: 'Load a model first.',
    deviceLine: 'Device: {device} · {precision} · threads: {threads} · onnxruntime-web {ort}',
    'stage:download': 'downloading',
    'stage:convert': 'building',
    'stage:load': 'starting',
    'err:VALIDATION': 'The request did not pass validation{field}.',
    'err:INPUT': 'Invalid input{field}.',
    'err:IMAGE': 'Could not read the image: a PNG, JPEG or WebP file is needed.',
    'err:CONFIG': 'The model configuration on the server is broken.',
    'err:TOKENIZER': 'Tokenizer error on the server.',
    'err:BAD_REQUEST': 'The server did not understand the request.',
    'err:HOST_NOT_ALLOWED': 'The server does not answer to this address (DNS rebinding guard).',
    'err:CROSS_ORIGIN': 'A request from another site was refused.',
    'err:NOT_FOUND': 'Not found.',
    'err:ABORTED': 'Cancelled.',
    'err:LIMIT': 'The images are too large: over the server\'s pixel limit per request.',
    'err:BODY_TOO_LARGE': 'The request is too large for the server.',
    'err:UNSUPPORTED_MEDIA_TYPE': 'The server does not accept this kind of request.',
    'err:IDEMPOTENCY_CONFLICT': 'A repeated request with different data.',
    'err:QUEUE_FULL': 'The queue is full, retry in {s} s.',
    'err:RATE_LIMITED': 'Too many requests, retry in {s} s.',
    'err:SHUTTING_DOWN': 'The server is shutting down.',
    'err:REDIS_UNAVAILABLE': 'The job store is unreachable, retry later.',
    'err:NO_WORKERS': 'The model is not ready yet, retry later.',
    'err:NO_MODEL': 'The model is not loaded yet, retry later.',
    'err:INTERNAL': 'Server error.',
    'err:RUNTIME': 'The model failed on the server.',
    'err:CHECKPOINT': 'The server could not read the model weights.',
    'err:WEIGHTS': 'The model weights on the server are broken.',
    'err:DOWNLOAD': 'The server could not download the model files.',
    'err:OFFLINE': 'The server is offline and lacks the files it needs.',
    'err:INTEGRITY': 'The model files on the server are damaged.',
    'err:TRAINING': 'Fine-tuning error on the server.',
    'err:WORKER_LOST': 'The worker running the job stopped responding.',
    'err:other': 'Server error ({code}).',
  },
};

let lang = localStorage.getItem('rudolph-lang') === 'en' ? 'en' : 'ru';
/** re-render functions of whatever results are on screen, run again after a language switch */
const rerenders = new Map();

const $ = (id) => document.getElementById(id);

function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.ru[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-label-ru]')) el.textContent = lang === 'en' ? el.dataset.labelEn : el.dataset.labelRu;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  $('lang').textContent = lang === 'ru' ? 'EN' : 'RU';
  for (const render of rerenders.values()) render();
}

$('lang').addEventListener('click', () => {
  lang = lang === 'ru' ? 'en' : 'ru';
  localStorage.setItem('rudolph-lang', lang);
  applyLanguage();
});

class ApiError extends Error {
  constructor(status, body, headers) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
    this.field = body?.field;
    this.retryAfter = headers?.get('retry-after');
  }
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body, res.headers);
  return body;
}

// ---- modes: server (HTTP API) or local (the library in a worker) -----------------------------

const params = new URLSearchParams(location.search);
/** chosen by the URL or earlier by the user; otherwise a page without a server (a static host) goes local */
const chosenMode = params.get('mode') ?? localStorage.getItem('rudolph-mode');
let mode = chosenMode ?? 'server';

/** Runs a task in the current mode. Returns {result, cancel}. Text tokens stream (`onToken`) from the server only. */
function runJob(task, input, onProgress, onToken) {
  return mode === 'local' ? local.run(task, input, onProgress) : runServerJob(task, input, onProgress, onToken);
}

/**
 * Queues a job and follows it over SSE. Returns {result, cancel}: result resolves with the
 * task's response, rejects on failure or cancel. `onToken` gets the `token` events of the
 * tasks that stream text.
 */
function runServerJob(task, input, onProgress, onToken) {
  let jobId = null;
  let cancelled = false;
  const result = (async () => {
    const job = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ task, input }) });
    jobId = job.id;
    if (cancelled) void cancelJob(jobId);
    return new Promise((resolve, reject) => {
      const events = new EventSource(`/v1/jobs/${job.id}/events`);
      const end = (fn) => (e) => { events.close(); fn(JSON.parse(e.data)); };
      events.addEventListener('state', (e) => {
        const s = JSON.parse(e.data);
        if (s.state === 'queued') onProgress({ waiting: s.position });
      });
      events.addEventListener('progress', (e) => onProgress(JSON.parse(e.data)));
      if (onToken) events.addEventListener('token', (e) => onToken(JSON.parse(e.data)));
      events.addEventListener('done', end((j) => resolve(j.result)));
      events.addEventListener('failed', end((j) => reject(new ApiError(500, j.error))));
      events.addEventListener('cancelled', end((j) => reject(Object.assign(new ApiError(409, j.error), { cancelled: true }))));
      events.onerror = () => {
        if (events.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
        api(`/v1/jobs/${job.id}`).then((j) => {
          if (j.state === 'done') resolve(j.result);
          else if (j.state === 'failed' || j.state === 'cancelled') reject(new ApiError(500, j.error));
          else reject(new Error('lost the progress stream'));
        }, reject);
      };
    });
  })();
  return {
    result,
    cancel() { cancelled = true; if (jobId) void cancelJob(jobId); },
  };
}

const cancelJob = (id) => fetch(`/v1/jobs/${id}`, { method: 'DELETE' }).catch(() => {});

/** Shows a job's progress in a <progress> + stage label. */
function progressView(rowId, barId, stageId) {
  const row = $(rowId), bar = $(barId), stage = $(stageId);
  return {
    start() { row.hidden = false; bar.removeAttribute('value'); stage.textContent = ''; },
    update(p) {
      if (p.waiting !== undefined) { bar.removeAttribute('value'); stage.textContent = t('waiting', { n: p.waiting }); return; }
      const done = p.done ?? p.loaded ?? 0, total = p.total ?? 0;
      if (!total) { bar.removeAttribute('value'); stage.textContent = `${t(`stage:${p.stage}`)} ${p.file ?? ''}`; return; }
      bar.max = Math.max(1, total);
      bar.value = Math.min(done, total);
      const rate = p.bytesPerSecond ? ` · ${(p.bytesPerSecond / 1e6).toFixed(1)} MB/s${p.etaSeconds != null ? ` · ${Math.ceil(p.etaSeconds)} s` : ''}` : '';
      stage.textContent = `${t(`stage:${p.stage}`)} ${Math.round((100 * done) / Math.max(1, total))}%${rate}`;
    },
    stop() { row.hidden = true; },
  };
}

/** An error in the UI language: server errors by their stable code (the server's own text as a tooltip). */
function errorText(err) {
  if (err.cancelled) return t('cancelled');
  if (!err.code) return err.status === 429 ? t('queueFull', { s: err.retryAfter ?? '?' }) : err.message;
  const key = `err:${err.code}`;
  const vars = { s: err.retryAfter ?? '?', field: err.field ? ` (${err.field})` : '', code: err.code };
  return key in STRINGS[lang] ? t(key, vars) : t('err:other', vars);
}

function showError(id, err) {
  const el = $(id);
  rerenders.delete(`error:${id}`);
  if (!err) { el.hidden = true; el.textContent = ''; el.removeAttribute('title'); return; }
  el.hidden = false;
  if (err.code) el.title = err.message;
  const render = () => { el.textContent = errorText(err); };
  rerenders.set(`error:${id}`, render);
  render();
}

const fmt = (x, digits = 3) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// ---- forms from the task registry (GET /v1/tasks) --------------------------------------------

/** Fields shown as form controls: those with a label, except the ones the card asks for itself. */
const OWN_FIELDS = { dream: ['text'], caption: ['image'], classify: ['image', 'classes'], text: ['template'] };
const catalog = new Map(); // task name → its fields

let formsBuilt = false;
async function buildOptionForms() {
  if (formsBuilt) return;
  // local mode: the registry bundled with the library; server mode: the server's
  const { tasks } = mode === 'local' ? await local.call({ type: 'catalog' }).result : await api('/v1/tasks');
  if (formsBuilt) return;
  formsBuilt = true;
  for (const task of tasks) {
    catalog.set(task.name, task.fields);
    const box = document.querySelector(`[data-task-options="${task.name}"]`);
    if (!box) continue;
    for (const f of task.fields) {
      if (!f.label || OWN_FIELDS[task.name]?.includes(f.path)) continue;
      const id = `${task.name}-${f.path.replace(/\./g, '-')}`;
      const input = el('input', { id, title: f.description });
      input.dataset.field = f.path;
      if (f.type === 'integer' || f.type === 'number') {
        input.type = 'number';
        if (f.minimum !== undefined) input.min = String(f.minimum);
        if (f.maximum !== undefined && f.maximum < 1e9) input.max = String(f.maximum);
        input.step = f.type === 'integer' ? '1' : 'any';
      } else {
        input.type = 'text';
      }
      if (f.default !== undefined) input.value = String(f.default);
      else if (f.path === 'seed') input.dataset.i18nPlaceholder = 'seedPlaceholder';
      const label = el('span', { textContent: f.label[lang] });
      label.dataset.labelRu = f.label.ru;
      label.dataset.labelEn = f.label.en;
      box.append(el('label', {}, label, input));
    }
  }
  applyLanguage();
}

/** The values of a task's generated controls, typed by the registry (empty ones left out). */
function optionValues(task) {
  const out = {};
  for (const f of catalog.get(task) ?? []) {
    const input = document.getElementById(`${task}-${f.path.replace(/\./g, '-')}`);
    if (!input || input.value === '') continue;
    const value = f.type === 'integer' || f.type === 'number' ? Number(input.value) : input.value;
    const keys = f.path.split('.');
    let at = out;
    for (const k of keys.slice(0, -1)) at = at[k] ??= {};
    at[keys[keys.length - 1]] = value;
  }
  return out;
}

/**
 * Live text while a text task samples: the candidates updated most recently, each with its text
 * so far (the `token` events carry the whole text, so a missed event loses nothing). The ranked
 * result replaces it at the end.
 */
function liveTexts(listId, shown = 6) {
  const texts = new Map(); // candidate → its text so far, in order of the latest update
  return (tok) => {
    texts.delete(tok.candidate);
    texts.set(tok.candidate, tok.text);
    const recent = [...texts].slice(-shown).sort((a, b) => a[0] - b[0]);
    const list = $(listId);
    list.replaceChildren(...recent.map(([, text]) => el('li', { className: 'live', textContent: text })));
    list.dataset.streamed = String(Number(list.dataset.streamed ?? 0) + 1);
  };
}

// ---- text → images ---------------------------------------------------------------------------

let dreamJob = null;
const dreamProgress = progressView('dream-progress-row', 'dream-progress', 'dream-stage');

$('dream-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('prompt').value.trim();
  if (!text || dreamJob) return;
  const input = { ...optionValues('dream'), text };
  if (input.images > input.candidates) input.candidates = input.images;
  showError('dream-error', null);
  $('generate').disabled = true;
  $('dream-cancel').hidden = false;
  dreamProgress.start();
  dreamJob = runJob('dream', input, dreamProgress.update);
  try {
    const out = await dreamJob.result;
    const render = () => renderDream(out, text);
    rerenders.set('dream', render);
    render();
  } catch (err) {
    showError('dream-error', err);
  } finally {
    dreamJob = null;
    dreamProgress.stop();
    $('generate').disabled = false;
    $('dream-cancel').hidden = true;
  }
});

$('dream-cancel').addEventListener('click', () => dreamJob?.cancel());

function renderDream(out, text) {
  const grid = $('dream-results');
  grid.replaceChildren();
  out.images.forEach((img, i) => {
    const src = `data:image/png;base64,${img.png}`;
    const image = el('img', { src, alt: text, width: img.width, height: img.height });
    image.dataset.testid = 'result-image';
    if (img.width < 96) image.classList.add('small');
    const name = `rudolph-${out.seed}-${i + 1}.png`;
    grid.append(el('figure', {},
      image,
      el('figcaption', {},
        el('span', { textContent: `${t('score')} ${fmt(img.score, 2)}`, title: `${t('ppl')}: ${fmt(img.pplText, 1)} / ${fmt(img.pplImage, 1)}` }),
        el('a', { href: src, download: name, textContent: t('download') }),
        img.upscaled ? el('span', { className: 'meta', textContent: `${img.width}×${img.height}` }) : upscaleButton(out, i, text))));
  });
  grid.append(el('p', { className: 'hint', textContent: `${t('seedUsed')}: ${out.seed}` }));
}

const UPSCALE_SCALE = 4;

/** Runs /v1/upscale on result image i and shows the larger image in its place. */
function upscaleButton(out, i, text) {
  const button = el('button', { type: 'button', className: 'secondary small', textContent: t('upscale', { n: UPSCALE_SCALE }) });
  button.dataset.testid = 'upscale';
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = t('upscaling');
    showError('dream-error', null);
    try {
      const big = await runJob('upscale', { image: out.images[i].png, scale: UPSCALE_SCALE }, () => {}).result;
      out.images[i] = { ...out.images[i], png: big.png, width: big.width, height: big.height, upscaled: true };
      renderDream(out, text);
    } catch (err) {
      showError('dream-error', err);
      button.disabled = false;
      button.textContent = t('upscale', { n: UPSCALE_SCALE });
    }
  });
  return button;
}

// ---- image → captions and classes ------------------------------------------------------------

let uploaded = null; // data: URL of the image
const captionProgress = progressView('caption-progress-row', 'caption-progress', 'caption-stage');

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function useFile(file) {
  if (!file) return;
  uploaded = await readFile(file);
  const preview = $('preview');
  preview.src = uploaded;
  preview.hidden = false;
  preview.onload = () => preview.classList.toggle('small', preview.naturalWidth < 96);
  $('drop-hint').hidden = true;
  $('classify').disabled = false;
  rerenders.delete('captions');
  rerenders.delete('classes');
  $('captions').replaceChildren();
  $('class-result').replaceChildren();
  await runCaptions();
}

$('upload').addEventListener('change', (e) => void useFile(e.target.files?.[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void useFile(e.dataTransfer?.files?.[0]);
});

async function runCaptions() {
  const image = uploaded;
  showError('caption-error', null);
  captionProgress.start();
  try {
    const live = liveTexts('captions');
    const out = await runJob('caption', { ...optionValues('caption'), image }, captionProgress.update, (tok) => { if (image === uploaded) live(tok); }).result;
    if (image !== uploaded) return; // a newer upload took over
    const render = () => renderCaptions(out);
    rerenders.set('captions', render);
    render();
  } catch (err) {
    showError('caption-error', err);
  } finally {
    captionProgress.stop();
  }
}

function renderCaptions(out) {
  const list = $('captions');
  if (out.captions.length === 0) { list.replaceChildren(el('li', { textContent: t('noCaptions') })); return; }
  list.replaceChildren(...out.captions.map((c) => el('li', {},
    c.text,
    el('span', { className: 'meta', textContent: `${t('score')} ${fmt(c.score, 2)}${c.count > 1 ? ` · ${t('times', { n: c.count })}` : ''}` }))));
}

$('classify-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!uploaded) return;
  const classes = $('classes-input').value.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
  if (classes.length === 0) { showError('classify-error', new Error(t('needClasses'))); return; }
  showError('classify-error', null);
  $('classify').disabled = true;
  try {
    const out = await runJob('classify', { ...optionValues('classify'), image: uploaded, classes }, () => {}).result;
    const render = () => renderClasses(out, classes);
    rerenders.set('classes', render);
    render();
  } catch (err) {
    showError('classify-error', err);
  } finally {
    $('classify').disabled = false;
  }
});

function renderClasses(out, classes) {
  // lower perplexity = more likely: the best class gets the full bar, the worst a stub
  const best = Math.min(...out.ppl), worst = Math.max(...out.ppl);
  const width = (ppl) => (worst > best ? 12 + (88 * (worst - ppl)) / (worst - best) : 100);
  const order = out.ppl.map((_, i) => i).sort((a, b) => out.scores[a] - out.scores[b]);
  const box = $('class-result');
  box.replaceChildren(
    el('p', { className: 'winner' }, `${t('prediction')} `, el('strong', { textContent: out.class })),
    ...order.map((i) => {
      const fill = el('div', { className: 'fill' });
      fill.style.width = `${width(out.ppl[i])}%`;
      return el('div', { className: `bar${i === out.label ? ' best' : ''}` },
        el('span', { className: 'name', textContent: classes[i], title: classes[i] }),
        el('div', { className: 'track' }, fill),
        el('span', { className: 'value', textContent: fmt(out.ppl[i], 1), title: t('ppl') }));
    }),
    el('p', { className: 'hint', textContent: t('lowerBetter') }),
  );
}

// ---- text continuation -----------------------------------------------------------------------

const textProgress = progressView('text-progress-row', 'text-progress', 'text-stage');

$('text-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const template = $('text-template').value.trim();
  if (!template) return;
  showError('text-error', null);
  $('continue').disabled = true;
  textProgress.start();
  try {
    const out = await runJob('text', { ...optionValues('text'), template }, textProgress.update, liveTexts('texts')).result;
    const render = () => renderTexts(out);
    rerenders.set('texts', render);
    render();
  } catch (err) {
    showError('text-error', err);
  } finally {
    textProgress.stop();
    $('continue').disabled = false;
  }
});

function renderTexts(out) {
  const list = $('texts');
  if (out.texts.length === 0) { list.replaceChildren(el('li', { textContent: t('noTexts') })); return; }
  list.replaceChildren(...out.texts.slice(0, 8).map((x) => el('li', {},
    x.text, el('span', { className: 'meta', textContent: `${t('ppl')} ${fmt(x.ppl, 1)}` }))));
}

// ---- status ----------------------------------------------------------------------------------

let health = null; // the last /v1/health answer; false when the server did not answer

function renderStatus() {
  const status = $('status');
  $('mode').textContent = mode === 'local' ? t('modeServer') : t('modeLocal');
  if (mode === 'local') {
    status.className = local.ready ? 'status ok' : 'status';
    status.textContent = local.ready ? t('localReady') : local.loading ? t('localLoading') : t('localNotLoaded');
    return;
  }
  if (health === null) { status.className = 'status'; status.textContent = t('connecting'); return; }
  if (health === false) { status.className = 'status bad'; status.textContent = t('offline'); return; }
  const waiting = health.queue.running + health.queue.queued;
  status.className = 'status ok';
  status.textContent = waiting ? `${t('ready')} · ${t('queue')}: ${waiting}` : t('ready');
}
rerenders.set('status', renderStatus);

async function refreshStatus() {
  if (mode === 'local') { renderStatus(); return; }
  try {
    health = await api('/v1/health');
  } catch {
    health = false;
    if (!chosenMode && !local.worker) { enterMode('local', false); return; }
  }
  renderStatus();
}

async function loadInfo() {
  if (mode === 'local') return;
  try {
    const info = await api('/v1/info');
    const c = info.model.config;
    $('model-info').textContent = `${info.model.name}${info.model.adapters?.length ? ` + ${info.model.adapters.join(' + ')}` : ''} · ${c.num_layers}×${c.hidden_size} · ${info.runtime.executionProviders.join(', ')} · v${info.version}`;
  } catch { /* the status line reports it */ }
}

// ---- local mode ------------------------------------------------------------------------------

/** The worker running the library, its calls by id, and the loaded model's state. */
const local = {
  worker: null,
  nextId: 1,
  calls: new Map(),
  ready: false,
  loading: false,
  start() {
    if (this.worker) return;
    this.worker = new Worker(new URL('dist/local-worker.js', location.href), { type: 'module' });
    this.worker.onmessage = (e) => {
      const m = e.data;
      const call = this.calls.get(m.id);
      if (!call) return;
      if (m.type === 'progress') call.onProgress(m.progress);
      else {
        this.calls.delete(m.id);
        if (m.type === 'done') call.resolve(m.result);
        else call.reject(Object.assign(new Error(m.error.message), { code: m.error.code, cancelled: m.error.code === 'ABORTED' }));
      }
    };
    this.worker.onerror = (e) => {
      for (const call of this.calls.values()) call.reject(new Error(e.message || 'the local worker failed to start (run npm run build:web)'));
      this.calls.clear();
    };
  },
  call(message, onProgress = () => {}) {
    this.start();
    const id = this.nextId++;
    const result = new Promise((resolve, reject) => this.calls.set(id, { resolve, reject, onProgress }));
    // a busy worker reads messages only between tasks: a shared flag reaches it mid-task (isolated pages)
    const cancelFlag = globalThis.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    this.worker.postMessage({ ...message, id, cancelFlag });
    return {
      result,
      cancel: () => {
        if (cancelFlag) Atomics.store(cancelFlag, 0, 1);
        this.worker.postMessage({ type: 'cancel', id });
      },
    };
  },
  run(task, input, onProgress) {
    if (!this.ready) return { result: Promise.reject(new Error(t('needModel'))), cancel() {} };
    return this.call({ type: 'run', task, input }, onProgress);
  },
};

const localProgress = progressView('local-progress-row', 'local-progress', 'local-stage');
let localLoad = null;

async function loadLocalModel() {
  if (localLoad) return;
  const precision = $('local-precision').value;
  const options = { endpoint: $('local-endpoint').value.trim() || undefined, device: $('local-device').value, precision: precision || undefined };
  // a VQGAN checkpoint URL other than the hub's (e.g. a small one for tests), from ?vqgan=
  if (params.has('vqgan')) options.vqgan = params.get('vqgan');
  showError('local-error', null);
  $('local-note').hidden = true;
  $('local-load').disabled = true;
  $('local-cancel').hidden = false;
  local.ready = false;
  local.loading = true;
  renderStatus();
  localProgress.start();
  localLoad = local.call({ type: 'load', source: $('local-model').value.trim(), options }, localProgress.update);
  try {
    const out = await localLoad.result;
    local.ready = true;
    const r = out.info.runtime;
    const render = () => {
      $('local-device-line').textContent = t('deviceLine', { device: out.device === 'webgpu' ? 'WebGPU' : 'WASM', precision: r.precision, threads: r.threads, ort: out.onnxruntime });
      $('local-device-line').dataset.device = out.device;
      const c = out.info.config;
      $('model-info').textContent = `${out.info.source} · ${c.num_layers}×${c.hidden_size} · ${out.device} · ${r.precision}`;
    };
    rerenders.set('local-device', render);
    render();
    if (out.note) { $('local-note').hidden = false; $('local-note').textContent = out.note; }
  } catch (err) {
    showError('local-error', err);
  } finally {
    localLoad = null;
    local.loading = false;
    localProgress.stop();
    $('local-load').disabled = false;
    $('local-cancel').hidden = true;
    renderStatus();
  }
}

$('local-form').addEventListener('submit', (e) => { e.preventDefault(); void loadLocalModel(); });
$('local-cancel').addEventListener('click', () => localLoad?.cancel());

function enterMode(next, remember = true) {
  mode = next;
  if (remember) localStorage.setItem('rudolph-mode', mode);
  $('local-bar').hidden = mode !== 'local';
  formsBuilt = false;
  for (const box of document.querySelectorAll('[data-task-options]')) box.replaceChildren();
  void buildOptionForms().catch(() => { /* the status line reports an unreachable server */ });
  void loadInfo();
  void refreshStatus();
}

$('mode').addEventListener('click', () => enterMode(mode === 'local' ? 'server' : 'local'));

for (const [param, id] of [['model', 'local-model'], ['endpoint', 'local-endpoint'], ['device', 'local-device'], ['precision', 'local-precision']]) {
  if (params.has(param)) $(id).value = params.get(param);
}

applyLanguage();
enterMode(mode);
if (mode === 'local' && params.get('autoload') === '1') void loadLocalModel();
setInterval(refreshStatus, 10_000);

// The activity of a session in the agent console: its audit trail
// (GET /api/v1/sessions/{id}/audit), one line per event: when, who, what.

import { t, getLang } from './i18n.js';

function clockText(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(getLang(), { hour: 'numeric', minute: '2-digit', second: '2-digit' }).format(d);
}

/** actorText names who did something: "You", an agent's name when the trail knows it, a customer, a key, the system. */
function actorText(ev, names, myId) {
  const actor = String(ev.actor || '');
  const [kind, id] = actor.split(':');
  switch (kind) {
    case 'agent':
      if (id && myId === id) return t('audit.actor.you');
      return names.get(actor) || t('audit.actor.agent');
    case 'apikey':
      return t('audit.actor.apikey');
    case 'customer':
      return t('audit.actor.customer');
    case 'system':
      return t('audit.actor.system');
    default:
      return actor;
  }
}

/** renderActivityList fills list with events (oldest first) and shows empty when there are none; myId is the signed-in agent's id. */
export function renderActivityList(list, empty, events, myId) {
  // Agents' names come with their joins; use them for the agents' other events too.
  const names = new Map();
  for (const ev of events) {
    if (ev.details?.name && String(ev.actor).startsWith('agent:')) names.set(ev.actor, ev.details.name);
  }
  empty.hidden = events.length > 0;
  list.replaceChildren(
    ...events.map((ev) => {
      const li = document.createElement('li');
      li.className = 'activity-item';
      li.dataset.type = ev.type || '';
      const time = document.createElement('time');
      time.className = 'activity-time';
      time.dateTime = ev.time || '';
      time.textContent = clockText(ev.time);
      const who = document.createElement('span');
      who.className = 'activity-actor';
      who.textContent = actorText(ev, names, myId);
      const what = document.createElement('span');
      what.className = 'activity-what';
      const key = `audit.type.${ev.type}`;
      const text = t(key);
      what.textContent = text === key ? String(ev.type || '') : text;
      li.append(time, who, what);
      // Why the system ended it (an agent's own end needs no reason).
      const reasonKey = `reason.${ev.details?.reason}`;
      if (ev.type === 'session.ended' && ev.actor === 'system' && t(reasonKey) !== reasonKey) {
        const why = document.createElement('span');
        why.className = 'activity-detail';
        why.textContent = t(reasonKey);
        li.append(why);
      }
      // What was blocked: the page (no query), or the element the agent tried.
      const detail = ev.type === 'navigation.blocked' ? ev.details?.url : ev.type === 'input.refused' ? ev.details?.selector : '';
      if (detail) {
        const what = document.createElement('span');
        what.className = 'activity-detail';
        what.textContent = String(detail);
        li.append(what);
      }
      return li;
    }),
  );
}

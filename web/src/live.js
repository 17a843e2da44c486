// Live updates from the gateway (Server-Sent Events read with fetch, so the token travels in a
// header and never in a URL): new inbox messages and the unread count. Pages subscribe with
// onLive() to refresh what they show when something about them changes; nothing is replayed
// after a reconnect, so pages also reload on their own when opened.

import { reactive } from 'vue'
import { showNotify } from 'vant'

import { ensureFresh, refresh, session } from './session'

export const inbox = reactive({ unread: 0, connected: false })

const listeners = new Set()
let controller = null
let retryTimer = 0

/** fn(message) for every new message while the page is open; returns the unsubscribe. */
export function onLive(fn) {
  listeners.add(fn)
  return () => listeners.delete(fn)
}

export function stopLive() {
  clearTimeout(retryTimer)
  if (controller) controller.abort()
  controller = null
  inbox.unread = 0
  inbox.connected = false
}

export function startLive() {
  stopLive()
  connect(1)
}

function deliver(update) {
  inbox.unread = Number(update.unread || 0)
  if (!update.message) return
  showNotify({ type: 'primary', message: `${update.message.title}：${update.message.body}`, duration: 4000 })
  for (const fn of listeners) fn(update.message)
}

function parseEvents(buffer, onEvent) {
  // events are separated by a blank line; keep the unfinished tail for the next chunk
  const parts = buffer.split(/\r?\n\r?\n/)
  const tail = parts.pop()
  for (const part of parts) {
    let name = 'message'
    const data = []
    for (const line of part.split(/\r?\n/)) {
      if (line.startsWith('event:')) name = line.slice(6).trim()
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
    }
    if (data.length) onEvent(name, data.join('\n'))
  }
  return tail
}

async function connect(attempt) {
  const mine = new AbortController()
  controller = mine
  let reply
  try {
    await ensureFresh()
    reply = await fetch('/api/v1/notification/WatchInbox', {
      headers: { Authorization: `Bearer ${session.accessToken}`, Accept: 'text/event-stream' },
      signal: mine.signal,
    })
  } catch {
    reply = null
  }
  if (controller !== mine) return
  if (reply && reply.status === 401) {
    if (!(await refresh())) return
  } else if (reply && reply.ok && reply.body) {
    inbox.connected = true
    attempt = 1
    const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        // the first heartbeat carries the unread count at once, later ones keep it current
        buffer = parseEvents(buffer + value, (name, data) => {
          if (name === 'inbox' || name === 'heartbeat') deliver(JSON.parse(data))
        })
      }
    } catch {
      // aborted or the connection dropped: reconnect below unless stopped
    }
    inbox.connected = false
  }
  if (controller !== mine) return
  // the stream ended (token expiry, a restart, a network change): come back, backing off
  const wait = Math.min(30_000, 1_000 * 2 ** Math.min(attempt, 5))
  retryTimer = setTimeout(() => connect(attempt + 1), wait)
}

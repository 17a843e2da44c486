// Who is logged in, and keeping their access token fresh.
//
// The access token is short-lived; the refresh token trades for a new pair before it runs out.
// Refresh tokens rotate (the one sent is spent, and a spent one presented again ends the whole
// session), so every tab refreshes under one Web Lock and re-reads the stored pair first:
// two tabs never spend the same token.
//
// Leaving — logout, an expired session, a switch of user — always reloads the page, so nothing
// the previous user saw can survive in memory.

import { reactive } from 'vue'

const STORAGE_KEY = 'wenming.session'
const NOTICE_KEY = 'wenming.notice'
const REFRESH_AHEAD_MS = 60_000

export const session = reactive({ claims: null, accessToken: '', expiresAt: 0 })

let refreshTimer = 0

function stored() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null')
  } catch {
    return null
  }
}

function adopt(saved) {
  session.claims = saved ? saved.claims : null
  session.accessToken = saved ? saved.accessToken : ''
  session.expiresAt = saved ? saved.expiresAt : 0
  clearTimeout(refreshTimer)
  if (saved) {
    const wait = Math.max(1_000, saved.expiresAt - REFRESH_AHEAD_MS - Date.now())
    refreshTimer = setTimeout(() => refresh().catch(() => {}), wait)
  }
}

function save(reply) {
  const saved = {
    claims: reply.claims,
    accessToken: reply.accessToken,
    expiresAt: Date.parse(reply.expiresAt),
    refreshToken: reply.refreshToken,
    // a session without a refresh token lasts as long as its access token
    refreshExpiresAt: Date.parse(reply.refreshExpiresAt) || Date.parse(reply.expiresAt),
  }
  localStorage.setItem(STORAGE_KEY, JSON.stringify(saved))
  adopt(saved)
}

/** Restores the stored session (a reload keeps the user logged in) and follows other tabs. */
export function restoreSession() {
  const saved = stored()
  if (saved && saved.refreshExpiresAt > Date.now()) adopt(saved)
  else localStorage.removeItem(STORAGE_KEY)
  window.addEventListener('storage', (event) => {
    if (event.key !== STORAGE_KEY) return
    const next = stored()
    // another tab logged out or in as someone else: this tab must not keep showing the old user
    if (!next || !session.claims || next.claims.subject !== session.claims.subject) leave('')
    else adopt(next)
  })
}

async function post(method, body) {
  const reply = await fetch(`/api/v1/registration/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const payload = await reply.json().catch(() => ({}))
  return { ok: reply.ok, status: reply.status, payload }
}

export async function login(districtId, kind, loginName, password) {
  const { ok, payload } = await post('Login', { districtId, kind, login: loginName, password })
  if (!ok) return payload.error || { status: 'UNAVAILABLE' }
  // a different user on this device: start from a clean page
  const previous = stored()
  save(payload)
  if (previous && previous.claims.subject !== payload.claims.subject) sessionStorage.clear()
  return null
}

let refreshing = null

/** A fresh access token, or the session ends. Single-flight in this tab, locked across tabs. */
export function refresh() {
  if (!refreshing) {
    const run = async () => {
      const current = stored()
      if (!current) return leave('登录已过期，请重新登录')
      if (current.expiresAt - REFRESH_AHEAD_MS > Date.now() && current.accessToken !== session.accessToken) {
        adopt(current) // another tab refreshed meanwhile
        return true
      }
      let result
      try {
        result = await post('RefreshToken', { refreshToken: current.refreshToken })
      } catch {
        return false // offline: keep the session, the next call says so
      }
      if (!result.ok) {
        if (result.status >= 500) return false
        return leave('登录已过期，请重新登录')
      }
      save(result.payload)
      return true
    }
    const locked = navigator.locks ? navigator.locks.request('wenming-refresh', run) : run()
    refreshing = locked.finally(() => { refreshing = null })
  }
  return refreshing
}

export async function ensureFresh() {
  if (session.accessToken && session.expiresAt - REFRESH_AHEAD_MS < Date.now()) await refresh()
}

export async function logout() {
  const current = stored()
  if (current) {
    try {
      await post('Logout', { refreshToken: current.refreshToken })
    } catch {
      // offline: the session still ends on this device
    }
  }
  leave('您已退出登录')
}

/** Ends the session on this device and reloads onto the login page with a notice. */
export function leave(notice) {
  clearTimeout(refreshTimer)
  localStorage.removeItem(STORAGE_KEY)
  sessionStorage.clear()
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice)
  window.location.replace('/app/login')
  return false
}

export function takeNotice() {
  const notice = sessionStorage.getItem(NOTICE_KEY) || ''
  sessionStorage.removeItem(NOTICE_KEY)
  return notice
}

export const ROLE_HOME = {
  ROLE_RESIDENT: '/resident',
  ROLE_VOLUNTEER: '/volunteer',
  ROLE_UNIT_ADMIN: '/admin',
}

export function homePath() {
  return (session.claims && ROLE_HOME[session.claims.role]) || '/login'
}

// The one way the app talks to the platform: POST /api/v1/<service>/<Method> on the gateway,
// with the caller's own token, proto3 JSON in and out. Failures become an ApiError whose
// `message` is Chinese and fit to show a person.

import { ensureFresh, leave, refresh, session } from './session'

// What a person is told, by the gRPC status the gateway reports.
const MESSAGES = {
  INVALID_ARGUMENT: '填写的内容有误，请检查标红的项目',
  FAILED_PRECONDITION: '当前状态下不能这样操作（可能已被他人处理），请刷新后再试',
  PERMISSION_DENIED: '您没有权限查看或办理此事项',
  NOT_FOUND: '没有找到这条记录，可能已被删除或不在您的范围内',
  ALREADY_EXISTS: '这条记录已经存在',
  ABORTED: '有人同时修改了这条记录，请刷新后再试',
  RESOURCE_EXHAUSTED: '操作太频繁了，请稍后再试',
  UNAUTHENTICATED: '登录已过期，请重新登录',
  UNAVAILABLE: '服务暂时不可用，请稍后再试',
  DEADLINE_EXCEEDED: '服务响应超时，请稍后再试',
  INTERNAL: '服务出错了，请稍后再试',
  NETWORK: '网络连接失败，请检查网络后重试',
}

export class ApiError extends Error {
  constructor(status, message, fields = []) {
    super(message)
    this.status = status // gRPC status name, or NETWORK
    this.fields = fields // [{field, description}] from google.rpc.BadRequest
  }

  /** True for the fields a form should mark (request paths, e.g. "wantedAt" or "wanted_at"). */
  hasField(name) {
    const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
    return this.fields.some((v) => v.field === name || v.field === snake)
  }
}

function errorFrom(body, httpStatus, messages, explained) {
  const error = (body && body.error) || {}
  const status = error.status || (httpStatus >= 500 ? 'UNAVAILABLE' : 'INTERNAL')
  const fields = []
  for (const detail of error.details || []) {
    for (const violation of detail.fieldViolations || []) fields.push(violation)
  }
  const message = explained.includes(status) && error.message ? error.message : messages[status]
  return new ApiError(status, message || MESSAGES[status] || MESSAGES.INTERNAL, fields)
}

async function send(service, method, body, withToken) {
  const headers = { 'Content-Type': 'application/json' }
  if (withToken && session.accessToken) headers.Authorization = `Bearer ${session.accessToken}`
  try {
    return await fetch(`/api/v1/${service}/${method}`, { method: 'POST', headers, body: JSON.stringify(body) })
  } catch {
    return null
  }
}

/**
 * Calls `service.method` with `body`; resolves to the reply, rejects with an ApiError.
 * `messages` overrides what a status says for this call (e.g. a lost 抢单 race); for the statuses in
 * `explained` the service's own message is shown (one written in Chinese for people, e.g. which
 * booking a room's slot is taken by).
 */
export async function call(service, method, body = {}, { messages = {}, anonymous = false, explained = [] } = {}) {
  if (!anonymous) await ensureFresh()
  let reply = await send(service, method, body, !anonymous)
  if (reply && reply.status === 401 && !anonymous) {
    // the token ran out between the check and the call: one refresh, one retry
    if (await refresh()) reply = await send(service, method, body, true)
  }
  if (!reply) throw new ApiError('NETWORK', MESSAGES.NETWORK)
  const payload = await reply.json().catch(() => null)
  if (reply.ok && payload) return payload
  const error = errorFrom(payload, reply.status, messages, explained)
  if (error.status === 'UNAUTHENTICATED' && !anonymous) leave(MESSAGES.UNAUTHENTICATED)
  throw error
}

/** Every page of a paged list call, up to `limit` items. */
export async function callAll(service, method, body, key, limit = 500) {
  const items = []
  let pageToken = ''
  do {
    const reply = await call(service, method, { ...body, page: { pageSize: 100, pageToken } })
    items.push(...(reply[key] || []))
    pageToken = reply.page ? reply.page.nextPageToken : ''
  } while (pageToken && items.length < limit)
  return items
}

/** A retry key for calls that must not happen twice (兑换, 证明). */
export function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`
}

/**
 * Saves an export's file (GET /api/v1/<service>/exports/<jobId>/file, the token in the header,
 * never in a URL) under `fileName`; rejects with an ApiError.
 */
export async function download(service, jobId, fileName) {
  await ensureFresh()
  let reply = null
  try {
    reply = await fetch(`/api/v1/${service}/exports/${encodeURIComponent(jobId)}/file`,
      { headers: { Authorization: `Bearer ${session.accessToken}` } })
  } catch {
    throw new ApiError('NETWORK', MESSAGES.NETWORK)
  }
  if (!reply.ok) throw errorFrom(await reply.json().catch(() => null), reply.status, {})
  const url = URL.createObjectURL(await reply.blob())
  const link = Object.assign(document.createElement('a'), { href: url, download: fileName })
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

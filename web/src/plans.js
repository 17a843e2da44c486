// Activity plans (年有计划、月有安排、周有活动): the dates of an entry's `when` — a day
// (2026-05-12), an ISO week (2026-W20) or a month (2026-05) — as the calendar places and names them.
// The same forms as services/ordering/plan_rules.py.

export const PLAN_PERIOD = {
  ACTIVITY_PLAN_PERIOD_YEAR: '年度计划',
  ACTIVITY_PLAN_PERIOD_MONTH: '月度安排',
  ACTIVITY_PLAN_PERIOD_WEEK: '每周活动',
}

export const PLAN_STATUS = {
  ACTIVITY_PLAN_STATUS_DRAFT: '草拟中',
  ACTIVITY_PLAN_STATUS_CONSULTING: '征求意见中',
  ACTIVITY_PLAN_STATUS_PUBLISHED: '已发布',
}

export const PLAN_STATUS_TAG = {
  ACTIVITY_PLAN_STATUS_DRAFT: 'default',
  ACTIVITY_PLAN_STATUS_CONSULTING: 'warning',
  ACTIVITY_PLAN_STATUS_PUBLISHED: 'success',
}

const WEEKDAYS = ['周一', '周二', '周三', '周四', '周五', '周六', '周日']
const DAY = 86400_000

function utcDate(iso) {
  return new Date(`${iso}T00:00:00Z`)
}

function isoDay(d) {
  return d.toISOString().slice(0, 10)
}

/** The Monday of ISO week `week` of `year`, as a UTC date. */
function mondayOf(year, week) {
  const jan4 = new Date(Date.UTC(year, 0, 4))
  const monday = new Date(jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * DAY)
  return new Date(monday.getTime() + (week - 1) * 7 * DAY)
}

/** "2026-W20" of a day "2026-05-12". */
export function weekKey(iso) {
  const d = utcDate(iso)
  const thursday = new Date(d.getTime() + (3 - ((d.getUTCDay() + 6) % 7)) * DAY)
  const year = thursday.getUTCFullYear()
  const week = Math.floor((thursday - Date.UTC(year, 0, 1)) / DAY / 7) + 1
  return `${year}-W${String(week).padStart(2, '0')}`
}

/** [first, last] day (YYYY-MM-DD) that `when` names, or null. */
export function span(when) {
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(when)
  if (m) return [when, when]
  m = /^(\d{4})-W(\d{2})$/.exec(when)
  if (m) {
    const monday = mondayOf(Number(m[1]), Number(m[2]))
    return [isoDay(monday), isoDay(new Date(monday.getTime() + 6 * DAY))]
  }
  m = /^(\d{4})-(\d{2})$/.exec(when)
  if (m) {
    const first = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1))
    const last = new Date(Date.UTC(Number(m[1]), Number(m[2]), 0))
    return [isoDay(first), isoDay(last)]
  }
  return null
}

function monthDay(iso) {
  const d = utcDate(iso)
  return `${d.getUTCMonth() + 1}月${d.getUTCDate()}日`
}

/** 5月12日（周二）, 第20周（5月11日–5月17日） or 5月内. */
export function whenLabel(when) {
  const days = span(when)
  if (!days) return when
  if (/^\d{4}-\d{2}-\d{2}$/.test(when)) return `${monthDay(when)}（${WEEKDAYS[(utcDate(when).getUTCDay() + 6) % 7]}）`
  if (when.includes('W')) return `第${Number(when.slice(6))}周（${monthDay(days[0])}–${monthDay(days[1])}）`
  return `${Number(when.slice(5))}月内`
}

/** "2026年5月" of "2026-05". */
export function monthLabel(month) {
  return `${month.slice(0, 4)}年${Number(month.slice(5))}月`
}

/** The month `delta` months from "2026-05". */
export function addMonths(month, delta) {
  const d = new Date(Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5)) - 1 + delta, 1))
  return d.toISOString().slice(0, 7)
}

/** The ISO weeks with a day in `month`: [{ key, first, last }] with the days as YYYY-MM-DD. */
export function weeksOf(month) {
  const [first, last] = span(month)
  const weeks = []
  let day = span(weekKey(first))[0]
  while (day <= last) {
    const key = weekKey(day)
    const [monday, sunday] = span(key)
    weeks.push({ key, first: monday, last: sunday })
    day = isoDay(new Date(utcDate(monday).getTime() + 7 * DAY))
  }
  return weeks
}

/** Whether `when` has a day inside [first, last]. */
export function overlaps(when, first, last) {
  const days = span(when)
  return Boolean(days) && days[0] <= last && days[1] >= first
}

// Chinese names of the contract's enums, and the dates and durations people read.

export const ORDER_STATUS = {
  ORDER_STATUS_PLACED: '待受理',
  ORDER_STATUS_ACKNOWLEDGED: '已受理',
  ORDER_STATUS_ESCALATED: '已上报',
  ORDER_STATUS_DISPATCHED: '已派单',
  ORDER_STATUS_OPEN: '待认领',
  ORDER_STATUS_ACCEPTED: '已接单',
  ORDER_STATUS_IN_SERVICE: '服务中',
  ORDER_STATUS_COMPLETED: '待审核时长',
  ORDER_STATUS_HOURS_CONFIRMED: '待评价',
  ORDER_STATUS_RATED: '已评价',
  ORDER_STATUS_CLOSED: '已办结',
  ORDER_STATUS_DECLINED: '待重新派单',
  ORDER_STATUS_CANCELLED: '已取消',
  ORDER_STATUS_REJECTED: '已驳回',
}

// Vant tag types: where an order is on its way, at a glance
export const ORDER_STATUS_TAG = {
  ORDER_STATUS_PLACED: 'warning',
  ORDER_STATUS_ESCALATED: 'warning',
  ORDER_STATUS_DECLINED: 'warning',
  ORDER_STATUS_CANCELLED: 'default',
  ORDER_STATUS_REJECTED: 'default',
  ORDER_STATUS_CLOSED: 'default',
  ORDER_STATUS_RATED: 'success',
  ORDER_STATUS_HOURS_CONFIRMED: 'success',
}

export const OPEN_STATUSES = [
  'ORDER_STATUS_PLACED', 'ORDER_STATUS_ACKNOWLEDGED', 'ORDER_STATUS_ESCALATED', 'ORDER_STATUS_DISPATCHED',
  'ORDER_STATUS_OPEN', 'ORDER_STATUS_ACCEPTED', 'ORDER_STATUS_IN_SERVICE', 'ORDER_STATUS_COMPLETED',
  'ORDER_STATUS_DECLINED',
]

export const CATEGORY = {
  SERVICE_CATEGORY_LECTURE_THEORY: '讲理论',
  SERVICE_CATEGORY_LECTURE_POLICY: '讲政策',
  SERVICE_CATEGORY_LECTURE_SCIENCE: '讲科学',
  SERVICE_CATEGORY_LECTURE_LAW: '讲法治',
  SERVICE_CATEGORY_LECTURE_HEALTH: '讲健康',
  SERVICE_CATEGORY_LECTURE_ROLE_MODELS: '讲典型',
  SERVICE_CATEGORY_LECTURE_CHANGE: '讲变化',
  SERVICE_CATEGORY_CARE_FOR_OTHERS: '关爱他人',
  SERVICE_CATEGORY_CARE_FOR_SOCIETY: '关爱社会',
  SERVICE_CATEGORY_CARE_FOR_NATURE: '关爱自然',
}

export const LEVEL = {
  UNIT_LEVEL_CENTER: '中心',
  UNIT_LEVEL_INSTITUTE: '实践所',
  UNIT_LEVEL_STATION: '实践站',
  UNIT_LEVEL_COURTYARD: '小院',
}

// 表彰/嘉许 levels
export const COMMENDATION_LEVEL = {
  COMMENDATION_LEVEL_DISTRICT: '区县级',
  COMMENDATION_LEVEL_CITY: '市级',
  COMMENDATION_LEVEL_PROVINCE: '省级',
  COMMENDATION_LEVEL_NATIONAL: '国家级',
}

// 志愿者信用 (services/ordering/credit_rules.py)
export const CREDIT_KIND = {
  CREDIT_INCIDENT_KIND_NO_SHOW: '爽约',
  CREDIT_INCIDENT_KIND_COMPLAINT: '投诉',
}

export const CREDIT_STATUS = {
  CREDIT_INCIDENT_STATUS_STANDING: '有效',
  CREDIT_INCIDENT_STATUS_APPEALED: '申诉中',
  CREDIT_INCIDENT_STATUS_VOIDED: '申诉成立，已撤销',
  CREDIT_INCIDENT_STATUS_CONFIRMED: '申诉驳回，维持',
}

export const CREDIT_STATUS_TAG = {
  CREDIT_INCIDENT_STATUS_STANDING: 'danger',
  CREDIT_INCIDENT_STATUS_APPEALED: 'warning',
  CREDIT_INCIDENT_STATUS_VOIDED: 'success',
  CREDIT_INCIDENT_STATUS_CONFIRMED: 'danger',
}

export const ROLE = {
  ROLE_RESIDENT: '居民',
  ROLE_VOLUNTEER: '志愿者',
  ROLE_UNIT_ADMIN: '管理员',
}

export const ACTIVITY_STATUS = {
  ACTIVITY_STATUS_PLANNED: '筹备中',
  ACTIVITY_STATUS_PUBLISHED: '报名中',
  ACTIVITY_STATUS_COMPLETED: '已结束',
  ACTIVITY_STATUS_CANCELLED: '已取消',
}

export const REDEMPTION_STATUS = {
  REDEMPTION_STATUS_PENDING: '处理中',
  REDEMPTION_STATUS_COMPLETED: '待领取',
  REDEMPTION_STATUS_COLLECTED: '已领取',
  REDEMPTION_STATUS_FAILED: '未成功',
  REDEMPTION_STATUS_REFUNDING: '退还中',
  REDEMPTION_STATUS_REFUNDED: '已退还',
}

export const SESSION_STATUS = {
  SESSION_STATUS_SCHEDULED: '报名中',
  SESSION_STATUS_CLOSED: '已结束',
  SESSION_STATUS_CANCELLED: '已取消',
}

export const TRAINEE_STATE = {
  TRAINEE_STATE_ENROLLED: '已报名',
  TRAINEE_STATE_WAITLISTED: '候补中',
  TRAINEE_STATE_ATTENDED: '已签到',
  TRAINEE_STATE_PASSED: '已合格',
  TRAINEE_STATE_FAILED: '未通过',
  TRAINEE_STATE_ABSENT: '缺席',
  TRAINEE_STATE_CANCELLED: '已取消',
}

export const BOOK = {
  BOOK_VERIFIED_MINUTES: '服务时长（已核验）',
  BOOK_MANUAL_MINUTES: '荣誉时长',
  BOOK_TRAINING_MINUTES: '培训学时',
  BOOK_POINTS: '积分',
}

export const GRADE = {
  SCORECARD_GRADE_EXEMPLARY: '示范级',
  SCORECARD_GRADE_STANDARD: '达标级',
  SCORECARD_GRADE_BUILDING: '创建级',
}

export const VENUE_KIND = {
  VENUE_KIND_PRACTICE_INSTITUTE: '实践所',
  VENUE_KIND_PRACTICE_STATION: '实践站',
  VENUE_KIND_SQUARE: '广场',
  VENUE_KIND_COURTYARD: '小院',
  VENUE_KIND_OTHER: '其他',
}

export const ROOM_KIND = {
  ROOM_KIND_LIBRARY: '图书室',
  ROOM_KIND_TRAINING: '培训室',
  ROOM_KIND_ACTIVITY: '活动室',
  ROOM_KIND_MEETING: '会议室',
  ROOM_KIND_OTHER: '其他',
}

export const PROJECT_STATUS = {
  PROJECT_STATUS_DECLARED: '已申报',
  PROJECT_STATUS_UNDER_REVIEW: '评审中',
  PROJECT_STATUS_APPROVED: '已立项',
  PROJECT_STATUS_INCUBATING: '孵化中',
  PROJECT_STATUS_BRANDED: '品牌项目',
  PROJECT_STATUS_CONCLUDED: '已结项',
  PROJECT_STATUS_REJECTED: '已驳回',
}

export const PROJECT_STATUS_TAG = {
  PROJECT_STATUS_DECLARED: 'warning',
  PROJECT_STATUS_UNDER_REVIEW: 'warning',
  PROJECT_STATUS_BRANDED: 'danger',
  PROJECT_STATUS_INCUBATING: 'success',
  PROJECT_STATUS_APPROVED: 'success',
}

// what a reviewer above the project's unit may decide next (services/ordering/project_rules.NEXT)
export const PROJECT_NEXT = {
  PROJECT_STATUS_DECLARED: [['PROJECT_STATUS_UNDER_REVIEW', '进入评审'], ['PROJECT_STATUS_REJECTED', '驳回']],
  PROJECT_STATUS_UNDER_REVIEW: [['PROJECT_STATUS_APPROVED', '立项'], ['PROJECT_STATUS_REJECTED', '驳回']],
  PROJECT_STATUS_APPROVED: [['PROJECT_STATUS_INCUBATING', '转入孵化'], ['PROJECT_STATUS_CONCLUDED', '结项']],
  PROJECT_STATUS_INCUBATING: [['PROJECT_STATUS_BRANDED', '评为品牌项目'], ['PROJECT_STATUS_CONCLUDED', '结项']],
  PROJECT_STATUS_BRANDED: [['PROJECT_STATUS_CONCLUDED', '结项']],
}

export function label(table, value) {
  return table[value] || '—'
}

const CHINA = 'Asia/Shanghai'

/** Today in China time, whatever the device's zone: its year, its month and the YYYY-MM-DD date. */
export function chinaToday() {
  const shifted = new Date(Date.now() + 8 * 3600_000)
  return { year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, iso: shifted.toISOString().slice(0, 10) }
}

/** 2026年11月, 2026年第4季度 or 2026年: a scorecard period ({year, month, quarter}) as its sheet names it. */
export function periodLabel({ year, month, quarter }) {
  if (month) return `${year}年${month}月`
  if (quarter) return `${year}年第${quarter}季度`
  return `${year}年`
}
const DATE_TIME = new Intl.DateTimeFormat('zh-CN', {
  timeZone: CHINA, month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false,
})
const DATE = new Intl.DateTimeFormat('zh-CN', { timeZone: CHINA, year: 'numeric', month: 'numeric', day: 'numeric' })

/** 12月7日 14:05 (China time), or '' for an absent timestamp. */
export function dateTime(timestamp) {
  if (!timestamp) return ''
  return DATE_TIME.format(new Date(timestamp))
}

export function date(timestamp) {
  if (!timestamp) return ''
  return DATE.format(new Date(timestamp))
}

/** 1小时25分 from minutes (int64 arrives as a string in proto3 JSON). */
export function minutes(value) {
  const total = Number(value || 0)
  const hours = Math.floor(total / 60)
  const rest = total % 60
  if (!hours) return `${rest}分钟`
  return rest ? `${hours}小时${rest}分` : `${hours}小时`
}

/** Hours with one decimal, for stars and leaderboards. */
export function hours(value) {
  return (Number(value || 0) / 60).toFixed(1)
}

/** A datetime-local input's value (China time) as an RFC 3339 timestamp. */
export function fromLocalInput(value) {
  return value ? new Date(`${value}:00+08:00`).toISOString() : undefined
}

/** An RFC 3339 timestamp as a datetime-local input's value in China time. */
export function toLocalInput(timestamp) {
  const shifted = new Date(new Date(timestamp).getTime() + 8 * 3600_000)
  return shifted.toISOString().slice(0, 16)
}

/** Where restocked goods came from (RestockStoreItem.source). */
export const STOCK_SOURCE = {
  STOCK_SOURCE_UNSPECIFIED: '本单位自购',
  STOCK_SOURCE_MERCHANT: '爱心商家捐赠',
  STOCK_SOURCE_CHARITY_STORE: '慈善超市捐赠',
}

export const MERCHANT_STATUS = {
  MERCHANT_STATUS_ACTIVE: '合作中',
  MERCHANT_STATUS_SUSPENDED: '已暂停',
}

/** A 礼遇 rule in one line: "积分超市兑换九折（爱心面包房） · 免费体检、景区免票". */
export function perkText(rule) {
  const parts = []
  if (rule.discountPercent) {
    const off = 100 - rule.discountPercent
    const where = rule.merchantName ? `「${rule.merchantName}」的物品` : '积分超市物品'
    parts.push(`${where}${off % 10 ? `${off}折` : `${off / 10}折`}兑换`)
  }
  if (rule.benefits && rule.benefits.length) {
    parts.push(`${rule.benefits.join('、')}${rule.merchantName && !rule.discountPercent ? `（${rule.merchantName}）` : ''}`)
  }
  return parts.join(' · ')
}

// a published article's workflow (services/media/articles.py), as an honour roll's author sees it
export const ARTICLE_STATUS = {
  ARTICLE_STATUS_DRAFT: '草稿',
  ARTICLE_STATUS_PENDING_REVIEW: '待审核',
  ARTICLE_STATUS_PUBLISHED: '已发布',
  ARTICLE_STATUS_REJECTED: '已退回',
  ARTICLE_STATUS_WITHDRAWN: '已撤回',
}

export const ARTICLE_STATUS_TAG = {
  ARTICLE_STATUS_DRAFT: 'default',
  ARTICLE_STATUS_PENDING_REVIEW: 'warning',
  ARTICLE_STATUS_PUBLISHED: 'success',
  ARTICLE_STATUS_REJECTED: 'danger',
  ARTICLE_STATUS_WITHDRAWN: 'default',
}

// Pages by role. Each role's pages are one chunk, loaded on first visit.
import { createRouter, createWebHistory } from 'vue-router'

import { homePath, session } from './session'

const resident = (name) => () => import(`./views/resident/${name}.vue`)
const volunteer = (name) => () => import(`./views/volunteer/${name}.vue`)
const admin = (name) => () => import(`./views/admin/${name}.vue`)
const RoleLayout = () => import('./components/RoleLayout.vue')

const TABS = {
  ROLE_RESIDENT: [
    { to: '/resident', icon: 'apps-o', text: '服务' },
    { to: '/resident/orders', icon: 'orders-o', text: '我的点单' },
    { to: '/resident/activities', icon: 'calendar-o', text: '活动' },
    { to: '/inbox', icon: 'bell', text: '消息', inbox: true },
    { to: '/resident/me', icon: 'user-o', text: '我的' },
  ],
  ROLE_VOLUNTEER: [
    { to: '/volunteer', icon: 'todo-list-o', text: '任务' },
    { to: '/volunteer/activities', icon: 'calendar-o', text: '活动' },
    { to: '/volunteer/training', icon: 'certificate', text: '培训' },
    { to: '/inbox', icon: 'bell', text: '消息', inbox: true },
    { to: '/volunteer/me', icon: 'user-o', text: '我的' },
  ],
  ROLE_UNIT_ADMIN: [
    { to: '/admin', icon: 'records-o', text: '收单派单' },
    { to: '/admin/activities', icon: 'calendar-o', text: '活动' },
    { to: '/admin/center', icon: 'chart-trending-o', text: '调度中心' },
    { to: '/inbox', icon: 'bell', text: '消息', inbox: true },
    { to: '/admin/me', icon: 'user-o', text: '我的' },
  ],
}

function layout(role, children) {
  return { path: '', component: RoleLayout, props: { tabs: TABS[role] }, meta: { role }, children }
}

const routes = [
  { path: '/', redirect: () => homePath() },
  { path: '/login', component: () => import('./views/Login.vue'), meta: { public: true, title: '登录' } },
  { path: '/verify/:number', component: () => import('./views/Verify.vue'), meta: { public: true, title: '证明核验' } },
  {
    path: '/inbox', component: RoleLayout, props: () => ({ tabs: TABS[session.claims.role] }),
    children: [{ path: '', component: () => import('./views/Inbox.vue'), meta: { title: '消息' } }],
  },
  {
    path: '/resident',
    children: [layout('ROLE_RESIDENT', [
      { path: '', component: resident('Menu'), meta: { title: '服务菜单' } },
      { path: 'orders', component: resident('Orders'), meta: { title: '我的点单' } },
      { path: 'activities', component: () => import('./views/Activities.vue'), meta: { title: '身边的活动' } },
      { path: 'me', component: resident('Me'), meta: { title: '我的' } },
    ]),
    { path: 'order', component: resident('PlaceOrder'), meta: { role: 'ROLE_RESIDENT', title: '我要点单' } },
    { path: 'orders/:id', component: resident('OrderDetail'), meta: { role: 'ROLE_RESIDENT', title: '点单详情' } },
    { path: 'store', component: resident('Store'), meta: { role: 'ROLE_RESIDENT', title: '积分超市' } },
    { path: 'household', component: resident('Household'), meta: { role: 'ROLE_RESIDENT', title: '我家的文明户评星' } },
    { path: 'plans', component: () => import('./views/PlanCalendar.vue'), meta: { role: 'ROLE_RESIDENT', title: '活动计划' } },
    { path: 'honors', component: () => import('./views/HonorRolls.vue'), meta: { role: 'ROLE_RESIDENT', title: '善行义举榜' } }],
  },
  {
    path: '/volunteer',
    children: [layout('ROLE_VOLUNTEER', [
      { path: '', component: volunteer('Tasks'), meta: { title: '我的任务' } },
      { path: 'activities', component: () => import('./views/Activities.vue'), meta: { title: '志愿活动' } },
      { path: 'training', component: volunteer('Training'), meta: { title: '培训' } },
      { path: 'me', component: volunteer('Me'), meta: { title: '我的' } },
    ]),
    { path: 'tasks/:id', component: volunteer('TaskDetail'), meta: { role: 'ROLE_VOLUNTEER', title: '任务详情' } },
    { path: 'training/:sessionId/quiz', component: volunteer('Quiz'), meta: { role: 'ROLE_VOLUNTEER', title: '培训测验' } },
    // the residents' 积分超市, with the volunteer's 礼遇 prices
    { path: 'store', component: resident('Store'), meta: { role: 'ROLE_VOLUNTEER', title: '积分超市' } },
    { path: 'plans', component: () => import('./views/PlanCalendar.vue'), meta: { role: 'ROLE_VOLUNTEER', title: '活动计划' } },
    { path: 'honors', component: () => import('./views/HonorRolls.vue'), meta: { role: 'ROLE_VOLUNTEER', title: '善行义举榜' } }],
  },
  {
    path: '/admin',
    children: [layout('ROLE_UNIT_ADMIN', [
      { path: '', component: admin('Queue'), meta: { title: '收单派单' } },
      { path: 'activities', component: admin('Activities'), meta: { title: '活动管理' } },
      { path: 'center', component: () => import('./views/center/Center.vue'), meta: { title: '指挥调度中心' } },
      { path: 'me', component: admin('Me'), meta: { title: '我的' } },
    ]),
    { path: 'orders/:id', component: admin('OrderDetail'), meta: { role: 'ROLE_UNIT_ADMIN', title: '点单办理' } },
    { path: 'proxy', component: admin('ProxyOrder'), meta: { role: 'ROLE_UNIT_ADMIN', title: '代群众点单' } },
    { path: 'exports', component: admin('Exports'), meta: { role: 'ROLE_UNIT_ADMIN', title: '数据导出' } },
    { path: 'commendations', component: admin('Commendations'), meta: { role: 'ROLE_UNIT_ADMIN', title: '志愿者表彰' } },
    { path: 'taxonomy', component: admin('Taxonomy'), meta: { role: 'ROLE_UNIT_ADMIN', title: '服务菜单分类' } },
    { path: 'honor-rolls', component: admin('HonorRolls'), meta: { role: 'ROLE_UNIT_ADMIN', title: '善行义举榜' } },
    { path: 'evidence', component: admin('GradeEvidence'), meta: { role: 'ROLE_UNIT_ADMIN', title: '制度材料登记' } },
    { path: 'region', component: admin('Region'), meta: { role: 'ROLE_UNIT_ADMIN', title: '区域汇总' } },
    { path: 'perks', component: admin('Perks'), meta: { role: 'ROLE_UNIT_ADMIN', title: '爱心商家与礼遇' } },
    { path: 'store', component: admin('StoreStock'), meta: { role: 'ROLE_UNIT_ADMIN', title: '积分超市补货' } },
    { path: 'appeals', component: admin('CreditAppeals'), meta: { role: 'ROLE_UNIT_ADMIN', title: '信用申诉' } },
    { path: 'activities/new', component: admin('PlanActivity'), meta: { role: 'ROLE_UNIT_ADMIN', title: '策划活动' } },
    { path: 'activities/:id', component: admin('ActivityDetail'), meta: { role: 'ROLE_UNIT_ADMIN', title: '活动现场' } },
    { path: 'households', component: admin('Households'), meta: { role: 'ROLE_UNIT_ADMIN', title: '家庭户与十星评定' } },
    { path: 'venues', component: admin('Venues'), meta: { role: 'ROLE_UNIT_ADMIN', title: '阵地与功能室' } },
    { path: 'rooms/:id', component: admin('Room'), meta: { role: 'ROLE_UNIT_ADMIN', title: '功能室预约' } },
    { path: 'projects', component: admin('Projects'), meta: { role: 'ROLE_UNIT_ADMIN', title: '志愿服务项目' } },
    { path: 'projects/new', component: admin('ProposeProject'), meta: { role: 'ROLE_UNIT_ADMIN', title: '申报项目' } },
    { path: 'projects/:id', component: admin('ProjectDetail'), meta: { role: 'ROLE_UNIT_ADMIN', title: '项目详情' } },
    { path: 'plans', component: admin('ActivityPlans'), meta: { role: 'ROLE_UNIT_ADMIN', title: '活动计划' } },
    { path: 'plans/:id', component: admin('ActivityPlanDetail'), meta: { role: 'ROLE_UNIT_ADMIN', title: '活动计划' } }],
  },
  { path: '/:rest(.*)*', redirect: () => homePath() },
]

export const router = createRouter({ history: createWebHistory('/app/'), routes })

router.beforeEach((to) => {
  if (to.meta.public) return true
  if (!session.claims) return { path: '/login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  const role = to.matched.map((r) => r.meta.role).find(Boolean)
  if (role && role !== session.claims.role) return homePath()
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · 文明云` : '文明云'
})

import { createApp } from 'vue'
import {
  Button, Cell, CellGroup, Empty, Field, Form, Icon, List, Loading, NavBar, PullRefresh, Tag, setToastDefaultOptions,
} from 'vant'
import 'vant/lib/index.css'
import './theme.css'

import App from './App.vue'
import { router } from './router'
import { restoreSession } from './session'

restoreSession()

// Vant draws a toast as a dialog with no name, which screen readers announce as an empty dialog; a
// toast is a message to read out: a failure at once (alert), anything else in its turn (status)
setToastDefaultOptions({ role: 'status' })
setToastDefaultOptions('fail', { role: 'alert' })

const app = createApp(App)
for (const component of [Button, Cell, CellGroup, Empty, Field, Form, Icon, List, Loading, NavBar, PullRefresh, Tag]) {
  app.use(component)
}
// Vant's stepper buttons carry no names; a screen reader must hear what they change
app.directive('stepper-label', {
  mounted(el, { value }) {
    el.querySelector('.van-stepper__minus')?.setAttribute('aria-label', `减少${value}`)
    el.querySelector('.van-stepper__plus')?.setAttribute('aria-label', `增加${value}`)
    el.querySelector('.van-stepper__input')?.setAttribute('aria-label', value)
  },
})
// Vant's popups draw the overlay and the close icon as buttons without a name (axe: serious); both
// close the popup, so each is named so wherever a popup opens
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.van-overlay[role="button"]:not([aria-label]), .van-popup__close-icon:not([aria-label])')) {
    el.setAttribute('aria-label', '关闭')
  }
}).observe(document.body, { childList: true, subtree: true })
app.use(router)
app.mount('#app')

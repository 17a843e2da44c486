import { createApp } from 'vue'
import {
  Button, Cell, CellGroup, Empty, Field, Form, Icon, List, Loading, NavBar, PullRefresh, Tag,
} from 'vant'
import 'vant/lib/index.css'
import './theme.css'

import App from './App.vue'
import { router } from './router'
import { restoreSession } from './session'

restoreSession()

const app = createApp(App)
for (const component of [Button, Cell, CellGroup, Empty, Field, Form, Icon, List, Loading, NavBar, PullRefresh, Tag]) {
  app.use(component)
}
app.use(router)
app.mount('#app')

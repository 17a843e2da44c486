// Small composables the pages share.
import { onBeforeUnmount, reactive } from 'vue'
import { showFailToast, showSuccessToast } from 'vant'

import { onLive } from './live'

/** state.data from `fn()`, with loading and a Chinese error message; load() again to retry. */
export function useLoad(fn, { immediate = true } = {}) {
  const state = reactive({ loading: false, error: '', data: null })
  let generation = 0
  async function load() {
    const mine = ++generation
    state.loading = true
    state.error = ''
    try {
      const data = await fn()
      if (mine === generation) state.data = data
    } catch (error) {
      if (mine === generation) state.error = error.message
    } finally {
      if (mine === generation) state.loading = false
    }
  }
  if (immediate) load()
  return { state, load }
}

/** Runs an action with a busy flag; a toast says how it went. Resolves to the reply or null. */
export function useAction() {
  const busy = reactive({ on: false })
  async function run(fn, success) {
    if (busy.on) return null
    busy.on = true
    try {
      const reply = await fn()
      if (success) showSuccessToast(success)
      return reply
    } catch (error) {
      showFailToast({ message: error.message, duration: 3500 })
      return null
    } finally {
      busy.on = false
    }
  }
  return { busy, run }
}

/** Calls `fn` when a live message about one of `subjectIds()` (or any, if omitted) arrives. */
export function useLiveRefresh(fn, subjectIds = null) {
  const off = onLive((message) => {
    if (!subjectIds || subjectIds().includes(message.subjectId)) fn(message)
  })
  onBeforeUnmount(off)
}

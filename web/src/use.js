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

/**
 * What a form shows under each field the server refused (BadRequest, by request path: `period.year`
 * marks `period`): `messages[field]`, or else the server's own description. `marking(promise)` passes
 * the promise's refusal on after marking its fields.
 */
export function useFieldErrors(messages) {
  const errors = reactive(Object.fromEntries(Object.keys(messages).map((field) => [field, ''])))
  function clear() {
    for (const field of Object.keys(errors)) errors[field] = ''
  }
  async function marking(promise) {
    try {
      return await promise
    } catch (error) {
      for (const violation of error.fields || []) {
        const field = violation.field.split('.')[0]
        if (field in errors) errors[field] = messages[field] || violation.description
      }
      throw error
    }
  }
  return { errors, clear, marking }
}

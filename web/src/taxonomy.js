// The district's own menu taxonomy (类 and 项, GetDistrictTaxonomy): how the app groups the menu
// and names an item's district item.

/** The district category an item falls in: the one holding its district item, else the first
 * mapped to its national category; null when none is (then it shows under 其他). */
export function districtCategoryOf(taxonomy, item) {
  const categories = (taxonomy && taxonomy.categories) || []
  if (item.districtItemCode) {
    const home = categories.find((c) => (c.items || []).some((i) => i.code === item.districtItemCode))
    if (home) return home
  }
  return categories.find((c) => c.nationalCategory === item.category) || null
}

/** The name of a district item by its code, or ''. */
export function districtItemName(taxonomy, code) {
  for (const category of (taxonomy && taxonomy.categories) || []) {
    const found = (category.items || []).find((i) => i.code === code)
    if (found) return found.name
  }
  return ''
}

/** Tabs for the menu: 全部, then the district's categories in its order (those with items), then 其他. */
export function menuGroups(taxonomy, items) {
  const groups = new Map(((taxonomy && taxonomy.categories) || []).map((c) => [c.code, { title: c.name, items: [] }]))
  const others = { title: '其他', items: [] }
  for (const item of items) {
    const home = districtCategoryOf(taxonomy, item)
    ;(home ? groups.get(home.code) : others).items.push(item)
  }
  return [{ title: '全部', items }, ...[...groups.values(), others].filter((g) => g.items.length)]
}
